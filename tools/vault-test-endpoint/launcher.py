"""Starts and drives the Vault test endpoint from Python tests.

    sys.path.insert(0, "<source>/tools/vault-test-endpoint")
    from launcher import VaultTestEndpoint
    with VaultTestEndpoint(workdir, "--namespace", "ns1") as vault:
        vault.url, vault.port, vault.root_token, vault.credentials()["role_id"]
        vault.admin("POST", "/__faults", {"kind": "error", "status": 503})

The endpoint always runs under Debian's /usr/bin/python3, whatever
interpreter runs the test.
"""
import json
import os
import subprocess
import urllib.request
import uuid
from pathlib import Path

SERVER = Path(__file__).resolve().parent / "server.py"
DEBIAN_PYTHON = "/usr/bin/python3"


class VaultTestEndpoint:
    def __init__(self, workdir, *args):
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        port_file = workdir / f"vault-endpoint-{uuid.uuid4().hex[:8]}.json"
        python = DEBIAN_PYTHON if os.path.exists(DEBIAN_PYTHON) else "python3"
        # stderr goes to a file: a pipe nobody drains would block the server.
        self.log_path = port_file.with_suffix(".log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [python, str(SERVER), "--port", "0", "--port-file", str(port_file), *args],
                stdout=subprocess.PIPE, stderr=log, text=True)
        first = self.proc.stdout.readline().strip()
        if not first.isdigit():
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"vault test endpoint did not start: {first!r} "
                               f"{self.log_path.read_text()}")
        self.info = json.loads(port_file.read_text())
        self.port = self.info["port"]
        self.url = f"{self.info['scheme']}://127.0.0.1:{self.port}"
        # The admin API answers on every listener; use the plain one if there is one.
        self.admin_url = self.url
        self.root_token = self.info["root_token"]
        self.unseal_key = self.info["unseal_key"]

    def credentials(self, namespace=""):
        """The seeded AppRole / Kubernetes credentials of a namespace ("" = root)."""
        key = namespace.strip("/") + "/" if namespace.strip("/") else ""
        return self.info["credentials"][key]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def admin(self, method, path, doc=None, context=None):
        """Calls the admin API; returns the decoded JSON answer."""
        data = None if doc is None else json.dumps(doc).encode()
        req = urllib.request.Request(self.admin_url + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=30, context=context) as resp:
            return json.loads(resp.read())

    def requests_log(self):
        return self.admin("GET", "/__admin/requests")["requests"]

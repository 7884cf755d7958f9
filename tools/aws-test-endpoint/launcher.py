"""Starts and drives the test endpoint from Python tests.

    sys.path.insert(0, "<source>/tools/aws-test-endpoint")
    from launcher import AwsTestEndpoint
    with AwsTestEndpoint(workdir, "--imds-port", "0") as ep:
        ep.url, ep.port, ep.ports["imds_port"]
        ep.admin("POST", "/__faults", {"kind": "throttle", "count": 2})

The endpoint always runs under Debian's /usr/bin/python3 (botocore lives
there), whatever interpreter runs the test. EndpointProcess is the part the
Vault test endpoint's launcher shares.
"""
import json
import os
import subprocess
import urllib.request
import uuid
from pathlib import Path

SERVER = Path(__file__).resolve().parent / "server.py"
DEBIAN_PYTHON = "/usr/bin/python3"


class EndpointProcess:
    """A test endpoint's server.py in a child process: started with
    `--port 0 --port-file F`, the port file's JSON in self.info."""

    def __init__(self, server, label, workdir, *args):
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        port_file = workdir / f"{label}-{uuid.uuid4().hex[:8]}.json"
        python = DEBIAN_PYTHON if os.path.exists(DEBIAN_PYTHON) else "python3"
        # stderr goes to a file: a pipe nobody drains would block the server.
        self.log_path = port_file.with_suffix(".log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [python, str(server), "--port", "0", "--port-file", str(port_file), *args],
                stdout=subprocess.PIPE, stderr=log, text=True)
        first = self.proc.stdout.readline().strip()
        if not first.isdigit():
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"{label} did not start: {first!r} {self.log_path.read_text()}")
        self.info = json.loads(port_file.read_text())
        self.port = self.info["port"]
        self.url = f"{self.info.get('scheme', 'http')}://127.0.0.1:{self.port}"

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
        req = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=30, context=context) as resp:
            return json.loads(resp.read())

    def requests_log(self):
        return self.admin("GET", "/__admin/requests")["requests"]


class AwsTestEndpoint(EndpointProcess):
    def __init__(self, workdir, *args):
        super().__init__(SERVER, "aws-endpoint-ports", workdir, *args)
        self.ports = self.info

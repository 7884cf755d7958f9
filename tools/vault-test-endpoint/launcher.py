"""Starts and drives the Vault test endpoint from Python tests.

    sys.path.insert(0, "<source>/tools/vault-test-endpoint")
    from launcher import VaultTestEndpoint
    with VaultTestEndpoint(workdir, "--namespace", "ns1") as vault:
        vault.url, vault.port, vault.root_token, vault.credentials("ns1")["role_id"]
        vault.admin("POST", "/__faults", {"kind": "error", "status": 503})

The endpoint always runs under Debian's /usr/bin/python3, whatever
interpreter runs the test.
"""
from pathlib import Path

from aws_endpoint import load

SERVER = Path(__file__).resolve().parent / "server.py"


class VaultTestEndpoint(load("launcher").EndpointProcess):
    def __init__(self, workdir, *args):
        super().__init__(SERVER, "vault-endpoint", workdir, *args)
        self.root_token = self.info["root_token"]
        self.unseal_key = self.info["unseal_key"]

    def credentials(self, namespace=""):
        """The seeded AppRole / Kubernetes credentials of a namespace ("" = root)."""
        key = namespace.strip("/") + "/" if namespace.strip("/") else ""
        return self.info["credentials"][key]

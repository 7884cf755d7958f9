"""Starts and drives the Entrust KeyControl test endpoint from Python tests.

    sys.path.insert(0, "<source>/tools/entrust-test-endpoint")
    from launcher import EntrustTestEndpoint
    with EntrustTestEndpoint(workdir, "--tls-cert", c, "--tls-key", k) as kc:
        kc.url, kc.port, kc.info["vault_id"], kc.info["box_ids"][0]
        kc.admin("POST", "/__faults", {"kind": "error", "status": 503, "op": "GetBox"})

The endpoint always runs under Debian's /usr/bin/python3, whatever
interpreter runs the test.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.append(str(HERE.parent / "vault-test-endpoint"))
from aws_endpoint import load  # noqa: E402

SERVER = HERE / "server.py"


class EntrustTestEndpoint(load("launcher").EndpointProcess):
    def __init__(self, workdir, *args):
        super().__init__(SERVER, "entrust-endpoint", workdir, *args)
        self.vault_id = self.info["vault_id"]
        self.box_id = self.info["box_ids"][0]
        self.username = self.info["username"]
        self.password = self.info["password"]

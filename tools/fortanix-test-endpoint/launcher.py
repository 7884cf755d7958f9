"""Starts and drives the Fortanix DSM test endpoint from Python tests.

    sys.path.insert(0, "<source>/tools/fortanix-test-endpoint")
    from launcher import FortanixTestEndpoint
    with FortanixTestEndpoint(workdir, "--tls-cert", c, "--tls-key", k) as dsm:
        dsm.url, dsm.port, dsm.api_key, dsm.groups
        dsm.admin("POST", "/__faults", {"kind": "error", "status": 503})

The endpoint always runs under Debian's /usr/bin/python3, whatever
interpreter runs the test.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.append(str(HERE.parent / "vault-test-endpoint"))
from aws_endpoint import load  # noqa: E402  (the shared loader)

SERVER = HERE / "server.py"


class FortanixTestEndpoint(load("launcher").EndpointProcess):
    def __init__(self, workdir, *args):
        super().__init__(SERVER, "fortanix-endpoint", workdir, *args)
        self.api_key = self.info["api_key"]
        self.app_id = self.info["app_id"]
        self.groups = self.info["groups"]

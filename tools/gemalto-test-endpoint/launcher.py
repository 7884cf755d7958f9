"""Starts and drives the CipherTrust / KeySecure test endpoint from Python
tests.

    launcher = <load this file by path: the AWS endpoint has a launcher too>
    with launcher.GemaltoTestEndpoint(workdir, "--tls-cert", c, "--tls-key", k) as ep:
        ep.url, ep.port, ep.refresh_token
        ep.admin("POST", "/__faults", {"kind": "error", "status": 503})

The endpoint always runs under Debian's /usr/bin/python3, whatever
interpreter runs the test.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVER = HERE / "server.py"
sys.path.append(str(HERE.parent / "vault-test-endpoint"))
from aws_endpoint import load  # noqa: E402


class GemaltoTestEndpoint(load("launcher").EndpointProcess):
    def __init__(self, workdir, *args):
        super().__init__(SERVER, "gemalto-endpoint", workdir, *args)
        self.refresh_token = self.info["refresh_token"]
        self.domain = self.info["domain"]

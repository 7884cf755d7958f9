"""Starts and drives the Azure test endpoint from Python tests.

    sys.path.insert(0, "<source>/tools/azure-test-endpoint")
    from launcher import AzureTestEndpoint
    with AzureTestEndpoint(workdir, "--managed-identity", "mi-1") as az:
        az.url, az.vault_url, az.ca, az.info["client_secret"]
        az.admin("POST", "/__faults", {"kind": "error", "status": 503})

The endpoint always runs under Debian's /usr/bin/python3.
"""
import ssl
from pathlib import Path

from shared import load

SERVER = Path(__file__).resolve().parent / "server.py"


class AzureTestEndpoint(load("launcher").EndpointProcess):
    def __init__(self, workdir, *args):
        super().__init__(SERVER, "azure-endpoint", workdir, "--cert-dir",
                         str(Path(workdir) / "azure-endpoint-tls"), *args)
        self.ca = self.info["ca"]
        # The vault host must end with "." + the challenge resource's host.
        self.vault_url = f"https://kv.localhost:{self.port}"
        self._context = ssl.create_default_context(cafile=self.ca)

    def admin(self, method, path, doc=None, context=None):
        return super().admin(method, path, doc, context or self._context)

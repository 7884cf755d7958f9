"""Starts and drives the GCP test endpoint from Python tests.

    sys.path.insert(0, "<source>/tools/gcp-test-endpoint")
    from launcher import GcpTestEndpoint
    with GcpTestEndpoint(workdir, "--tls-cert", c, "--tls-key", k, "--account", ...) as gcp:
        gcp.url, gcp.port, gcp.metadata_port
        gcp.admin("POST", "/__faults", {"kind": "error", "status": 503}, context=ssl_ctx)
"""
from pathlib import Path

from plumbing import launcher

SERVER = Path(__file__).resolve().parent / "server.py"


class GcpTestEndpoint(launcher.EndpointProcess):
    def __init__(self, workdir, *args):
        super().__init__(SERVER, "gcp-endpoint", workdir, *args)
        self.metadata_port = self.info.get("metadata_port")

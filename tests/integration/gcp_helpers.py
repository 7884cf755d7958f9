"""Shared by the GCP test files: a dummy service account (a fresh RSA key
pair made here) and the loopback Secret Manager test endpoint
(tools/gcp-test-endpoint) that verifies its JWTs."""
import json
import os
import ssl
import urllib.request
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kes_harness import tool_module

PROJECT = "kes-test"
PROJECT_NUMBER = 123456789012
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"

GcpTestEndpoint = tool_module("gcp-test-endpoint").GcpTestEndpoint


class ServiceAccount:
    """A dummy service account: RSA-2048 key pair, e-mail, ids."""

    def __init__(self, directory, name="kes", pkcs1=False):
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        fmt = (serialization.PrivateFormat.TraditionalOpenSSL if pkcs1
               else serialization.PrivateFormat.PKCS8)
        self.private_pem = key.private_bytes(serialization.Encoding.PEM, fmt,
                                             serialization.NoEncryption()).decode()
        self.public_path = directory / f"{name}-sa.pub.pem"
        self.public_path.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        self.email = f"{name}@{PROJECT}.iam.gserviceaccount.com"
        self.client_id = "10" + str(abs(hash(name)))[:19]
        self.key_id = os.urandom(20).hex()

    def endpoint_arg(self):
        return ["--account", f"{self.email},{self.key_id},{self.public_path}"]

    def info(self, token_uri):
        """The key file Google issues (what GOOGLE_APPLICATION_CREDENTIALS names)."""
        return {"type": "service_account", "project_id": PROJECT,
                "private_key_id": self.key_id, "private_key": self.private_pem,
                "client_email": self.email, "client_id": self.client_id,
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": token_uri}

    def config_credentials(self, one_line=True):
        """The credentials block of a KES config (the key on one line with
        literal \\n, as the docs show)."""
        pem = self.private_pem.replace("\n", "\\n") if one_line else self.private_pem
        return {"client_email": self.email, "client_id": self.client_id,
                "private_key_id": self.key_id, "private_key": pem}


def start_endpoint(workdir, tls, *accounts, metadata=False, extra=()):
    args = ["--tls-cert", tls.cert, "--tls-key", tls.key, "--project",
            f"{PROJECT}={PROJECT_NUMBER}"]
    for a in accounts:
        args += a.endpoint_arg()
    if metadata:
        args += ["--metadata-port", "0"]
    ep = GcpTestEndpoint(workdir, *args, *extra)
    ep.ssl_context = ssl.create_default_context(cafile=tls.ca)
    ep.api = "https://127.0.0.1:%d" % ep.port
    return ep


def admin(ep, method, path, doc=None):
    return ep.admin(method, path, doc, context=ep.ssl_context)


def state(ep):
    return admin(ep, "GET", "/__admin/state")["secrets"][PROJECT]


def api_requests(ep, service="secretmanager"):
    return [r for r in ep.requests_log_tls() if r.get("service") == service]


def _requests_log(self):
    return admin(self, "GET", "/__admin/requests")["requests"]


GcpTestEndpoint.requests_log_tls = _requests_log


def raw_call(ep, method, path, token, doc=None):
    """A Secret Manager REST call with urllib (no Google library)."""
    data = None if doc is None else json.dumps(doc).encode()
    req = urllib.request.Request(ep.api + path, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30, context=ep.ssl_context) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")

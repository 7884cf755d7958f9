#!/usr/bin/python3
"""Local stand-in for Azure Key Vault (secrets API 7.0-7.5 with the bearer
challenge), an Azure AD authority and IMDS, for tests only, on one loopback
TLS listener, plus an unauthenticated admin API (/__faults, /__admin/...).

    /usr/bin/python3 tools/azure-test-endpoint/server.py --port 0 [--port-file F]

Loopback only. Standard library (plus the openssl command line to make a
certificate when none is given). See README.md beside this file.
"""
import collections
import json
import os
import subprocess
import sys
import tempfile
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qsl, unquote

from identity import AuthError, Identity
from keyvault import API_VERSIONS, KeyVault, KvError
from shared import load

loopback = load("loopback")
_faults = load("faults")
MAX_BODY = 1 << 20
JSON = [("Content-Type", "application/json; charset=utf-8")]
SERVICES = ("keyvault", "aad", "imds")


class Rule(_faults.Rule):
    """A fault rule: kinds error / latency / drop; filters service, method
    and path (prefix). An error answers `status` (default 500) with an Azure
    error body of `code`, `message` and `inner` ("body": false: empty)."""
    KINDS = ("error", "latency", "drop")

    def __init__(self, doc):  # pylint: disable=super-init-not-called (other fields)
        self.parse_common(doc)
        self.service = doc.get("service")
        if self.service is not None and self.service not in SERVICES:
            raise _faults.FaultError(f"service must be one of {', '.join(SERVICES)}")
        self.method = doc.get("method")
        self.path = doc.get("path")
        self.status = doc.get("status", 500)
        if not isinstance(self.status, int) or not 100 <= self.status <= 599:
            raise _faults.FaultError("status must be an HTTP status code")
        self.code = doc.get("code", "InternalServerError")
        self.message = doc.get("message", "injected fault")
        self.inner = doc.get("inner")
        self.retry_after = doc.get("retry_after")

    def matches(self, service, method, path):
        if self.service is not None and self.service != service:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or path.startswith(self.path)


class EndpointState:
    def __init__(self, args):
        self.faults = _faults.FaultBoard(Rule)
        self.requests = collections.deque(maxlen=5000)
        self.vault = KeyVault()
        self.identity = Identity(args.tenant_id, args.client_id, args.client_secret,
                                 args.managed_identity, args.federated_token, args.token_ttl)
        self.tenant = args.tenant_id
        self.resource = args.resource  # None: https://localhost:<port>


def service_of(path):
    if path.startswith("/metadata/identity/"):
        return "imds"
    first = path.strip("/").split("/")[0]
    return "keyvault" if first in ("secrets", "deletedsecrets", "") else "aad"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "azure-test-endpoint"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self._serve()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_GET

    def _write(self, status, headers, doc):
        body = b"" if doc is None else json.dumps(doc).encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _base(self):
        return "https://" + self.headers.get("Host", f"127.0.0.1:{self.server.port}")

    def _serve(self):
        state = self.server.state
        path, _, raw_query = self.path.partition("?")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = loopback.read_body(self, MAX_BODY)
        except ValueError:
            self._write(413, JSON, {"error": {"code": "RequestTooLarge", "message": "too large"}})
            self.close_connection = True
            return
        if path == "/__faults" or path.startswith("/__admin/"):
            self._write(*admin(state, self.command, path, body))
            return
        service = service_of(path)
        entry = {"method": self.command, "path": path, "query": query, "service": service,
                 "host": headers.get("host"), "authorization": "authorization" in headers,
                 "body_bytes": len(body), "content_type": headers.get("content-type"),
                 "metadata": headers.get("metadata"), "user_agent": headers.get("user-agent")}
        rule = state.faults.take(service, self.command, path)
        if rule is not None and loopback.delay_or_drop(self, rule, entry, state.requests):
            return
        if rule is not None and rule.kind == "error":
            status, reply_headers = rule.status, list(JSON)
            err = {"code": rule.code, "message": rule.message}
            if rule.inner:
                err["innererror"] = {"code": rule.inner}
            reply = {"error": err} if rule.body else None
            if rule.retry_after is not None:
                reply_headers.append(("Retry-After", str(rule.retry_after)))
        elif service == "keyvault":
            status, reply_headers, reply = self._keyvault(state, path, query, headers, body, entry)
        elif service == "imds":
            status, reply_headers, reply = self._imds(state, query, headers)
        else:
            status, reply_headers, reply = self._aad(state, path, body)
        entry["status"] = status
        state.requests.append(entry)
        self._write(status, reply_headers, reply)

    # ---- services ----------------------------------------------------------
    def _challenge(self, state):
        resource = state.resource or f"https://localhost:{self.server.port}"
        authority = f"{self._base()}/{state.tenant}"
        header = f'Bearer authorization="{authority}", resource="{resource}"'
        return 401, JSON + [("WWW-Authenticate", header)], {
            "error": {"code": "Unauthorized",
                      "message": "AKV10000: Request is missing a Bearer or PoP token."}}

    def _keyvault(self, state, path, query, headers, body, entry):
        resource = state.resource or f"https://localhost:{self.server.port}"
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if not token or not state.identity.check(token, resource + "/.default"):
            return self._challenge(state)
        entry["authorized"] = True
        api_version = query.get("api-version", "")
        entry["api_version"] = api_version
        if api_version not in API_VERSIONS:
            return 400, JSON, KvError(
                400, "BadParameter", f"The specified version ({api_version}) is not recognized. "
                "Consider using the latest supported version (7.5).").body()
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts == [""]:
            return 404, JSON, {"error": {"code": "NotFound", "message": "Not found."}}
        if parts[-1] == "" and len(parts) > 1:
            parts = parts[:-1]  # GET /secrets/<name>/: the latest version
        doc = None
        if body:
            try:
                doc = json.loads(body)
            except ValueError:
                return 400, JSON, KvError(400, "BadParameter",
                                          "The request body is not valid JSON.").body()
        try:
            status, reply = state.vault.handle(self.command, parts, query, doc, self._base(),
                                               api_version)
        except KvError as e:
            return e.status, JSON, e.body()
        return status, JSON, reply

    def _aad(self, state, path, body):
        parts = path.strip("/").split("/")
        try:
            if (self.command == "GET" and len(parts) == 4
                    and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]):
                if parts[0] not in state.identity.apps:
                    raise AuthError(400, "invalid_tenant",
                                    f"AADSTS90002: Tenant '{parts[0]}' not found.", [90002])
                return 200, JSON, Identity.openid_configuration(self._base(), parts[0])
            if parts[:1] == ["common"] and parts[1:] == ["discovery", "instance"]:
                host = self.headers.get("Host", "")
                return 200, JSON, {"tenant_discovery_endpoint":
                                   f"https://{host}/common/v2.0/.well-known/openid-configuration",
                                   "api-version": "1.1",
                                   "metadata": [{"preferred_network": host,
                                                 "preferred_cache": host, "aliases": [host]}]}
            if (self.command == "POST" and len(parts) == 4
                    and parts[1:] == ["oauth2", "v2.0", "token"]):
                return 200, JSON + [("Cache-Control", "no-store")], \
                    state.identity.token_request(parts[0], body)
        except AuthError as e:
            return e.status, JSON, e.body()
        return 404, JSON, {"error": "not_found", "error_description": "no such route"}

    def _imds(self, state, query, headers):
        if self.path.partition("?")[0] != "/metadata/identity/oauth2/token":
            return 404, JSON, {"error": "not_found", "error_description": "no such route"}
        try:
            return 200, JSON, state.identity.imds_token(query, headers)
        except AuthError as e:
            return e.status, JSON, {"error": e.error, "error_description": e.description}


# ---- admin API -------------------------------------------------------------------
def admin(state, method, path, body):
    def ok(doc=None):
        return 200, JSON, doc if doc is not None else {}

    def bad(message, status=400):
        return status, JSON, {"error": message}

    try:
        doc = json.loads(body) if body.strip() else {}
    except ValueError:
        return bad("body is not JSON")
    try:
        shared = loopback.shared_admin(state, method, path, doc)
        if shared is not None:
            return ok(shared)
        vault, ident = state.vault, state.identity
        if path == "/__admin/state" and method == "GET":
            out = vault.describe()
            out.update({"live_tokens": len(ident.tokens), "issued": list(ident.issued)})
            return ok(out)
        if path == "/__admin/settings" and method == "POST":
            with vault.lock:
                for key in ("deleting_seconds", "purge_protection", "soft_delete", "page_size"):
                    if key in doc:
                        setattr(vault, key, type(getattr(vault, key))(doc[key]))
            if "token_ttl" in doc:
                ident.token_ttl = int(doc["token_ttl"])
            return ok(vault.describe())
        if path == "/__admin/tokens/revoke" and method == "POST":
            return ok({"revoked": ident.revoke_all()})
        if path.startswith("/__admin/secrets/"):
            name = path[len("/__admin/secrets/"):]
            with vault.lock:
                if method == "POST":
                    vault.check_name(name)
                    v = vault.add_version(name, str(doc["value"]), created=doc.get("created"),
                                          enabled=doc.get("enabled", True), nbf=doc.get("nbf"),
                                          exp=doc.get("exp"))
                    return ok(v)
                if method == "GET":
                    if name not in vault.secrets:
                        return bad("no such secret", 404)
                    return ok({"versions": vault.secrets[name]})
        return bad(f"no admin route {method} {path}", 404)
    except _faults.FaultError as e:
        return bad(str(e))
    except KvError as e:
        return bad(e.message, e.status)
    except (KeyError, TypeError, ValueError) as e:
        return bad(f"bad admin request: {e!r}")


# ---- start-up --------------------------------------------------------------------
def make_certificate(directory, sans):
    """A test CA and a server certificate it signs (OpenSSL clients do not
    take a self-signed leaf as its own anchor), with the openssl CLI."""
    d = Path(directory)
    ca_key, ca, key, csr, cert = (d / n for n in ("ca.key", "ca.pem", "server.key",
                                                   "server.csr", "server.pem"))
    ext = d / "server.ext"
    alt = ",".join(("IP:" if s.replace(".", "").isdigit() or ":" in s else "DNS:") + s
                   for s in sans)
    ext.write_text(f"subjectAltName={alt}\nextendedKeyUsage=serverAuth\n"
                   "basicConstraints=critical,CA:FALSE\n")
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(ca_key), "-out", str(ca), "-days", "7", "-subj",
        "/CN=azure-test-endpoint CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
        str(key), "-out", str(csr), "-subj", "/CN=localhost")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "7", "-extfile", str(ext))
    return str(cert), str(key), str(ca)


def parse_args(argv):
    p = loopback.argument_parser(__doc__, "write the port, CA and test credentials as JSON here")
    p.add_argument("--tenant-id", default="00000000-0000-0000-0000-00000000a2e0",
                   help="the one tenant the authority knows")
    p.add_argument("--client-id", default="11111111-1111-1111-1111-11111111c11e",
                   help="app registration (client id) in that tenant")
    p.add_argument("--client-secret", default="kes-test-client-secret",
                   help="its client secret")
    p.add_argument("--managed-identity", action="append", default=[],
                   help="a user-assigned managed identity client id IMDS serves (repeatable; "
                        "'' = system-assigned)")
    p.add_argument("--federated-token", default="kes-test-federated-token",
                   help="client assertion the token endpoint accepts (workload identity)")
    p.add_argument("--token-ttl", type=int, default=3599, help="token lifetime in seconds")
    p.add_argument("--resource", help="challenge resource (default https://localhost:<port>)")
    p.add_argument("--tls-cert", help="PEM certificate chain (default: a generated one)")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument("--tls-ca", help="CA of --tls-cert, reported in the port file")
    p.add_argument("--cert-dir", help="where a generated certificate goes (default: a temp dir)")
    p.add_argument("--san", action="append", default=[],
                   help="extra subject alt name of the generated certificate (repeatable)")
    p.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    return args


def main(argv=None):
    args = parse_args(argv)
    loopback.require_loopback(args.host)
    if args.tls_cert:
        cert, key, ca = args.tls_cert, args.tls_key, args.tls_ca
    else:
        cert_dir = args.cert_dir or tempfile.mkdtemp(prefix="azure-endpoint-")
        os.makedirs(cert_dir, exist_ok=True)
        cert, key, ca = make_certificate(cert_dir, ["127.0.0.1", "::1", "localhost",
                                                    "kv.localhost", "vault.localhost",
                                                    *args.san])
    state = EndpointState(args)
    tls = loopback.server_tls_context(cert, key)
    listener = loopback.Listener(args.host, args.port, Handler, tls, state=state, name="main",
                                 verbose=args.verbose)
    info = {"port": listener.port, "scheme": "https", "ca": ca, "tenant_id": args.tenant_id,
            "client_id": args.client_id, "client_secret": args.client_secret,
            "managed_identities": args.managed_identity,
            "federated_token": args.federated_token,
            "resource": args.resource or f"https://localhost:{listener.port}"}
    loopback.announce_and_serve([listener], args.port_file, info)
    return 0


if __name__ == "__main__":
    sys.exit(main())

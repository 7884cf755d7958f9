#!/usr/bin/python3
"""Local stand-in for Google Cloud Secret Manager, for tests only: the v1 REST
API (secrets, versions, paging, Google's error bodies) over TLS, an OAuth2
token endpoint (JWT-bearer grant), a GCE metadata server on plain HTTP, and
checks of every bearer token: RS256 self-signed JWTs and assertions are
verified against the public keys of the configured service accounts.
Unauthenticated admin routes (/__faults, /__admin/...) inject faults, move
the clock, revoke tokens and read or seed the store.

    /usr/bin/python3 tools/gcp-test-endpoint/server.py --tls-cert C --tls-key K \\
        --account EMAIL,KEY_ID,PUBLIC_KEY_PEM --project ID[=NUMBER] [--metadata-port 0]

Loopback only. Standard library only. See README.md beside this file.
"""
import collections
import json
import re
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, unquote

import jwt_verify
from plumbing import faults as aws_faults
from plumbing import loopback
from secret_manager import ApiError, Project, SecretManager, invalid, not_found

MAX_BODY = 1 << 20
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
API_AUDIENCE = "https://secretmanager.googleapis.com/"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
METADATA_EMAIL = "default-compute@kes-test.iam.gserviceaccount.com"
UNAUTHENTICATED = ("Request had invalid authentication credentials. Expected OAuth 2 access "
                   "token, login cookie or other valid authentication credential.")
JSON = ("Content-Type", "application/json; charset=UTF-8")

SECRETS = re.compile(r"^/v1/projects/([^/]+)/secrets$")
SECRET = re.compile(r"^/v1/projects/([^/]+)/secrets/([^/:]+)$")
ADD_VERSION = re.compile(r"^/v1/projects/([^/]+)/secrets/([^/:]+):addVersion$")
VERSION_OP = re.compile(r"^/v1/projects/([^/]+)/secrets/([^/:]+)/versions/([^/:]+):(access|disable)$")


class Rule(aws_faults.Rule):
    """A fault rule: kind error (status, default 503, Google error body or
    none with "body": false) / latency / drop, filtered by service
    (secretmanager, token, metadata, probe), method and path prefix."""
    KINDS = ("error", "latency", "drop")

    def __init__(self, doc):  # pylint: disable=super-init-not-called (other fields)
        self.parse_common(doc)
        self.service = doc.get("service")
        self.method = doc.get("method")
        self.path = doc.get("path")
        self.status = doc.get("status", 503)
        if not isinstance(self.status, int) or not 100 <= self.status <= 599:
            raise aws_faults.FaultError("status must be an HTTP status code")

    def matches(self, service, method, path):
        return ((self.service is None or self.service == service) and
                (self.method is None or self.method.upper() == method) and
                (self.path is None or path.startswith(self.path)))


class State:
    def __init__(self, accounts, manager, token_ttl):
        self.lock = threading.Lock()
        self.accounts = accounts  # email -> {"kid", "key": (n, e)}
        self.manager = manager
        self.token_ttl = token_ttl
        self.token_valid_for = token_ttl
        self.tokens = {}  # access token -> {"expiry", "scopes", "principal"}
        self.clock_offset = 0.0
        self.faults = aws_faults.FaultBoard(Rule)
        self.requests = collections.deque(maxlen=5000)

    def clock(self):
        return time.time() + self.clock_offset

    def key_for(self, header, claims):
        account = self.accounts.get(claims.get("iss"))
        if account is None or header.get("kid") != account["kid"]:
            return None
        return account["key"]

    def check_jwt(self, token, audiences):
        """Claims of a valid self-signed JWT / assertion, else JwtError."""
        _, claims = jwt_verify.decode(token, self.key_for)
        now = self.clock()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise jwt_verify.JwtError("iat and exp are required")
        if iat > now + 300 or exp <= now or exp - iat > 3600:
            raise jwt_verify.JwtError("Invalid JWT: Token must be a short-lived token (60 "
                                      "minutes) and in a reasonable timeframe.")
        if "sub" in claims and claims["sub"] != claims["iss"]:
            raise jwt_verify.JwtError("sub must equal iss")
        if "aud" in claims and claims["aud"] not in audiences:
            raise jwt_verify.JwtError("Invalid JWT audience")
        if "aud" not in claims and "scope" not in claims:
            raise jwt_verify.JwtError("a self-signed JWT needs aud or scope")
        return claims

    def issue(self, principal, scopes):
        token = "ya29.kes-test-" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = {"expiry": self.clock() + self.token_valid_for, "scopes": scopes,
                                  "principal": principal}
            return token, self.token_ttl


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "gcp-test-endpoint"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self._serve()

    do_POST = do_DELETE = do_PATCH = do_PUT = do_GET

    def _write(self, status, headers, body):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status, doc, extra=()):
        self._write(status, [JSON, *extra], json.dumps(doc).encode())

    def _serve(self):
        state = self.server.state
        path, _, raw_query = self.path.partition("?")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        try:
            body = loopback.read_body(self, MAX_BODY)
        except ValueError:
            self.close_connection = True
            self._json(413, ApiError(413, "OUT_OF_RANGE", "request too large").body())
            return
        if path == "/__faults" or path.startswith("/__admin/"):
            self._json(*admin(state, self.command, path, body))
            return
        service = self.server.service_of(path)
        entry = {"time": round(state.clock(), 3), "service": service, "method": self.command,
                 "path": path, "query": query,
                 "content_type": self.headers.get("Content-Type"),
                 "metadata_flavor": self.headers.get("Metadata-Flavor")}
        rule = state.faults.take(service, self.command, path)
        if rule is not None and loopback.delay_or_drop(self, rule, entry, state.requests):
            return
        if rule is not None and rule.kind == "error":
            status, headers = rule.status, [JSON]
            reply = json.dumps(ApiError(rule.status, "UNAVAILABLE", "injected fault").body()
                               ).encode() if rule.body else b""
        else:
            status, headers, reply = self.server.route(self, state, path, query, body, entry)
        entry["status"] = status
        state.requests.append(entry)
        self._write(status, headers, reply)


# ---- the API listener (TLS) ------------------------------------------------------
def api_route(handler, state, path, query, body, entry):
    try:
        if path == "/token" and handler.command == "POST":
            return token_exchange(handler, state, body)
        if not path.startswith("/v1/"):
            return 404, [("Content-Type", "text/html; charset=UTF-8")], b"<h1>Not Found</h1>"
        authenticate(handler, state, entry)
        doc = json.loads(body) if body.strip() else {}
        return 200, [JSON], json.dumps(secret_manager_call(state.manager, handler.command,
                                                           path, query, doc)).encode()
    except ApiError as e:
        return e.code, [JSON], json.dumps(e.body()).encode()
    except ValueError:
        return 400, [JSON], json.dumps(invalid("Invalid JSON payload received.").body()).encode()


def authenticate(handler, state, entry):
    auth = handler.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        entry["auth"] = "none"
        raise ApiError(401, "UNAUTHENTICATED", UNAUTHENTICATED)
    token = auth[len("Bearer "):]
    with state.lock:
        issued = state.tokens.get(token)
    if issued is not None or token.startswith("ya29."):
        entry["auth"] = "token"
        if issued is None or issued["expiry"] <= state.clock():  # revoked or expired
            raise ApiError(401, "UNAUTHENTICATED", UNAUTHENTICATED)
        entry["principal"] = issued["principal"]
        scopes = issued["scopes"]
    else:
        entry["auth"] = "jwt"
        try:
            origin = "https://%s:%d/" % (handler.headers.get("Host", "").split(":")[0],
                                        handler.server.port)
            claims = state.check_jwt(token, (API_AUDIENCE, origin))
        except jwt_verify.JwtError as e:
            entry["auth_error"] = str(e)
            raise ApiError(401, "UNAUTHENTICATED", UNAUTHENTICATED) from e
        entry["principal"] = claims.get("iss")
        entry["jwt"] = {k: v for k, v in claims.items()}
        scopes = str(claims.get("scope", "")).split(" ")
        if "aud" in claims and "scope" not in claims:
            scopes = [CLOUD_PLATFORM]  # an audience JWT is valid for its API
    if CLOUD_PLATFORM not in scopes:
        raise ApiError(403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.")


def secret_manager_call(manager, method, path, query, doc):
    m = SECRETS.match(path)
    if m and method == "POST":
        return manager.create_secret(unquote(m[1]), query.get("secretId", ""), doc)
    if m and method == "GET":
        try:
            size = int(query.get("pageSize") or 0)
        except ValueError as e:
            raise invalid("Invalid page size.") from e
        return manager.list_secrets(unquote(m[1]), size, query.get("pageToken", ""))
    m = SECRET.match(path)
    if m and method == "GET":
        return manager.get_secret(unquote(m[1]), unquote(m[2]))
    if m and method == "DELETE":
        return manager.delete_secret(unquote(m[1]), unquote(m[2]))
    m = ADD_VERSION.match(path)
    if m and method == "POST":
        return manager.add_version(unquote(m[1]), unquote(m[2]), doc)
    m = VERSION_OP.match(path)
    if m and m[4] == "access" and method == "GET":
        return manager.access_version(unquote(m[1]), unquote(m[2]), unquote(m[3]))
    if m and m[4] == "disable" and method == "POST":
        return manager.disable_version(unquote(m[1]), unquote(m[2]), unquote(m[3]))
    raise not_found(f"The requested URL {path} was not found on this server.")


def token_exchange(handler, state, body):
    """OAuth2 JWT-bearer grant (RFC 7523), as oauth2.googleapis.com/token."""
    form = dict(parse_qsl(body.decode("utf-8", "replace")))

    def error(code, description):
        return 400, [JSON], json.dumps({"error": code, "error_description": description}).encode()

    if form.get("grant_type") != JWT_BEARER:
        return error("unsupported_grant_type", "Invalid grant_type: %s" % form.get("grant_type"))
    token_url = "https://%s/token" % handler.headers.get("Host", "")
    try:
        claims = state.check_jwt(form.get("assertion", ""), (token_url,))
    except jwt_verify.JwtError as e:
        return error("invalid_grant", str(e))
    if "aud" not in claims or not claims.get("scope"):
        return error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
    token, ttl = state.issue(claims["iss"], claims["scope"].split(" "))
    return 200, [JSON], json.dumps({"access_token": token, "expires_in": ttl,
                                    "token_type": "Bearer"}).encode()


# ---- the metadata listener (plain HTTP, like 169.254.169.254) --------------------------
def metadata_route(handler, state, path, query, body, entry):
    flavor = [("Metadata-Flavor", "Google")]
    if path == "/":
        return 200, [("Content-Type", "text/plain"), *flavor], b"computeMetadata/\n"
    if handler.headers.get("Metadata-Flavor") != "Google" or handler.headers.get(
            "X-Forwarded-For"):
        return 403, [("Content-Type", "text/html"), *flavor], b"Missing Metadata-Flavor:Google"
    account = "/computeMetadata/v1/instance/service-accounts/"
    if path == "/computeMetadata/v1/project/project-id":
        return 200, [("Content-Type", "application/text"), *flavor], state.metadata_project.encode()
    for alias in ("default", METADATA_EMAIL):
        if path in (account + alias, account + alias + "/"):
            doc = {"aliases": ["default"], "email": METADATA_EMAIL, "scopes": [CLOUD_PLATFORM]}
            return 200, [("Content-Type", "application/json"), *flavor], json.dumps(doc).encode()
        if path == account + alias + "/token":
            scopes = query.get("scopes", CLOUD_PLATFORM).split(",")
            entry["scopes"] = scopes
            token, ttl = state.issue(METADATA_EMAIL, scopes)
            doc = {"access_token": token, "expires_in": ttl, "token_type": "Bearer"}
            return 200, [("Content-Type", "application/json"), *flavor], json.dumps(doc).encode()
    return 404, [("Content-Type", "text/html"), *flavor], b"Not Found"


# ---- admin API ----------------------------------------------------------------
def admin(state, method, path, body):
    try:
        doc = json.loads(body) if body.strip() else {}
        shared = loopback.shared_admin(state, method, path, doc)
        if shared is not None:
            return 200, shared
        if path == "/__admin/state" and method == "GET":
            with state.lock:
                return 200, {"secrets": state.manager.snapshot(), "clock_offset": state.clock_offset,
                             "live_tokens": len(state.tokens), "token_ttl": state.token_ttl}
        if path == "/__admin/secrets" and method == "POST":
            state.manager.put(doc["project"], doc["name"], doc["data"].encode())
            return 200, {}
        if path == "/__admin/clock" and method == "POST":
            state.clock_offset = float(doc["offset"])
            return 200, {"clock_offset": state.clock_offset}
        if path == "/__admin/token-ttl" and method == "POST":
            # valid_for < seconds: tokens die before their expires_in says
            # (clock skew, latency), which only an early renewal survives.
            state.token_ttl = int(doc["seconds"])
            state.token_valid_for = float(doc.get("valid_for", state.token_ttl))
            return 200, {"token_ttl": state.token_ttl, "valid_for": state.token_valid_for}
        if path == "/__admin/revoke" and method == "POST":
            with state.lock:
                state.tokens.clear()
            return 200, {}
        return 404, {"error": "no such admin route"}
    except aws_faults.FaultError as e:
        return 400, {"error": str(e)}
    except ApiError as e:
        return e.code, e.body()
    except (KeyError, TypeError, ValueError) as e:
        return 400, {"error": f"bad admin request: {e!r}"}


def parse_args():
    p = loopback.argument_parser(__doc__, "write {port, metadata_port, scheme} here as JSON")
    p.add_argument("--tls-cert", required=True, help="PEM certificate for the API listener")
    p.add_argument("--tls-key", required=True, help="PEM private key for --tls-cert")
    p.add_argument("--account", action="append", default=[],
                   help="EMAIL,KEY_ID,PUBLIC_KEY_PEM_FILE: a service account whose JWTs verify")
    p.add_argument("--project", action="append", default=[],
                   help="ID[=NUMBER]: a project (default kes-test=123456789012)")
    p.add_argument("--metadata-port", type=int, help="serve a metadata server on this port")
    p.add_argument("--token-ttl", type=int, default=3599, help="issued tokens' expires_in")
    p.add_argument("--page-size", type=int, default=25, help="secrets per list page by default")
    return p.parse_args()


def main():
    args = parse_args()
    loopback.require_loopback(args.host)
    accounts = {}
    for spec in args.account:
        email, kid, pem = spec.split(",", 2)
        with open(pem, encoding="ascii") as f:
            accounts[email] = {"kid": kid, "key": jwt_verify.load_public_key(f.read())}
    projects = []
    for spec in args.project or ["kes-test=123456789012"]:
        pid, _, number = spec.partition("=")
        projects.append(Project(pid, int(number or 100000000000 + len(projects))))
    state = State(accounts, SecretManager(projects, args.page_size), args.token_ttl)
    state.metadata_project = projects[0].id
    tls = loopback.server_tls_context(args.tls_cert, args.tls_key)
    listeners = [loopback.Listener(args.host, args.port, Handler, tls, state=state, name="api",
                                   route=api_route,
                                   service_of=lambda p: "probe" if p == "/" else
                                   "token" if p == "/token" else "secretmanager")]
    info = {"scheme": "https"}
    if args.metadata_port is not None:
        listeners.append(loopback.Listener(args.host, args.metadata_port, Handler, None,
                                           state=state, name="metadata_port",
                                           route=metadata_route,
                                           service_of=lambda p: "metadata"))
        info["metadata_port"] = listeners[1].port
    info["port"] = listeners[0].port
    loopback.announce_and_serve(listeners, args.port_file, info)


if __name__ == "__main__":
    sys.exit(main())

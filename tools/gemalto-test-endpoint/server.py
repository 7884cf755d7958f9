#!/usr/bin/python3
"""Local stand-in for Thales CipherTrust Manager / Gemalto KeySecure, for
tests only: the REST calls KES makes (refresh-token login, vault secrets
create / export / delete / paged list), JWTs that expire after `duration`,
a server that answers 404 to a denied delete, plus an unauthenticated admin
API (/__faults, /__admin/...) to inject faults, deny actions, revoke tokens
and move the clock.

    /usr/bin/python3 tools/gemalto-test-endpoint/server.py --port 0 \
        [--port-file F] [--tls-cert C --tls-key K] [--refresh-token T] [--domain D]

Loopback only, standard library only. See README.md beside this file.
"""
import collections
import json
import os
import secrets
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qsl, unquote

# The AWS endpoint's plumbing, through the Vault endpoint's loader (appended,
# so that this directory's modules always win).
sys.path.append(str(Path(__file__).resolve().parent.parent / "vault-test-endpoint"))
from aws_endpoint import load  # noqa: E402

loopback = load("loopback")
_faults = load("faults")
FaultError = _faults.FaultError

MAX_BODY = 4 << 20
JSON_TYPE = "application/json; charset=utf-8"
DEFAULT_REFRESH_TOKEN = "kes-test-refresh-token"
ACTIONS = ("CreateKey", "ExportKey", "ReadKey", "DeleteKey")


class Rule(_faults.Rule):
    """A fault rule (see README.md): error, latency, drop, or page (a list
    answer with a wrong `skip` and/or no resources)."""
    KINDS = ("error", "latency", "drop", "page")

    def __init__(self, doc):  # pylint: disable=super-init-not-called (other fields)
        self.parse_common(doc)
        self.path = doc.get("path")
        self.method = doc.get("method")
        self.status = doc.get("status", 500)
        if not isinstance(self.status, int) or not 100 <= self.status <= 599:
            raise FaultError("status must be an HTTP status code")
        self.code = doc.get("code", 1)
        self.code_desc = doc.get("codeDesc", "NCERRInternalServerError: internal error")
        self.text = doc.get("text")      # plain-text body instead of the JSON error
        self.reply = doc.get("reply")    # any JSON document as the body
        self.skip = doc.get("skip")      # page: the `skip` to report
        self.empty = bool(doc.get("empty", False))  # page: no resources

    def matches(self, method, api_path):
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or api_path.startswith(self.path.lstrip("/"))


class State:
    """Everything the handlers share, under one lock."""

    def __init__(self, refresh_token, domain, duration):
        self.lock = threading.Lock()
        self.refresh_token = refresh_token
        self.domain = domain
        self.duration = duration
        self.clock_offset = 0.0
        self.jwts = {}  # jwt -> expiry (endpoint clock)
        self.secrets = collections.OrderedDict()  # name -> resource (creation order)
        self.denied = set()
        self.logins = 0
        self.faults = _faults.FaultBoard(Rule)
        self.requests = collections.deque(maxlen=5000)

    def clock(self):
        return time.time() + self.clock_offset


def error(status, code, desc):
    return status, JSON_TYPE, json.dumps({"code": code, "codeDesc": desc}).encode()


def unauthorized(text):
    # CipherTrust's auth middleware answers a missing or expired JWT in plain text.
    return 401, "text/plain; charset=utf-8", (text + "\n").encode()


def ok(status, doc):
    return status, JSON_TYPE, json.dumps(doc).encode()


def now_text(state):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(state.clock())) + ".000000Z"


class Api:
    """The CipherTrust REST calls. Each returns (status, content type, body)."""

    def __init__(self, state):
        self.s = state

    def login(self, body):
        try:
            doc = json.loads(body)
        except ValueError:
            return error(400, 15, "NCERRInvalidParamValue: request body is not JSON")
        if not isinstance(doc, dict) or doc.get("grant_type") != "refresh_token":
            return error(400, 15, "NCERRInvalidParamValue: unsupported grant_type")
        if "domain" in doc and not isinstance(doc["domain"], str):
            return error(400, 15, "NCERRInvalidParamValue: domain must be a string")
        token = doc.get("refresh_token")
        if not isinstance(token, str) or not secrets.compare_digest(
                token.encode(), self.s.refresh_token.encode()) or \
                doc.get("domain", "") != self.s.domain:
            return error(401, 9, "NCERRUnauthorized: invalid refresh token")
        jwt = "eyJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(24) + "." + secrets.token_urlsafe(16)
        self.s.jwts[jwt] = self.s.clock() + self.s.duration
        self.s.logins += 1
        return ok(200, {"jwt": jwt, "duration": self.s.duration, "token_type": "Bearer",
                        "client_id": "kes-test-client", "refresh_token_id": "kes-test-refresh-id"})

    def check_jwt(self, authorization):
        if not authorization.startswith("Bearer "):
            return unauthorized("Token is missing")
        expiry = self.s.jwts.get(authorization[len("Bearer "):])
        if expiry is None:
            return unauthorized("Token is invalid")
        if self.s.clock() >= expiry:
            return unauthorized("Token is expired")
        return None

    def create(self, body):
        if "CreateKey" in self.s.denied:
            return error(403, 10, "NCERRPermissionDenied: user is not authorized to perform this action")
        try:
            doc = json.loads(body)
        except ValueError:
            return error(400, 15, "NCERRInvalidParamValue: request body is not JSON")
        if not isinstance(doc, dict):
            return error(400, 15, "NCERRInvalidParamValue: body must be an object")
        name, material, data_type = doc.get("name"), doc.get("material"), doc.get("dataType")
        if not isinstance(name, str) or not name:
            return error(400, 15, "NCERRInvalidParamValue: name is required")
        if data_type not in ("seed", "password", "blob"):
            return error(400, 15, "NCERRInvalidParamValue: invalid dataType")
        if not isinstance(material, str):
            return error(400, 15, "NCERRInvalidParamValue: material is required")
        if name in self.s.secrets:
            return error(409, 4, "NCERRConflict: Resource already exists")
        rid = uuid.uuid4().hex + uuid.uuid4().hex
        resource = {"id": rid, "uri": "kylo:kylo:vault:secrets:" + name + "-v0",
                    "account": "kylo:kylo:admin:accounts:kylo", "application":
                    "ncryptify:gemalto:admin:apps:kylo", "devAccount": "ncryptify:gemalto:admin:accounts:gemalto",
                    "createdAt": now_text(self.s), "name": name, "updatedAt": now_text(self.s),
                    "dataType": data_type, "version": 0, "material": material}
        self.s.secrets[name] = resource
        return ok(201, {k: v for k, v in resource.items() if k != "material"})

    def export(self, name, query):
        if query.get("type") != "name":
            return error(400, 15, "NCERRInvalidParamValue: type must be name")
        if "ExportKey" in self.s.denied:
            return error(403, 10, "NCERRPermissionDenied: user is not authorized to perform this action")
        resource = self.s.secrets.get(name)
        if resource is None:
            return error(404, 5, "NCERRResourceNotFound: Resource not found")
        return ok(200, resource)

    def delete(self, name, query):
        if query.get("type") != "name":
            return error(400, 15, "NCERRInvalidParamValue: type must be name")
        # The documented server bug: access denied is reported as not found.
        if "DeleteKey" in self.s.denied or name not in self.s.secrets:
            return error(404, 5, "NCERRResourceNotFound: Resource not found")
        del self.s.secrets[name]
        return 204, None, b""

    def list(self, query, rule):
        if "ReadKey" in self.s.denied:
            return error(403, 10, "NCERRPermissionDenied: user is not authorized to perform this action")
        try:
            skip = int(query.get("skip", "0"))
            limit = int(query.get("limit", "10"))
        except ValueError:
            return error(400, 15, "NCERRInvalidParamValue: skip and limit must be integers")
        if skip < 0 or limit < 0:
            return error(400, 15, "NCERRInvalidParamValue: skip and limit must not be negative")
        if limit == 0 or limit > 1000:
            limit = 10 if limit == 0 else 1000
        names = list(self.s.secrets)
        page = [] if rule is not None and rule.empty else names[skip:skip + limit]
        reported = skip if rule is None or rule.skip is None else rule.skip
        resources = [{k: v for k, v in self.s.secrets[n].items() if k != "material"}
                     for n in page]
        return ok(200, {"skip": reported, "limit": limit, "total": len(names),
                        "resources": resources})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "gemalto-test-endpoint"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self._serve()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_GET

    def _write(self, status, content_type, body):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status != 204:
            self.wfile.write(body)

    def _serve(self):
        state = self.server.state
        path, _, raw_query = self.path.partition("?")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        try:
            body = loopback.read_body(self, MAX_BODY)
        except ValueError:
            self._write(413, JSON_TYPE, b'{"code":15,"codeDesc":"request body too large"}')
            self.close_connection = True
            return
        if path == "/__faults" or path.startswith("/__admin/"):
            self._write(*admin(state, self.command, path, body))
            return
        api = path[len("/api/v1/"):] if path.startswith("/api/v1/") else path
        entry = {"time": round(state.clock(), 3), "method": self.command, "path": path,
                 "query": query, "content_type": self.headers.get("Content-Type"),
                 "authorization": self.headers.get("Authorization", "").split(" ")[0] or None,
                 "body_length": len(body)}
        try:
            entry["body"] = json.loads(body) if body else None
        except ValueError:
            entry["body"] = body.decode("utf-8", "replace")
        rule = state.faults.take(self.command, api)
        if rule is not None and loopback.delay_or_drop(self, rule, entry, state.requests):
            return
        if rule is not None and rule.kind == "error":
            if rule.reply is not None:
                reply = (rule.status, JSON_TYPE, json.dumps(rule.reply).encode())
            elif rule.text is not None:
                reply = (rule.status, "text/plain; charset=utf-8", rule.text.encode())
            elif rule.body:
                reply = error(rule.status, rule.code, rule.code_desc)
            else:
                reply = (rule.status, None, b"")
        else:
            with state.lock:
                reply = route(state, self.command, api, query, body,
                              self.headers.get("Authorization", ""),
                              rule if rule is not None and rule.kind == "page" else None)
        entry["status"] = reply[0]
        state.requests.append(entry)
        self._write(*reply)


def route(state, method, api, query, body, authorization, page_rule):
    apis = Api(state)
    if api == "auth/tokens" and method == "POST":
        return apis.login(body)
    if api in ("/", ""):
        # The web console: what the status probe (GET <endpoint>) sees.
        return 200, "text/html; charset=utf-8", b"<!doctype html><title>CipherTrust</title>\n"
    if not api.startswith("vault/secrets"):
        return error(404, 5, "NCERRResourceNotFound: no such route")
    denied = apis.check_jwt(authorization)
    if denied is not None:
        return denied
    rest = api[len("vault/secrets"):]
    if rest == "" and method == "POST":
        return apis.create(body)
    if rest == "" and method == "GET":
        return apis.list(query, page_rule)
    if rest.startswith("/") and rest.endswith("/export") and method == "POST":
        return apis.export(unquote(rest[1:-len("/export")]), query)
    if rest.startswith("/") and "/" not in rest[1:] and method == "DELETE":
        return apis.delete(unquote(rest[1:]), query)
    return error(405, 15, "NCERRMethodNotAllowed: method not allowed")


# ---- admin API ---------------------------------------------------------------
def admin(state, method, path, body):
    def bad(message, status=400):
        return status, JSON_TYPE, json.dumps({"error": message}).encode()

    try:
        doc = json.loads(body) if body.strip() else {}
    except ValueError:
        return bad("body is not JSON")
    try:
        with state.lock:
            shared = loopback.shared_admin(state, method, path, doc)
            if shared is not None:
                return ok(200, shared)
            if not isinstance(doc, dict):
                return bad("body must be a JSON object")
            return _admin_route(state, method, path, doc, bad)
    except FaultError as e:
        return bad(str(e))
    except (KeyError, TypeError, ValueError) as e:
        return bad(f"bad admin request: {e!r}")


def _admin_route(state, method, path, doc, bad):
    if path == "/__admin/state" and method == "GET":
        now = state.clock()
        return ok(200, {"logins": state.logins, "duration": state.duration,
                        "live_jwts": sum(1 for e in state.jwts.values() if e > now),
                        "secrets": len(state.secrets), "denied": sorted(state.denied),
                        "clock_offset": state.clock_offset})
    if path == "/__admin/clock" and method == "POST":
        state.clock_offset += float(doc.get("advance_seconds", 0))
        return ok(200, {"clock_offset": state.clock_offset, "now": state.clock()})
    if path == "/__admin/duration" and method == "POST":
        duration = int(doc["duration"])
        if duration <= 0:
            return bad("duration must be positive")
        state.duration = duration
        return ok(200, {"duration": duration})
    if path == "/__admin/tokens/revoke" and method == "POST":
        state.jwts.clear()
        return ok(200, {})
    if path == "/__admin/deny" and method == "POST":
        actions = set(doc.get("actions", []))
        if not actions <= set(ACTIONS):
            return bad(f"actions must be among {', '.join(ACTIONS)}")
        state.denied = actions
        return ok(200, {"denied": sorted(actions)})
    if path == "/__admin/secrets" and method == "GET":
        return ok(200, {"secrets": list(state.secrets.values())})
    if path == "/__admin/secrets" and method == "POST":
        api = Api(state)
        for secret in doc["secrets"]:
            status, _, reply = api.create(json.dumps(dict({"dataType": "seed"}, **secret)))
            if status != 201:
                return status, JSON_TYPE, reply
        return ok(200, {"secrets": len(state.secrets)})
    return bad(f"no admin route {method} {path}", 404)


# ---- start-up ----------------------------------------------------------------
def _exit_with_parent(parent):
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main(argv=None):
    p = loopback.argument_parser(__doc__, "write the port and the refresh token as JSON here")
    p.add_argument("--refresh-token", default=DEFAULT_REFRESH_TOKEN,
                   help="the refresh token that logs in (dummy)")
    p.add_argument("--domain", default="", help="the domain it belongs to (default root: \"\")")
    p.add_argument("--duration", type=int, default=300, help="JWT lifetime in seconds")
    p.add_argument("--tls-cert", help="PEM certificate chain: serve HTTPS")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument("--verbose", action="store_true", help="log every request on stderr")
    p.add_argument("--exit-with-parent", action="store_true",
                   help="exit when the process that started it is gone (a crashed test)")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if args.duration <= 0:
        p.error("--duration must be positive")
    loopback.require_loopback(args.host)
    if args.exit_with_parent:
        threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    state = State(args.refresh_token, args.domain, args.duration)
    tls = loopback.server_tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    listener = loopback.Listener(args.host, args.port, Handler, tls, state=state, name="main",
                                 verbose=args.verbose)
    info = {"port": listener.port, "scheme": "https" if tls else "http",
            "refresh_token": args.refresh_token, "domain": args.domain}
    loopback.announce_and_serve([listener], args.port_file, info)
    return 0


if __name__ == "__main__":
    sys.exit(main())

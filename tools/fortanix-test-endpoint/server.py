#!/usr/bin/python3
"""Local stand-in for Fortanix DSM (SDKMS), for tests only: the REST calls
KES makes (keystores-cloud.md §4) on loopback, with API-key (Basic) and
session (Bearer) authentication, opaque security objects in groups, the
listing with sort/limit/start/offset paging, and an unauthenticated admin API
(/__faults, /__admin/...) to inject faults, seed objects and revoke the key.

    /usr/bin/python3 tools/fortanix-test-endpoint/server.py --port 0 [--port-file F]
        [--tls-cert PEM --tls-key PEM]

Loopback only. Standard library only. See README.md beside this file.
"""
import base64
import collections
import json
import secrets
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qsl, unquote

# The shared plumbing (listeners, TLS, port file, fault board) of the AWS
# endpoint, loaded through the Vault endpoint's loader. Appended, so that
# this folder's own modules win.
sys.path.append(str(Path(__file__).resolve().parent.parent / "vault-test-endpoint"))
from aws_endpoint import load  # noqa: E402

loopback = load("loopback")
_faults = load("faults")

MAX_BODY = 2 << 20
MAX_VALUE = 1 << 20  # DSM stores opaque objects up to 1 MB
DEFAULT_LIMIT = 1000  # DSM's listing default (and the largest page it serves)
SESSION_TTL = 600
APP_ID = "00000000-0000-4000-8000-00000000a99e"
DEFAULT_SECRET = "kes-test-api-secret"
DEFAULT_GROUP = "00000000-0000-4000-8000-0000000000d1"
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"


class Rule(_faults.Rule):
    """A fault rule: error (status, message, "json": true for a JSON
    {"message"} body, "body": false for none), latency or drop; filters
    path (prefix, e.g. "/crypto/v1/keys") and method."""
    KINDS = ("error", "latency", "drop")

    def __init__(self, doc):  # pylint: disable=super-init-not-called (other fields)
        self.parse_common(doc)
        self.path = doc.get("path")
        self.method = doc.get("method")
        self.status = doc.get("status", 500)
        if not isinstance(self.status, int) or not 100 <= self.status <= 599:
            raise _faults.FaultError("status must be an HTTP status code")
        self.message = str(doc.get("message", "internal error"))
        self.json = bool(doc.get("json", False))

    def matches(self, method, path):
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or path.startswith(self.path)


class DsmError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Dsm:
    """The DSM state: one application (its API key), its groups, the
    security objects and the live sessions. Callers hold `lock`."""

    def __init__(self, api_key, groups):
        self.lock = threading.Lock()
        self.api_key = api_key
        self.key_revoked = False
        self.groups = list(groups)  # the first is the app's default group
        self.objects = {}  # kid -> sobject (with "value")
        self.sessions = {}  # access token -> expiry
        self.sessions_issued = 0
        self.sessions_terminated = 0
        self.health_status = 204
        self.ignore_start = False  # a server that ignores `start` (never advances)

    # ---- authentication -------------------------------------------------
    def check_api_key(self, header):
        if header is None or not header.startswith("Basic "):
            raise DsmError(401, "Authorization header required")
        # Byte-for-byte: the API key is already base64("<app>:<secret>").
        if self.key_revoked or not secrets.compare_digest(header[len("Basic "):].encode(),
                                                          self.api_key.encode()):
            raise DsmError(401, "Invalid API key")

    def check_auth(self, header):
        if header is not None and header.startswith("Bearer "):
            expiry = self.sessions.get(header[len("Bearer "):])
            if expiry is None or expiry < time.time():
                raise DsmError(401, "Invalid or expired session token")
            return
        self.check_api_key(header)

    def session_auth(self, header):
        self.check_api_key(header)
        token = secrets.token_urlsafe(48)
        self.sessions[token] = time.time() + SESSION_TTL
        self.sessions_issued += 1
        return {"token_type": "Bearer", "expires_in": SESSION_TTL, "access_token": token,
                "entity_id": APP_ID}

    def session_terminate(self, header):
        if header is None or not header.startswith("Bearer "):
            raise DsmError(401, "Bearer token required")
        if self.sessions.pop(header[len("Bearer "):], None) is None:
            raise DsmError(401, "Invalid or expired session token")
        self.sessions_terminated += 1

    # ---- security objects -----------------------------------------------
    def by_name(self, name):
        for obj in self.objects.values():
            if obj["name"] == name:
                return obj
        return None

    def import_object(self, doc, creator="app"):
        if not isinstance(doc, dict):
            raise DsmError(400, "request body must be a JSON object")
        name, obj_type = doc.get("name"), doc.get("obj_type")
        if not isinstance(name, str) or not name:
            raise DsmError(400, "missing field `name`")
        if obj_type != "OPAQUE":
            raise DsmError(400, "only OPAQUE objects are supported by this endpoint")
        group = doc.get("group_id", self.groups[0])
        if group not in self.groups:
            raise DsmError(404, "group does not exist")
        try:
            value = base64.b64decode(doc.get("value", ""), validate=True)
        except (ValueError, TypeError):
            raise DsmError(400, "invalid base64 in field `value`") from None
        if not value or len(value) > MAX_VALUE:
            raise DsmError(400, "opaque object value must be 1 byte to 1 MB")
        if self.by_name(name) is not None:
            raise DsmError(409, "sobject already exists")
        key_ops = doc.get("key_ops", ["EXPORT", "APPMANAGEABLE"])
        now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        obj = {"kid": str(uuid.uuid4()), "name": name, "obj_type": "OPAQUE",
               "group_id": group, "key_ops": list(key_ops), "key_size": len(value) * 8,
               "enabled": bool(doc.get("enabled", True)), "creator": {creator: APP_ID},
               "acct_id": "00000000-0000-4000-8000-0000000acc75", "created_at": now,
               "lastused_at": now, "never_exportable": False, "state": "Active",
               "value": base64.b64encode(value).decode()}
        self.objects[obj["kid"]] = obj
        return obj

    def export(self, doc):
        if not isinstance(doc, dict):
            raise DsmError(400, "request body must be a JSON object")
        obj = None
        if isinstance(doc.get("kid"), str):
            obj = self.objects.get(doc["kid"])
        elif isinstance(doc.get("name"), str):
            obj = self.by_name(doc["name"])
        else:
            raise DsmError(400, "sobject descriptor needs `kid` or `name`")
        if obj is None:
            raise DsmError(404, "sobject does not exist")
        if "EXPORT" not in obj["key_ops"]:
            raise DsmError(403, "operation not allowed: EXPORT")
        return obj

    def delete(self, kid):
        if self.objects.pop(kid, None) is None:
            raise DsmError(404, "sobject does not exist")

    def listing(self, query):
        """GET /crypto/v1/keys: sort (name:asc|name:desc), start (with a name
        sort: the first name served, inclusive), offset (skip the first n
        matches), limit (default and cap 1000), name and group_id filters."""
        objs = list(self.objects.values())
        if "name" in query:
            objs = [o for o in objs if o["name"] == query["name"]]
        if "group_id" in query:
            objs = [o for o in objs if o["group_id"] == query["group_id"]]
        sort = query.get("sort", "name:asc")
        if sort not in ("name:asc", "name:desc"):
            raise DsmError(400, f"invalid sort: {sort}")
        descending = sort == "name:desc"
        objs.sort(key=lambda o: o["name"].encode(), reverse=descending)
        if "start" in query and not self.ignore_start:
            start = query["start"].encode()
            objs = [o for o in objs
                    if (o["name"].encode() <= start if descending else o["name"].encode() >= start)]
        try:
            offset = int(query.get("offset", 0))
            limit = int(query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            raise DsmError(400, "limit and offset must be integers") from None
        if offset < 0 or limit < 1:
            raise DsmError(400, "limit must be positive and offset not negative")
        limit = min(limit, DEFAULT_LIMIT)
        return [without_value(o) for o in objs[offset:offset + limit]]


def without_value(obj):
    return {k: v for k, v in obj.items() if k != "value"}


def json_reply(status, doc):
    return status, JSON, json.dumps(doc).encode()


def route(dsm, method, path, query, auth, body):
    """(status, content type, body) of one DSM API request."""
    def doc():
        try:
            return json.loads(body)
        except ValueError:
            raise DsmError(400, "request body is not valid JSON") from None

    if path == "/sys/v1/health" and method == "GET":
        return dsm.health_status, None, b""
    if path == "/sys/v1/session/auth" and method == "POST":
        return json_reply(200, dsm.session_auth(auth))
    if path == "/sys/v1/session/terminate" and method == "POST":
        dsm.session_terminate(auth)
        return 204, None, b""
    if path == "/crypto/v1/keys" or path.startswith("/crypto/v1/keys/"):
        dsm.check_auth(auth)
        if path == "/crypto/v1/keys" and method == "PUT":
            return json_reply(201, without_value(dsm.import_object(doc())))
        if path == "/crypto/v1/keys" and method == "GET":
            return json_reply(200, dsm.listing(query))
        if path == "/crypto/v1/keys/export" and method == "POST":
            return json_reply(200, dsm.export(doc()))
        kid = unquote(path[len("/crypto/v1/keys/"):])
        if "/" not in kid and kid and method == "DELETE":
            dsm.delete(kid)
            return 204, None, b""
        if "/" not in kid and kid and method == "GET":
            obj = dsm.objects.get(kid)
            if obj is None:
                raise DsmError(404, "sobject does not exist")
            return json_reply(200, without_value(obj))
    raise DsmError(404, f"no route for {method} {path}")


class EndpointState:
    def __init__(self, dsm):
        self.dsm = dsm
        self.faults = _faults.FaultBoard(Rule)
        self.requests = collections.deque(maxlen=5000)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "fortanix-test-endpoint"

    def setup(self):
        super().setup()
        # Head and body go out in two writes: without this, Nagle holds the
        # body until the client's delayed ACK (40 ms per request).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self._serve()

    do_PUT = do_POST = do_DELETE = do_PATCH = do_GET

    def _write(self, status, content_type, body):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 204:
            self.wfile.write(body)

    def _serve(self):
        state = self.server.state
        path, _, raw_query = self.path.partition("?")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        try:
            body = loopback.read_body(self, MAX_BODY)
        except ValueError:
            self._write(413, TEXT, b"request body too large")
            self.close_connection = True
            return
        if path == "/__faults" or path.startswith("/__admin/"):
            self._write(*admin(state, self.command, path, body))
            return
        auth = self.headers.get("Authorization")
        entry = {"time": round(time.time(), 3), "method": self.command, "path": path,
                 "raw_query": raw_query, "query": query, "authorization": auth,
                 "content_type": self.headers.get("Content-Type"),
                 "user_agent": self.headers.get("User-Agent")}
        if body:
            try:
                sent = json.loads(body)
                entry["body"] = without_value(sent) if isinstance(sent, dict) else sent
            except ValueError:
                entry["body"] = None
        rule = state.faults.take(self.command, path)
        if rule is not None and loopback.delay_or_drop(self, rule, entry, state.requests):
            return
        if rule is not None and rule.kind == "error":
            if not rule.body:
                reply = (rule.status, None, b"")
            elif rule.json:
                reply = json_reply(rule.status, {"message": rule.message})
            else:
                reply = (rule.status, TEXT, rule.message.encode())
        else:
            try:
                with state.dsm.lock:
                    reply = route(state.dsm, self.command, path, query, auth, body)
            except DsmError as e:
                # DSM answers errors as plain text (the official clients
                # read them so); --json-errors switches to {"message"}.
                if self.server.json_errors:
                    reply = json_reply(e.status, {"message": e.message})
                else:
                    reply = (e.status, TEXT, e.message.encode())
        entry["status"] = reply[0]
        if reply[0] >= 400:
            entry["error"] = reply[2].decode("utf-8", "replace")
        state.requests.append(entry)
        self._write(*reply)


# ---- admin API ---------------------------------------------------------------
def admin(state, method, path, body):
    def ok(doc):
        return 200, JSON, json.dumps(doc).encode()

    def bad(message, status=400):
        return status, JSON, json.dumps({"error": message}).encode()

    try:
        doc = json.loads(body) if body.strip() else {}
    except ValueError:
        return bad("body is not JSON")
    dsm = state.dsm
    try:
        shared = loopback.shared_admin(state, method, path, doc)
        if shared is not None:
            return ok(shared)
        with dsm.lock:
            if path == "/__admin/objects" and method == "GET":
                return ok({"objects": sorted(dsm.objects.values(), key=lambda o: o["name"])})
            if path == "/__admin/objects" and method == "POST":
                # Seeds objects as another DSM client (upstream KES) would.
                if "objects" in doc:
                    return ok({"objects": [without_value(dsm.import_object(o, creator="user"))
                                           for o in doc["objects"]]})
                return ok(dsm.import_object(doc, creator="user"))
            if path == "/__admin/objects/enabled" and method == "POST":
                obj = dsm.by_name(doc["name"])
                if obj is None:
                    return bad("no such object", 404)
                obj["enabled"] = bool(doc["enabled"])
                return ok(without_value(obj))
            if path == "/__admin/state" and method == "GET":
                return ok({"api_key": dsm.api_key, "app_id": APP_ID, "groups": dsm.groups,
                           "key_revoked": dsm.key_revoked, "live_sessions": len(dsm.sessions),
                           "sessions_issued": dsm.sessions_issued,
                           "sessions_terminated": dsm.sessions_terminated,
                           "health_status": dsm.health_status, "objects": len(dsm.objects),
                           "ignore_start": dsm.ignore_start})
            if path == "/__admin/api-key" and method == "POST":
                dsm.key_revoked = bool(doc.get("revoked", dsm.key_revoked))
                return ok({"key_revoked": dsm.key_revoked})
            if path == "/__admin/quirks" and method == "POST":
                dsm.ignore_start = bool(doc.get("ignore_start", dsm.ignore_start))
                return ok({"ignore_start": dsm.ignore_start})
            if path == "/__admin/health" and method == "POST":
                dsm.health_status = int(doc["status"])
                return ok({"health_status": dsm.health_status})
    except _faults.FaultError as e:
        return bad(str(e))
    except DsmError as e:
        return bad(e.message, e.status)
    except (KeyError, TypeError, ValueError) as e:
        return bad(f"bad admin request: {e!r}")
    return bad(f"no admin route {method} {path}", 404)


# ---- start-up ------------------------------------------------------------------
def parse_args(argv):
    p = loopback.argument_parser(__doc__, "write the port, API key, app and group ids as JSON")
    p.add_argument("--api-secret", default=DEFAULT_SECRET,
                   help="the app's secret; the API key is base64('<app id>:<secret>')")
    p.add_argument("--group", action="append", default=[],
                   help="an extra group id the app may use (the default group always exists)")
    p.add_argument("--json-errors", action="store_true",
                   help="answer errors as application/json {\"message\"} instead of text/plain")
    p.add_argument("--tls-cert", help="PEM certificate chain: serve HTTPS")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    return args


def main(argv=None):
    args = parse_args(argv)
    loopback.require_loopback(args.host)
    api_key = base64.b64encode(f"{APP_ID}:{args.api_secret}".encode()).decode()
    state = EndpointState(Dsm(api_key, [DEFAULT_GROUP, *args.group]))
    tls = loopback.server_tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    listener = loopback.Listener(args.host, args.port, Handler, tls, state=state, name="main",
                                 verbose=args.verbose, json_errors=args.json_errors)
    info = {"port": listener.port, "scheme": "https" if tls else "http", "api_key": api_key,
            "app_id": APP_ID, "groups": state.dsm.groups}
    loopback.announce_and_serve([listener], args.port_file, info)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Local stand-in for Entrust KeyControl's vault REST API, for tests only: the
calls KES makes (keystores-cloud.md §5): Login, Renew, GetBox, CreateSecret,
CheckoutSecret, DeleteSecret and ListSecretIds with server-side paging, token
expiry, and an unauthenticated admin API (/__faults, /__admin/...) to inject
faults, expire tokens, move the clock and store secrets directly.

    /usr/bin/python3 tools/entrust-test-endpoint/server.py --port 0 \
        [--port-file F] [--tls-cert C --tls-key K]

Loopback only. Standard library only. See README.md beside this file.
"""
import base64
import binascii
import collections
import datetime
import json
import secrets
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

# The listeners, fault board and process launcher are the AWS endpoint's,
# loaded under distinct names by the Vault endpoint's loader.
sys.path.append(str(Path(__file__).resolve().parent.parent / "vault-test-endpoint"))
from aws_endpoint import load  # noqa: E402

loopback = load("loopback")
_faults = load("faults")

API = "/vault/1.0/"
MAX_BODY = 1 << 20
MAX_ITEMS = 256  # the largest page ListSecretIds answers
JSON_HEADERS = [("Content-Type", "application/json; charset=utf-8")]


class Rule(_faults.Rule):
    """error: answer `status` (default 500) with {"error": error}, or with the
    plain-text `text` when given (a proxy's answer); latency; drop. Filter:
    `op` (Login, Renew, GetBox, CreateSecret, ...)."""
    KINDS = ("error", "latency", "drop")

    def __init__(self, doc):  # pylint: disable=super-init-not-called (other fields)
        self.parse_common(doc)
        self.op = doc.get("op")
        self.status = doc.get("status", 500)
        if not isinstance(self.status, int) or not 100 <= self.status <= 599:
            raise _faults.FaultError("status must be an HTTP status code")
        self.error = doc.get("error", "internal error")
        self.text = doc.get("text")

    def matches(self, op):
        return self.op is None or self.op == op


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def rfc3339(t):
    """2025-01-30T10:41:53.123Z"""
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (d.microsecond // 1000)


def encode_token(box_id, next_ctx):
    doc = json.dumps({"box_id": box_id, "next_ctx": next_ctx}, separators=(",", ":"))
    return base64.b64encode(doc.encode()).decode()


def decode_token(token):
    try:
        doc = json.loads(base64.b64decode(token, validate=True))
        return str(doc["box_id"]), str(doc["next_ctx"])
    except (binascii.Error, ValueError, KeyError, TypeError) as e:
        raise ApiError(400, "Invalid next_token") from e


class KeyControl:
    """One vault with boxes of secrets, its users and its live tokens."""

    def __init__(self, clock, vault_id, box_ids, username, password, token_ttl):
        self.clock = clock
        self.lock = threading.Lock()
        self.vault_id = vault_id
        self.boxes = {b: {} for b in box_ids}  # box -> name -> {"data": bytes, "expired"}
        self.username, self.password = username, password
        self.token_ttl = token_ttl
        self.tokens = {}  # token -> expiry (clock seconds)
        self.empty_token = False       # Login/Renew answer an empty access_token
        self.omit_expires_at = False   # Login/Renew answer without expires_at
        self.logins = self.renewals = 0

    # ---- auth --------------------------------------------------------------
    def issue(self):
        if self.empty_token:
            token = ""
        else:
            token = "kc-" + secrets.token_hex(16)
            self.tokens[token] = self.clock() + self.token_ttl
        answer = {"access_token": token}
        if not self.omit_expires_at:
            answer["expires_at"] = rfc3339(self.clock() + self.token_ttl)
        return answer

    def check_token(self, headers):
        token = headers.get("x-vault-auth")
        if not token:
            raise ApiError(401, "Missing authentication token")
        expiry = self.tokens.get(token)
        if expiry is None or expiry <= self.clock():
            raise ApiError(403, "Authentication token is invalid or expired")
        return token

    def login(self, vault_id, doc, headers):
        if vault_id != self.vault_id:
            raise ApiError(404, "Vault not found")
        if not headers.get("content-type", "").startswith("application/json"):
            raise ApiError(415, "Content-Type must be application/json")
        if doc.get("username") != self.username or doc.get("password") != self.password:
            raise ApiError(401, "Invalid username or password")
        self.logins += 1
        return self.issue()

    def renew(self, token):
        # A new token; the old one stays valid until its own expiry, so
        # calls already under way with it do not fail.
        del token
        self.renewals += 1
        return self.issue()

    # ---- boxes and secrets ---------------------------------------------------
    def box(self, doc):
        box_id = doc.get("box_id")
        if not isinstance(box_id, str) or not box_id:
            raise ApiError(400, "box_id is required")
        if box_id not in self.boxes:
            raise ApiError(404, "Box not found")
        return box_id, self.boxes[box_id]

    @staticmethod
    def secret_name(doc, field):
        name = doc.get(field)
        if not isinstance(name, str) or not name:
            raise ApiError(400, f"{field} is required")
        return name

    def get_box(self, doc):
        box_id, box = self.box(doc)
        return {"box_id": box_id, "name": box_id, "vault_id": self.vault_id,
                "secret_count": len(box)}

    def create(self, doc):
        box_id, box = self.box(doc)
        name = self.secret_name(doc, "name")
        data = doc.get("secret_data")
        if not isinstance(data, str):
            raise ApiError(400, "secret_data is required")
        try:
            raw = base64.b64decode(data, validate=True)
        except binascii.Error as e:
            raise ApiError(400, "secret_data is not valid base64") from e
        if name in box:
            raise ApiError(409, "Secret already exists")
        box[name] = {"data": raw, "expired": False}
        return {"box_id": box_id, "secret_id": name}

    def checkout(self, doc):
        box_id, box = self.box(doc)
        name = self.secret_name(doc, "secret_id")
        if name not in box:
            raise ApiError(404, "Secret not found")
        return {"box_id": box_id, "secret_id": name, "name": name,
                "secret_data": base64.b64encode(box[name]["data"]).decode()}

    def delete(self, doc):
        _, box = self.box(doc)
        name = self.secret_name(doc, "secret_id")
        if box.pop(name, None) is None:
            raise ApiError(404, "Secret not found")
        return {}

    def list_ids(self, doc):
        box_id, box = self.box(doc)
        max_items = doc.get("max_items", MAX_ITEMS)
        if not isinstance(max_items, int) or max_items <= 0:
            raise ApiError(400, "max_items must be a positive integer")
        max_items = min(max_items, MAX_ITEMS)
        start = ""
        if "next_token" in doc:
            token_box, start = decode_token(doc["next_token"])
            if token_box != box_id:
                raise ApiError(400, "Invalid next_token")
        names = sorted(n for n in box if n >= start)
        page, rest = names[:max_items], names[max_items:]
        return {"secrets": [{"name": n, "expired": box[n]["expired"]} for n in page],
                "next_token": encode_token(box_id, rest[0]) if rest else ""}

    def handle(self, op, rest, doc, headers):
        """The answer to POST /vault/1.0/<op>/<rest>: (status, JSON document)."""
        with self.lock:
            if op == "Login":
                return 200, self.login(rest.strip("/"), doc, headers)
            token = self.check_token(headers)
            if rest.strip("/"):
                raise ApiError(404, "Not found")
            routes = {"Renew": lambda: self.renew(token), "GetBox": lambda: self.get_box(doc),
                      "CreateSecret": lambda: self.create(doc),
                      "CheckoutSecret": lambda: self.checkout(doc),
                      "DeleteSecret": lambda: self.delete(doc),
                      "ListSecretIds": lambda: self.list_ids(doc)}
            if op not in routes:
                raise ApiError(404, "Not found")
            return 200, routes[op]()


class EndpointState:
    def __init__(self):
        self.clock_offset = 0.0
        self.faults = _faults.FaultBoard(Rule)
        self.requests = collections.deque(maxlen=20000)
        self.kc = None

    def clock(self):
        return time.time() + self.clock_offset


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, Nagle and the
        # client's delayed ACK add 40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self):
        return "entrust-test-endpoint"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def do_POST(self):
        self._serve()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_POST

    def _write(self, status, headers, body):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _write_json(self, status, doc):
        self._write(status, JSON_HEADERS, json.dumps(doc).encode())

    def _serve(self):
        state = self.server.state
        path = self.path.partition("?")[0]
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = loopback.read_body(self, MAX_BODY)
        except ValueError:
            self._write_json(413, {"error": "request body too large"})
            self.close_connection = True
            return
        if path == "/__faults" or path.startswith("/__admin/"):
            self._write_json(*admin(state, self.command, path, body))
            return
        op, _, rest = path[len(API):].partition("/") if path.startswith(API) else ("", "", "")
        entry = {"time": round(state.clock(), 3), "method": self.command, "path": path,
                 "op": op, "content_type": headers.get("content-type"),
                 "content_length": headers.get("content-length"),
                 "token": headers.get("x-vault-auth"), "body": body.decode("utf-8", "replace")}
        rule = state.faults.take(op)
        if rule is not None and loopback.delay_or_drop(self, rule, entry, state.requests):
            return
        if rule is not None and rule.kind == "error":
            entry["status"] = rule.status
            state.requests.append(entry)
            if rule.text is not None:
                self._write(rule.status, [("Content-Type", "text/plain")], rule.text.encode())
            else:
                self._write_json(rule.status, {"error": rule.error})
            return
        status, doc = self._answer(op, rest, headers, body)
        entry["status"] = status
        state.requests.append(entry)
        self._write_json(status, doc)

    def _answer(self, op, rest, headers, body):
        if self.command != "POST":
            return 405, {"error": "Method not allowed"}
        if not op:
            return 404, {"error": "Not found"}
        try:
            doc = json.loads(body) if body.strip() else {}
            if not isinstance(doc, dict):
                raise ValueError("not an object")
        except ValueError:
            return 400, {"error": "Request body is not a JSON object"}
        try:
            return self.server.state.kc.handle(op, rest, doc, headers)
        except ApiError as e:
            return e.status, {"error": e.message}


# ---- admin API ---------------------------------------------------------------
def admin(state, method, path, body):
    try:
        doc = json.loads(body) if body.strip() else {}
    except ValueError:
        return 400, {"error": "body is not JSON"}
    try:
        shared = loopback.shared_admin(state, method, path, doc)
        if shared is not None:
            return 200, shared
        if not isinstance(doc, dict):
            return 400, {"error": "body must be a JSON object"}
        with state.kc.lock:
            return _admin_route(state, state.kc, method, path, doc)
    except _faults.FaultError as e:
        return 400, {"error": str(e)}
    except (KeyError, TypeError, ValueError, binascii.Error) as e:
        return 400, {"error": f"bad admin request: {e!r}"}


def _admin_route(state, kc, method, path, doc):
    if path == "/__admin/state" and method == "GET":
        return 200, {"vault_id": kc.vault_id, "live_tokens": sum(
            1 for e in kc.tokens.values() if e > kc.clock()), "logins": kc.logins,
            "renewals": kc.renewals, "clock_offset": state.clock_offset,
            "boxes": {b: sorted(box) for b, box in kc.boxes.items()}}
    if path == "/__admin/secrets" and method == "POST":
        # Stores secrets as another client would: one {"name", "value" (text)
        # or "secret_data" (base64 of the bytes), "expired"?, "box_id"?} or
        # {"secrets": [such objects]}.
        docs = doc["secrets"] if "secrets" in doc else [doc]
        for d in docs:
            box = kc.boxes[d.get("box_id") or next(iter(kc.boxes))]
            raw = (d["value"].encode() if "value" in d
                   else base64.b64decode(d["secret_data"], validate=True))
            box[d["name"]] = {"data": raw, "expired": bool(d.get("expired", False))}
        return 200, {"stored": len(docs)}
    if path == "/__admin/secrets" and method == "GET":
        # Every secret of every box, as stored (the bytes as text).
        return 200, {b: {n: {"value": s["data"].decode("utf-8", "replace"),
                             "expired": s["expired"]} for n, s in box.items()}
                     for b, box in kc.boxes.items()}
    if path == "/__admin/tokens/expire" and method == "POST":
        kc.tokens.clear()
        return 200, {}
    if path == "/__admin/login" and method == "POST":
        if "empty_token" in doc:
            kc.empty_token = bool(doc["empty_token"])
        if "omit_expires_at" in doc:
            kc.omit_expires_at = bool(doc["omit_expires_at"])
        if "token_ttl" in doc:
            kc.token_ttl = float(doc["token_ttl"])
        return 200, {"empty_token": kc.empty_token, "omit_expires_at": kc.omit_expires_at,
                     "token_ttl": kc.token_ttl}
    if path == "/__admin/clock" and method == "POST":
        state.clock_offset += float(doc.get("advance_seconds", 0))
        return 200, {"offset_seconds": state.clock_offset, "now": state.clock()}
    return 404, {"error": f"no admin route {method} {path}"}


# ---- start-up --------------------------------------------------------------------
def parse_args(argv):
    p = loopback.argument_parser(__doc__, "write the port and test credentials as JSON here")
    p.add_argument("--vault-id", default="kes-vault", help="the vault Login accepts")
    p.add_argument("--box-id", action="append", default=None,
                   help="a box of the vault (repeatable; default kes-box)")
    p.add_argument("--username", default="kes", help="the vault user's name")
    p.add_argument("--password", default="kes-test-password", help="the vault user's password")
    p.add_argument("--token-ttl", type=float, default=600.0,
                   help="seconds a Login / Renew token lives (default 600)")
    p.add_argument("--tls-cert", help="PEM certificate chain: serve HTTPS")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if args.token_ttl <= 0:
        p.error("--token-ttl must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    loopback.require_loopback(args.host)
    state = EndpointState()
    boxes = args.box_id or ["kes-box"]
    state.kc = KeyControl(state.clock, args.vault_id, boxes, args.username, args.password,
                          args.token_ttl)
    tls = loopback.server_tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    listener = loopback.Listener(args.host, args.port, Handler, tls, state=state, name="main",
                                 verbose=args.verbose)
    info = {"port": listener.port, "scheme": "https" if tls else "http",
            "vault_id": args.vault_id, "box_ids": boxes, "username": args.username,
            "password": args.password}
    loopback.announce_and_serve([listener], args.port_file, info)
    return 0


if __name__ == "__main__":
    sys.exit(main())

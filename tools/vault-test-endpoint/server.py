#!/usr/bin/python3
"""Local stand-in for HashiCorp Vault / OpenBao, for tests only: KV v1 and v2,
transit, token / AppRole / Kubernetes auth, policies, namespaces, sys/health
and the sealed state, plus an unauthenticated admin API (/__faults,
/__admin/...) to inject faults, seal, revoke tokens and move the clock.

    /usr/bin/python3 tools/vault-test-endpoint/server.py --port 0 [--port-file F]

Loopback only. Standard library (AES-GCM through python3-cryptography when it
is installed). See README.md beside this file.
"""
import collections
import json
import os
import socketserver
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

import durations
import policy
from auth_methods import service_account_jwt
from aws_endpoint import load
from core import JSON_HEADERS, Vault
from errors import VaultError
from faults import FaultBoard, FaultError

loopback = load("loopback")  # listeners and plumbing shared with the AWS endpoint
MAX_BODY = 32 << 20  # Vault's default max_request_size
DEFAULT_ROLE_ID = "kes-test-role-id"
DEFAULT_SECRET_ID = "kes-test-secret-id"
DEFAULT_JWT = service_account_jwt("kes", "default", signature="kes-test-signature")


class EndpointState:
    """Everything the listeners share."""

    def __init__(self):
        self.clock_offset = 0.0
        self.faults = FaultBoard()
        self.requests = collections.deque(maxlen=5000)
        self.vault = None  # set by main()
        self.credentials = {}  # namespace path -> seeded test credentials
        self.active_url = None  # where the standby listener redirects to

    def clock(self):
        return time.time() + self.clock_offset


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "vault-test-endpoint"

    def address_string(self):
        # A Unix socket peer has no address.
        return self.client_address[0] if self.client_address else "unix"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self._serve()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_LIST = do_PATCH = do_GET

    # ---- plumbing ----------------------------------------------------------
    def _write(self, status, headers, body):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status != 204:
            self.wfile.write(body)

    def _client_subject(self):
        try:
            cert = self.connection.getpeercert() if hasattr(self.connection,
                                                            "getpeercert") else None
        except (ValueError, ssl.SSLError):
            cert = None
        if not cert:
            return None
        return ",".join(f"{k}={v}" for rdn in cert.get("subject", ()) for k, v in rdn)

    def _serve(self):
        state = self.server.state
        target, proxied = self.path, False
        if target.startswith(("http://", "https://")):
            # Absolute form: the request came through a forward proxy (or was
            # sent to this endpoint as one).
            parts = urlsplit(target)
            target = parts.path + ("?" + parts.query if parts.query else "")
            proxied = True
        path, _, raw_query = target.partition("?")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = loopback.read_body(self, MAX_BODY)
        except ValueError:
            self._write(413, JSON_HEADERS, b'{"errors":["http: request body too large"]}')
            self.close_connection = True
            return
        if path == "/__faults" or path.startswith("/__admin/"):
            self._write(*admin(state, self.command, path, body))
            return
        api = path[len("/v1/"):] if path.startswith("/v1/") else path
        namespace = headers.get("x-vault-namespace", "")
        entry = {"time": round(state.clock(), 3), "listener": self.server.name,
                 "method": self.command, "path": path, "query": query,
                 "namespace": headers.get("x-vault-namespace"),
                 "token": "x-vault-token" in headers,
                 "x_vault_request": headers.get("x-vault-request"),
                 "wrap_ttl": headers.get("x-vault-wrap-ttl"),
                 "content_type": headers.get("content-type"),
                 "user_agent": headers.get("user-agent"),
                 "client_cert": self._client_subject(), "proxied": proxied,
                 "host": headers.get("host")}
        if self.server.name == "standby" and api != "sys/health":
            # A standby node with request forwarding off: 307 to the active
            # node for every API path (Vault answers sys/health itself).
            entry["status"] = 307
            state.requests.append(entry)
            self._write(307, [("Location", state.active_url + target)], b"")
            return
        rule = state.faults.take(self.command, api, namespace)
        if rule is not None and loopback.delay_or_drop(self, rule, entry, state.requests):
            return
        if rule is not None and rule.kind == "error":
            status, reply_headers = rule.status, list(JSON_HEADERS)
            reply = json.dumps({"errors": rule.errors}).encode() if rule.body else b""
            if rule.retry_after is not None:
                reply_headers.append(("Retry-After", str(rule.retry_after)))
            reply_headers.extend((str(k), str(v)) for k, v in rule.headers.items())
        else:
            status, reply_headers, reply, log = state.vault.handle(
                self.command, path, query, headers, body)
            entry.update(log)
        entry["status"] = status
        state.requests.append(entry)
        self._write(status, reply_headers, reply)


# ---- admin API ---------------------------------------------------------------
def _find_token(vault, doc):
    token = vault.tokens.find(token_id=doc.get("token"), accessor=doc.get("accessor"))
    if token is None:
        raise LookupError("no such live token")
    return token


def _namespace(vault, doc):
    ns = vault.namespace(doc.get("namespace", ""))
    if ns is None:
        raise LookupError(f"no namespace {doc.get('namespace')!r}")
    return ns


def admin(state, method, path, body):
    vault = state.vault

    def ok(doc=None):
        return 200, [("Content-Type", "application/json")], json.dumps(
            doc if doc is not None else {}).encode()

    def bad(message, status=400):
        return status, [("Content-Type", "application/json")], json.dumps(
            {"error": message}).encode()

    try:
        doc = json.loads(body) if body.strip() else {}
    except ValueError:
        return bad("body is not JSON")
    if not isinstance(doc, dict) and path != "/__faults":
        return bad("body must be a JSON object")
    try:
        with vault.lock:
            return _admin_route(state, vault, method, path, doc, ok, bad)
    except FaultError as e:
        return bad(str(e))
    except LookupError as e:
        return bad(str(e), 404)
    except VaultError as e:
        return bad("; ".join(e.errors) or f"status {e.status}", e.status)
    except (KeyError, TypeError, ValueError) as e:
        return bad(f"bad admin request: {e!r}")


def _admin_route(state, vault, method, path, doc, ok, bad):
    shared = loopback.shared_admin(state, method, path, doc)
    if shared is not None:
        return ok(shared)
    if path == "/__admin/state" and method == "GET":
        return ok({"sealed": vault.sealed, "initialized": vault.initialized,
                   "root_paths_ignore_namespace": vault.root_paths_ignore_namespace,
                   "standby": vault.standby, "performance_standby": vault.performance_standby,
                   "replication_dr_mode": vault.replication_dr_mode,
                   "version": vault.version, "root_token": vault.root_token.id,
                   "unseal_key": vault.unseal_key, "live_tokens": vault.tokens.count(),
                   "clock_offset": state.clock_offset, "credentials": state.credentials})
    elif path == "/__admin/seal" and method == "POST":
        vault.sealed = True
        return ok({"sealed": True})
    elif path == "/__admin/unseal" and method == "POST":
        vault.sealed = False
        return ok({"sealed": False})
    elif path == "/__admin/health" and method == "POST":
        for key in ("initialized", "standby", "performance_standby",
                    "root_paths_ignore_namespace"):
            if key in doc:
                setattr(vault, key, bool(doc[key]))
        if "replication_dr_mode" in doc:
            vault.replication_dr_mode = str(doc["replication_dr_mode"])
        if "version" in doc:
            vault.version = str(doc["version"])
        return ok(vault.health({})[1])
    elif path == "/__admin/clock" and method == "POST":
        if "advance_seconds" in doc:
            state.clock_offset += float(doc["advance_seconds"])
        if "offset_seconds" in doc:
            state.clock_offset = float(doc["offset_seconds"])
        return ok({"offset_seconds": state.clock_offset, "now": state.clock()})
    elif path == "/__admin/tokens" and method == "POST":
        policies = list(doc.get("policies", []))
        if not doc.get("no_default_policy") and "root" not in policies:
            policies.append("default")
        token = vault.tokens.issue(
            _namespace(vault, doc), policies,
            ttl=durations.parse(doc.get("ttl")),
            explicit_max_ttl=durations.parse(doc.get("explicit_max_ttl")),
            period=durations.parse(doc.get("period")), renewable=doc.get("renewable", True),
            num_uses=int(doc.get("num_uses", 0)), path="auth/token/create",
            display_name="token-admin", orphan=True, token_id=doc.get("id"))
        return ok(token.auth_block(vault.clock()))
    elif path == "/__admin/tokens/revoke" and method == "POST":
        vault.tokens.revoke(_find_token(vault, doc))
        return ok()
    elif path == "/__admin/tokens/ttl" and method == "POST":
        token = _find_token(vault, doc)
        max_ttl = durations.parse(doc["max_ttl"]) if "max_ttl" in doc else None
        vault.tokens.set_ttl(token, durations.parse(doc["ttl"]), max_ttl)
        return ok(token.lookup_data(vault.clock()))
    elif path == "/__admin/tokens/lookup" and method == "POST":
        return ok(_find_token(vault, doc).lookup_data(vault.clock()))
    elif path == "/__admin/namespaces" and method == "POST":
        parent = vault.root
        parts = [p for p in str(doc["path"]).strip("/").split("/") if p]
        for part in parts:
            parent = vault.create_namespace(parent, part)
        if doc.get("test_layout", True) and parent.path not in state.credentials:
            state.credentials[parent.path] = vault.seed_test_layout(
                parent, doc.get("role_id"), doc.get("secret_id"), doc.get("kubernetes_jwt"),
                durations.parse(doc.get("login_ttl")))
        return ok(dict(state.credentials.get(parent.path, {}), **parent.describe()))
    elif path == "/__admin/policies" and method == "POST":
        text = doc["policy"] if isinstance(doc["policy"], str) else json.dumps(doc["policy"])
        _namespace(vault, doc).policies[doc["name"]] = (text, policy.parse(text))
        return ok({"name": doc["name"]})
    elif path == "/__admin/kubernetes/tokens":
        if method == "POST":
            jwt = doc.get("jwt") or service_account_jwt(doc["service_account"],
                                                        doc.get("namespace", "default"))
            vault.service_accounts.register(jwt, doc["service_account"],
                                            doc.get("namespace", "default"))
            return ok({"jwt": jwt})
        if method == "DELETE":
            if not vault.service_accounts.revoke(doc["jwt"]):
                return bad("no such service account token", 404)
            return ok()
    return bad(f"no admin route {method} {path}", 404)


# ---- start-up --------------------------------------------------------------------
class UnixListener(socketserver.ThreadingUnixStreamServer):
    """An HTTP listener on a Unix socket (Vault's unix:// listener)."""
    daemon_threads = True

    def __init__(self, path, handler_class, **attributes):
        if os.path.exists(path):
            os.unlink(path)
        super().__init__(path, handler_class)
        for name, value in attributes.items():
            setattr(self, name, value)

    @property
    def port(self):
        return self.server_address

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _tls_context(args):
    tls = loopback.server_tls_context(args.tls_cert, args.tls_key)
    if args.tls_client_ca:
        tls.load_verify_locations(args.tls_client_ca)
        tls.verify_mode = (ssl.CERT_REQUIRED if args.tls_client_auth == "require"
                           else ssl.CERT_OPTIONAL)
    return tls


def parse_args(argv):
    p = loopback.argument_parser(__doc__, "write the ports and test credentials as JSON here")
    p.add_argument("--root-token", default="root", help="id of the root token (default root)")
    p.add_argument("--unseal-key", help="key sys/unseal accepts (default: random)")
    p.add_argument("--vault-version", default="1.17.6", help="version reported by sys/health")
    p.add_argument("--role-id", default=DEFAULT_ROLE_ID, help="role_id of AppRole role kes")
    p.add_argument("--secret-id", default=DEFAULT_SECRET_ID, help="a secret_id of role kes")
    p.add_argument("--kubernetes-jwt", default=DEFAULT_JWT,
                   help="service account token (SA kes, namespace default) that logs in")
    p.add_argument("--login-ttl", default="0",
                   help="token_ttl of the seeded roles (e.g. 60s; 0: Vault's 768h)")
    p.add_argument("--namespace", action="append", default=[],
                   help="create this namespace with the test layout (repeatable; a/b nests)")
    p.add_argument("--no-test-layout", action="store_true",
                   help="root namespace gets only sys/ and auth/token/ (like a fresh server)")
    p.add_argument("--sealed", action="store_true", help="start sealed")
    p.add_argument("--root-paths-ignore-namespace", action="store_true",
                   help="sys/health and the other root-only paths ignore X-Vault-Namespace "
                        "(default: 404 unsupported path, as Vault Enterprise answers)")
    p.add_argument("--tls-cert", help="PEM certificate chain: serve HTTPS")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument("--https-port", type=int,
                   help="with --tls-cert: an extra HTTPS listener (the main one stays HTTP); "
                        "without it the main listener itself is HTTPS")
    p.add_argument("--tls-client-ca", help="PEM CA bundle that client certificates must chain to")
    p.add_argument("--tls-client-auth", choices=("request", "require"), default="require",
                   help="with --tls-client-ca: ask for a client certificate or require one")
    p.add_argument("--standby-port", type=int,
                   help="an extra HTTP listener that acts as a standby node: every API path "
                        "but sys/health answers 307 to the main listener")
    p.add_argument("--unix-socket", help="an extra HTTP listener on this Unix socket path")
    p.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if (args.https_port is not None or args.tls_client_ca) and not args.tls_cert:
        p.error("--https-port and --tls-client-ca need --tls-cert and --tls-key")
    return args


def main(argv=None):
    args = parse_args(argv)
    loopback.require_loopback(args.host)
    state = EndpointState()
    vault = Vault(state.clock, version=args.vault_version, root_token=args.root_token,
                  unseal_key=args.unseal_key)
    state.vault = vault
    login_ttl = durations.parse(args.login_ttl, "--login-ttl")
    if not args.no_test_layout:
        state.credentials[""] = vault.seed_test_layout(
            vault.root, args.role_id, args.secret_id, args.kubernetes_jwt, login_ttl)
    for path in args.namespace:
        ns = vault.root
        for part in [p for p in path.strip("/").split("/") if p]:
            ns = vault.create_namespace(ns, part)
        state.credentials[ns.path] = vault.seed_test_layout(ns, login_ttl=login_ttl)
    vault.sealed = args.sealed
    vault.root_paths_ignore_namespace = args.root_paths_ignore_namespace

    tls = _tls_context(args) if args.tls_cert else None
    main_tls = tls if args.https_port is None else None
    listeners = [loopback.Listener(args.host, args.port, Handler, main_tls, state=state,
                                   name="main", verbose=args.verbose)]
    if args.https_port is not None:
        listeners.append(loopback.Listener(args.host, args.https_port, Handler, tls, state=state,
                                           name="https", verbose=args.verbose))

    scheme = "https" if main_tls else "http"
    host = f"[{args.host}]" if ":" in args.host else args.host
    state.active_url = f"{scheme}://{host}:{listeners[0].port}"
    if args.standby_port is not None:
        listeners.append(loopback.Listener(args.host, args.standby_port, Handler, None,
                                           state=state, name="standby", verbose=args.verbose))
    if args.unix_socket:
        listeners.append(UnixListener(args.unix_socket, Handler, state=state, name="unix",
                                      verbose=args.verbose))
    info = {"port": listeners[0].port, "scheme": scheme,
            "root_token": vault.root_token.id, "unseal_key": vault.unseal_key,
            "credentials": state.credentials}
    for listener in listeners[1:]:
        info[{"https": "https_port", "standby": "standby_port",
              "unix": "unix_socket"}[listener.name]] = listener.port
    loopback.announce_and_serve(listeners, args.port_file, info)
    return 0


if __name__ == "__main__":
    sys.exit(main())

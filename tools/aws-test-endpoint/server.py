#!/usr/bin/python3
"""Local stand-in for AWS Secrets Manager, KMS, STS, EC2 IMDSv2 and the ECS
container-credentials endpoint, for tests only (aws-protocol.md section 9).

    /usr/bin/python3 tools/aws-test-endpoint/server.py --port 0 [--port-file F]

Loopback only. Every Secrets Manager / KMS request must carry a valid SigV4
signature (verified with botocore). See README.md beside this file for the
flags and the admin API (/__faults, /__admin/...).
"""
import collections
import json
import sys
import threading
import time
import uuid
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler

import loopback
import sigv4_verify
from credential_services import CredentialServices
from credentials_store import (DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, CredentialStore)
from errors import AwsError, framework, query_error_xml
from faults import FaultBoard, FaultError
from kms_service import Kms
from reply import Reply
from secrets_service import SecretsManager

JSON_11 = "application/x-amz-json-1.1"
TARGET_PREFIXES = {"secretsmanager": "secretsmanager", "TrentService": "kms"}
ALL_SERVICES = frozenset({"secretsmanager", "kms", "sts", "imds", "ecs"})
DEFAULT_ERRORS = {  # fault kind -> (status, code) per service
    ("error", "kms"): (500, "KMSInternalException"),
    ("error", None): (500, "InternalServiceError"),
    ("unavailable", None): (503, "ServiceUnavailable"),
    ("throttle", None): (400, "ThrottlingException"),
}
MAX_BODY = 1 << 20


class EndpointState:
    """Everything the listeners share."""

    def __init__(self, region, account):
        self.region = region
        self.account = account
        self.clock_offset = 0.0
        self.credentials = CredentialStore(account)
        self.kms = Kms(region, account, self.clock)
        self.sm = SecretsManager(region, account, self.clock, self.kms, self.is_denied)
        self.faults = FaultBoard()
        self.deny_rules = []
        self.settings = {
            "temp_credentials_ttl": None,   # seconds; None = as requested / 3600
            "web_identity_tokens": None,    # None = accept any non-empty token
            "imds_v1_allowed": False,
            "imds_role": "kes-test-role",
            "ecs_path_prefix": "/v2/credentials",
            "ecs_auth_token": None,
        }
        self.last_web_identity_token = None
        self.requests = collections.deque(maxlen=5000)
        self.lock = threading.Lock()
        self.credential_services = CredentialServices(self)

    def clock(self):
        return time.time() + self.clock_offset

    def is_denied(self, caller, action, resource=None):
        for rule in list(self.deny_rules):
            if rule.get("action") not in (action, "*", action.split(":")[0] + ":*"):
                continue
            if rule.get("access_key_id") not in (None, getattr(caller, "access_key_id", None)):
                continue
            if rule.get("resource") is not None and (
                    resource is None or not resource.startswith(rule["resource"])):
                continue
            return True
        return False


def _json(doc, status=200):
    return Reply(status, json.dumps(doc, separators=(",", ":")), JSON_11)


def _error_reply(err):
    return Reply(err.status, err.json_body(), JSON_11)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def version_string(self):
        return "aws-test-endpoint"

    # BaseHTTPRequestHandler writes Date itself; make it follow the
    # (possibly shifted) endpoint clock so clients can measure skew.
    def date_time_string(self, timestamp=None):
        return formatdate(self.server.state.clock(), usegmt=True)

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self._serve()

    def do_PUT(self):
        self._serve()

    def do_POST(self):
        self._serve()

    def do_DELETE(self):
        self._serve()

    def do_HEAD(self):
        self._serve()

    # ---- plumbing ----------------------------------------------------------
    def _write(self, reply, request_id):
        self.send_response(reply.status)
        self.send_header("x-amzn-RequestId", request_id)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def _serve(self):
        state = self.server.state
        request_id = str(uuid.uuid4())
        path, _, _query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = {"time": round(state.clock(), 3), "listener": self.server.name,
                 "method": self.command, "path": path, "request_id": request_id}
        try:
            body = loopback.read_body(self, MAX_BODY)
        except ValueError:
            self._write(_error_reply(framework("SerializationException",
                                               "Could not read the request body")), request_id)
            self.close_connection = True
            return
        if path == "/__faults" or path.startswith("/__admin/"):
            self._write(admin(state, self.command, path, body), request_id)
            return

        service, operation = self._classify(path, headers, body)
        entry.update(service=service, operation=operation)
        for name in ("amz-sdk-request", "amz-sdk-invocation-id", "user-agent"):
            if name in headers:
                entry[name] = headers[name]
        if service is not None and service not in self.server.services:
            service = None
        rule = state.faults.take(service, operation) if service else None
        if rule is not None and loopback.delay_or_drop(self, rule, entry, state.requests):
            return
        if rule is not None and rule.kind in ("throttle", "error", "unavailable"):
            reply, entry["code"] = self._fault_reply(rule, service)
        else:
            reply = self._dispatch(service, operation, path, headers, body, request_id, entry)
        entry["status"] = reply.status
        state.requests.append(entry)
        self._write(reply, request_id)

    def _classify(self, path, headers, body):
        services = self.server.state.credential_services
        if services.is_imds_path(path):
            return "imds", path
        if services.is_ecs_path(path):
            return "ecs", path
        target = headers.get("x-amz-target")
        if target is not None:
            prefix, _, op = target.partition(".")
            return TARGET_PREFIXES.get(prefix, "secretsmanager"), op
        if services.is_sts_request(self.command, headers, body):
            return "sts", "AssumeRoleWithWebIdentity"
        return None, None

    @staticmethod
    def _fault_reply(rule, service):
        """(reply, error code) for an injected error."""
        status, code = DEFAULT_ERRORS.get((rule.kind, service),
                                          DEFAULT_ERRORS[(rule.kind, None)])
        status = rule.status or status
        code = rule.code or code
        if service in ("imds", "ecs"):
            return Reply(status, b"", "text/plain"), code
        if not rule.body:
            return Reply(status, b"", JSON_11 if service != "sts" else None), code
        if service == "sts":
            kind = "Receiver" if status >= 500 else "Sender"
            return Reply(status, query_error_xml(code, rule.message or "injected fault",
                                                 str(uuid.uuid4()), kind), "text/xml"), code
        message = rule.message or ("Rate exceeded" if rule.kind == "throttle" else None)
        return _error_reply(AwsError(code, message, status, "message")), code

    def _dispatch(self, service, operation, path, headers, body, request_id, entry):
        state = self.server.state
        cs = state.credential_services
        if service == "imds":
            return cs.imds(self.command, path, headers)
        if service == "ecs":
            entry["authorization"] = headers.get("authorization")
            return cs.ecs(self.command, headers)
        if service == "sts":
            reply = cs.sts(body, request_id)
            entry["web_identity_token"] = state.last_web_identity_token
            return reply
        if service is None:
            # Not an AWS API call (a health probe such as KES's Status GET).
            return Reply(404, json.dumps({"__type": "UnknownOperationException"}), JSON_11)
        try:
            return _json(self._aws_json(service, operation, path, headers, body, entry))
        except AwsError as err:
            entry["code"] = err.code
            return _error_reply(err)

    def _aws_json(self, service, operation, path, headers, body, entry):
        state = self.server.state
        prefix = headers["x-amz-target"].partition(".")[0]
        expected = TARGET_PREFIXES.get(prefix)
        cred, auth = sigv4_verify.verify(
            self.command, self.path, list(self.headers.items()), body, state.clock(),
            state.credentials.lookup, state.region, expected,
            state.credentials.token_matches)
        entry["access_key_id"] = cred.access_key_id
        if expected is None or self.command != "POST" or path != "/":
            raise framework("UnknownOperationException")
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in (JSON_11, "application/x-amz-json-1.0"):
            raise framework("SerializationException",
                            f"Unsupported Content-Type '{ctype}'; expected {JSON_11}")
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            doc = None
        if not isinstance(doc, dict):
            raise AwsError("com.amazon.coral.service#SerializationException", None, 400)
        doc = {k: v for k, v in doc.items() if v is not None}
        action = f"{'secretsmanager' if expected == 'secretsmanager' else 'kms'}:{operation}"
        resource = doc.get("SecretId") or doc.get("Name") or doc.get("KeyId")
        if state.is_denied(cred, action, resource):
            raise framework(
                "AccessDeniedException",
                f"User: {cred.principal_arn} is not authorized to perform: {action} on "
                f"resource: {resource or '*'} because no identity-based policy allows the "
                f"{action} action")
        if expected == "kms":
            with state.kms.lock:
                return state.kms.handle(operation, doc)
        return state.sm.handle(operation, doc, cred)


# ---- admin API ---------------------------------------------------------------
def admin(state, method, path, body):
    def ok(doc=None):
        return Reply(200, json.dumps(doc if doc is not None else {}), "application/json")

    def bad(message, status=400):
        return Reply(status, json.dumps({"error": message}), "application/json")

    try:
        doc = json.loads(body) if body.strip() else {}
    except ValueError:
        return bad("body is not JSON")
    try:
        shared = loopback.shared_admin(state, method, path, doc)
        if shared is not None:
            return ok(shared)
        if path == "/__admin/clock":
            if method == "POST":
                state.clock_offset = float(doc["offset_seconds"])
            return ok({"offset_seconds": state.clock_offset, "now": state.clock()})
        elif path == "/__admin/settings":
            if method == "POST":
                for key, value in doc.items():
                    if key == "force_delete_lag_seconds":
                        state.sm.force_delete_lag = float(value)
                    elif key == "empty_list_pages":
                        state.sm.empty_pages = int(value)
                    elif key in state.settings:
                        state.settings[key] = value
                    else:
                        return bad(f"unknown setting {key}")
            return ok(dict(state.settings, force_delete_lag_seconds=state.sm.force_delete_lag,
                           empty_list_pages=state.sm.empty_pages))
        elif path == "/__admin/credentials" and method == "POST":
            if doc.get("access_key_id"):
                expires_in = doc.get("expires_in")
                cred = state.credentials.add_long_term(doc["access_key_id"],
                                                       doc["secret_access_key"])
                cred.session_token = doc.get("session_token")
                if expires_in is not None:
                    cred.expiration = state.clock() + float(expires_in)
            else:
                cred = state.credentials.mint(
                    state.clock() + float(doc.get("expires_in", 3600)),
                    f"arn:aws:sts::{state.account}:assumed-role/admin-minted/test")
            return ok(cred.to_json())
        elif path == "/__admin/credentials/expire" and method == "POST":
            if not state.credentials.expire(doc.get("access_key_id"), state.clock()):
                return bad("no such temporary access key", 404)
            return ok()
        elif path == "/__admin/deny":
            if method == "POST":
                if not isinstance(doc.get("action"), str):
                    return bad("action is required, e.g. secretsmanager:GetSecretValue")
                state.deny_rules.append(doc)
            elif method == "DELETE":
                state.deny_rules.clear()
            return ok({"rules": list(state.deny_rules)})
        elif path == "/__admin/kms/key-state" and method == "POST":
            with state.kms.lock:
                key = state.kms.resolve(doc["key_id"])
                if doc["state"] not in ("Enabled", "Disabled", "PendingDeletion",
                                        "PendingImport"):
                    return bad("state must be Enabled, Disabled, PendingDeletion or "
                               "PendingImport")
                key.state = doc["state"]
                return ok({"KeyMetadata": key.metadata()})
        elif path == "/__admin/kms/keys" and method == "POST":
            key = state.kms.create_key(doc.get("description", ""),
                                       doc.get("state", "Enabled"), doc.get("alias"))
            return ok({"KeyMetadata": key.metadata()})
        return bad(f"no admin route {method} {path}", 404)
    except FaultError as e:
        return bad(str(e))
    except AwsError as e:
        return bad(str(e), 404)
    except (KeyError, TypeError, ValueError) as e:
        return bad(f"bad admin request: {e!r}")


def parse_args(argv):
    p = loopback.argument_parser(__doc__, "write every chosen port as JSON to this file")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--account", default="123456789012")
    p.add_argument("--access-key", action="append", default=[], metavar="ID:SECRET",
                   help="accept this long-term key (repeatable)")
    p.add_argument("--credentials-file",
                   help="JSON list of {access_key_id, secret_access_key[, session_token, "
                        "expiration]}")
    p.add_argument("--no-default-credentials", action="store_true",
                   help=f"do not accept {DEFAULT_ACCESS_KEY} / its example secret")
    p.add_argument("--temp-credentials-ttl", type=float,
                   help="lifetime in seconds of credentials minted by STS/IMDS/ECS")
    p.add_argument("--web-identity-token", action="append",
                   help="STS accepts only these tokens (repeatable; default: any)")
    p.add_argument("--imds-role", default="kes-test-role")
    p.add_argument("--imds-v1", action="store_true", help="allow IMDS GETs without token")
    p.add_argument("--ecs-auth-token", help="required Authorization value for ECS GETs")
    p.add_argument("--ecs-path-prefix", default="/v2/credentials")
    p.add_argument("--imds-port", type=int, help="extra listener serving only IMDS")
    p.add_argument("--ecs-port", type=int, help="extra listener serving only ECS")
    p.add_argument("--sts-port", type=int, help="extra listener serving only STS")
    p.add_argument("--https-port", type=int, help="extra TLS listener serving everything")
    p.add_argument("--tls-cert", help="PEM certificate chain for --https-port")
    p.add_argument("--tls-key", help="PEM private key for --https-port")
    p.add_argument("--no-seed-keys", action="store_true",
                   help="do not create alias/test-key, alias/disabled-key, "
                        "alias/pending-deletion-key")
    p.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = p.parse_args(argv)
    if args.https_port is not None and not (args.tls_cert and args.tls_key):
        p.error("--https-port needs --tls-cert and --tls-key")
    return args


def main(argv=None):
    args = parse_args(argv)
    loopback.require_loopback(args.host)
    state = EndpointState(args.region, args.account)
    if not args.no_default_credentials:
        state.credentials.add_long_term(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)
    for pair in args.access_key:
        key_id, sep, secret = pair.partition(":")
        if not sep or not key_id or not secret:
            sys.exit("--access-key takes ID:SECRET")
        state.credentials.add_long_term(key_id, secret)
    if args.credentials_file:
        state.credentials.load_json_file(args.credentials_file)
    if not args.no_seed_keys:
        state.kms.seed_defaults()
    state.settings.update(temp_credentials_ttl=args.temp_credentials_ttl,
                          web_identity_tokens=args.web_identity_token,
                          imds_role=args.imds_role, imds_v1_allowed=args.imds_v1,
                          ecs_auth_token=args.ecs_auth_token,
                          ecs_path_prefix=args.ecs_path_prefix)

    def listener(port, name, services, tls=None):
        return loopback.Listener(args.host, port, Handler, tls, state=state, name=name,
                                 services=services, verbose=args.verbose)

    listeners = [listener(args.port, "main", ALL_SERVICES)]
    extra = [("https", args.https_port, ALL_SERVICES), ("imds", args.imds_port, {"imds"}),
             ("ecs", args.ecs_port, {"ecs"}), ("sts", args.sts_port, {"sts"})]
    for name, port, services in extra:
        if port is None:
            continue
        tls = None
        if name == "https":
            tls = loopback.server_tls_context(args.tls_cert, args.tls_key)
        listeners.append(listener(port, name, frozenset(services), tls))

    ports = {("port" if l.name == "main" else l.name + "_port"): l.port for l in listeners}
    loopback.announce_and_serve(listeners, args.port_file, ports)
    return 0


if __name__ == "__main__":
    sys.exit(main())

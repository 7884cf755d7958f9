"""The Vault core: seal state, namespaces, mounts, token checks, routing,
the sys/ API and Vault's response envelope.

    vault = Vault(...)
    status, headers, body = vault.handle(method, path, query, headers, body)

Order of checks, as in Vault: root-only sys paths (sys/health, seal-status,
seal, unseal, leader; no namespace allowed) -> sealed (503) -> namespace ->
mount (404 no handler) -> token (403) -> policy (403) -> the engine.
"""
import json
import secrets
import string
import threading
import time
import traceback
import uuid
from urllib.parse import unquote

import durations
import policy
from auth_methods import AppRole, Kubernetes, ServiceAccounts, TokenAuth, service_account_jwt
from backend import NO_CONTENT, Backend, Request, Response
from errors import (VaultError, bad_request, invalid_token, multierror, no_route, no_token,
                    not_found, policy_denied, sealed, unsupported_operation, unsupported_path)
from kv import KvV1, KvV2
from tokens import SYSTEM_MAX_TTL, TokenStore
from transit import Transit

JSON_HEADERS = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
ROOT_ONLY = ("sys/health", "sys/seal-status", "sys/leader", "sys/seal", "sys/unseal")
HEALTH_CODES = {"activecode": 200, "standbycode": 429, "drsecondarycode": 472,
                "performancestandbycode": 473, "sealedcode": 503, "uninitcode": 501}
TEST_POLICY = [(p, {"create", "read", "update", "delete", "list", "patch"})
               for p in ("kv/*", "secret/*", "transit/*")]


def _mount_accessor(kind):
    return f"{kind}_{secrets.token_hex(4)}"


class Namespace:
    def __init__(self, path, parent):
        self.path = path  # "" for root, else "a/" or "a/b/"
        self.id = "root" if not path else "".join(
            secrets.choice(string.ascii_letters + string.digits) for _ in range(5))
        self.parent = parent
        self.children = {}
        self.mounts = {}  # "secret/" or "auth/approle/" -> Backend
        self.accessors = {}
        self.policies = {}  # name -> (text, rules)
        self.created = time.time()

    def mount(self, path, backend):
        path = path.strip("/") + "/"
        self.mounts[path] = backend
        self.accessors[path] = _mount_accessor(
            path.split("/")[1] if path.startswith("auth/") else backend.type)
        return backend

    def route(self, api):
        probe = api.strip("/") + "/"
        best = max((m for m in self.mounts if probe.startswith(m)), key=len, default=None)
        if best is None:
            return None, None
        return self.mounts[best], api.strip("/")[len(best):]

    def is_within(self, other):
        """This namespace is `other` or one of its descendants."""
        return self.path.startswith(other.path)

    def describe(self):
        return {"id": self.id, "path": self.path, "custom_metadata": {}}


class Vault:
    def __init__(self, clock, version="1.17.6", root_token="root", unseal_key=None,
                 default_ttl=SYSTEM_MAX_TTL):
        self.clock = clock
        self.version = version
        self.default_ttl = default_ttl
        self.unseal_key = unseal_key or secrets.token_urlsafe(32)
        self.lock = threading.RLock()
        self.tokens = TokenStore(clock)
        self.service_accounts = ServiceAccounts()
        self.root = self._new_namespace("", None)
        self.sealed = False
        self.initialized = True
        self.standby = False
        self.performance_standby = False
        self.replication_dr_mode = "disabled"
        self.root_paths_ignore_namespace = False  # Vault Enterprise answers 404 (D9)
        self.wrapped = {}  # wrapping token id -> the wrapped answer's body
        self.cluster_id = str(uuid.uuid4())
        self.root_token = self.tokens.issue(self.root, [policy.ROOT], path="auth/token/root",
                                            display_name="root", orphan=True,
                                            token_id=root_token)

    # ---- namespaces and the standard test layout -------------------------------
    def _new_namespace(self, path, parent):
        ns = Namespace(path, parent)
        ns.mount("sys", SysBackend())
        ns.mount("auth/token", TokenAuth())
        return ns

    def namespace(self, header):
        """The namespace a request names (header value), or None if there is none."""
        ns = self.root
        for part in [p for p in (header or "").strip().strip("/").split("/") if p]:
            if ns is self.root and part == "root":
                continue
            ns = ns.children.get(part)
            if ns is None:
                return None
        return ns

    def create_namespace(self, parent, name):
        with self.lock:
            if not name or "/" in name.strip("/"):
                raise bad_request("invalid namespace name")
            name = name.strip("/")
            if name in parent.children:
                return parent.children[name]
            ns = self._new_namespace(parent.path + name + "/", parent)
            parent.children[name] = ns
            return ns

    def delete_namespace(self, parent, name):
        with self.lock:
            ns = parent.children.get(name.strip("/"))
            if ns is None:
                return
            if ns.children:
                raise bad_request(f'cannot delete namespace "{ns.path}" containing child '
                                  "namespaces")
            self.tokens.revoke_namespace(ns)
            del parent.children[name.strip("/")]

    def seed_test_layout(self, ns, role_id=None, secret_id=None, jwt=None, login_ttl=0):
        """Mounts kv (v1), secret (v2), transit (key `kes`), approle and kubernetes with a
        role `kes` each, and a policy `kes` with full rights on the three engines."""
        ns.mount("kv", KvV1())
        ns.mount("secret", KvV2())
        ns.mount("transit", Transit()).create_key("kes", self.clock())
        ns.policies["kes"] = (json.dumps({"path": {p: {"capabilities": sorted(c)}
                                                   for p, c in TEST_POLICY}}), TEST_POLICY)
        approle = ns.mount("auth/approle", AppRole())
        role = approle.new_role("kes")
        role.update(token_policies=["kes"], token_ttl=login_ttl, token_max_ttl=0,
                    token_period=0, token_num_uses=0)
        if role_id:
            role["role_id"] = role_id
        approle.roles["kes"] = role
        secret = approle.add_secret_id(role, self.clock(), secret_id)
        k8s = ns.mount("auth/kubernetes", Kubernetes(self.service_accounts))
        k8s.roles["kes"] = dict(name="kes", token_policies=["kes"], token_ttl=login_ttl,
                                token_max_ttl=0, token_period=0, token_num_uses=0,
                                bound_service_account_names=["kes"],
                                bound_service_account_namespaces=["default"])
        jwt = jwt or service_account_jwt("kes", "default")
        self.service_accounts.register(jwt, "kes", "default")
        return {"namespace": ns.path, "role_id": role["role_id"],
                "secret_id": secret["secret_id"], "kubernetes_role": "kes",
                "kubernetes_jwt": jwt, "policy": "kes", "transit_key": "kes"}

    # ---- request handling ------------------------------------------------------
    def handle(self, method, path, query, headers, body):
        """(status, headers, body bytes, log dict) for one HTTP request."""
        log = {}
        try:
            return self._handle(method, path, query, headers, body, log) + (log,)
        except VaultError as err:
            log["errors"] = err.errors
            return self._render_error(err) + (log,)
        except (TypeError, ValueError, KeyError) as err:  # a malformed field in the body
            log["errors"] = [f"invalid request: {err}"]
            return self._render_error(bad_request(log["errors"][0])) + (log,)
        except Exception:  # noqa: BLE001 - a bug here must still answer, as Vault's 500
            traceback.print_exc()
            log["errors"] = ["internal error"]
            return self._render_error(VaultError(500, [multierror("internal error")])) + (log,)

    def _handle(self, method, path, query, headers, body, log):
        if not path.startswith("/v1/"):
            raise VaultError(404)
        api = unquote(path[len("/v1/"):])
        op = _operation(method, query)
        ns_header = headers.get("x-vault-namespace", "")
        key = api.strip("/")
        if key in ROOT_ONLY:
            if self.namespace(ns_header) is not self.root and not self.root_paths_ignore_namespace:
                raise unsupported_path()  # root-only path with a namespace (D9)
            return self._root_only(key, method, op, query, headers, body)
        if self.sealed:
            raise sealed()
        ns = self.namespace(ns_header)
        if ns is None:
            raise no_route(ns_header.strip("/") + "/" + key)
        # The path form (/v1/ns1/secret/...) names child namespaces of the header's one.
        parts = key.split("/")
        while len(parts) > 1 and parts[0] in ns.children:
            ns = ns.children[parts.pop(0)]
        key = "/".join(parts)
        data = _request_data(op, query, body)
        mount, rel = ns.route(key)
        if mount is None:
            raise no_route(key)
        log["mount"] = type(mount).__name__
        token = None
        if not (rel == "login" and isinstance(mount, (AppRole, Kubernetes))):
            token = self._authenticate(headers, ns)
            log["accessor"] = token.accessor
        req = Request(op, rel, data, ns, token, self)
        if token is not None:
            # Vault checks a listing against the folder path, with its trailing slash.
            target = key + "/" if op == "list" else key
            self._authorize(token, ns, target, self._capability(mount, req))
            self.tokens.use(token)
        answer = mount.handle(req)
        wrap_ttl = headers.get("x-vault-wrap-ttl")
        if wrap_ttl and answer.status == 200 and (answer.data is not None or answer.auth):
            answer = self._wrap(answer, mount, ns, key, durations.parse(wrap_ttl, "wrap TTL"))
        return self._render(answer, mount)

    def _wrap(self, answer, mount, ns, key, ttl):
        """Response wrapping (X-Vault-Wrap-TTL): the answer is kept behind a
        single-use token that only sys/wrapping/unwrap accepts."""
        if not ttl:
            raise bad_request("wrap TTL must be positive")
        token = self.tokens.issue(ns, [policy.RESPONSE_WRAPPING], ttl=ttl, num_uses=1,
                                  renewable=False, path=key, display_name="response-wrapping",
                                  orphan=True)
        self.wrapped[token.id] = self._render(answer, mount)[2]
        return Response(wrap_info={"token": token.id, "accessor": token.accessor, "ttl": ttl,
                                   "creation_time": durations.rfc3339(self.clock()),
                                   "creation_path": key, "wrapped_accessor": ""})

    def unwrap(self, req):
        """sys/wrapping/unwrap: with the wrapping token itself, or `token` in the body."""
        wrapping = req.token
        if req.data.get("token"):
            wrapping = self.tokens.find(token_id=str(req.data["token"]))
            if wrapping is None:
                raise bad_request("wrapping token is not valid or does not exist")
            self.tokens.revoke(wrapping)
        body = self.wrapped.pop(wrapping.id, None)
        if body is None:
            raise bad_request("wrapping token is not valid or does not exist")
        return Response(raw=json.loads(body))

    def _authenticate(self, headers, ns):
        value = headers.get("x-vault-token", "")
        if not value and headers.get("authorization", "").lower().startswith("bearer "):
            value = headers["authorization"][7:].strip()
        if not value:
            raise no_token()
        token = self.tokens.find(token_id=value)
        if token is None or not ns.is_within(token.namespace):
            raise invalid_token()
        return token

    @staticmethod
    def _capability(mount, req):
        if req.op == "write":
            return "update" if mount.exists(req) else "create"
        return {"read": "read", "list": "list", "delete": "delete", "patch": "patch"}[req.op]

    def _authorize(self, token, ns, key, capability):
        if policy.ROOT in token.policies:
            return
        relative = ns.path[len(token.namespace.path):] + key
        rule_sets = []
        for name in token.policies:
            if name in policy.BUILTIN_RULES:
                rule_sets.append(policy.BUILTIN_RULES[name])
            if name in token.namespace.policies:
                rule_sets.append(token.namespace.policies[name][1])
        if not policy.allowed(rule_sets, relative, capability):
            raise policy_denied()

    # ---- sys/health, seal-status, seal, unseal, leader ------------------------------
    def _root_only(self, key, method, op, query, headers, body):
        if key == "sys/health":
            if method not in ("GET", "HEAD"):
                raise unsupported_operation()
            status, doc = self.health(query)
            if method == "HEAD":
                return status, [], b""
            return status, JSON_HEADERS, _dump(doc)
        if key == "sys/seal-status" and op == "read":
            return 200, JSON_HEADERS, _dump(self.seal_status())
        if key == "sys/leader" and op == "read":
            if self.sealed:
                raise sealed()
            return 200, JSON_HEADERS, _dump({"ha_enabled": False, "is_self": True,
                                             "leader_address": "", "leader_cluster_address": "",
                                             "performance_standby": False})
        if key == "sys/unseal" and op == "write":
            data = _request_data(op, query, body)
            if data.get("reset"):
                return 200, JSON_HEADERS, _dump(self.seal_status())
            supplied = data.get("key")
            if not isinstance(supplied, str) or not supplied:
                raise bad_request("'key' must be specified in request body as JSON, or "
                                  "'reset' set to true")
            if not secrets.compare_digest(supplied.encode(), self.unseal_key.encode()):
                raise bad_request("Unseal failed, invalid key")
            self.sealed = False
            return 200, JSON_HEADERS, _dump(self.seal_status())
        if key == "sys/seal" and op == "write":
            if self.sealed:
                raise sealed()
            token = self._authenticate(headers, self.root)
            self._authorize(token, self.root, key, "sudo")
            self.sealed = True
            return 204, [], b""
        raise unsupported_operation()

    def health(self, query):
        codes = dict(HEALTH_CODES)
        for name in codes:
            if name in query:
                try:
                    codes[name] = int(query[name])
                except ValueError:
                    raise bad_request(f"bad code: {query[name]}")
        standby_ok = _truthy(query.get("standbyok"))
        perf_standby_ok = _truthy(query.get("perfstandbyok"))
        if not self.initialized:
            status = codes["uninitcode"]
        elif self.sealed:
            status = codes["sealedcode"]
        elif self.replication_dr_mode == "secondary":
            status = codes["drsecondarycode"]
        elif self.performance_standby and not perf_standby_ok:
            status = codes["performancestandbycode"]
        elif self.standby and not self.performance_standby and not standby_ok:
            status = codes["standbycode"]
        else:
            status = codes["activecode"]
        doc = {"initialized": self.initialized, "sealed": self.sealed,
               "standby": self.standby or self.sealed,
               "performance_standby": self.performance_standby,
               "replication_performance_mode": "disabled",
               "replication_dr_mode": self.replication_dr_mode,
               "server_time_utc": int(self.clock()), "version": self.version,
               "enterprise": False, "echo_duration_ms": 0, "clock_skew_ms": 0}
        if self.initialized and not self.sealed:
            doc.update(cluster_name="vault-cluster-kes-test", cluster_id=self.cluster_id)
        return status, doc

    def seal_status(self):
        doc = {"type": "shamir", "initialized": self.initialized, "sealed": self.sealed,
               "t": 1, "n": 1, "progress": 0, "nonce": "", "version": self.version,
               "build_date": "2024-09-19T08:05:25Z", "migration": False,
               "recovery_seal": False, "storage_type": "inmem"}
        if not self.sealed:
            doc.update(cluster_name="vault-cluster-kes-test", cluster_id=self.cluster_id)
        return doc

    # ---- rendering -----------------------------------------------------------------
    @staticmethod
    def _envelope(data=None, auth=None, warnings=None, lease_duration=0, mount_type=None):
        doc = {"request_id": str(uuid.uuid4()), "lease_id": "", "renewable": False,
               "lease_duration": lease_duration, "data": data, "wrap_info": None,
               "warnings": warnings, "auth": auth}
        if mount_type:
            doc["mount_type"] = mount_type
        return doc

    def _render(self, answer, mount):
        if answer.status == 204:
            return 204, [("Cache-Control", "no-store")], b""
        if answer.raw is not None:
            return answer.status, JSON_HEADERS, _dump(answer.raw)
        doc = self._envelope(answer.data, answer.auth, answer.warnings, answer.lease_duration,
                             None if isinstance(mount, (TokenAuth, SysBackend)) else mount.type)
        doc["wrap_info"] = answer.wrap_info
        return answer.status, JSON_HEADERS, _dump(doc)

    def _render_error(self, err):
        if err.body is not None:
            doc = self._envelope()
            doc.update(err.body)
        else:
            doc = {"errors": err.errors}
        return err.status, JSON_HEADERS, _dump(doc)


# ---- sys/ inside a namespace -------------------------------------------------------
ENGINES = {"kv": KvV1, "kv-v2": KvV2, "transit": Transit}
AUTH_METHODS = {"approle": AppRole, "kubernetes": Kubernetes}


class SysBackend(Backend):
    type = "system"

    def handle(self, req):
        vault, ns = req.vault, req.namespace
        head, _, rest = req.path.strip("/").partition("/")
        with vault.lock:
            if head == "mounts":
                return self._mounts(req, ns, rest, auth=False)
            if head == "auth":
                return self._mounts(req, ns, rest, auth=True)
            if head == "policy" or (head == "policies" and rest.startswith("acl")):
                name = rest if head == "policy" else rest[len("acl"):].strip("/")
                return self._policies(req, ns, name, legacy=head == "policy")
            if head == "namespaces":
                return self._namespaces(req, vault, ns, rest)
            if head == "wrapping" and rest == "unwrap" and req.op == "write":
                return vault.unwrap(req)
        raise VaultError(404, [multierror("unsupported path")])

    @staticmethod
    def _mounts(req, ns, path, auth):
        prefix = "auth/" if auth else ""
        if not path:
            if req.op != "read":
                raise unsupported_operation()
            table = {}
            for mount_path, backend in sorted(ns.mounts.items()):
                if mount_path.startswith("auth/") != auth:
                    continue
                table[mount_path[len(prefix):]] = {
                    "type": backend.type, "description": "", "accessor": ns.accessors[mount_path],
                    "config": {"default_lease_ttl": 0, "max_lease_ttl": 0},
                    "options": backend.options, "local": False, "seal_wrap": False}
            return Response(raw=dict(table, data=table))
        full = prefix + path.strip("/") + "/"
        if req.op == "write":
            if full in ns.mounts:
                raise bad_request(f"path is already in use at {full}")
            kind = req.data.get("type")
            if not auth and kind == "kv" and str((req.data.get("options") or {})
                                                 .get("version", "1")) == "2":
                kind = "kv-v2"
            factory = (AUTH_METHODS if auth else ENGINES).get(kind)
            if factory is None:
                raise bad_request(f'plugin not found in the catalog: {req.data.get("type")}')
            backend = factory(req.vault.service_accounts) if factory is Kubernetes else factory()
            ns.mount(full, backend)
            return NO_CONTENT
        if req.op == "delete":
            if full in ("sys/", "auth/token/"):
                raise bad_request(f"cannot unmount '{full}'")
            ns.mounts.pop(full, None)
            ns.accessors.pop(full, None)
            return NO_CONTENT
        if req.op == "read" and full in ns.mounts:
            backend = ns.mounts[full]
            return Response(data={"type": backend.type, "options": backend.options,
                                  "accessor": ns.accessors[full], "description": "",
                                  "config": {"default_lease_ttl": 0, "max_lease_ttl": 0}})
        raise not_found() if req.op == "read" else unsupported_operation()

    @staticmethod
    def _policies(req, ns, name, legacy):
        builtin = [policy.DEFAULT, policy.ROOT]
        if not name:
            if req.op not in ("read", "list"):
                raise unsupported_operation()
            names = sorted(set(builtin[:1] + list(ns.policies))) + [policy.ROOT]
            return Response(data={"keys": names, "policies": names}, raw={
                "keys": names, "policies": names, "data": {"keys": names,
                                                           "policies": names}} if legacy else None)
        if req.op == "read":
            if name not in ns.policies:
                if name in builtin:
                    return Response(data={"name": name, "policy": "", "rules": ""})
                raise not_found()
            text = ns.policies[name][0]
            return Response(data={"name": name, "policy": text, "rules": text})
        if req.op == "write":
            if name in builtin:
                raise bad_request(f'cannot update "{name}" policy')
            text = req.data.get("policy", req.data.get("rules"))
            ns.policies[name] = (text, policy.parse(text))
            return NO_CONTENT
        if req.op == "delete":
            if name in builtin:
                raise bad_request(f'cannot delete "{name}" policy')
            ns.policies.pop(name, None)
            return NO_CONTENT
        raise unsupported_operation()

    @staticmethod
    def _namespaces(req, vault, ns, name):
        name = name.strip("/")
        if not name:
            if req.op != "list":
                raise unsupported_operation()
            if not ns.children:
                raise not_found()
            keys = sorted(n + "/" for n in ns.children)
            return Response(data={"keys": keys, "key_info": {
                n + "/": c.describe() for n, c in ns.children.items()}})
        if req.op == "write":
            return Response(data=vault.create_namespace(ns, name).describe())
        if req.op == "read":
            if name not in ns.children:
                raise not_found()
            return Response(data=ns.children[name].describe())
        if req.op == "delete":
            vault.delete_namespace(ns, name)
            return NO_CONTENT
        raise unsupported_operation()


# ---- helpers ---------------------------------------------------------------------
def _truthy(value):
    """Vault's boolean query parameters: present and empty counts as true."""
    return value is not None and value.lower() in ("", "1", "t", "true")


def _operation(method, query):
    if method in ("GET", "HEAD"):
        return "list" if query.get("list", "").lower() in ("1", "t", "true") else "read"
    ops = {"LIST": "list", "PUT": "write", "POST": "write", "DELETE": "delete",
           "PATCH": "patch"}
    if method not in ops:
        raise VaultError(405, ["unsupported operation"])
    return ops[method]


def _request_data(op, query, body):
    if op in ("read", "list") or not body.strip():
        return {k: v for k, v in query.items() if k != "list"} if op in ("read", "list") else {}
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise bad_request(f"failed to parse JSON input: {e}")
    if not isinstance(doc, dict):
        raise bad_request("failed to parse JSON input: the body must be a JSON object")
    return doc


def _dump(doc):
    return (json.dumps(doc, separators=(",", ":")) + "\n").encode()



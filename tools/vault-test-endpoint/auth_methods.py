"""Auth methods: the token store's API (auth/token), AppRole and Kubernetes.

Login tokens are orphan service tokens with the `default` policy plus the
role's token_policies. Kubernetes logins are checked against the service
account tokens the endpoint knows (the admin API registers them, standing
in for the cluster's TokenReview API).
"""
import base64
import json
import secrets
import threading
import uuid

import durations
import policy
from backend import NO_CONTENT, Backend, Response
from errors import VaultError, bad_request, not_found, policy_denied, unsupported_operation


def _policy_list(value):
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, list) and all(isinstance(p, str) for p in value):
        return list(value)
    raise bad_request("policies must be a list of strings or a comma-separated string")


def _login_answer(vault, token, metadata):
    return Response(auth=token.auth_block(vault.clock(), metadata))


# ---------------------------------------------------------------------- auth/token
class TokenAuth(Backend):
    type = "token"

    def handle(self, req):
        vault, store, d = req.vault, req.vault.tokens, req.data
        op, path = req.op, req.path.strip("/")
        if path in ("create", "create-orphan") and op == "write":
            return self._create(req, orphan=path == "create-orphan" or bool(d.get("no_parent")))
        if path == "lookup-self" and op == "read":
            return Response(data=req.token.lookup_data(vault.clock()))
        if path in ("lookup", "lookup-accessor") and op == "write":
            token = self._target(req, path.endswith("accessor"))
            data = token.lookup_data(vault.clock())
            if path.endswith("accessor"):
                data["id"] = ""
            return Response(data=data)
        if path in ("renew-self", "renew", "renew-accessor") and op == "write":
            token = req.token if path == "renew-self" else \
                self._target(req, path.endswith("accessor"))
            increment = durations.parse(d.get("increment"), "increment")
            warning = store.renew(token, increment)
            answer = Response(auth=token.auth_block(vault.clock()),
                              warnings=[warning] if warning else None)
            if path == "renew-accessor":
                answer.auth["client_token"] = ""
            return answer
        if path in ("revoke-self", "revoke", "revoke-accessor", "revoke-orphan") and op == "write":
            token = req.token if path == "revoke-self" else \
                self._target(req, path.endswith("accessor"))
            store.revoke(token, orphan_children=path == "revoke-orphan")
            return NO_CONTENT
        raise unsupported_operation()

    @staticmethod
    def _target(req, by_accessor):
        name = "accessor" if by_accessor else "token"
        value = req.data.get(name)
        if not isinstance(value, str) or not value:
            raise bad_request(f"missing {name}")
        token = req.vault.tokens.find(accessor=value) if by_accessor else \
            req.vault.tokens.find(token_id=value)
        if token is None:
            raise bad_request("invalid accessor" if by_accessor else "bad token")
        return token

    @staticmethod
    def _create(req, orphan):
        d, parent = req.data, req.token
        is_root = policy.ROOT in parent.policies
        policies = _policy_list(d.get("policies")) or list(parent.policies)
        if not is_root and not set(policies) - {policy.DEFAULT} <= set(parent.policies):
            raise bad_request("child policies must be subset of parent's policies")
        if orphan and not is_root:
            raise policy_denied()
        if d.get("id") and not is_root:
            raise bad_request("root or sudo privileges required to specify token id")
        if not d.get("no_default_policy") and policy.ROOT not in policies:
            policies.append(policy.DEFAULT)
        ttl = durations.parse(d.get("ttl"))
        if not ttl and policy.ROOT not in policies:
            ttl = req.vault.default_ttl
        meta = d.get("meta") or None
        if meta is not None and not isinstance(meta, dict):
            raise bad_request("meta must be an object")
        token = req.vault.tokens.issue(
            req.namespace, policies, ttl=ttl,
            explicit_max_ttl=durations.parse(d.get("explicit_max_ttl"), "explicit_max_ttl"),
            period=durations.parse(d.get("period"), "period"),
            renewable=d.get("renewable", True) not in (False, "false"),
            num_uses=int(d.get("num_uses") or 0), path="auth/token/create", meta=meta,
            display_name="token" + ("-" + d["display_name"] if d.get("display_name") else ""),
            parent=parent, orphan=orphan, token_id=d.get("id") or None)
        return Response(auth=token.auth_block(req.vault.clock()))


# ---------------------------------------------------------------------- shared role code
def _token_settings(d, role=None):
    role = role if role is not None else {}
    for name in ("token_ttl", "token_max_ttl", "token_period", "ttl", "max_ttl", "period"):
        if name in d:
            role[name if name.startswith("token_") else "token_" + name] = durations.parse(d[name],
                                                                                         name)
    for name in ("token_policies", "policies"):
        if name in d:
            role["token_policies"] = _policy_list(d[name])
    if "token_num_uses" in d:
        role["token_num_uses"] = int(d["token_num_uses"] or 0)
    role.setdefault("token_ttl", 0)
    role.setdefault("token_max_ttl", 0)
    role.setdefault("token_period", 0)
    role.setdefault("token_policies", [])
    role.setdefault("token_num_uses", 0)
    return role


def _issue_login_token(req, role, path, metadata, display):
    vault = req.vault
    policies = [policy.DEFAULT] + [p for p in role["token_policies"] if p != policy.DEFAULT]
    return vault.tokens.issue(
        req.namespace, policies, ttl=role["token_ttl"] or vault.default_ttl,
        max_ttl=role["token_max_ttl"], period=role["token_period"],
        num_uses=role["token_num_uses"], path=path, meta=metadata, display_name=display,
        orphan=True)


def _role_view(role, extra):
    view = {k: role[k] for k in ("token_ttl", "token_max_ttl", "token_period", "token_policies",
                                 "token_num_uses")}
    view["policies"] = role["token_policies"]
    view.update({k: role[k] for k in extra if k in role})
    return view


class _RoleBackend(Backend):
    """Role CRUD shared by AppRole and Kubernetes: role/, role/<name>."""
    role_fields = ()

    def __init__(self):
        self.lock = threading.Lock()
        self.roles = {}

    def exists(self, req):
        parts = req.path.strip("/").split("/")
        return not (parts[0] == "role" and len(parts) == 2 and parts[1] not in self.roles)

    def _roles(self, req, name):
        if not name:
            if req.op != "list":
                raise unsupported_operation()
            if not self.roles:
                raise not_found()
            return Response(data={"keys": sorted(self.roles)})
        if req.op == "write":
            role = self.roles.get(name) or self.new_role(name)
            self.roles[name] = self.update_role(_token_settings(req.data, role), req.data)
            return NO_CONTENT
        if req.op == "read":
            if name not in self.roles:
                raise not_found()
            return Response(data=_role_view(self.roles[name], self.role_fields))
        if req.op == "delete":
            self.roles.pop(name, None)
            return NO_CONTENT
        raise unsupported_operation()

    def new_role(self, name):
        return {"name": name}

    def update_role(self, role, d):
        return role


# ---------------------------------------------------------------------- AppRole
class AppRole(_RoleBackend):
    type = "approle"
    role_fields = ("bind_secret_id", "secret_id_num_uses", "secret_id_ttl")

    def new_role(self, name):
        return {"name": name, "role_id": str(uuid.uuid4()), "bind_secret_id": True,
                "secret_id_num_uses": 0, "secret_id_ttl": 0, "secret_ids": {}}

    def update_role(self, role, d):
        if "role_id" in d:
            role["role_id"] = str(d["role_id"])
        if "bind_secret_id" in d:
            role["bind_secret_id"] = d["bind_secret_id"] not in (False, "false")
        if "secret_id_num_uses" in d:
            role["secret_id_num_uses"] = int(d["secret_id_num_uses"] or 0)
        if "secret_id_ttl" in d:
            role["secret_id_ttl"] = durations.parse(d["secret_id_ttl"], "secret_id_ttl")
        return role

    def add_secret_id(self, role, now, secret_id=None, num_uses=None, ttl=None):
        secret_id = secret_id or str(uuid.uuid4())
        num_uses = role["secret_id_num_uses"] if num_uses is None else num_uses
        ttl = role["secret_id_ttl"] if ttl is None else ttl
        entry = {"accessor": str(uuid.uuid4()), "num_uses": num_uses,
                 "expire_at": now + ttl if ttl else None}
        role["secret_ids"][secret_id] = entry
        return {"secret_id": secret_id, "secret_id_accessor": entry["accessor"],
                "secret_id_ttl": ttl, "secret_id_num_uses": num_uses}

    def handle(self, req):
        parts = req.path.strip("/").split("/")
        with self.lock:
            if parts == ["login"] and req.op == "write":
                return self._login(req)
            if parts[0] != "role" or len(parts) > 3:
                raise unsupported_operation()
            if len(parts) <= 2:
                return self._roles(req, parts[1] if len(parts) == 2 else "")
            role = self.roles.get(parts[1])
            if role is None:
                raise bad_request(f'role "{parts[1]}" does not exist')
            return self._role_item(req, role, parts[2])

    def _role_item(self, req, role, item):
        d = req.data
        if item == "role-id" and req.op == "read":
            return Response(data={"role_id": role["role_id"]})
        if item == "role-id" and req.op == "write":
            if not d.get("role_id"):
                raise bad_request("missing role_id")
            role["role_id"] = str(d["role_id"])
            return NO_CONTENT
        if item in ("secret-id", "custom-secret-id") and req.op == "write":
            if item == "custom-secret-id" and not d.get("secret_id"):
                raise bad_request("missing secret_id")
            num_uses = int(d["num_uses"]) if "num_uses" in d else None
            ttl = durations.parse(d["ttl"]) if "ttl" in d else None
            return Response(data=self.add_secret_id(role, req.clock(), d.get("secret_id"),
                                                    num_uses, ttl))
        if item == "secret-id" and req.op == "list":
            if not role["secret_ids"]:
                raise not_found()
            return Response(data={"keys": sorted(e["accessor"]
                                                 for e in role["secret_ids"].values())})
        raise unsupported_operation()

    def _login(self, req):
        d = req.data
        role_id, secret_id = d.get("role_id"), d.get("secret_id")
        if not role_id:
            raise bad_request("missing role_id")
        role = next((r for r in self.roles.values()
                     if secrets.compare_digest(r["role_id"].encode(), str(role_id).encode())),
                    None)
        if role is None:
            raise bad_request("invalid role or secret ID")
        if role["bind_secret_id"]:
            if not secret_id:
                raise bad_request("missing secret_id")
            entry = self._take_secret_id(role, str(secret_id), req.clock())
            if entry is None:
                raise bad_request("invalid role or secret ID")
        token = _issue_login_token(req, role, "auth/approle/login",
                                   {"role_name": role["name"]}, "approle")
        return _login_answer(req.vault, token, {"role_name": role["name"]})

    @staticmethod
    def _take_secret_id(role, secret_id, now):
        for known, entry in list(role["secret_ids"].items()):
            if not secrets.compare_digest(known.encode(), secret_id.encode()):
                continue
            if entry["expire_at"] is not None and entry["expire_at"] <= now:
                del role["secret_ids"][known]
                return None
            if entry["num_uses"]:
                entry["num_uses"] -= 1
                if entry["num_uses"] == 0:
                    del role["secret_ids"][known]
            return entry
        return None


# ---------------------------------------------------------------------- Kubernetes
def service_account_jwt(service_account, k8s_namespace, signature=None):
    """A JWT-shaped service account token (the signature is random unless given)."""
    def part(doc):
        raw = json.dumps(doc, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    claims = {"iss": "kubernetes/serviceaccount",
              "kubernetes.io/serviceaccount/namespace": k8s_namespace,
              "kubernetes.io/serviceaccount/service-account.name": service_account,
              "sub": f"system:serviceaccount:{k8s_namespace}:{service_account}"}
    signature = signature or base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(
        b"=").decode()
    return f"{part({'alg': 'RS256', 'kid': 'kes-test'})}.{part(claims)}.{signature}"


class ServiceAccounts:
    """Stands in for the Kubernetes TokenReview API: the tokens that are valid."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tokens = {}  # jwt -> (service account, k8s namespace, uid)

    def register(self, jwt, service_account, k8s_namespace):
        with self.lock:
            self.tokens[jwt] = (service_account, k8s_namespace, str(uuid.uuid4()))

    def revoke(self, jwt):
        with self.lock:
            return self.tokens.pop(jwt, None) is not None

    def review(self, jwt):
        with self.lock:
            for known, identity in self.tokens.items():
                if secrets.compare_digest(known.encode(), jwt.encode()):
                    return identity
        return None


class Kubernetes(_RoleBackend):
    type = "kubernetes"
    role_fields = ("bound_service_account_names", "bound_service_account_namespaces")

    def __init__(self, service_accounts):
        super().__init__()
        self.service_accounts = service_accounts
        self.config = {}

    def update_role(self, role, d):
        for name in self.role_fields:
            if name in d:
                role[name] = _policy_list(d[name])
            role.setdefault(name, [])
        if not role["bound_service_account_names"] or \
                not role["bound_service_account_namespaces"]:
            raise bad_request('"bound_service_account_names" and '
                              '"bound_service_account_namespaces" can not be empty')
        return role

    def handle(self, req):
        parts = req.path.strip("/").split("/")
        with self.lock:
            if parts == ["login"] and req.op == "write":
                return self._login(req)
            if parts == ["config"]:
                if req.op == "write":
                    self.config.update(req.data)
                    return NO_CONTENT
                if req.op == "read":
                    return Response(data={k: v for k, v in self.config.items()
                                          if k != "token_reviewer_jwt"})
            if parts[0] == "role" and len(parts) <= 2:
                return self._roles(req, parts[1] if len(parts) == 2 else "")
        raise unsupported_operation()

    def _login(self, req):
        d = req.data
        name, jwt = d.get("role"), d.get("jwt")
        if not name:
            raise bad_request("missing role")
        if not jwt:
            raise bad_request("missing jwt")
        role = self.roles.get(name)
        if role is None:
            raise bad_request(f'invalid role name "{name}"')
        identity = self.service_accounts.review(str(jwt))
        if identity is None:
            raise VaultError(403, ["permission denied"])
        sa_name, sa_namespace, uid = identity
        if not {"*", sa_name} & set(role["bound_service_account_names"]):
            raise VaultError(403, ["service account name not authorized"])
        if not {"*", sa_namespace} & set(role["bound_service_account_namespaces"]):
            raise VaultError(403, ["namespace not authorized"])
        metadata = {"role": name, "service_account_name": sa_name,
                    "service_account_namespace": sa_namespace,
                    "service_account_secret_name": "", "service_account_uid": uid}
        token = _issue_login_token(req, role, "auth/kubernetes/login", metadata,
                                   f"kubernetes-{sa_namespace}-{sa_name}")
        return _login_answer(req.vault, token, metadata)


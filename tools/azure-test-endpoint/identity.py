"""A fake Azure AD authority (openid-configuration, the v2.0 token endpoint
with client secrets and federated client assertions) and IMDS
(keystores-cloud.md §1.3), issuing opaque bearer tokens for a scope."""
import secrets
import threading
import time
from urllib.parse import parse_qsl

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class AuthError(Exception):
    def __init__(self, status, error, description, codes=()):
        super().__init__(description)
        self.status, self.error, self.description, self.codes = status, error, description, codes

    def body(self):
        return {"error": self.error, "error_description": self.description,
                "error_codes": list(self.codes), "timestamp": time.strftime(
                    "%Y-%m-%d %H:%M:%SZ", time.gmtime()),
                "trace_id": secrets.token_hex(16), "correlation_id": secrets.token_hex(16)}


class Identity:
    def __init__(self, tenant, client_id, client_secret, managed_ids, federated_token,
                 token_ttl):
        self.lock = threading.Lock()
        self.apps = {tenant: {client_id: client_secret}}  # tenant -> client -> secret
        self.managed_ids = set(managed_ids)   # user-assigned client ids IMDS serves
        self.federated_token = federated_token  # assertion accepted for any app client id
        self.token_ttl = token_ttl
        self.tokens = {}  # access token -> {"scope", "expires", "subject"}
        self.issued = []  # (how, subject, scope) per token, for the tests

    def issue(self, scope, subject, how):
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = {"scope": scope, "expires": time.time() + self.token_ttl,
                                  "subject": subject}
            self.issued.append({"how": how, "subject": subject, "scope": scope})
        return token

    def check(self, token, scope):
        """True when `token` is live and was issued for `scope`."""
        with self.lock:
            t = self.tokens.get(token)
            return t is not None and t["expires"] > time.time() and t["scope"] == scope

    def revoke_all(self):
        with self.lock:
            n = len(self.tokens)
            self.tokens.clear()
        return n

    # ---- Azure AD ----------------------------------------------------------
    @staticmethod
    def openid_configuration(base, tenant):
        root = f"{base}/{tenant}"
        return {"token_endpoint": f"{root}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                          "private_key_jwt",
                                                          "client_secret_basic"],
                "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token",
                                             "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{root}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{base}/oidc/userinfo",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
                "http_logout_supported": True, "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat"],
                "tenant_region_scope": "EU", "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com", "rbac_url": "https://pas.windows.net"}

    def token_request(self, tenant, body):
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        apps = self.apps.get(tenant)
        if apps is None:
            raise AuthError(400, "invalid_request",
                            f"AADSTS90002: Tenant '{tenant}' not found. Check to make sure you "
                            "have the correct tenant ID and are signing into the correct cloud.",
                            [90002])
        if form.get("grant_type") != "client_credentials":
            raise AuthError(400, "unsupported_grant_type",
                            "AADSTS70003: The app requested an unsupported grant type.", [70003])
        client = form.get("client_id", "")
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            raise AuthError(400, "invalid_scope",
                            f"AADSTS1002012: The provided value for scope {scope} is not valid. "
                            "Client credential flows must have a scope value with /.default "
                            "suffixed to the resource identifier.", [1002012])
        if client not in apps:
            raise AuthError(400, "unauthorized_client",
                            f"AADSTS700016: Application with identifier '{client}' was not found "
                            f"in the directory '{tenant}'.", [700016])
        if "client_assertion" in form:
            ok = (form.get("client_assertion_type") == ASSERTION_TYPE
                  and self.federated_token is not None
                  and secrets.compare_digest(form["client_assertion"], self.federated_token))
            how = "workload"
        else:
            ok = secrets.compare_digest(form.get("client_secret", ""), apps[client])
            how = "client_secret"
        if not ok:
            raise AuthError(401, "invalid_client",
                            "AADSTS7000215: Invalid client secret provided. Ensure the secret "
                            f"being sent in the request is the client secret value, not the "
                            f"client secret ID, for a secret added to app '{client}'.",
                            [7000215])
        token = self.issue(scope, client, how)
        return {"token_type": "Bearer", "expires_in": self.token_ttl,
                "ext_expires_in": self.token_ttl, "access_token": token}

    # ---- IMDS --------------------------------------------------------------
    def imds_token(self, query, headers):
        if headers.get("metadata", "").lower() != "true":
            raise AuthError(400, "invalid_request", "Required metadata header not specified")
        if not query.get("api-version"):
            raise AuthError(400, "invalid_request", "Required query variable 'api-version' "
                            "is missing")
        resource = query.get("resource", "")
        if not resource:
            raise AuthError(400, "invalid_request", "Required query variable 'resource' is "
                            "missing")
        client = query.get("client_id", "")
        if client not in self.managed_ids:
            raise AuthError(400, "invalid_request", "Identity not found")
        scope = resource.rstrip("/") + "/.default"
        token = self.issue(scope, client or "system-assigned", "imds")
        now = int(time.time())
        ttl = int(self.token_ttl)
        return {"access_token": token, "client_id": client or "system-assigned",
                "expires_in": str(ttl), "expires_on": str(now + ttl),
                "ext_expires_in": str(ttl), "not_before": str(now), "resource": resource,
                "token_type": "Bearer"}

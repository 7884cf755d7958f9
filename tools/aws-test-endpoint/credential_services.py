"""The services that hand out temporary credentials: STS
AssumeRoleWithWebIdentity (query protocol, XML), EC2 IMDSv2 and the ECS /
EKS Pod Identity container endpoint (aws-protocol.md 8.4-8.6). Every key
they mint is accepted by the Secrets Manager / KMS side until it expires.
"""
import json
import re
import secrets
import threading
from urllib.parse import parse_qsl

from credentials_store import iso8601
from errors import query_error_xml, xml_escape
from reply import Reply

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
SESSION_RE = re.compile(r"^[\w+=,.@-]{2,64}$")
TOKEN_TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "x-aws-ec2-metadata-token"


class CredentialServices:
    def __init__(self, state):
        self.state = state
        self._lock = threading.Lock()
        self._imds_tokens = {}      # token -> expiry (epoch)
        self._imds_cred = None      # current instance-profile credentials
        self._ecs_cred = None

    # ---- shared ----------------------------------------------------------
    def _expiration(self, requested=None):
        ttl = self.state.settings["temp_credentials_ttl"]
        if requested is not None and ttl is None:
            ttl = requested
        return self.state.clock() + (ttl if ttl is not None else 3600)

    def _current(self, attr, principal):
        """Credentials shared by all callers until they near expiry, as IMDS
        and the ECS agent do; a new set is minted for the last fifth."""
        with self._lock:
            cred = getattr(self, attr)
            now = self.state.clock()
            if cred is not None:
                remaining = cred.expiration - now
                lifetime = cred.expiration - cred.minted_at
                if remaining > lifetime / 5 and remaining > 0:
                    return cred
            cred = self.state.credentials.mint(self._expiration(), principal)
            cred.minted_at = now
            setattr(self, attr, cred)
            return cred

    # ---- STS -------------------------------------------------------------
    @staticmethod
    def is_sts_request(method, headers, body):
        ctype = headers.get("content-type", "")
        return method == "POST" and (ctype.startswith("application/x-www-form-urlencoded")
                                     or body.startswith(b"Action="))

    def sts(self, body, request_id):
        def error(code, message, status=400):
            return Reply(status, query_error_xml(code, message, request_id), "text/xml")
        try:
            params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                    strict_parsing=False))
        except UnicodeDecodeError:
            return error("MalformedQueryString", "The request body is not UTF-8")
        action = params.get("Action")
        if action != "AssumeRoleWithWebIdentity":
            return error("InvalidAction",
                         f"Could not find operation {action} for version "
                         f"{params.get('Version', 'NO_VERSION_SPECIFIED')}")
        if params.get("Version") != "2011-06-15":
            return error("InvalidAction", f"Could not find operation {action} for version "
                         f"{params.get('Version', 'NO_VERSION_SPECIFIED')}")
        for member, api in (("RoleArn", "roleArn"), ("RoleSessionName", "roleSessionName"),
                            ("WebIdentityToken", "webIdentityToken")):
            if not params.get(member):
                return error("ValidationError",
                             f"1 validation error detected: Value null at '{api}' failed to "
                             "satisfy constraint: Member must not be null")
        role_arn, session = params["RoleArn"], params["RoleSessionName"]
        token = params["WebIdentityToken"]
        if not ROLE_ARN_RE.match(role_arn):
            return error("ValidationError", f"{role_arn} is invalid")
        if not SESSION_RE.match(session):
            return error("ValidationError",
                         f"1 validation error detected: Value '{session}' at "
                         "'roleSessionName' failed to satisfy constraint: Member must "
                         "satisfy regular expression pattern: [\\w+=,.@-]*")
        duration = 3600
        if params.get("DurationSeconds"):
            try:
                duration = int(params["DurationSeconds"])
            except ValueError:
                duration = -1
            if not 900 <= duration <= 43200:
                return error("ValidationError",
                             f"1 validation error detected: Value '{params['DurationSeconds']}'"
                             " at 'durationSeconds' failed to satisfy constraint: Member must "
                             "have value between 900 and 43200")
        accepted = self.state.settings["web_identity_tokens"]
        self.state.last_web_identity_token = token
        if accepted is not None and token not in accepted:
            return error("InvalidIdentityToken",
                         "Couldn't retrieve verification key from your identity provider,  "
                         "please reference AssumeRoleWithWebIdentity documentation for "
                         "requirements")
        account = role_arn.split(":")[4]
        role_name = role_arn.rsplit("/", 1)[-1]
        principal = f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}"
        cred = self.state.credentials.mint(self._expiration(duration), principal)
        role_id = "AROA" + secrets.token_hex(8).upper()
        doc = (
            f'<AssumeRoleWithWebIdentityResponse xmlns="{STS_NS}">\n'
            "  <AssumeRoleWithWebIdentityResult>\n"
            "    <SubjectFromWebIdentityToken>system:serviceaccount:default:kes"
            "</SubjectFromWebIdentityToken>\n"
            "    <Audience>sts.amazonaws.com</Audience>\n"
            "    <AssumedRoleUser>\n"
            f"      <Arn>{xml_escape(principal)}</Arn>\n"
            f"      <AssumedRoleId>{role_id}:{xml_escape(session)}</AssumedRoleId>\n"
            "    </AssumedRoleUser>\n"
            "    <Credentials>\n"
            f"      <AccessKeyId>{cred.access_key_id}</AccessKeyId>\n"
            f"      <SecretAccessKey>{xml_escape(cred.secret_access_key)}</SecretAccessKey>\n"
            f"      <SessionToken>{xml_escape(cred.session_token)}</SessionToken>\n"
            f"      <Expiration>{iso8601(cred.expiration)}</Expiration>\n"
            "    </Credentials>\n"
            "    <Provider>oidc.eks.us-east-1.amazonaws.com/id/TESTENDPOINT</Provider>\n"
            "  </AssumeRoleWithWebIdentityResult>\n"
            "  <ResponseMetadata>\n"
            f"    <RequestId>{request_id}</RequestId>\n"
            "  </ResponseMetadata>\n"
            "</AssumeRoleWithWebIdentityResponse>\n")
        return Reply(200, doc, "text/xml")

    # ---- EC2 instance metadata -------------------------------------------
    @staticmethod
    def is_imds_path(path):
        return path.startswith("/latest/")

    def imds(self, method, path, headers):
        text = "text/plain"
        if path == "/latest/api/token":
            if method != "PUT":
                return Reply(405, "", text)
            if "x-forwarded-for" in headers:
                return Reply(403, "", text)
            ttl = headers.get(TOKEN_TTL_HEADER)
            try:
                ttl = int(ttl)
            except (TypeError, ValueError):
                return Reply(400, "", text)
            if not 1 <= ttl <= 21600:
                return Reply(400, "", text)
            token = secrets.token_urlsafe(42)
            with self._lock:
                self._imds_tokens[token] = self.state.clock() + ttl
            return Reply(200, token, text, [(TOKEN_TTL_HEADER, str(ttl))])
        if method != "GET":
            return Reply(405, "", text)
        token = headers.get(TOKEN_HEADER)
        if token is not None:
            with self._lock:
                expiry = self._imds_tokens.get(token)
            if expiry is None or expiry <= self.state.clock():
                return Reply(401, "", text)
        elif not self.state.settings["imds_v1_allowed"]:
            return Reply(401, "", text)
        role = self.state.settings["imds_role"]
        base = "/latest/meta-data/iam/security-credentials/"
        if path == "/latest/meta-data/placement/region":
            return Reply(200, self.state.region, text)
        if path == base:
            return Reply(200, role, text)
        if path == base + role:
            cred = self._current(
                "_imds_cred", f"arn:aws:sts::{self.state.account}:assumed-role/{role}/i-0test")
            doc = {"Code": "Success", "LastUpdated": iso8601(cred.minted_at),
                   "Type": "AWS-HMAC", "AccessKeyId": cred.access_key_id,
                   "SecretAccessKey": cred.secret_access_key, "Token": cred.session_token,
                   "Expiration": iso8601(cred.expiration)}
            return Reply(200, json.dumps(doc, indent=2), text)
        return Reply(404, "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<html><head>"
                     "<title>404 - Not Found</title></head><body><h1>404 - Not Found</h1>"
                     "</body></html>\n", "text/html")

    # ---- ECS / EKS Pod Identity container credentials ---------------------
    def is_ecs_path(self, path):
        return path.startswith(self.state.settings["ecs_path_prefix"])

    def ecs(self, method, headers):
        if method != "GET":
            return Reply(405, json.dumps({"code": "InvalidRequest",
                                          "message": "only GET is supported"}),
                         "application/json")
        required = self.state.settings["ecs_auth_token"]
        if required is not None and headers.get("authorization") != required:
            return Reply(401 if "authorization" not in headers else 403,
                         json.dumps({"code": "AccessDenied",
                                     "message": "invalid or missing authorization token"}),
                         "application/json")
        role = self.state.settings["imds_role"]
        cred = self._current(
            "_ecs_cred", f"arn:aws:sts::{self.state.account}:assumed-role/{role}/ecs-task")
        doc = {"AccessKeyId": cred.access_key_id, "SecretAccessKey": cred.secret_access_key,
               "Token": cred.session_token, "Expiration": iso8601(cred.expiration),
               "RoleArn": f"arn:aws:iam::{self.state.account}:role/{role}",
               "AccountId": self.state.account}
        return Reply(200, json.dumps(doc), "application/json")

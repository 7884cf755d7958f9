"""Secrets Manager emulation (aws-protocol.md section 3): names, ARNs, versions,
the three-state deletion model, ListSecrets filters and pagination, and
envelope encryption of every stored value under the secret's KMS key.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import secrets as pyrandom
import string
import threading

import envelope
import kms_service
from errors import AwsError, framework, sm as sm_error, validation

NAME_RE = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
INVALID_NAME = ("Invalid name. Must be a valid name containing alphanumeric characters, "
                "or any of the following: -/_+=.@!")
NOT_FOUND = "Secrets Manager can't find the specified secret."
MARKED = ("You can't perform this operation on the secret because it was marked for "
          "deletion.")
SCHEDULED_CREATE = ("You can't create this secret because a secret with this name is "
                    "already scheduled for deletion.")
NO_TOKEN = "You must provide a ClientRequestToken value. We recommend a UUID-type value."
ENCRYPTION_FAILURE = ("Secrets Manager can't encrypt the protected secret text using the "
                      "provided KMS key. Check that the KMS key is available, enabled, "
                      "and not in an invalid state.")
DECRYPTION_FAILURE = ("Secrets Manager can't decrypt the protected secret text using the "
                      "provided KMS key.")
KMS_DENIED = "Access to KMS is not allowed"
FILTER_KEYS = ("description", "name", "tag-key", "tag-value", "primary-region",
               "owning-service", "all")
FILTER_VALUE_RE = re.compile(r"^!?[a-zA-Z0-9 :_@/+=.\-!]*$")
VALUE_LIMIT = 65536


def _suffix():
    alphabet = string.ascii_letters + string.digits
    return "".join(pyrandom.choice(alphabet) for _ in range(6))


def _day(ts):
    return float(int(ts // 86400) * 86400)


class Version:
    def __init__(self, version_id, created, kind, sealed, data_key_blob, digest):
        self.version_id = version_id
        self.created = created
        self.kind = kind                  # "string" or "binary"
        self.sealed = sealed              # value sealed under the data key
        self.data_key_blob = data_key_blob  # data key encrypted by KMS
        self.digest = digest              # for idempotent replays
        self.stages = []


class Secret:
    def __init__(self, name, arn, created):
        self.name = name
        self.arn = arn
        self.created = created
        self.last_changed = created
        self.last_accessed = None
        self.description = None
        self.kms_key_id = None            # as given; None = aws/secretsmanager
        self.tags = []
        self.versions = {}                # version id -> Version, in creation order
        self.deleted_date = None          # set while scheduled for deletion

    def version_by_stage(self, stage):
        for v in self.versions.values():
            if stage in v.stages:
                return v
        return None

    def stages_map(self):
        return {vid: list(v.stages) for vid, v in self.versions.items() if v.stages}


class SecretsManager:
    def __init__(self, region, account, clock, kms, is_denied):
        self.region = region
        self.account = account
        self.clock = clock
        self.kms = kms
        self.is_denied = is_denied        # (caller, action) -> bool
        self.lock = threading.RLock()
        self.secrets = []                 # every known secret, creation order
        self.token_key = os.urandom(32)   # authenticates NextToken values
        self.force_delete_lag = 0.0       # seconds a forced delete stays "scheduled"
        self.empty_pages = 0              # next N ListSecrets pages come back empty

    # ---- lookup ----------------------------------------------------------
    def _purge_expired(self):
        now = self.clock()
        self.secrets = [s for s in self.secrets
                        if s.deleted_date is None or s.deleted_date > now]

    def _find(self, secret_id, include_scheduled=True):
        if not isinstance(secret_id, str) or not 1 <= len(secret_id) <= 2048:
            raise validation(None, "secretId",
                             "Member must have length between 1 and 2048")
        if not secret_id.startswith("arn:") and not NAME_RE.match(secret_id):
            raise framework("ValidationException", INVALID_NAME)
        self._purge_expired()
        for s in self.secrets:
            if secret_id in (s.name, s.arn) or (secret_id.startswith("arn:")
                                                 and secret_id == s.arn[:-7]):
                if s.deleted_date is not None and not include_scheduled:
                    raise sm_error("InvalidRequestException", MARKED)
                return s
        raise sm_error("ResourceNotFoundException", NOT_FOUND)

    # ---- KMS envelope ------------------------------------------------------
    def _kms_key(self, secret, caller):
        ref = secret.kms_key_id or kms_service.MANAGED_SM_ALIAS
        try:
            return self.kms.resolve(ref)
        except AwsError:
            raise sm_error("EncryptionFailure", ENCRYPTION_FAILURE)

    def _context(self, secret, version_id):
        return {"SecretARN": secret.arn, "SecretVersionId": version_id}

    def _seal_value(self, secret, version_id, kind, value, caller):
        if secret.kms_key_id is not None and self.is_denied(caller, "kms:GenerateDataKey"):
            raise sm_error("AccessDeniedException", KMS_DENIED)
        key = self._kms_key(secret, caller)
        data_key = os.urandom(32)
        try:
            blob = self.kms.encrypt_with(key, data_key, self._context(secret, version_id))
        except AwsError:
            raise sm_error("EncryptionFailure", ENCRYPTION_FAILURE)
        sealed = envelope.seal(data_key, value, version_id.encode())
        digest = hashlib.sha256(kind.encode() + b"\0" + value).hexdigest()
        return Version(version_id, self.clock(), kind, sealed, blob, digest)

    def _open_value(self, secret, version, caller):
        if secret.kms_key_id is not None and self.is_denied(caller, "kms:Decrypt"):
            raise sm_error("AccessDeniedException", KMS_DENIED)
        try:
            _, data_key = self.kms.decrypt_blob(
                version.data_key_blob, self._context(secret, version.version_id))
            return envelope.open_sealed(data_key, version.sealed,
                                                    version.version_id.encode())
        except (AwsError, envelope.OpenError):
            raise sm_error("DecryptionFailure", DECRYPTION_FAILURE)

    # ---- request member checks ---------------------------------------------
    @staticmethod
    def _string(body, member, api, lo, hi, required=False):
        value = body.get(member)
        if value is None:
            if required:
                raise validation(None, api, "Member must not be null")
            return None
        if not isinstance(value, str):
            raise framework("SerializationException",
                            f"Unexpected value type for '{member}', expected a string")
        size = len(value.encode("utf-8")) if member == "SecretString" else len(value)
        if size < lo:
            raise validation(None, api, f"Member must have length greater than or equal to {lo}")
        if size > hi:
            raise validation(None, api, f"Member must have length less than or equal to {hi}")
        return value

    def _value(self, body):
        s = self._string(body, "SecretString", "secretString", 1, VALUE_LIMIT)
        b = body.get("SecretBinary")
        if s is not None and b is not None:
            raise sm_error("InvalidParameterException",
                           "You can't specify both a binary secret value and a string "
                           "secret value in the same secret.")
        if b is not None:
            raw = kms_service.b64decode_member(b, "SecretBinary")
            if not 1 <= len(raw) <= VALUE_LIMIT:
                raise validation(None, "secretBinary",
                                 f"Member must have length between 1 and {VALUE_LIMIT}")
            return "binary", raw
        if s is not None:
            return "string", s.encode("utf-8")
        return None, None

    def _token(self, body, required):
        token = body.get("ClientRequestToken")
        if token is None:
            if required:
                raise sm_error("InvalidRequestException", NO_TOKEN)
            return None
        return self._string(body, "ClientRequestToken", "clientRequestToken", 32, 64)

    @staticmethod
    def _tags(body):
        tags = body.get("Tags")
        if tags is None:
            return []
        if not isinstance(tags, list) or not all(isinstance(t, dict) for t in tags):
            raise framework("SerializationException", "Tags must be a list of structures")
        for t in tags:
            k, v = t.get("Key"), t.get("Value", "")
            if not isinstance(k, str) or not 1 <= len(k) <= 128:
                raise validation(None, "tags.member.key",
                                 "Member must have length between 1 and 128")
            if not isinstance(v, str) or len(v) > 256:
                raise validation(None, "tags.member.value",
                                 "Member must have length less than or equal to 256")
        return [{"Key": t["Key"], "Value": t.get("Value", "")} for t in tags]

    # ---- operations ------------------------------------------------------
    def handle(self, operation, body, caller):
        handler = getattr(self, "op_" + operation, None)
        if handler is None:
            raise framework("UnknownOperationException")
        with self.lock:
            return handler(body, caller)

    def op_CreateSecret(self, body, caller):
        name = self._string(body, "Name", "name", 1, 512, required=True)
        if not NAME_RE.match(name):
            raise framework("ValidationException", INVALID_NAME)
        token = self._token(body, required=True)
        description = self._string(body, "Description", "description", 0, 2048)
        kms_key_id = self._string(body, "KmsKeyId", "kmsKeyId", 0, 2048) or None
        tags = self._tags(body)
        kind, value = self._value(body)
        self._purge_expired()
        for s in self.secrets:
            if s.name != name:
                continue
            if s.deleted_date is not None:
                raise sm_error("InvalidRequestException", SCHEDULED_CREATE)
            existing = s.versions.get(token)
            if existing is not None and value is not None and existing.digest == \
                    hashlib.sha256(kind.encode() + b"\0" + value).hexdigest():
                return {"ARN": s.arn, "Name": s.name, "VersionId": token}
            raise sm_error("ResourceExistsException",
                           f"The operation failed because the secret {name} already exists.")
        secret = Secret(name, f"arn:aws:secretsmanager:{self.region}:{self.account}:secret:"
                              f"{name}-{_suffix()}", self.clock())
        secret.description = description
        secret.kms_key_id = kms_key_id
        secret.tags = tags
        out = {"ARN": secret.arn, "Name": name}
        if value is not None:
            version = self._seal_value(secret, token, kind, value, caller)
            version.stages = ["AWSCURRENT"]
            secret.versions[token] = version
            out["VersionId"] = token
        elif kms_key_id is not None:
            self._kms_key(secret, caller)  # an unusable key fails the create
        self.secrets.append(secret)
        return out

    def op_PutSecretValue(self, body, caller):
        secret = self._find(body.get("SecretId"), include_scheduled=False)
        token = self._token(body, required=True)
        kind, value = self._value(body)
        if value is None:
            raise sm_error("InvalidRequestException",
                           "You must provide either SecretString or SecretBinary.")
        stages = body.get("VersionStages") or ["AWSCURRENT"]
        existing = secret.versions.get(token)
        if existing is not None:
            if existing.digest != hashlib.sha256(kind.encode() + b"\0" + value).hexdigest():
                raise sm_error("ResourceExistsException",
                               "You can't modify an existing version, you can only create a "
                               "new version.")
            return {"ARN": secret.arn, "Name": secret.name, "VersionId": token,
                    "VersionStages": list(existing.stages)}
        version = self._seal_value(secret, token, kind, value, caller)
        for stage in stages:
            holder = secret.version_by_stage(stage)
            if holder is not None:
                holder.stages.remove(stage)
                if stage == "AWSCURRENT":
                    prev = secret.version_by_stage("AWSPREVIOUS")
                    if prev is not None:
                        prev.stages.remove("AWSPREVIOUS")
                    holder.stages.append("AWSPREVIOUS")
        version.stages = list(stages)
        secret.versions[token] = version
        secret.last_changed = self.clock()
        return {"ARN": secret.arn, "Name": secret.name, "VersionId": token,
                "VersionStages": list(stages)}

    def op_GetSecretValue(self, body, caller):
        secret = self._find(body.get("SecretId"), include_scheduled=False)
        vid = self._string(body, "VersionId", "versionId", 32, 64)
        stage = self._string(body, "VersionStage", "versionStage", 1, 256)
        if vid is not None:
            version = secret.versions.get(vid)
            if version is None:
                raise sm_error("ResourceNotFoundException",
                               f"Secrets Manager can't find the specified secret value for "
                               f"VersionId: {vid}")
            if stage is not None and stage not in version.stages:
                raise sm_error("InvalidRequestException",
                               "You provided a VersionStage that is not associated to the "
                               "provided VersionId.")
        else:
            stage = stage or "AWSCURRENT"
            version = secret.version_by_stage(stage)
            if version is None:
                raise sm_error("ResourceNotFoundException",
                               f"Secrets Manager can't find the specified secret value for "
                               f"staging label: {stage}")
        value = self._open_value(secret, version, caller)
        secret.last_accessed = _day(self.clock())
        out = {"ARN": secret.arn, "Name": secret.name, "VersionId": version.version_id,
               "VersionStages": list(version.stages), "CreatedDate": round(version.created, 3)}
        if version.kind == "binary":
            out["SecretBinary"] = base64.b64encode(value).decode("ascii")
        else:
            out["SecretString"] = value.decode("utf-8")
        return out

    def _describe(self, secret, versions_member):
        out = {"ARN": secret.arn, "Name": secret.name}
        if secret.description is not None:
            out["Description"] = secret.description
        if secret.kms_key_id is not None:
            out["KmsKeyId"] = secret.kms_key_id
        out["LastChangedDate"] = round(secret.last_changed, 3)
        if secret.last_accessed is not None:
            out["LastAccessedDate"] = secret.last_accessed
        if secret.deleted_date is not None:
            out["DeletedDate"] = round(secret.deleted_date, 3)
        if secret.tags:
            out["Tags"] = [dict(t) for t in secret.tags]
        stages = secret.stages_map()
        if stages:
            out[versions_member] = stages
        out["CreatedDate"] = round(secret.created, 3)
        return out

    def op_DescribeSecret(self, body, caller):
        return self._describe(self._find(body.get("SecretId")), "VersionIdsToStages")

    def op_DeleteSecret(self, body, caller):
        secret_id = body.get("SecretId")
        window = body.get("RecoveryWindowInDays")
        force = body.get("ForceDeleteWithoutRecovery")
        if force is not None and not isinstance(force, bool):
            raise framework("SerializationException",
                            "ForceDeleteWithoutRecovery must be a boolean")
        if force and window is not None:
            raise sm_error("InvalidParameterException",
                           "You can't use ForceDeleteWithoutRecovery in conjunction with "
                           "RecoveryWindowInDays.")
        if window is not None and (not isinstance(window, int) or isinstance(window, bool)
                                   or not 7 <= window <= 30):
            raise sm_error("InvalidParameterException",
                           "The RecoveryWindowInDays value must be between 7 and 30 days "
                           "(inclusive).")
        now = self.clock()
        try:
            secret = self._find(secret_id)
        except AwsError as e:
            if not force or e.code != "ResourceNotFoundException":
                raise
            # A forced delete of an unknown secret succeeds (it proves nothing).
            name = secret_id.split(":secret:", 1)[-1] if secret_id.startswith("arn:") \
                else secret_id
            return {"ARN": f"arn:aws:secretsmanager:{self.region}:{self.account}:secret:"
                           f"{name}-{_suffix()}", "Name": name, "DeletionDate": round(now, 3)}
        if force:
            if self.force_delete_lag > 0:
                secret.deleted_date = now + self.force_delete_lag
            else:
                self.secrets.remove(secret)
            return {"ARN": secret.arn, "Name": secret.name, "DeletionDate": round(now, 3)}
        if secret.deleted_date is not None:
            raise sm_error("InvalidRequestException", MARKED)
        secret.deleted_date = now + (window or 30) * 86400
        return {"ARN": secret.arn, "Name": secret.name,
                "DeletionDate": round(secret.deleted_date, 3)}

    def op_RestoreSecret(self, body, caller):
        secret = self._find(body.get("SecretId"))
        secret.deleted_date = None
        return {"ARN": secret.arn, "Name": secret.name}

    # ---- ListSecrets -----------------------------------------------------
    def _parse_filters(self, body):
        filters = body.get("Filters") or []
        if not isinstance(filters, list) or len(filters) > 10:
            raise validation(None, "filters", "Member must have length less than or equal to 10")
        parsed = []
        for f in filters:
            if not isinstance(f, dict):
                raise framework("SerializationException", "Filters must be structures")
            key, values = f.get("Key"), f.get("Values")
            if key not in FILTER_KEYS:
                raise validation(key, "filters.member.key",
                                 "Member must satisfy enum value set: [" +
                                 ", ".join(FILTER_KEYS) + "]")
            if (not isinstance(values, list) or not 1 <= len(values) <= 10
                    or not all(isinstance(v, str) and len(v) <= 512 and
                               FILTER_VALUE_RE.match(v) for v in values)):
                raise validation(None, "filters.member.values",
                                 "Member must have length between 1 and 10, each value "
                                 "matching ^\\!?[a-zA-Z0-9 :_@\\/\\+\\=\\.\\-\\!]*$")
            parsed.append((key, values))
        return parsed

    @staticmethod
    def _value_matches(secret, key, value):
        def words_match(text):
            words = text.lower().split()
            return all(any(w.startswith(q) for w in words) for q in value.lower().split())
        if key == "name":
            return secret.name.startswith(value)
        if key == "description":
            return words_match(secret.description or "")
        if key == "tag-key":
            return any(t["Key"].startswith(value) for t in secret.tags)
        if key == "tag-value":
            return any(t["Value"].startswith(value) for t in secret.tags)
        if key == "primary-region":
            return False
        if key == "owning-service":
            return False
        return (secret.name.lower().startswith(value.lower()) or words_match(
            " ".join([secret.description or ""] + [t["Key"] + " " + t["Value"]
                                                   for t in secret.tags])))

    def _matches(self, secret, filters):
        for key, values in filters:
            hit = False
            for v in values:
                negate = v.startswith("!")
                m = self._value_matches(secret, key, v[1:] if negate else v)
                if m != negate:
                    hit = True
                    break
            if not hit:
                return False
        return True

    def _sign_token(self, offset, query_hash):
        # The nonce keeps tokens distinct even when a page repeats a position
        # (SDK paginators stop on a token they have already seen).
        payload = json.dumps({"o": offset, "q": query_hash,
                              "n": pyrandom.token_hex(4)}).encode()
        mac = hmac.new(self.token_key, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(payload + mac).decode("ascii")

    def _read_token(self, token, query_hash):
        bad = sm_error("InvalidNextTokenException", "The NextToken value is invalid.")
        if not isinstance(token, str) or not 1 <= len(token) <= 4096:
            raise bad
        try:
            raw = base64.urlsafe_b64decode(token.encode("ascii"))
            payload, mac = raw[:-16], raw[-16:]
            if not hmac.compare_digest(mac, hmac.new(self.token_key, payload,
                                                     hashlib.sha256).digest()[:16]):
                raise bad
            doc = json.loads(payload)
        except AwsError:
            raise
        except Exception:
            raise bad
        if doc.get("q") != query_hash or not isinstance(doc.get("o"), int):
            raise bad
        return doc["o"]

    def op_ListSecrets(self, body, caller):
        max_results = body.get("MaxResults")
        if max_results is not None:
            if not isinstance(max_results, int) or isinstance(max_results, bool):
                raise framework("SerializationException", "MaxResults must be an integer")
            if max_results < 1:
                raise validation(max_results, "maxResults",
                                 "Member must have value greater than or equal to 1")
            if max_results > 100:
                raise validation(max_results, "maxResults",
                                 "Member must have value less than or equal to 100")
        page_size = max_results or 100
        filters = self._parse_filters(body)
        include = bool(body.get("IncludePlannedDeletion"))
        sort_by = body.get("SortBy", "created-date")
        sort_order = body.get("SortOrder", "asc")
        if sort_by not in ("created-date", "last-accessed-date", "last-changed-date", "name"):
            raise validation(sort_by, "sortBy", "Member must satisfy enum value set")
        if sort_order not in ("asc", "desc"):
            raise validation(sort_order, "sortOrder",
                             "Member must satisfy enum value set: [asc, desc]")
        query_hash = hashlib.sha256(json.dumps(
            [filters, include, sort_by, sort_order]).encode()).hexdigest()[:16]
        offset = 0
        if body.get("NextToken") is not None:
            offset = self._read_token(body["NextToken"], query_hash)
        self._purge_expired()
        matched = [s for s in self.secrets
                   if (include or s.deleted_date is None) and self._matches(s, filters)]
        sort_key = {"created-date": lambda s: s.created,
                    "last-accessed-date": lambda s: s.last_accessed or 0.0,
                    "last-changed-date": lambda s: s.last_changed,
                    "name": lambda s: s.name}[sort_by]
        matched.sort(key=sort_key, reverse=(sort_order == "desc"))
        out = {}
        if self.empty_pages > 0:
            # Test switch: an empty page that still carries a NextToken.
            self.empty_pages -= 1
            out["SecretList"] = []
            out["NextToken"] = self._sign_token(offset, query_hash)
            return out
        page = matched[offset:offset + page_size]
        out["SecretList"] = [self._describe(s, "SecretVersionsToStages") for s in page]
        if offset + page_size < len(matched):
            out["NextToken"] = self._sign_token(offset + page_size, query_hash)
        return out

"""KMS (TrentService) emulation: symmetric keys, aliases, key states and real
authenticated encryption (aws-protocol.md section 4).

Ciphertext blob: 0x01 | len(key id) | key id | sealed(nonce, ct, tag). The
associated data binds the key id and the encryption context, encoded
unambiguously: pairs sorted by key, every string length-prefixed; an absent
and an empty context encode the same.
"""
import base64
import binascii
import os
import re
import threading
import uuid

import envelope
from errors import kms as kms_error, validation, framework

BLOB_VERSION = 1
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ALIAS_NAME = re.compile(r"^alias/[a-zA-Z0-9:/_-]{1,250}$")
STATES = ("Enabled", "Disabled", "PendingDeletion", "PendingImport")
MANAGED_SM_ALIAS = "alias/aws/secretsmanager"


class Key:
    def __init__(self, region, account, created, description="", manager="CUSTOMER",
                 state="Enabled", key_id=None):
        self.key_id = key_id or str(uuid.uuid4())
        self.arn = f"arn:aws:kms:{region}:{account}:key/{self.key_id}"
        self.account = account
        self.created = created
        self.description = description
        self.manager = manager
        self.state = state
        self.deletion_date = None
        self.pending_window = None
        self.material = os.urandom(32)

    def metadata(self):
        md = {
            "AWSAccountId": self.account, "KeyId": self.key_id, "Arn": self.arn,
            "CreationDate": round(self.created, 3), "Enabled": self.state == "Enabled",
            "Description": self.description, "KeyUsage": "ENCRYPT_DECRYPT",
            "KeyState": self.state, "Origin": "AWS_KMS", "KeyManager": self.manager,
            "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT", "KeySpec": "SYMMETRIC_DEFAULT",
            "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"], "MultiRegion": False,
        }
        if self.deletion_date is not None:
            md["DeletionDate"] = round(self.deletion_date, 3)
            md["PendingDeletionWindowInDays"] = self.pending_window
        return md


def encode_context(context):
    out = bytearray(len(context).to_bytes(4, "big"))
    for k in sorted(context):
        for s in (k, context[k]):
            b = s.encode("utf-8")
            out += len(b).to_bytes(4, "big") + b
    return bytes(out)


def b64decode_member(value, member):
    if not isinstance(value, str):
        raise framework("SerializationException",
                        f"Value for '{member}' must be a base64-encoded string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise framework("SerializationException",
                        f"Value for '{member}' is not valid base64")


def b64(data):
    return base64.b64encode(data).decode("ascii")


class Kms:
    def __init__(self, region, account, clock):
        self.region = region
        self.account = account
        self.clock = clock
        self.lock = threading.RLock()
        self.keys = {}      # key id -> Key
        self.aliases = {}   # alias name -> key id

    # ---- key management -------------------------------------------------
    def create_key(self, description="", state="Enabled", alias=None, manager="CUSTOMER"):
        with self.lock:
            key = Key(self.region, self.account, self.clock(), description, manager, state)
            self.keys[key.key_id] = key
            if alias:
                self.aliases[alias] = key.key_id
            return key

    def seed_defaults(self):
        self.create_key("test key", "Enabled", "alias/test-key")
        self.create_key("disabled test key", "Disabled", "alias/disabled-key")
        pending = self.create_key("key pending deletion", "PendingDeletion",
                                  "alias/pending-deletion-key")
        pending.deletion_date = self.clock() + 30 * 86400
        pending.pending_window = 30

    def _not_found_key(self, text):
        return kms_error("NotFoundException", f"Key '{text}' does not exist")

    def resolve(self, key_id, allow_alias=True):
        """Key for any of the four KeyId forms; NotFoundException otherwise."""
        with self.lock:
            if not isinstance(key_id, str) or not 1 <= len(key_id) <= 2048:
                raise validation(key_id, "keyId",
                                 "Member must have length between 1 and 2048")
            arn_prefix = f"arn:aws:kms:{self.region}:{self.account}:"
            if key_id.startswith("arn:"):
                parts = key_id.split(":", 5)
                if len(parts) != 6 or parts[2] != "kms":
                    raise kms_error("InvalidArnException", f"Invalid arn {key_id}")
                if parts[3] != self.region:
                    raise kms_error("NotFoundException", f"Invalid arn {parts[3]}")
                if not key_id.startswith(arn_prefix):
                    raise self._not_found_key(key_id)
                rest = key_id[len(arn_prefix):]
                if rest.startswith("alias/") and allow_alias:
                    return self._by_alias(rest)
                if rest.startswith("key/") and rest[4:] in self.keys:
                    return self.keys[rest[4:]]
                raise self._not_found_key(key_id)
            if key_id.startswith("alias/"):
                if not allow_alias:
                    raise kms_error("NotFoundException", f"Invalid keyId '{key_id}'")
                return self._by_alias(key_id)
            if _UUID.match(key_id):
                if key_id in self.keys:
                    return self.keys[key_id]
                raise self._not_found_key(f"{arn_prefix}key/{key_id}")
            raise kms_error("NotFoundException", f"Invalid keyId '{key_id}'")

    def _by_alias(self, alias):
        if alias not in self.aliases and alias == MANAGED_SM_ALIAS:
            # AWS creates its managed key the first time the alias is used.
            self.create_key("Default key that protects my Secrets Manager data when no "
                            "other key is defined", "Enabled", alias, "AWS")
        if alias in self.aliases:
            return self.keys[self.aliases[alias]]
        raise kms_error("NotFoundException",
                        f"Alias arn:aws:kms:{self.region}:{self.account}:{alias} is not found.")

    def require_usable(self, key):
        if key.state == "Disabled":
            raise kms_error("DisabledException", f"{key.arn} is disabled.")
        if key.state == "PendingDeletion":
            raise kms_error("KMSInvalidStateException", f"{key.arn} is pending deletion.")
        if key.state == "PendingImport":
            raise kms_error("KMSInvalidStateException", f"{key.arn} is pending import.")

    # ---- cryptography ----------------------------------------------------
    def _aad(self, key_id, context):
        return b"kes-test-kms-v1\0" + key_id.encode("ascii") + b"\0" + encode_context(context)

    def encrypt_with(self, key, plaintext, context):
        self.require_usable(key)
        kid = key.key_id.encode("ascii")
        sealed = envelope.seal(key.material, plaintext, self._aad(key.key_id, context))
        return bytes([BLOB_VERSION, len(kid)]) + kid + sealed

    def decrypt_blob(self, blob, context, key_id=None):
        """(key, plaintext); InvalidCiphertextException carries no message."""
        with self.lock:
            if len(blob) < 2 or blob[0] != BLOB_VERSION or len(blob) < 2 + blob[1]:
                raise kms_error("InvalidCiphertextException")
            kid = blob[2:2 + blob[1]].decode("ascii", "replace")
            key = self.keys.get(kid)
            if key is None:
                raise kms_error("InvalidCiphertextException")
            if key_id is not None and self.resolve(key_id) is not key:
                raise kms_error("IncorrectKeyException",
                                "The key ID in the request does not identify a CMK that "
                                "can perform this operation.")
            self.require_usable(key)
        try:
            plaintext = envelope.open_sealed(key.material, blob[2 + blob[1]:],
                                             self._aad(key.key_id, context))
        except envelope.OpenError:
            raise kms_error("InvalidCiphertextException")
        return key, plaintext

    # ---- JSON operations ---------------------------------------------------
    def handle(self, operation, body):
        handler = getattr(self, "op_" + operation, None)
        if handler is None:
            raise framework("UnknownOperationException")
        return handler(body)

    @staticmethod
    def _context(body):
        ctx = body.get("EncryptionContext")
        if ctx is None:
            return {}
        if not isinstance(ctx, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in ctx.items()):
            raise framework("SerializationException",
                            "EncryptionContext must be a map of string to string")
        return ctx

    @staticmethod
    def _check_algorithm_and_dry_run(body, key):
        algorithm = body.get("EncryptionAlgorithm", "SYMMETRIC_DEFAULT")
        if algorithm != "SYMMETRIC_DEFAULT":
            raise kms_error("InvalidKeyUsageException",
                            f"{key.arn} key usage is ENCRYPT_DECRYPT and key spec is "
                            f"SYMMETRIC_DEFAULT, which does not support {algorithm}.")
        if body.get("DryRun") is True:
            raise kms_error("DryRunOperationException",
                            "The request would have succeeded, but the DryRun option is set.")

    @staticmethod
    def _required(body, member, api_name):
        if body.get(member) is None:
            raise validation(None, api_name, "Member must not be null")
        return body[member]

    def op_Encrypt(self, body):
        key = self.resolve(self._required(body, "KeyId", "keyId"))
        plaintext = b64decode_member(self._required(body, "Plaintext", "plaintext"),
                                     "Plaintext")
        if not 1 <= len(plaintext) <= 4096:
            raise validation(None, "plaintext",
                             "Member must have length less than or equal to 4096"
                             if plaintext else
                             "Member must have length greater than or equal to 1")
        context = self._context(body)
        self.require_usable(key)
        self._check_algorithm_and_dry_run(body, key)
        blob = self.encrypt_with(key, plaintext, context)
        return {"CiphertextBlob": b64(blob), "KeyId": key.arn,
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}

    def op_Decrypt(self, body):
        blob = b64decode_member(self._required(body, "CiphertextBlob", "ciphertextBlob"),
                                "CiphertextBlob")
        if not 1 <= len(blob) <= 6144:
            raise validation(None, "ciphertextBlob",
                             "Member must have length less than or equal to 6144")
        key, plaintext = self.decrypt_blob(blob, self._context(body), body.get("KeyId"))
        self._check_algorithm_and_dry_run(body, key)
        return {"KeyId": key.arn, "Plaintext": b64(plaintext),
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}

    def _data_key_length(self, body):
        n, spec = body.get("NumberOfBytes"), body.get("KeySpec")
        if (n is None) == (spec is None):
            raise framework("ValidationException",
                            "Please specify either number of bytes or key spec.")
        if spec is not None:
            if spec not in ("AES_256", "AES_128"):
                raise validation(spec, "keySpec",
                                 "Member must satisfy enum value set: [AES_256, AES_128]")
            return 32 if spec == "AES_256" else 16
        if not isinstance(n, int) or isinstance(n, bool):
            raise framework("SerializationException", "NumberOfBytes must be an integer")
        if n < 1:
            raise validation(n, "numberOfBytes",
                             "Member must have value greater than or equal to 1")
        if n > 1024:
            raise validation(n, "numberOfBytes",
                             "Member must have value less than or equal to 1024")
        return n

    def op_GenerateDataKey(self, body):
        key = self.resolve(self._required(body, "KeyId", "keyId"))
        length = self._data_key_length(body)
        context = self._context(body)
        self.require_usable(key)
        self._check_algorithm_and_dry_run(body, key)
        plaintext = os.urandom(length)
        blob = self.encrypt_with(key, plaintext, context)
        return {"CiphertextBlob": b64(blob), "Plaintext": b64(plaintext), "KeyId": key.arn}

    def op_GenerateDataKeyWithoutPlaintext(self, body):
        out = self.op_GenerateDataKey(body)
        del out["Plaintext"]
        return out

    def op_DescribeKey(self, body):
        key = self.resolve(self._required(body, "KeyId", "keyId"))
        return {"KeyMetadata": key.metadata()}

    def op_CreateKey(self, body):
        usage = body.get("KeyUsage", "ENCRYPT_DECRYPT")
        spec = body.get("KeySpec", body.get("CustomerMasterKeySpec", "SYMMETRIC_DEFAULT"))
        if usage != "ENCRYPT_DECRYPT" or spec != "SYMMETRIC_DEFAULT":
            raise kms_error("UnsupportedOperationException",
                            "This test endpoint only creates SYMMETRIC_DEFAULT "
                            "ENCRYPT_DECRYPT keys.")
        description = body.get("Description", "")
        if not isinstance(description, str) or len(description) > 8192:
            raise validation(None, "description",
                             "Member must have length less than or equal to 8192")
        return {"KeyMetadata": self.create_key(description).metadata()}

    def op_CreateAlias(self, body):
        alias = self._required(body, "AliasName", "aliasName")
        target = self._required(body, "TargetKeyId", "targetKeyId")
        if not isinstance(alias, str) or not _ALIAS_NAME.match(alias):
            raise validation(alias, "aliasName",
                             "Member must satisfy regular expression pattern: "
                             "^[a-zA-Z0-9:/_-]+$")
        if alias.startswith("alias/aws/"):
            raise kms_error("NotAuthorizedException",
                            "Cannot create alias with prefix 'alias/aws/'")
        with self.lock:
            key = self.resolve(target, allow_alias=False)
            if alias in self.aliases:
                raise kms_error("AlreadyExistsException",
                                f"An alias with the name arn:aws:kms:{self.region}:"
                                f"{self.account}:{alias} already exists")
            self.aliases[alias] = key.key_id
        return {}

    def op_DeleteAlias(self, body):
        alias = self._required(body, "AliasName", "aliasName")
        with self.lock:
            if alias not in self.aliases:
                raise kms_error("NotFoundException",
                                f"Alias arn:aws:kms:{self.region}:{self.account}:{alias} "
                                "is not found.")
            del self.aliases[alias]
        return {}

    def op_ListAliases(self, body):
        with self.lock:
            entries = [{"AliasName": a,
                        "AliasArn": f"arn:aws:kms:{self.region}:{self.account}:{a}",
                        "TargetKeyId": k} for a, k in sorted(self.aliases.items())]
        return {"Aliases": entries, "Truncated": False}

    def op_ListKeys(self, body):
        with self.lock:
            entries = [{"KeyId": k.key_id, "KeyArn": k.arn} for k in self.keys.values()]
        return {"Keys": entries, "Truncated": False}

    def _set_state(self, body, allowed_from, new_state):
        with self.lock:
            key = self.resolve(self._required(body, "KeyId", "keyId"))
            if key.state not in allowed_from:
                state = {"PendingDeletion": "pending deletion",
                         "PendingImport": "pending import"}.get(key.state, key.state.lower())
                raise kms_error("KMSInvalidStateException", f"{key.arn} is {state}.")
            key.state = new_state
            if new_state != "PendingDeletion":
                key.deletion_date = key.pending_window = None
            return key

    def op_EnableKey(self, body):
        self._set_state(body, ("Enabled", "Disabled"), "Enabled")
        return {}

    def op_DisableKey(self, body):
        self._set_state(body, ("Enabled", "Disabled"), "Disabled")
        return {}

    def op_ScheduleKeyDeletion(self, body):
        days = body.get("PendingWindowInDays", 30)
        if not isinstance(days, int) or not 7 <= days <= 30:
            raise validation(days, "pendingWindowInDays",
                             "Member must have value between 7 and 30")
        key = self._set_state(body, ("Enabled", "Disabled"), "PendingDeletion")
        key.deletion_date = self.clock() + days * 86400
        key.pending_window = days
        return {"KeyId": key.arn, "DeletionDate": round(key.deletion_date, 3),
                "KeyState": key.state, "PendingWindowInDays": days}

    def op_CancelKeyDeletion(self, body):
        key = self._set_state(body, ("PendingDeletion",), "Disabled")
        return {"KeyId": key.arn}

"""The transit secrets engine: named AES-256-GCM keys with versions.

Ciphertexts are `vault:v<N>:` + base64(nonce || ciphertext || tag), the
shape Vault produces for aes256-gcm96 keys. Sealing is the AWS endpoint's
envelope module (AES-256-GCM through python3-cryptography when installed).
Encrypting under a missing key creates it (upsert; needs `create`), as
Vault does.
"""
import base64
import binascii
import os
import re
import threading

from aws_endpoint import load
from backend import NO_CONTENT, Backend, Response
from errors import bad_request, not_found, unsupported_operation

envelope = load("envelope")  # one AEAD for both test endpoints

_CIPHERTEXT = re.compile(r"vault:v(\d+):(.*)", re.S)


class _Key:
    def __init__(self, name, now):
        self.name = name
        self.versions = {1: (os.urandom(32), int(now))}
        self.min_decryption_version = 1
        self.min_encryption_version = 0
        self.deletion_allowed = False

    @property
    def latest(self):
        return max(self.versions)

    def describe(self):
        return {"name": self.name, "type": "aes256-gcm96", "derived": False,
                "exportable": False, "allow_plaintext_backup": False,
                "deletion_allowed": self.deletion_allowed,
                "keys": {str(n): t for n, (_, t) in sorted(self.versions.items())},
                "latest_version": self.latest,
                "min_available_version": 0,
                "min_decryption_version": self.min_decryption_version,
                "min_encryption_version": self.min_encryption_version,
                "supports_encryption": True, "supports_decryption": True,
                "supports_derivation": True, "supports_signing": False,
                "imported_key": False, "auto_rotate_period": 0}


def _b64(data, what):
    if not isinstance(data, str):
        raise bad_request(f"missing {what} to {'encrypt' if what == 'plaintext' else 'decrypt'}")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"failed to base64-decode {what}")


class Transit(Backend):
    type = "transit"

    def __init__(self):
        self.lock = threading.Lock()
        self.keys = {}

    def exists(self, req):
        kind, _, name = req.path.partition("/")
        if kind in ("encrypt", "keys"):
            return name.split("/")[0] in self.keys
        return True

    def create_key(self, name, now):
        with self.lock:
            return self.keys.setdefault(name, _Key(name, now))

    def handle(self, req):
        kind, _, rest = req.path.partition("/")
        with self.lock:
            if kind == "keys":
                return self._keys(req, rest)
            if kind == "encrypt" and rest and req.op == "write":
                return self._encrypt(req, rest)
            if kind == "decrypt" and rest and req.op == "write":
                return self._decrypt(req, rest)
        raise unsupported_operation()

    def _keys(self, req, rest):
        name, _, action = rest.partition("/")
        if not name:
            if req.op != "list":
                raise unsupported_operation()
            if not self.keys:
                raise not_found()
            return Response(data={"keys": sorted(self.keys)})
        key = self.keys.get(name)
        if action == "rotate" and req.op == "write":
            if key is None:
                raise bad_request("encryption key not found")
            key.versions[key.latest + 1] = (os.urandom(32), int(req.clock()))
            return Response(data=key.describe())
        if action == "config" and req.op == "write":
            if key is None:
                raise bad_request("encryption key not found")
            d = req.data
            if "min_decryption_version" in d:
                key.min_decryption_version = int(d["min_decryption_version"])
            if "min_encryption_version" in d:
                key.min_encryption_version = int(d["min_encryption_version"])
            if "deletion_allowed" in d:
                key.deletion_allowed = bool(d["deletion_allowed"])
            return Response(data=key.describe())
        if action:
            raise unsupported_operation()
        if req.op == "write":
            if req.data.get("type", "aes256-gcm96") != "aes256-gcm96":
                raise bad_request(f"unknown key type: {req.data.get('type')}")
            key = key or self.keys.setdefault(name, _Key(name, req.clock()))
            return Response(data=key.describe())
        if req.op == "read":
            if key is None:
                raise not_found()
            return Response(data=key.describe())
        if req.op == "delete":
            if key is not None and not key.deletion_allowed:
                raise bad_request("deletion is not allowed for this key")
            self.keys.pop(name, None)
            return NO_CONTENT
        raise unsupported_operation()

    def _encrypt(self, req, name):
        plaintext = _b64(req.data.get("plaintext"), "plaintext")
        key = self.keys.get(name) or self.keys.setdefault(name, _Key(name, req.clock()))
        version = int(req.data.get("key_version") or key.min_encryption_version or key.latest)
        if version not in key.versions:
            raise bad_request("invalid key version: no such key version")
        sealed = envelope.seal(key.versions[version][0], plaintext)
        return Response(data={"ciphertext": f"vault:v{version}:"
                              + base64.b64encode(sealed).decode(), "key_version": version})

    def _decrypt(self, req, name):
        ciphertext = req.data.get("ciphertext")
        if not isinstance(ciphertext, str) or not ciphertext:
            raise bad_request("missing ciphertext to decrypt")
        key = self.keys.get(name)
        if key is None:
            raise bad_request("encryption key not found")
        if not ciphertext.startswith("vault:"):
            raise bad_request("invalid ciphertext: no prefix")
        m = _CIPHERTEXT.fullmatch(ciphertext)
        if m is None:
            raise bad_request("invalid ciphertext: version number could not be decoded")
        version = int(m.group(1))
        if version < key.min_decryption_version:
            raise bad_request("ciphertext or signature version is disallowed by policy "
                              "(too old)")
        if version not in key.versions:
            raise bad_request("invalid ciphertext: version is too new")
        try:
            blob = base64.b64decode(m.group(2), validate=True)
        except (binascii.Error, ValueError):
            raise bad_request("invalid ciphertext: could not decode base64")
        try:
            plaintext = envelope.open_sealed(key.versions[version][0], blob)
        except envelope.OpenError:
            raise bad_request("cipher: message authentication failed")
        return Response(data={"plaintext": base64.b64encode(plaintext).decode()})

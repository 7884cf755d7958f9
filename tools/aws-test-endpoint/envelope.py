"""Authenticated encryption for the endpoint's KMS keys and stored secrets.

AES-256-GCM through python3-cryptography when it is installed; otherwise an
encrypt-then-MAC construction from the standard library (HMAC-SHA256 in
counter mode as keystream, HMAC-SHA256 tag). Both give what the endpoint
needs: a wrong key, a changed byte or different associated data is detected.
Sealed form: nonce (12) || ciphertext || tag (16).
"""
import hashlib
import hmac
import os

try:  # Debian: python3-cryptography (pulled in by awscli)
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # pragma: no cover - depends on the machine
    AESGCM = None

NONCE_LEN = 12
TAG_LEN = 16


class OpenError(Exception):
    """The sealed blob does not authenticate under this key and AAD."""


def _subkey(key, label):
    return hmac.new(key, label, hashlib.sha256).digest()


def _keystream_xor(key, nonce, data):
    out = bytearray(len(data))
    for block in range(0, len(data), 32):
        pad = hmac.new(key, nonce + block.to_bytes(8, "big"), hashlib.sha256).digest()
        chunk = data[block:block + 32]
        out[block:block + len(chunk)] = bytes(a ^ b for a, b in zip(chunk, pad))
    return bytes(out)


def _fallback_tag(key, nonce, aad, ct):
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in (nonce, aad, ct):
        mac.update(len(part).to_bytes(8, "big"))
        mac.update(part)
    return mac.digest()[:TAG_LEN]


def seal(key, plaintext, aad=b""):
    nonce = os.urandom(NONCE_LEN)
    if AESGCM is not None:
        return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)
    ct = _keystream_xor(_subkey(key, b"enc"), nonce, plaintext)
    return nonce + ct + _fallback_tag(_subkey(key, b"mac"), nonce, aad, ct)


def open_sealed(key, blob, aad=b""):
    if len(blob) < NONCE_LEN + TAG_LEN:
        raise OpenError("sealed blob too short")
    nonce, body = blob[:NONCE_LEN], blob[NONCE_LEN:]
    if AESGCM is not None:
        try:
            return AESGCM(key).decrypt(nonce, body, aad)
        except Exception as e:  # cryptography raises InvalidTag
            raise OpenError("authentication failed") from e
    ct, tag = body[:-TAG_LEN], body[-TAG_LEN:]
    if not hmac.compare_digest(tag, _fallback_tag(_subkey(key, b"mac"), nonce, aad, ct)):
        raise OpenError("authentication failed")
    return _keystream_xor(_subkey(key, b"enc"), nonce, ct)

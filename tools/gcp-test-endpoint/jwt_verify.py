"""RS256 JSON Web Tokens checked with the standard library only: the RSA
public key (SubjectPublicKeyInfo PEM, as `openssl pkey -pubout` writes) is
read with a minimal DER reader, the signature checked as RSASSA-PKCS1-v1_5
with SHA-256 (RFC 8017 §8.2.2)."""
import base64
import hashlib
import json

# DigestInfo prefix of SHA-256 (RFC 8017 §9.2 note 1).
_SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


class JwtError(ValueError):
    pass


def _der(data, pos):
    """(tag, content, next position) of the DER element at pos."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    return tag, data[pos:pos + length], pos + length


def load_public_key(pem_text):
    """(n, e) of an RSA SubjectPublicKeyInfo PEM."""
    body = "".join(line for line in pem_text.strip().splitlines() if not line.startswith("-----"))
    spki = base64.b64decode(body)
    _, seq, _ = _der(spki, 0)
    _, _algorithm, pos = _der(seq, 0)
    tag, bits, _ = _der(seq, pos)
    if tag != 0x03:
        raise ValueError("not a SubjectPublicKeyInfo")
    _, rsa, _ = _der(bits[1:], 0)  # skip the unused-bits byte
    _, n, pos = _der(rsa, 0)
    _, e, _ = _der(rsa, pos)
    return int.from_bytes(n, "big"), int.from_bytes(e, "big")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_rs256(signed, signature, public_key):
    n, e = public_key
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    em = pow(int.from_bytes(signature, "big"), e, n).to_bytes(k, "big")
    digest = _SHA256_PREFIX + hashlib.sha256(signed).digest()
    expected = b"\x00\x01" + b"\xff" * (k - 3 - len(digest)) + b"\x00" + digest
    return em == expected


def decode(token, key_for):
    """Checks a JWT's RS256 signature with key_for(header, claims) -> (n, e)
    or None; returns (header, claims) or raises JwtError."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtError("malformed JWT")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except ValueError as e:
        raise JwtError("malformed JWT") from e
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JwtError("malformed JWT")
    if header.get("alg") != "RS256":
        raise JwtError("unsupported JWT algorithm")
    key = key_for(header, claims)
    if key is None:
        raise JwtError("unknown service account or key id")
    if not verify_rs256(f"{parts[0]}.{parts[1]}".encode(), signature, key):
        raise JwtError("Invalid JWT Signature.")
    return header, claims

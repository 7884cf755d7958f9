"""Server-side SigV4 verification (aws-protocol.md 7.10), independent of the
C++ signer: the canonical request, string to sign and signature are computed
by Debian's botocore (botocore.auth.SigV4Auth) over the request exactly as it
was received, restricted to the headers the client listed in SignedHeaders.
"""
import calendar
import hashlib
import hmac
import re
import time
from urllib.parse import unquote

import botocore.auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials as BotoCredentials

from errors import framework

ALGORITHM = "AWS4-HMAC-SHA256"
SKEW_SECONDS = 300
_AMZ_DATE = re.compile(r"^\d{8}T\d{6}Z$")
_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")
_HEADER_NAME = re.compile(r"^[a-z0-9!#$%&'*+.^_`|~-]+$")


class _ReceivedRequestSigner(botocore.auth.SigV4Auth):
    """botocore's signer, told to sign exactly the headers the client named."""

    def __init__(self, credentials, service, region, signed_names):
        super().__init__(credentials, service, region)
        self._signed_names = signed_names

    def headers_to_sign(self, request):
        header_map = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._signed_names:
                header_map[name.lower()] = value
        return header_map


def _incomplete(message):
    return framework("IncompleteSignatureException", message)


def _invalid(message):
    return framework("InvalidSignatureException", message)


MISMATCH = ("The request signature we calculated does not match the signature you "
            "provided. Check your AWS Secret Access Key and signing method. Consult "
            "the service documentation for details.")
INVALID_TOKEN = "The security token included in the request is invalid."
EXPIRED_TOKEN = "The security token included in the request is expired"


def parse_authorization(value):
    """Splits 'AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...'."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _incomplete(f"Unsupported AWS 'algorithm': '{algorithm}'")
    parts = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if sep:
            parts[key.strip()] = val.strip()
    missing = [p for p in ("Credential", "Signature", "SignedHeaders") if not parts.get(p)]
    if missing:
        raise _incomplete(" ".join(
            f"Authorization header requires '{p}' parameter." for p in missing)
            + f" Authorization={value}")
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not all(scope):
        raise _incomplete("Authorization header requires a valid 'Credential' parameter "
                          f"(<key>/<date>/<region>/<service>/aws4_request). "
                          f"Authorization={value}")
    if not _SIGNATURE.match(parts["Signature"]):
        raise _incomplete(f"Authorization header requires a valid 'Signature' parameter "
                          f"(64 lower-case hex digits). Authorization={value}")
    names = parts["SignedHeaders"].split(";")
    if (any(not _HEADER_NAME.match(n) for n in names) or names != sorted(names)
            or len(set(names)) != len(names)):
        raise _incomplete("SignedHeaders must be distinct lower-case header names "
                          f"sorted by byte value. Authorization={value}")
    return {"access_key_id": scope[0], "date": scope[1], "region": scope[2],
            "service": scope[3], "signed_headers": names,
            "signature": parts["Signature"]}


def _epoch_of(amz_date):
    return calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))


def _fmt(epoch):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


def verify(method, target, headers, body, now, lookup, region, service,
           token_matches=None):
    """Checks one request. headers: list of (name, value) in arrival order;
    target: the raw request target (path and query); lookup(access_key_id)
    returns an object with secret_access_key / session_token / expiration
    (epoch) or None; region/service: what the scope must name (None accepts
    any). Returns (credential, parsed authorization); raises AwsError."""
    by_name = {}
    for name, value in headers:
        by_name.setdefault(name.lower(), []).append(value)
    auth_values = by_name.get("authorization")
    if not auth_values:
        raise framework("MissingAuthenticationTokenException",
                        "Missing Authentication Token")
    auth = parse_authorization(auth_values[0])
    amz_dates = by_name.get("x-amz-date")
    if not amz_dates:
        raise _incomplete("Authorization header requires existence of either a "
                          f"'X-Amz-Date' or a 'Date' header. Authorization={auth_values[0]}")
    amz_date = amz_dates[0].strip()
    if not _AMZ_DATE.match(amz_date):
        raise _incomplete(f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
                          "See http://en.wikipedia.org/wiki/ISO_8601")
    try:
        signed_at = _epoch_of(amz_date)
    except ValueError:
        raise _incomplete(f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
                          "See http://en.wikipedia.org/wiki/ISO_8601")

    cred = lookup(auth["access_key_id"])
    if cred is None:
        raise framework("UnrecognizedClientException", INVALID_TOKEN)
    tokens = by_name.get("x-amz-security-token")
    token = tokens[0] if tokens else None
    matches = token_matches or _token_matches
    if not matches(cred, token):
        raise framework("UnrecognizedClientException", INVALID_TOKEN)
    if cred.expiration is not None and now >= cred.expiration:
        raise framework("ExpiredTokenException", EXPIRED_TOKEN)

    if auth["date"] != amz_date[:8]:
        raise _invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                       f"version of date from HTTP: '{auth['date']}' != '{amz_date[:8]}', "
                       f"from '{amz_date}'.")
    if region is not None and auth["region"] != region:
        raise _invalid(f"Credential should be scoped to a valid region, not "
                       f"'{auth['region']}'. ")
    if service is not None and auth["service"] != service:
        raise _invalid(f"Credential should be scoped to correct service: '{service}'. ")
    if signed_at < now - SKEW_SECONDS:
        raise _invalid(f"Signature expired: {amz_date} is now earlier than "
                       f"{_fmt(now - SKEW_SECONDS)} ({_fmt(now)} - 5 min.)")
    if signed_at > now + SKEW_SECONDS:
        raise _invalid(f"Signature not yet current: {amz_date} is still later than "
                       f"{_fmt(now + SKEW_SECONDS)} ({_fmt(now)} + 5 min.)")

    signed = set(auth["signed_headers"])
    if "host" not in signed:
        raise _incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS "
                          "Authorization.")
    if "x-amz-date" not in signed:
        raise _incomplete("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.")
    if token is not None and "x-amz-security-token" not in signed:
        # Stricter than AWS (which tolerates an unsigned token): a client that
        # forgets to sign its token is a bug this endpoint exists to catch.
        raise _incomplete("'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS "
                          "Authorization.")
    content_sha = by_name.get("x-amz-content-sha256")
    if content_sha and content_sha[0].strip() != hashlib.sha256(body).hexdigest():
        raise _invalid("The provided 'x-amz-content-sha256' header does not match what "
                       "was computed.")

    host = (by_name.get("host") or ["localhost"])[0].strip()
    path, _, query = target.partition("?")
    request = AWSRequest(method=method, url=f"http://{host}{path}", data=body)
    if query:
        # The query arrives percent-encoded (or raw); SigV4 signs each name and
        # value encoded exactly once, which botocore does from decoded params.
        request.params = [(unquote(k), unquote(v)) for k, _, v in
                          (pair.partition("=") for pair in query.split("&"))]
    for name, value in headers:
        if name.lower() != "authorization":
            request.headers[name] = value
    request.context["timestamp"] = amz_date
    signer = _ReceivedRequestSigner(
        BotoCredentials(auth["access_key_id"], cred.secret_access_key, token),
        auth["service"], auth["region"], signed)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected.encode("ascii"), auth["signature"].encode("ascii")):
        raise _invalid(MISMATCH)
    return cred, auth


def _token_matches(cred, token):
    stored = getattr(cred, "session_token", None)
    if stored is None or token is None:
        return stored is None and token is None
    return hmac.compare_digest(stored.encode(), token.encode())

"""Proves the Entrust KeyControl test endpoint (tools/entrust-test-endpoint)
before the keystore tests trust it: every request / response shape of
keystores-cloud.md §5 checked with plain http.client over TLS, independent of
kes-cpp. There is no Debian client for KeyControl and no public API reference
(§5.6), so upstream's code, as the spec records it, is the reference.
"""
import base64
import datetime
import http.client
import json
import ssl
import time

import pytest

from kes_harness import tool_module

EntrustTestEndpoint = tool_module("entrust-test-endpoint").EntrustTestEndpoint


class Client:
    """A KeyControl client the way upstream's calls look on the wire."""

    def __init__(self, ep, ca_file):
        self.ep = ep
        self.ctx = ssl.create_default_context(cafile=ca_file)
        self.token = None

    def call(self, path, doc=None, token=True, content_type=None, method="POST", raw=None):
        """(status, headers, decoded JSON or raw text)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.ep.port, context=self.ctx,
                                           timeout=30)
        body = raw if raw is not None else (b"" if doc is None else json.dumps(doc).encode())
        headers = {"Content-Length": str(len(body))}
        if content_type:
            headers["Content-Type"] = content_type
        if isinstance(token, str):
            headers["X-Vault-Auth"] = token
        elif token and self.token is not None:
            headers["X-Vault-Auth"] = self.token
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        ctype = resp.getheader("Content-Type", "")
        return resp.status, ctype, json.loads(data) if ctype.startswith(
            "application/json") else data.decode()

    def login(self, username=None, password=None, vault_id=None):
        status, ctype, doc = self.call(
            "/vault/1.0/Login/%s/" % (vault_id or self.ep.vault_id),
            {"username": username or self.ep.username, "password": password or self.ep.password},
            token=False, content_type="application/json")
        if status == 200:
            self.token = doc["access_token"]
        return status, ctype, doc

    def admin(self, method, path, doc=None):
        return self.ep.admin(method, path, doc, context=self.ctx)


@pytest.fixture
def ep(tmp_path, cert_factory):
    cert = cert_factory.server("entrust-endpoint")
    with EntrustTestEndpoint(tmp_path, "--tls-cert", cert.cert, "--tls-key", cert.key,
                             "--token-ttl", "120") as e:
        yield Client(e, cert.ca)


def parse_rfc3339(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


def test_login_answers_token_and_rfc3339_expiry(ep):
    assert ep.ep.url.startswith("https://127.0.0.1:")
    before = datetime.datetime.now(datetime.timezone.utc)
    status, ctype, doc = ep.login()
    assert status == 200 and ctype.startswith("application/json")
    assert doc["access_token"]
    expires = parse_rfc3339(doc["expires_at"])
    assert before + datetime.timedelta(seconds=100) < expires
    assert expires < before + datetime.timedelta(seconds=200)
    # Wrong password, wrong vault, no JSON content type.
    assert ep.login(password="wrong")[0] == 401
    assert ep.login(vault_id="other-vault")[0] == 404
    status, _, doc = ep.call("/vault/1.0/Login/%s/" % ep.ep.vault_id,
                             {"username": ep.ep.username, "password": ep.ep.password},
                             token=False)
    assert status == 415 and "error" in doc


def test_login_quirks_empty_token_and_missing_expiry(ep):
    ep.admin("POST", "/__admin/login", {"omit_expires_at": True})
    _, _, doc = ep.login()
    assert "expires_at" not in doc and doc["access_token"]
    ep.admin("POST", "/__admin/login", {"empty_token": True, "omit_expires_at": False})
    _, _, doc = ep.login()
    assert doc["access_token"] == "" and "expires_at" in doc


def test_token_is_enforced_renewed_and_expires(ep):
    # No token: 401; unknown token: 403 (both JSON {"error": ...}).
    status, ctype, doc = ep.call("/vault/1.0/GetBox/", {"box_id": ep.ep.box_id}, token=False)
    assert status == 401 and ctype.startswith("application/json") and doc["error"]
    status, _, doc = ep.call("/vault/1.0/GetBox/", {"box_id": ep.ep.box_id}, token="bogus")
    assert status == 403 and doc["error"]
    ep.login()
    old = ep.token
    status, _, doc = ep.call("/vault/1.0/GetBox/", {"box_id": ep.ep.box_id})
    assert status == 200 and doc["box_id"] == ep.ep.box_id
    assert ep.call("/vault/1.0/GetBox/", {"box_id": "no-box"})[0] == 404
    # Renew: no body, the token header; same answer shape as Login.
    status, _, doc = ep.call("/vault/1.0/Renew/")
    assert status == 200 and doc["access_token"] and doc["access_token"] != old
    parse_rfc3339(doc["expires_at"])
    ep.token = doc["access_token"]
    assert ep.call("/vault/1.0/GetBox/", {"box_id": ep.ep.box_id})[0] == 200
    # Past its expiry the token is refused with 403.
    ep.admin("POST", "/__admin/clock", {"advance_seconds": 121})
    assert ep.call("/vault/1.0/GetBox/", {"box_id": ep.ep.box_id})[0] == 403
    assert ep.call("/vault/1.0/Renew/")[0] == 403
    ep.login()
    assert ep.call("/vault/1.0/GetBox/", {"box_id": ep.ep.box_id})[0] == 200
    ep.admin("POST", "/__admin/tokens/expire")
    assert ep.call("/vault/1.0/GetBox/", {"box_id": ep.ep.box_id})[0] == 403


def test_secret_round_trip_double_base64_and_errors(ep):
    ep.login()
    box = ep.ep.box_id
    stored = "eyJieXRlcyI6IkFBQUEifQ=="  # a stored KES value is base64 text already
    secret_data = base64.b64encode(stored.encode()).decode()
    status, _, _ = ep.call("/vault/1.0/CreateSecret/",
                           {"box_id": box, "name": "k1", "secret_data": secret_data})
    assert status == 200
    status, ctype, doc = ep.call("/vault/1.0/CreateSecret/",
                                 {"box_id": box, "name": "k1", "secret_data": secret_data})
    assert (status, doc) == (409, {"error": "Secret already exists"})
    assert ctype.startswith("application/json")
    status, _, doc = ep.call("/vault/1.0/CheckoutSecret/", {"box_id": box, "secret_id": "k1"})
    assert status == 200 and base64.b64decode(doc["secret_data"]).decode() == stored
    status, _, doc = ep.call("/vault/1.0/CheckoutSecret/", {"box_id": box, "secret_id": "nope"})
    assert (status, doc) == (404, {"error": "Secret not found"})
    assert ep.call("/vault/1.0/DeleteSecret/", {"box_id": box, "secret_id": "k1"})[0] == 200
    status, _, doc = ep.call("/vault/1.0/DeleteSecret/", {"box_id": box, "secret_id": "k1"})
    assert (status, doc) == (404, {"error": "Secret not found"})
    # Bad input: not base64, not JSON, wrong method.
    assert ep.call("/vault/1.0/CreateSecret/",
                   {"box_id": box, "name": "k2", "secret_data": "%%%"})[0] == 400
    assert ep.call("/vault/1.0/CreateSecret/", raw=b"{not json")[0] == 400
    assert ep.call("/vault/1.0/GetBox/", method="GET")[0] == 405
    # Requests other than Login carry no Content-Type: the log shows it.
    ops = [r for r in ep.admin("GET", "/__admin/requests")["requests"]
           if r["op"] == "CheckoutSecret"]
    assert ops and all(r["content_type"] is None and r["content_length"] for r in ops)


def test_listing_pages_with_next_token_over_256_secrets(ep):
    ep.login()
    box = ep.ep.box_id
    names = sorted("key-%03d" % i for i in range(300))
    ep.admin("POST", "/__admin/secrets", {"secrets": [{"name": n, "value": "v"} for n in names]})
    ep.admin("POST", "/__admin/secrets", {"name": "old", "value": "v", "expired": True})
    seen, expired, request = [], [], {"box_id": box, "max_items": 256}
    pages = 0
    while True:
        status, _, doc = ep.call("/vault/1.0/ListSecretIds/", request)
        assert status == 200
        pages += 1
        assert len(doc["secrets"]) <= 256
        for s in doc["secrets"]:
            assert set(s) == {"name", "expired"}
            (expired if s["expired"] else seen).append(s["name"])
        if not doc["next_token"]:
            break
        # next_token is base64(JSON {"box_id", "next_ctx"}).
        token = json.loads(base64.b64decode(doc["next_token"]))
        assert token["box_id"] == box and isinstance(token["next_ctx"], str)
        request = {"box_id": box, "max_items": 256, "next_token": doc["next_token"]}
    assert pages == 2 and seen == names and expired == ["old"]
    # A smaller page and a foreign or broken token.
    status, _, doc = ep.call("/vault/1.0/ListSecretIds/", {"box_id": box, "max_items": 10})
    assert len(doc["secrets"]) == 10 and doc["next_token"]
    bad = base64.b64encode(json.dumps({"box_id": "other", "next_ctx": "a"}).encode()).decode()
    assert ep.call("/vault/1.0/ListSecretIds/", {"box_id": box, "next_token": bad})[0] == 400
    assert ep.call("/vault/1.0/ListSecretIds/", {"box_id": box, "next_token": "!!"})[0] == 400


def test_faults_json_and_plain_errors_latency_drop(ep):
    ep.login()
    box = ep.ep.box_id
    ep.admin("POST", "/__faults", {"kind": "error", "status": 503, "op": "GetBox",
                                   "error": "maintenance"})
    status, ctype, doc = ep.call("/vault/1.0/GetBox/", {"box_id": box})
    assert (status, doc) == (503, {"error": "maintenance"})
    ep.admin("POST", "/__faults", {"kind": "error", "status": 502, "text": "bad gateway"})
    status, ctype, text = ep.call("/vault/1.0/GetBox/", {"box_id": box})
    assert status == 502 and ctype == "text/plain" and text == "bad gateway"
    ep.admin("POST", "/__faults", {"kind": "latency", "delay_ms": 300})
    start = time.monotonic()
    assert ep.call("/vault/1.0/GetBox/", {"box_id": box})[0] == 200
    assert time.monotonic() - start >= 0.3
    ep.admin("POST", "/__faults", {"kind": "drop"})
    with pytest.raises((ConnectionError, http.client.HTTPException, ssl.SSLError, OSError)):
        ep.call("/vault/1.0/GetBox/", {"box_id": box})
    assert ep.call("/vault/1.0/GetBox/", {"box_id": box})[0] == 200

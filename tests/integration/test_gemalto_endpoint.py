"""Proves tools/gemalto-test-endpoint against the CipherTrust Manager REST
shapes of keystores-cloud.md §3 with an independent client: plain
http.client over Python's ssl (there is no Debian CipherTrust client). Every
documented request and answer is checked on the wire: the refresh-token
grant and its answer, the four vault-secret calls and their statuses, JSON
vs plain-text errors, paging with skip/total, JWT expiry after `duration`,
the 404 a denied delete gets, and the fault injection the keystore tests use.

Loopback only; the refresh token is a dummy.
"""
import http.client
import json
import ssl
import time

import pytest

from kes_harness import tool_module

GemaltoTestEndpoint = tool_module("gemalto-test-endpoint").GemaltoTestEndpoint


@pytest.fixture(scope="module")
def tls(cert_factory):
    return cert_factory.server("gemalto-endpoint")


@pytest.fixture
def ep(tmp_path, tls):
    with GemaltoTestEndpoint(tmp_path / "ep", "--tls-cert", tls.cert, "--tls-key", tls.key,
                             "--domain", "kes-domain") as e:
        yield e


class Client:
    """One keep-alive HTTPS connection that verifies the endpoint's certificate."""

    def __init__(self, ep, ca):
        self.ep = ep
        self.ctx = ssl.create_default_context(cafile=ca)
        self.conn = http.client.HTTPSConnection("127.0.0.1", ep.port, context=self.ctx,
                                                timeout=30)

    def send(self, method, path, body=None, jwt=None, content_type="application/json"):
        headers = {}
        if jwt is not None:
            headers["Authorization"] = "Bearer " + jwt
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        raw = r.read()
        return r.status, r.getheader("Content-Type") or "", raw

    def login(self, token=None, domain="kes-domain"):
        return self.send("POST", "/api/v1/auth/tokens",
                         {"grant_type": "refresh_token",
                          "refresh_token": token or self.ep.refresh_token, "domain": domain})

    def jwt(self):
        status, _, raw = self.login()
        assert status == 200
        return json.loads(raw)["jwt"]

    def admin(self, method, path, doc=None):
        return self.ep.admin(method, path, doc, context=self.ctx)


@pytest.fixture
def client(ep, tls):
    return Client(ep, tls.ca)


def json_error(status_ct_raw, status):
    got, ct, raw = status_ct_raw
    assert got == status, raw
    assert ct.startswith("application/json")
    doc = json.loads(raw)
    assert isinstance(doc["code"], int) and isinstance(doc["codeDesc"], str) and doc["codeDesc"]
    return doc


def test_refresh_token_grant(client):
    status, ct, raw = client.login()
    assert status == 200 and ct.startswith("application/json")
    doc = json.loads(raw)
    assert doc["jwt"].startswith("eyJ") and doc["token_type"] == "Bearer"
    assert isinstance(doc["duration"], int) and doc["duration"] > 0
    assert doc["client_id"] and doc["refresh_token_id"]
    # A wrong token, a wrong domain, another grant type: JSON errors.
    json_error(client.login(token="not-the-token"), 401)
    json_error(client.login(domain=""), 401)
    json_error(client.send("POST", "/api/v1/auth/tokens",
                           {"grant_type": "password", "username": "u", "password": "p"}), 400)
    json_error(client.send("POST", "/api/v1/auth/tokens", b"not json"), 400)


def test_root_domain_is_the_empty_string(tmp_path, tls):
    with GemaltoTestEndpoint(tmp_path / "root", "--tls-cert", tls.cert, "--tls-key",
                             tls.key) as root_ep:
        c = Client(root_ep, tls.ca)
        assert c.login(domain="")[0] == 200
        json_error(c.login(domain="kes-domain"), 401)


def test_secret_create_export_delete(client):
    jwt = client.jwt()
    status, ct, raw = client.send("POST", "/api/v1/vault/secrets",
                                  {"dataType": "seed", "material": "stored-value", "name": "k1"},
                                  jwt=jwt)
    assert status == 201 and ct.startswith("application/json")
    created = json.loads(raw)
    assert created["name"] == "k1" and created["dataType"] == "seed" and created["id"]
    assert "material" not in created
    doc = json_error(client.send("POST", "/api/v1/vault/secrets",
                                 {"dataType": "seed", "material": "x", "name": "k1"}, jwt=jwt), 409)
    assert "exists" in doc["codeDesc"]
    # Export: POST without a body or Content-Type, by name.
    status, ct, raw = client.send("POST", "/api/v1/vault/secrets/k1/export?type=name", jwt=jwt)
    assert status == 200 and ct.startswith("application/json")
    exported = json.loads(raw)
    assert exported["material"] == "stored-value" and exported["name"] == "k1"
    assert exported["id"] == created["id"]
    json_error(client.send("POST", "/api/v1/vault/secrets/nope/export?type=name", jwt=jwt), 404)
    # Delete by name: 204 without a body, then 404.
    status, _, raw = client.send("DELETE", "/api/v1/vault/secrets/k1?type=name", jwt=jwt)
    assert status == 204 and raw == b""
    json_error(client.send("DELETE", "/api/v1/vault/secrets/k1?type=name", jwt=jwt), 404)
    json_error(client.send("POST", "/api/v1/vault/secrets/k1/export?type=name", jwt=jwt), 404)
    # Malformed creates are refused.
    json_error(client.send("POST", "/api/v1/vault/secrets", {"material": "x", "name": "k"},
                           jwt=jwt), 400)
    json_error(client.send("POST", "/api/v1/vault/secrets",
                           {"dataType": "seed", "material": "x"}, jwt=jwt), 400)


def test_requests_are_logged_as_sent(client):
    jwt = client.jwt()
    client.send("POST", "/api/v1/vault/secrets",
                {"dataType": "seed", "material": "v", "name": "logged"}, jwt=jwt)
    client.send("POST", "/api/v1/vault/secrets/logged/export?type=name", jwt=jwt)
    log = client.admin("GET", "/__admin/requests")["requests"]
    login, create, export = log[-3:]
    assert login["path"] == "/api/v1/auth/tokens" and login["authorization"] is None
    assert login["body"]["grant_type"] == "refresh_token"
    assert create["authorization"] == "Bearer" and create["content_type"] == "application/json"
    assert create["body"] == {"dataType": "seed", "material": "v", "name": "logged"}
    assert export["body_length"] == 0 and export["content_type"] is None
    assert export["query"] == {"type": "name"}


def test_paging_with_skip_and_total(client):
    jwt = client.jwt()
    for i in range(5):
        assert client.send("POST", "/api/v1/vault/secrets",
                           {"dataType": "seed", "material": "v", "name": f"p{i}"},
                           jwt=jwt)[0] == 201
    seen, skip = [], 0
    while True:
        status, ct, raw = client.send("GET", f"/api/v1/vault/secrets?limit=2&skip={skip}", jwt=jwt)
        assert status == 200 and ct.startswith("application/json")
        page = json.loads(raw)
        assert page["skip"] == skip and page["limit"] == 2 and page["total"] == 5
        assert len(page["resources"]) <= 2
        assert all("material" not in r for r in page["resources"])
        seen += [r["name"] for r in page["resources"]]
        skip += len(page["resources"])
        if page["skip"] >= page["total"]:
            assert page["resources"] == []  # the extra request upstream makes
            break
    assert seen == [f"p{i}" for i in range(5)]
    # The quirks the keystore must survive: an out-of-sync skip, an early empty page.
    client.admin("POST", "/__faults", {"kind": "page", "skip": 7})
    page = json.loads(client.send("GET", "/api/v1/vault/secrets?limit=2&skip=0", jwt=jwt)[2])
    assert page["skip"] == 7
    client.admin("POST", "/__faults", {"kind": "page", "empty": True})
    page = json.loads(client.send("GET", "/api/v1/vault/secrets?limit=2&skip=2", jwt=jwt)[2])
    assert page["skip"] == 2 and page["total"] == 5 and page["resources"] == []


def test_missing_invalid_and_expired_jwts_get_plain_text_401(client):
    for jwt in (None, "eyJforged"):
        status, ct, raw = client.send("GET", "/api/v1/vault/secrets?limit=200&skip=0", jwt=jwt)
        assert status == 401 and ct.startswith("text/plain") and raw.strip()
    client.admin("POST", "/__admin/duration", {"duration": 30})
    status, _, raw = client.login()
    doc = json.loads(raw)
    assert doc["duration"] == 30
    jwt = doc["jwt"]
    assert client.send("GET", "/api/v1/vault/secrets?limit=200&skip=0", jwt=jwt)[0] == 200
    client.admin("POST", "/__admin/clock", {"advance_seconds": 31})
    status, ct, raw = client.send("GET", "/api/v1/vault/secrets?limit=200&skip=0", jwt=jwt)
    assert status == 401 and ct.startswith("text/plain") and b"expired" in raw
    # A fresh login works again; revoking drops every JWT.
    jwt = client.jwt()
    assert client.send("GET", "/api/v1/vault/secrets?limit=200&skip=0", jwt=jwt)[0] == 200
    client.admin("POST", "/__admin/tokens/revoke")
    assert client.send("GET", "/api/v1/vault/secrets?limit=200&skip=0", jwt=jwt)[0] == 401


def test_denied_delete_answers_404_like_the_server(client):
    jwt = client.jwt()
    client.send("POST", "/api/v1/vault/secrets",
                {"dataType": "seed", "material": "v", "name": "kept"}, jwt=jwt)
    client.admin("POST", "/__admin/deny", {"actions": ["DeleteKey", "ExportKey"]})
    json_error(client.send("DELETE", "/api/v1/vault/secrets/kept?type=name", jwt=jwt), 404)
    json_error(client.send("POST", "/api/v1/vault/secrets/kept/export?type=name", jwt=jwt), 403)
    client.admin("POST", "/__admin/deny", {"actions": []})
    assert client.send("POST", "/api/v1/vault/secrets/kept/export?type=name", jwt=jwt)[0] == 200


def test_status_probe_and_fault_injection(client):
    status, ct, _ = client.send("GET", "/")
    assert status == 200 and ct.startswith("text/html")
    jwt = client.jwt()
    client.admin("POST", "/__faults", {"kind": "error", "status": 503, "path": "vault/",
                                       "code": 7, "codeDesc": "NCERRUnavailable: busy"})
    doc = json_error(client.send("GET", "/api/v1/vault/secrets?limit=200&skip=0", jwt=jwt), 503)
    assert doc == {"code": 7, "codeDesc": "NCERRUnavailable: busy"}
    client.admin("POST", "/__faults", {"kind": "error", "status": 502, "text": "bad gateway"})
    status, ct, raw = client.send("GET", "/api/v1/vault/secrets?limit=200&skip=0", jwt=jwt)
    assert (status, raw) == (502, b"bad gateway") and ct.startswith("text/plain")
    client.admin("POST", "/__faults", {"kind": "error", "status": 200, "path": "auth/",
                                       "reply": {"jwt": "", "token_type": "Bearer"}})
    status, _, raw = client.login()
    assert status == 200 and json.loads(raw)["jwt"] == ""
    client.admin("POST", "/__faults", {"kind": "latency", "delay_ms": 300})
    start = time.monotonic()
    assert client.send("GET", "/api/v1/vault/secrets?limit=200&skip=0", jwt=jwt)[0] == 200
    assert time.monotonic() - start >= 0.3
    client.admin("POST", "/__faults", {"kind": "drop"})
    with pytest.raises((ConnectionError, http.client.HTTPException, ssl.SSLError, OSError)):
        client.send("GET", "/api/v1/vault/secrets?limit=200&skip=0", jwt=jwt)
    assert client.admin("GET", "/__faults")["rules"] == []


def test_plain_http_is_refused_on_the_tls_port(ep):
    conn = http.client.HTTPConnection("127.0.0.1", ep.port, timeout=10)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("GET", "/")
        conn.getresponse().read()

"""Proves tools/gcp-test-endpoint faithful to Google's Secret Manager REST API
and Google's authentication servers with an independent client: Debian's
python3-google-auth (keystores-cloud.md §2.5): service_account.Credentials
doing the JWT-bearer exchange at the loopback token endpoint,
jwt.Credentials' self-signed JWTs (checked against the account's public key
and key id), compute_engine.Credentials against the loopback metadata server,
and AuthorizedSession (python3-requests) driving the REST resources of §2.3.

Nothing leaves loopback; the service accounts are dummies made up here.
"""
import base64
import importlib
import time

import pytest
import requests

google_auth = pytest.importorskip("google.auth")  # Debian's python3-google-auth
from google.auth import crypt, exceptions, jwt  # noqa: E402
from google.auth.transport.requests import AuthorizedSession, Request  # noqa: E402
from google.oauth2 import service_account  # noqa: E402

from gcp_helpers import (CLOUD_PLATFORM, PROJECT, PROJECT_NUMBER, ServiceAccount,  # noqa: E402
                         admin, raw_call, start_endpoint, state)

API_AUDIENCE = "https://secretmanager.googleapis.com/"
BASE = f"/v1/projects/{PROJECT}/secrets"


@pytest.fixture(scope="module")
def accounts(tmp_path_factory):
    d = tmp_path_factory.mktemp("sa")
    return ServiceAccount(d, "kes"), ServiceAccount(d, "other", pkcs1=True)


@pytest.fixture(scope="module")
def tls(cert_factory):
    return cert_factory.server(name="gcp-endpoint")


@pytest.fixture(scope="module")
def gcp(tmp_path_factory, tls, accounts):
    ep = start_endpoint(tmp_path_factory.mktemp("gcp"), tls, *accounts, metadata=True)
    yield ep
    ep.stop()


@pytest.fixture(autouse=True)
def trust_endpoint(tls, monkeypatch, gcp):
    # google-auth's token refresh uses its own requests.Session: trust via env.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls.ca)
    yield
    admin(gcp, "POST", "/__admin/clock", {"offset": 0})
    admin(gcp, "DELETE", "/__faults")


def session_for(creds, tls):
    s = AuthorizedSession(creds)
    s.verify = tls.ca
    return s


def sa_credentials(gcp, account, scopes=(CLOUD_PLATFORM,)):
    return service_account.Credentials.from_service_account_info(
        account.info(gcp.api + "/token"), scopes=list(scopes))


def self_signed(account, signing=None, kid=None, **claims):
    signer = crypt.RSASigner.from_string((signing or account).private_pem,
                                         kid or account.key_id)
    return jwt.Credentials(signer, account.email, account.email, API_AUDIENCE,
                           additional_claims=claims or None)


def test_service_account_token_exchange_and_crud(gcp, accounts, tls):
    s = session_for(sa_credentials(gcp, accounts[0]), tls)
    r = s.post(gcp.api + BASE, params={"secretId": "exchange-1"},
               json={"replication": {"automatic": {}}})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == f"projects/{PROJECT_NUMBER}/secrets/exchange-1"
    token_calls = [e for e in gcp.requests_log_tls() if e["service"] == "token"]
    assert token_calls and token_calls[-1]["status"] == 200
    assert "form-urlencoded" in token_calls[-1]["content_type"]

    data = base64.b64encode(b"stored value").decode()
    r = s.post(gcp.api + r.json()["name"].join(["/v1/", ":addVersion"]),
               json={"payload": {"data": data}})
    assert r.status_code == 200, r.text
    assert r.json()["name"].endswith("/secrets/exchange-1/versions/1")
    assert r.json()["state"] == "ENABLED"
    r = s.get(gcp.api + BASE + "/exchange-1/versions/1:access")
    assert r.status_code == 200
    assert base64.b64decode(r.json()["payload"]["data"]) == b"stored value"
    assert r.json()["payload"]["dataCrc32c"].isdigit()
    r = s.post(gcp.api + BASE, params={"secretId": "exchange-1"},
               json={"replication": {"automatic": {}}})
    assert r.status_code == 409
    assert r.json()["error"]["status"] == "ALREADY_EXISTS"
    assert s.delete(gcp.api + BASE + "/exchange-1").json() == {}
    r = s.get(gcp.api + BASE + "/exchange-1/versions/1:access")
    assert r.status_code == 404
    assert r.json()["error"] == {"code": 404, "status": "NOT_FOUND", "message":
                                 f"Secret [projects/{PROJECT_NUMBER}/secrets/exchange-1] "
                                 "not found or has no versions."}
    assert s.delete(gcp.api + BASE + "/exchange-1").status_code == 404


def test_crc32c_is_the_castagnoli_checksum(gcp, accounts, tls):
    # RFC 3720 B.4 check value: CRC-32C("123456789") = 0xE3069283.
    s = session_for(sa_credentials(gcp, accounts[0]), tls)
    s.post(gcp.api + BASE, params={"secretId": "crc"}, json={"replication": {"automatic": {}}})
    s.post(gcp.api + BASE + "/crc:addVersion",
           json={"payload": {"data": base64.b64encode(b"123456789").decode()}})
    r = s.get(gcp.api + BASE + "/crc/versions/latest:access")
    assert r.json()["payload"]["dataCrc32c"] == str(0xE3069283)
    s.delete(gcp.api + BASE + "/crc")


def test_token_exchange_rejects_a_wrong_signature(gcp, accounts):
    kes, other = accounts
    forged = kes.info(gcp.api + "/token")
    forged["private_key"] = other.private_pem  # kes's e-mail and key id, other's key
    creds = service_account.Credentials.from_service_account_info(forged, scopes=[CLOUD_PLATFORM])
    with pytest.raises(exceptions.RefreshError, match="Invalid JWT Signature"):
        creds.refresh(Request())


def test_listing_pages_with_next_page_token(gcp, accounts, tls):
    s = session_for(sa_credentials(gcp, accounts[1]), tls)  # PKCS#1 key
    names = ["page-%02d" % i for i in range(30)]
    for n in names:
        admin(gcp, "POST", "/__admin/secrets", {"project": PROJECT, "name": n, "data": "v"})
    seen, token, pages = [], None, 0
    while True:
        r = s.get(gcp.api + BASE, params={"pageToken": token} if token else {})
        assert r.status_code == 200
        doc = r.json()
        pages += 1
        seen += [x["name"].rsplit("/", 1)[1] for x in doc.get("secrets", [])]
        token = doc.get("nextPageToken")
        if not token:
            break
    assert pages == 2  # default page size 25
    assert [n for n in seen if n.startswith("page-")] == names
    r = s.get(gcp.api + BASE, params={"pageSize": 7})
    assert len(r.json()["secrets"]) == 7 and r.json()["nextPageToken"]


def test_self_signed_jwt_is_verified(gcp, accounts, tls):
    kes, other = accounts
    ok = session_for(self_signed(kes), tls)
    assert ok.get(gcp.api + BASE).status_code == 200
    # The scope form upstream's Go client sends (no audience needed).
    scoped = session_for(self_signed(kes, scope=CLOUD_PLATFORM), tls)
    assert scoped.get(gcp.api + BASE).status_code == 200
    for bad in (self_signed(kes, signing=other), self_signed(kes, kid="not-the-key-id")):
        r = session_for(bad, tls).get(gcp.api + BASE)
        assert r.status_code == 401
        assert r.json()["error"]["status"] == "UNAUTHENTICATED"
    log = [e for e in gcp.requests_log_tls() if e.get("auth") == "jwt"]
    assert log[-1]["auth_error"] in ("Invalid JWT Signature.", "unknown service account or key id")


def test_expired_self_signed_jwt_is_refused(gcp, accounts, tls):
    creds = self_signed(accounts[0])
    creds.refresh(Request())
    token = creds.token.decode() if isinstance(creds.token, bytes) else creds.token
    assert requests.get(gcp.api + BASE, headers={"Authorization": "Bearer " + token},
                        verify=tls.ca, timeout=30).status_code == 200
    admin(gcp, "POST", "/__admin/clock", {"offset": 4000})
    r = requests.get(gcp.api + BASE, headers={"Authorization": "Bearer " + token},
                     verify=tls.ca, timeout=30)
    assert r.status_code == 401


def test_empty_scope_is_refused(gcp, accounts, tls):
    # scopes: [""] (the docs' reference config): the token endpoint refuses
    # the grant; a self-signed JWT with it gets PERMISSION_DENIED.
    with pytest.raises(exceptions.RefreshError, match="invalid_scope"):
        sa_credentials(gcp, accounts[0], scopes=[""]).refresh(Request())
    r = session_for(self_signed(accounts[0], scope=""), tls).get(gcp.api + BASE)
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "Request had insufficient authentication scopes."


def test_unauthenticated_and_unknown_project(gcp, accounts, tls):
    status, body = raw_call(gcp, "GET", BASE, None)
    assert status == 401
    s = session_for(sa_credentials(gcp, accounts[0]), tls)
    r = s.get(gcp.api + "/v1/projects/nope/secrets")
    assert r.status_code == 403
    assert r.json()["error"]["status"] == "PERMISSION_DENIED"


def test_issued_tokens_expire(gcp, accounts, tls):
    creds = sa_credentials(gcp, accounts[0])
    creds.refresh(Request())
    r = requests.get(gcp.api + BASE, headers={"Authorization": "Bearer " + creds.token},
                     verify=tls.ca, timeout=30)
    assert r.status_code == 200
    admin(gcp, "POST", "/__admin/clock", {"offset": 3600})
    r = requests.get(gcp.api + BASE, headers={"Authorization": "Bearer " + creds.token},
                     verify=tls.ca, timeout=30)
    assert r.status_code == 401


def test_metadata_server_with_compute_engine_credentials(gcp, tls, monkeypatch):
    monkeypatch.setenv("GCE_METADATA_ROOT", "127.0.0.1:%d" % gcp.metadata_port)
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:%d" % gcp.metadata_port)
    from google.auth.compute_engine import _metadata
    importlib.reload(_metadata)  # reads the variables at import
    from google.auth import compute_engine
    importlib.reload(compute_engine.credentials)
    assert _metadata.ping(Request())
    creds = compute_engine.credentials.Credentials()
    s = session_for(creds, tls)
    r = s.get(gcp.api + BASE)
    assert r.status_code == 200, r.text
    assert creds.service_account_email.startswith("default-compute@")
    # The real server refuses requests without the header.
    r = requests.get("http://127.0.0.1:%d/computeMetadata/v1/instance/service-accounts/"
                     "default/token" % gcp.metadata_port, timeout=30)
    assert r.status_code == 403


def test_disabled_version_is_failed_precondition(gcp, accounts, tls):
    s = session_for(sa_credentials(gcp, accounts[0]), tls)
    s.post(gcp.api + BASE, params={"secretId": "dis"}, json={"replication": {"automatic": {}}})
    s.post(gcp.api + BASE + "/dis:addVersion", json={"payload": {"data": "AA=="}})
    assert s.post(gcp.api + BASE + "/dis/versions/1:disable").status_code == 200
    r = s.get(gcp.api + BASE + "/dis/versions/1:access")
    assert r.status_code == 400
    assert r.json()["error"]["status"] == "FAILED_PRECONDITION"
    assert state(gcp)["dis"]["versions"][0]["state"] == "DISABLED"
    s.delete(gcp.api + BASE + "/dis")


def test_faults_error_latency_and_drop(gcp, accounts, tls):
    s = session_for(sa_credentials(gcp, accounts[0]), tls)
    assert s.get(gcp.api + BASE).status_code == 200  # token fetched
    admin(gcp, "POST", "/__faults", {"kind": "error", "status": 503, "service": "secretmanager"})
    r = s.get(gcp.api + BASE)
    assert r.status_code == 503 and r.json()["error"]["status"] == "UNAVAILABLE"
    assert s.get(gcp.api + BASE).status_code == 200  # one use only
    admin(gcp, "POST", "/__faults", {"kind": "latency", "delay_ms": 300,
                                     "service": "secretmanager"})
    start = time.monotonic()
    assert s.get(gcp.api + BASE).status_code == 200
    assert time.monotonic() - start >= 0.3
    admin(gcp, "POST", "/__faults", {"kind": "drop", "service": "secretmanager"})
    with pytest.raises(requests.exceptions.ConnectionError):
        s.get(gcp.api + BASE)
    # The status probe's URL answers like Google's front end: 404.
    assert requests.get(gcp.api + "/", verify=tls.ca, timeout=30).status_code == 404

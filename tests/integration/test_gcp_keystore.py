"""The GCP Secret Manager keystore end to end: the real `kes` binary with a
`keystore: gcp: secretmanager:` config shaped like upstream's (kes-docs
gcp-secret-manager.md: project_id, endpoint, credentials block with the key
on one line), pointed at the loopback test endpoint (tools/gcp-test-endpoint,
proven with python3-google-auth in test_gcp_endpoint.py), which verifies
every self-signed JWT against the dummy service account's public key. What
KES stored is read back through the endpoint's admin view.

Nothing here reaches Google: loopback only, dummy credentials.
"""
import base64
import json
import time

import pytest

from cli_helpers import clean_env, migrate_round_trip
from gcp_helpers import (CLOUD_PLATFORM, PROJECT, PROJECT_NUMBER, ServiceAccount, admin,
                         start_endpoint, state)
from kes_harness import LEGACY_VALUE, UPSTREAM_VALUE, CreateTraffic, use_key


@pytest.fixture(scope="module")
def account(tmp_path_factory):
    return ServiceAccount(tmp_path_factory.mktemp("sa"), "kes")


@pytest.fixture(scope="module")
def tls(cert_factory):
    return cert_factory.server(name="gcp-keystore-endpoint")


@pytest.fixture
def gcp(tmp_path, tls, account, monkeypatch):
    for k in ("GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no gcloud file of the machine's user
    # Go (upstream) and kes-cpp take SSL_CERT_FILE as the trusted roots.
    monkeypatch.setenv("SSL_CERT_FILE", tls.ca)
    ep = start_endpoint(tmp_path / "gcp", tls, account, metadata=True)
    yield ep
    ep.stop()


def section(gcp, account=None, endpoint=None):
    s = {"project_id": PROJECT, "endpoint": endpoint or "127.0.0.1:%d" % gcp.port}
    if account is not None:
        s["credentials"] = account.config_credentials()
    return s


@pytest.fixture
def start_kes(keystore_kes):
    return lambda sec, **extra: keystore_kes({"gcp": {"secretmanager": sec}}, **extra)


def api_log(gcp):
    return [r for r in admin(gcp, "GET", "/__admin/requests")["requests"]
            if r.get("service") == "secretmanager"]


def test_upstream_shaped_config_serves_keys(gcp, account, start_kes):
    srv = start_kes(section(gcp, account))  # endpoint in gRPC form host:port
    assert "GCP SecretManager: Project=" + PROJECT in srv.stdout_text()
    r = srv.put("/v1/key/create/my-key")
    assert r.status_code == 200, r.text
    assert srv.put("/v1/key/create/my-key").json()["message"] == "key already exists"
    use_key(srv, "my-key")
    r = srv.get("/v1/key/list/*")
    assert r.status_code == 200 and "my-key" in r.text
    # One secret named like the key, the stored value in its version 1.
    stored = state(gcp)["my-key"]["versions"]
    assert len(stored) == 1
    assert base64.b64decode(base64.b64decode(stored[0]["data"]))  # base64 KeyVersion
    # Every call carried a self-signed JWT as upstream's gRPC client sends it.
    calls = api_log(gcp)
    assert calls and all(c["auth"] == "jwt" and c["status"] in (200, 404, 409) for c in calls)
    claims = calls[-1]["jwt"]
    assert claims["iss"] == claims["sub"] == account.email
    assert claims["scope"] == CLOUD_PLATFORM and "aud" not in claims
    assert claims["exp"] - claims["iat"] == 3600
    creates = [c for c in calls if c["method"] == "POST" and c["path"].endswith("/secrets")]
    assert creates[0]["query"] == {"secretId": "my-key"}
    add = [c for c in calls if c["path"].endswith(":addVersion")]
    # The version is added to the name ① answered (project number form).
    assert add[0]["path"] == f"/v1/projects/{PROJECT_NUMBER}/secrets/my-key:addVersion"
    assert srv.delete("/v1/key/delete/my-key").status_code == 200
    assert "my-key" not in state(gcp)
    assert srv.delete("/v1/key/delete/my-key").status_code == 404


def test_entries_written_by_upstream_are_read(gcp, account, start_kes):
    for name, value in (("upstream", UPSTREAM_VALUE), ("legacy", LEGACY_VALUE)):
        admin(gcp, "POST", "/__admin/secrets", {"project": PROJECT, "name": name, "data": value})
    srv = start_kes(section(gcp, account, endpoint="https://127.0.0.1:%d" % gcp.port))
    use_key(srv, "upstream")
    use_key(srv, "legacy")
    assert srv.get("/v1/key/list/").json() == {"names": ["legacy", "upstream"]}


def test_listing_follows_page_tokens(gcp, account, start_kes):
    for i in range(60):  # the endpoint's pages hold 25 secrets
        admin(gcp, "POST", "/__admin/secrets",
              {"project": PROJECT, "name": "k-%02d" % i, "data": UPSTREAM_VALUE})
    srv = start_kes(section(gcp, account))
    r = srv.get("/v1/key/list/k")
    assert r.status_code == 200, r.text
    assert r.json()["names"] == ["k-%02d" % i for i in range(60)]
    pages = [c for c in api_log(gcp) if c["method"] == "GET" and c["path"].endswith("/secrets")]
    assert len(pages) >= 3 and "pageToken" in pages[-1]["query"]


def test_failed_add_version_leaves_no_empty_secret(gcp, account, start_kes):
    srv = start_kes(section(gcp, account))
    admin(gcp, "POST", "/__faults", {"kind": "error", "status": 500, "method": "POST",
                                     "path": f"/v1/projects/{PROJECT_NUMBER}/secrets/half:"})
    r = srv.put("/v1/key/create/half")
    assert r.status_code == 502, r.text
    assert "half" not in state(gcp)  # upstream left a version-less secret behind
    assert srv.put("/v1/key/create/half").status_code == 200
    use_key(srv, "half")


def test_5xx_and_unreachable_backend_cached_keys_serve(gcp, account, start_kes):
    srv = start_kes(section(gcp, account), cache={"expiry": {"offline": "5m"}})
    assert srv.put("/v1/key/create/cached").status_code == 200
    use_key(srv, "cached")
    admin(gcp, "POST", "/__faults", {"kind": "error", "status": 500, "count": 1000,
                                     "service": "secretmanager"})
    assert srv.put("/v1/key/create/other").status_code == 502
    use_key(srv, "cached")
    admin(gcp, "DELETE", "/__faults")
    assert srv.put("/v1/key/create/other").status_code == 200
    gcp.stop()  # unreachable
    use_key(srv, "cached")
    assert srv.put("/v1/key/create/third").status_code >= 500


def test_get_retries_unavailable(gcp, account, start_kes):
    admin(gcp, "POST", "/__admin/secrets", {"project": PROJECT, "name": "busy",
                                            "data": UPSTREAM_VALUE})
    srv = start_kes(section(gcp, account))
    admin(gcp, "POST", "/__faults", {"kind": "error", "status": 503, "count": 1,
                                     "path": f"/v1/projects/{PROJECT}/secrets/busy/"})
    use_key(srv, "busy")  # AccessSecretVersion is retried on UNAVAILABLE
    access = [c for c in api_log(gcp) if c["path"].endswith("/busy/versions/1:access")]
    assert [c["status"] for c in access] == [503, 200]


def test_metadata_credentials_renewed_and_replaced_under_traffic(gcp, start_kes, monkeypatch):
    # No credentials block: ADC finds the metadata server (GCE_METADATA_HOST,
    # as Go's metadata client reads it). Tokens live 2 s: KES renews them
    # after three quarters of that (the endpoint honours them for 1.8 s
    # only, as skew and latency would); revoked ones are replaced at the
    # next 401.
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:%d" % gcp.metadata_port)
    admin(gcp, "POST", "/__admin/token-ttl", {"seconds": 2, "valid_for": 1.8})
    srv = start_kes(section(gcp))
    with CreateTraffic(srv) as traffic:
        time.sleep(3.5)
        before_revoke = len(admin(gcp, "GET", "/__admin/requests")["requests"])
        admin(gcp, "POST", "/__admin/revoke")
        time.sleep(1.5)
    assert not traffic.failures
    log = admin(gcp, "GET", "/__admin/requests")["requests"]
    fetches = [r for r in log if r["service"] == "metadata" and r["path"].endswith("/token")]
    assert len(fetches) >= 3
    assert fetches[0]["metadata_flavor"] == "Google"
    assert fetches[0]["query"] == {"scopes": CLOUD_PLATFORM}
    calls = [r for r in log if r["service"] == "secretmanager"]
    assert all(c["auth"] == "token" for c in calls), [c for c in calls if c["auth"] != "token"][:2]
    # Renewed before expiry: no call failed with 401 until the revocation.
    assert not [r for r in log[:before_revoke] if r["status"] == 401]
    assert sum(1 for c in calls if c["status"] == 401) <= 2


def test_application_default_credentials_file(gcp, account, start_kes, tmp_path, monkeypatch):
    key_file = tmp_path / "sa.json"
    key_file.write_text(json.dumps(account.info("https://oauth2.googleapis.com/token")))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    srv = start_kes(section(gcp))
    assert srv.put("/v1/key/create/adc").status_code == 200
    assert api_log(gcp)[-1]["jwt"]["iss"] == account.email
    srv.stop()
    key_file.write_text(json.dumps({"type": "authorized_user", "client_id": "x",
                                    "client_secret": "y", "refresh_token": "z"}))
    with pytest.raises(RuntimeError, match="unsupported type 'authorized_user'"):
        start_kes(section(gcp))


def test_incomplete_credentials_and_unreachable_endpoint_fail_start(gcp, account, start_kes):
    partial = section(gcp, account)
    partial["credentials"] = {"client_email": account.email}
    with pytest.raises(RuntimeError, match="gcp: no client ID provided"):
        start_kes(partial)
    bad_key = section(gcp, account)
    bad_key["credentials"]["private_key"] = "not a key"
    with pytest.raises(RuntimeError, match="gcp: invalid client private key"):
        start_kes(bad_key)
    port = gcp.port
    gcp.stop()
    with pytest.raises(RuntimeError, match="gcp: "):
        start_kes(section(gcp, account, endpoint="127.0.0.1:%d" % port))


def test_rejected_jwt_is_a_backend_error(gcp, account, start_kes, tmp_path):
    # A key the endpoint does not know for this account: every call 401s.
    stranger = ServiceAccount(tmp_path / "stranger", "kes")
    sec = section(gcp, account)
    sec["credentials"]["private_key"] = stranger.config_credentials()["private_key"]
    srv = start_kes(sec)
    assert srv.put("/v1/key/create/nope").status_code == 502
    calls = api_log(gcp)
    assert calls[-1]["status"] == 401 and calls[-1]["auth_error"] == "Invalid JWT Signature."


def test_migrate_fs_to_gcp_and_back(gcp, account, tls, tmp_path, certs, server_cert):
    def check_stored():
        stored = base64.b64decode(state(gcp)["legacy"]["versions"][0]["data"]).decode()
        assert stored == LEGACY_VALUE  # copied unchanged

    keystore = {"gcp": {"secretmanager": section(gcp, account)}}
    migrate_round_trip(tmp_path, certs, server_cert, keystore, check_stored,
                       env=clean_env(SSL_CERT_FILE=tls.ca))

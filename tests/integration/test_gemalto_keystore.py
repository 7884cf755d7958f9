"""The Thales CipherTrust / Gemalto KeySecure keystore end to end: the real
`kes` binary with a `keystore: gemalto: keysecure:` section shaped like
upstream's server-config.yaml, pointed at the loopback CipherTrust test
endpoint over TLS (tools/gemalto-test-endpoint, proven by
test_gemalto_endpoint.py). What KES stored is read back from the endpoint's
admin API, as the server holds it.

Loopback only; the refresh token is a dummy.
"""
import base64
import http.client
import json
import ssl
import time
from pathlib import Path

import pytest

from cli_helpers import migrate_round_trip
from kes_harness import LEGACY_VALUE, UPSTREAM_VALUE, CreateTraffic, tool_module, use_key

GemaltoTestEndpoint = tool_module("gemalto-test-endpoint").GemaltoTestEndpoint

DOMAIN = "kes-domain"


@pytest.fixture(scope="module")
def tls(cert_factory):
    return cert_factory.server("gemalto-keystore")


def start_endpoint(workdir, tls, *args):
    return GemaltoTestEndpoint(workdir, "--tls-cert", tls.cert, "--tls-key", tls.key,
                               "--domain", DOMAIN, *args)


@pytest.fixture
def ep(tmp_path, tls):
    with start_endpoint(tmp_path / "ep", tls) as e:
        e.ctx = ssl.create_default_context(cafile=tls.ca)
        yield e


def admin(ep, method, path, doc=None):
    return ep.admin(method, path, doc, context=ep.ctx)


def section(ep, tls, **tls_section):
    # As upstream's server-config.yaml writes it, `retry` included (not parsed).
    return {"keysecure": {"endpoint": ep.url,
                          "credentials": {"token": ep.refresh_token, "domain": DOMAIN,
                                          "retry": "15s"},
                          "tls": tls_section or {"ca": tls.ca}}}


def api(ep, method, path, doc=None):
    """A CipherTrust API call with a fresh JWT, as another client would make it."""
    conn = http.client.HTTPSConnection("127.0.0.1", ep.port, context=ep.ctx, timeout=30)
    conn.request("POST", "/api/v1/auth/tokens", json.dumps(
        {"grant_type": "refresh_token", "refresh_token": ep.refresh_token, "domain": DOMAIN}),
        {"Content-Type": "application/json"})
    jwt = json.loads(conn.getresponse().read())["jwt"]
    headers = {"Authorization": "Bearer " + jwt}
    if doc is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, json.dumps(doc) if doc is not None else None, headers)
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status


def put_secret(ep, name, material):
    assert api(ep, "POST", "/api/v1/vault/secrets",
               {"dataType": "seed", "material": material, "name": name}) == 201


def stored(ep):
    return {s["name"]: s for s in admin(ep, "GET", "/__admin/secrets")["secrets"]}


@pytest.fixture
def start_kes(keystore_kes):
    return lambda keystore, **extra: keystore_kes({"gemalto": keystore}, **extra)


def poll(cond, timeout=60):
    """Polls `cond` until it holds (a generous bound, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def test_upstream_config_serves_keys_stored_as_upstream_stores_them(ep, tls, start_kes):
    put_secret(ep, "upstream", UPSTREAM_VALUE)
    put_secret(ep, "legacy", LEGACY_VALUE)
    srv = start_kes(section(ep, tls))
    assert "Gemalto KeySecure: " + ep.url in srv.stdout_text()
    use_key(srv, "upstream")
    use_key(srv, "legacy")
    assert srv.put("/v1/key/create/my-key").status_code == 200
    assert srv.put("/v1/key/create/my-key").json()["message"] == "key already exists"
    use_key(srv, "my-key")
    entry = stored(ep)["my-key"]
    assert entry["dataType"] == "seed"
    assert base64.b64decode(entry["material"], validate=True)  # the stored value, unchanged
    assert srv.get("/v1/key/list/*").json() == {"names": ["legacy", "my-key", "upstream"]}
    assert srv.delete("/v1/key/delete/my-key").status_code == 200
    assert "my-key" not in stored(ep)
    assert srv.get("/v1/key/describe/my-key").status_code == 404
    log = admin(ep, "GET", "/__admin/requests")["requests"]
    login = next(r for r in log if r["path"] == "/api/v1/auth/tokens" and
                 r["body"]["refresh_token"] == ep.refresh_token)
    assert login["body"] == {"grant_type": "refresh_token", "refresh_token": ep.refresh_token,
                             "domain": DOMAIN}
    export = next(r for r in log if r["path"].endswith("/export"))
    assert export["query"] == {"type": "name"} and export["body_length"] == 0
    assert export["content_type"] is None and export["authorization"] == "Bearer"


def test_listing_pages_through_every_secret_and_survives_paging_faults(ep, tls, start_kes):
    names = sorted("k%03d" % i for i in range(230))
    admin(ep, "POST", "/__admin/secrets",
          {"secrets": [{"name": n, "material": UPSTREAM_VALUE} for n in names]})
    srv = start_kes(section(ep, tls))
    assert srv.get("/v1/key/list/*").json() == {"names": names}
    lists = [r for r in admin(ep, "GET", "/__admin/requests")["requests"]
             if r["method"] == "GET" and r["path"] == "/api/v1/vault/secrets"]
    assert [r["query"] for r in lists] == [{"limit": "200", "skip": "0"},
                                          {"limit": "200", "skip": "200"},
                                          {"limit": "200", "skip": "230"}]
    # The server skipped something else than asked: an error, not a wrong list.
    admin(ep, "POST", "/__faults", {"kind": "page", "skip": 5, "path": "vault/secrets"})
    r = srv.get("/v1/key/list/*")
    assert r.status_code == 502
    assert poll(lambda: "pagination is out-of-sync: tried to skip 0 but skipped 5"
                in srv.stderr_text())
    # An empty page while skip < total made upstream loop forever: it ends the walk.
    admin(ep, "POST", "/__faults", {"kind": "page", "empty": True, "path": "vault/secrets"})
    r = srv.get("/v1/key/list/*")
    assert r.status_code == 200 and r.json()["names"] in (None, [])


def test_server_errors_and_an_unreachable_server_while_cached_keys_serve(ep, tls, start_kes):
    srv = start_kes(section(ep, tls), cache={"expiry": {"offline": "5m"}})
    assert srv.put("/v1/key/create/cached").status_code == 200
    use_key(srv, "cached")
    # 503s beyond the retries: creation fails with the server's error.
    admin(ep, "POST", "/__faults", {"kind": "error", "status": 503, "count": 3, "path": "vault/",
                                    "code": 7, "codeDesc": "NCERRUnavailable: busy"})
    assert srv.put("/v1/key/create/x").status_code == 502
    # (the log quotes the message: its own quotes are escaped there)
    assert poll(lambda: "gemalto: failed to create key 'x': \\\"NCERRUnavailable: busy\\\" (7)"
                in srv.stderr_text())
    # One 500 and one dropped connection are retried away.
    admin(ep, "POST", "/__faults", {"kind": "error", "status": 500, "path": "vault/"})
    admin(ep, "POST", "/__faults", {"kind": "drop", "path": "vault/"})
    assert srv.put("/v1/key/create/y").status_code == 200
    use_key(srv, "cached")
    ep.stop()  # unreachable
    use_key(srv, "cached")
    assert srv.put("/v1/key/create/z").status_code in (502, 503, 504)


def test_jwt_renewal_while_traffic_flows_and_revoked_jwts_are_replaced(tmp_path, tls, start_kes):
    with start_endpoint(tmp_path / "short", tls, "--duration", "3") as short:
        short.ctx = ssl.create_default_context(cafile=tls.ca)
        srv = start_kes(section(short, tls))
        with CreateTraffic(srv) as traffic:
            # JWTs live 3 s: the loop logs in again every 1.5 s.
            assert poll(lambda: admin(short, "GET", "/__admin/state")["logins"] >= 3)
            log = admin(short, "GET", "/__admin/requests")["requests"]
            assert not [r for r in log if r["status"] == 401]
            # Once the loop holds a long JWT, every JWT is revoked: the next
            # call gets a 401 and logs in at once instead of failing.
            admin(short, "POST", "/__admin/duration", {"duration": 3600})
            logins = admin(short, "GET", "/__admin/state")["logins"]
            assert poll(lambda: admin(short, "GET", "/__admin/state")["logins"] > logins)
            admin(short, "POST", "/__admin/tokens/revoke")
            assert poll(lambda: [r for r in admin(short, "GET", "/__admin/requests")["requests"]
                                 if r["status"] == 401])
            seen = len(admin(short, "GET", "/__admin/requests")["requests"])
            assert poll(lambda: len(admin(short, "GET", "/__admin/requests")["requests"])
                        > seen + 5)
        assert not traffic.failures


def test_login_failures_fail_start_up_with_the_login_error(ep, tls, start_kes):
    bad = section(ep, tls)
    bad["keysecure"]["credentials"]["token"] = "wrong-refresh-token"
    with pytest.raises(RuntimeError, match=r"401 Unauthorized: NCERRUnauthorized: invalid "
                                           r"refresh token \(9\)"):
        start_kes(bad)
    admin(ep, "POST", "/__faults", {"kind": "error", "status": 200, "path": "auth/", "reply": {
        "jwt": "eyJx", "duration": 300, "token_type": "Basic"}})
    with pytest.raises(RuntimeError, match="unexpected auth token type 'Basic'"):
        start_kes(section(ep, tls))
    admin(ep, "POST", "/__faults", {"kind": "error", "status": 200, "path": "auth/", "reply": {
        "jwt": "eyJx", "duration": 0, "token_type": "Bearer"}})
    with pytest.raises(RuntimeError, match="invalid auth token expiry '0'"):
        start_kes(section(ep, tls))
    admin(ep, "POST", "/__faults", {"kind": "error", "status": 200, "path": "auth/", "reply": {
        "duration": 300, "token_type": "Bearer"}})
    with pytest.raises(RuntimeError, match="server response does not contain an auth token"):
        start_kes(section(ep, tls))


def test_custom_ca_only_and_a_non_pem_file_in_the_ca_directory(ep, tls, start_kes, tmp_path):
    ca_dir = tmp_path / "cas"
    ca_dir.mkdir()
    (ca_dir / "ca.pem").write_text(Path(tls.ca).read_text())
    srv = start_kes(section(ep, tls, ca=str(ca_dir)))
    assert srv.put("/v1/key/create/via-dir").status_code == 200
    (ca_dir / "notes.txt").write_text("not a certificate\n")
    with pytest.raises(RuntimeError, match="notes.txt' does not contain a valid X.509 "
                                           "PEM-encoded certificate"):
        start_kes(section(ep, tls, ca=str(ca_dir)))
    # Without tls.ca the system roots do not know the test CA: no login.
    keystore = section(ep, tls)
    del keystore["keysecure"]["tls"]
    with pytest.raises(RuntimeError):
        start_kes(keystore)


def test_delete_that_the_server_denies_reads_as_success_like_upstream(ep, tls, start_kes):
    srv = start_kes(section(ep, tls))
    assert srv.put("/v1/key/create/kept").status_code == 200
    admin(ep, "POST", "/__admin/deny", {"actions": ["DeleteKey"]})
    assert srv.delete("/v1/key/delete/kept").status_code == 200
    assert "kept" in stored(ep)


def test_migrate_fs_to_gemalto_and_back(ep, tls, tmp_path, certs, server_cert):
    def check_stored():
        assert stored(ep)["legacy"]["material"] == LEGACY_VALUE  # copied unchanged
        assert stored(ep)["upstream"]["material"] == UPSTREAM_VALUE

    migrate_round_trip(tmp_path, certs, server_cert, {"gemalto": section(ep, tls)},
                       check_stored)

"""The Fortanix DSM keystore end to end: the real `kes` binary with a
`keystore: fortanix: sdkms:` config shaped like upstream's (endpoint,
group_id, credentials.key, tls.ca), pointed at the loopback DSM test endpoint
over TLS (tools/fortanix-test-endpoint, proven by test_fortanix_endpoint.py).
What KES stored is read back through the endpoint's admin API, as DSM would
show it.

Nothing here reaches a real DSM: loopback only, dummy credentials.
"""
import base64
import json
import time
from pathlib import Path

import pytest

from cli_helpers import migrate_round_trip
from kes_harness import (LEGACY_VALUE, UPSTREAM_VALUE, CreateTraffic, spec_dir, tool_module,
                         use_key)

FortanixTestEndpoint = tool_module("fortanix-test-endpoint").FortanixTestEndpoint

GROUP = "kes-group"


@pytest.fixture(scope="module")
def dsm_cert(cert_factory):
    return cert_factory.server("fortanix-dsm")


@pytest.fixture
def dsm(tmp_path, dsm_cert):
    ep = FortanixTestEndpoint(tmp_path / "dsm", "--tls-cert", dsm_cert.cert, "--tls-key",
                              dsm_cert.key, "--group", GROUP)
    yield ep
    ep.stop()


def admin(dsm, dsm_cert, method, path, doc=None):
    import ssl
    return dsm.admin(method, path, doc, context=ssl.create_default_context(cafile=dsm_cert.ca))


def section(dsm, dsm_cert, **overrides):
    s = {"endpoint": dsm.url, "group_id": GROUP, "credentials": {"key": dsm.api_key},
         "tls": {"ca": dsm_cert.ca}}
    s.update(overrides)
    return s


@pytest.fixture
def start_kes(keystore_kes):
    return lambda sdkms, **extra: keystore_kes({"fortanix": {"sdkms": sdkms}}, **extra)



def stored(dsm, dsm_cert, name):
    for obj in admin(dsm, dsm_cert, "GET", "/__admin/objects")["objects"]:
        if obj["name"] == name:
            return obj
    return None


def seed(dsm, dsm_cert, names, value):
    """Stores `value` under each of `names` (or one name) as upstream would."""
    names = [names] if isinstance(names, str) else names
    admin(dsm, dsm_cert, "POST", "/__admin/objects", {"objects": [
        {"obj_type": "OPAQUE", "name": name, "key_ops": ["EXPORT", "APPMANAGEABLE"],
         "value": base64.b64encode(value.encode()).decode(), "enabled": True}
        for name in names]})


def test_upstream_shaped_config_serves_keys(dsm, dsm_cert, start_kes):
    srv = start_kes(section(dsm, dsm_cert))
    assert "Fortanix SDKMS: " + dsm.url in srv.stdout_text()
    # Connecting checked health and logged a session in and out.
    log = admin(dsm, dsm_cert, "GET", "/__admin/requests")["requests"]
    assert [(e["method"], e["path"], e["status"]) for e in log[:3]] == [
        ("GET", "/sys/v1/health", 204), ("POST", "/sys/v1/session/auth", 200),
        ("POST", "/sys/v1/session/terminate", 204)]
    assert srv.put("/v1/key/create/my-key").status_code == 200
    r = srv.put("/v1/key/create/my-key")
    assert r.status_code == 400 and r.json()["message"] == "key already exists"
    use_key(srv, "my-key")
    obj = stored(dsm, dsm_cert, "my-key")
    assert obj["obj_type"] == "OPAQUE" and obj["group_id"] == GROUP and obj["enabled"]
    assert obj["key_ops"] == ["EXPORT", "APPMANAGEABLE"]
    # The stored value is upstream's KeyVersion text (base64 protobuf).
    assert base64.b64decode(base64.b64decode(obj["value"]))[:1] == b"\x0a"
    r = srv.get("/v1/key/list/*")
    assert r.status_code == 200 and r.json()["names"] == ["my-key"]
    assert srv.delete("/v1/key/delete/my-key").status_code == 200
    assert stored(dsm, dsm_cert, "my-key") is None
    r = srv.get("/v1/key/describe/my-key")
    assert r.status_code == 404 and r.json()["message"] == "key does not exist"
    # Every crypto call carried the API key verbatim.
    log = admin(dsm, dsm_cert, "GET", "/__admin/requests")["requests"]
    assert {e["authorization"] for e in log if e["path"].startswith("/crypto/")} == {
        "Basic " + dsm.api_key}


def test_serves_entries_written_by_upstream(dsm, dsm_cert, start_kes):
    with open(spec_dir() / "vectors" / "kes-test-vectors.json") as f:
        vector = json.load(f)["derived_end_to_end"][0]
    given, derived = vector["input"], vector["derived"]
    seed(dsm, dsm_cert, "from-upstream", given["stored_value_text"])
    seed(dsm, dsm_cert, "legacy", LEGACY_VALUE)
    srv = start_kes(section(dsm, dsm_cert))
    r = srv.put("/v1/key/decrypt/from-upstream",
                json={"ciphertext": derived["ciphertext_b64"], "context": given["context_b64"]})
    assert r.status_code == 200, r.text
    assert r.json()["plaintext"] == given["plaintext_b64"]
    use_key(srv, "legacy")
    # A disabled object is an error, not a missing key.
    seed(dsm, dsm_cert, "disabled", UPSTREAM_VALUE)
    admin(dsm, dsm_cert, "POST", "/__admin/objects/enabled", {"name": "disabled", "enabled": False})
    assert srv.get("/v1/key/describe/disabled").status_code == 502
    assert srv.wait_for_output("key has been disabled and cannot be used until enabled again",
                               stream="stderr", timeout=10)


def test_listing_more_than_one_page_ends(dsm, dsm_cert, start_kes):
    # Upstream re-fetched page 1 forever once any key existed.
    names = ["k-%03d" % i for i in range(130)]
    seed(dsm, dsm_cert, names, UPSTREAM_VALUE)
    srv = start_kes(section(dsm, dsm_cert))
    r = srv.get("/v1/key/list/*", timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["names"] == names
    r = srv.get("/v1/key/list/k-12*", timeout=60)
    assert r.json()["names"] == names[120:130]
    pages = [e for e in admin(dsm, dsm_cert, "GET", "/__admin/requests")["requests"]
             if e["path"] == "/crypto/v1/keys" and e["method"] == "GET"]
    assert [p["query"].get("start") for p in pages[:2]] == [None, "k-099"]


def test_backend_down_cached_keys_keep_serving(dsm, dsm_cert, start_kes):
    srv = start_kes(section(dsm, dsm_cert), cache={"expiry": {"offline": "5m"}})
    assert srv.put("/v1/key/create/cached").status_code == 200
    use_key(srv, "cached")
    seed(dsm, dsm_cert, "uncached", UPSTREAM_VALUE)
    # 5xx on every call (after the retry client's re-sends): cached keys serve.
    admin(dsm, dsm_cert, "POST", "/__faults", {"kind": "error", "status": 503, "count": 1000,
                                               "path": "/crypto/"})
    use_key(srv, "cached")
    r = srv.put("/v1/key/generate/uncached", json={})
    assert r.status_code == 502, r.text
    sends = [e for e in admin(dsm, dsm_cert, "GET", "/__admin/requests")["requests"]
             if e["path"] == "/crypto/v1/keys/export" and e.get("status") == 503]
    assert len(sends) == 3  # one try and two re-sends
    admin(dsm, dsm_cert, "DELETE", "/__faults")
    use_key(srv, "uncached")
    # Unreachable: still serving from the cache, and /v1/ready says why.
    dsm.stop()
    use_key(srv, "cached")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and srv.get("/v1/ready").status_code != 504:
        time.sleep(0.5)
    assert srv.get("/v1/ready").status_code == 504


def test_calls_need_no_session_and_a_revoked_key_fails_later_calls(dsm, dsm_cert, start_kes):
    # DSM has no token to renew: the API key goes with every call, so traffic
    # keeps flowing long after the connect-time session was terminated.
    srv = start_kes(section(dsm, dsm_cert))
    with CreateTraffic(srv, pause=0) as traffic:
        time.sleep(1)
    assert not traffic.failures and traffic.created > 0
    state = admin(dsm, dsm_cert, "GET", "/__admin/state")
    assert state["sessions_issued"] == 1 and state["live_sessions"] == 0
    admin(dsm, dsm_cert, "POST", "/__admin/api-key", {"revoked": True})
    r = srv.put("/v1/key/create/after-revoke")
    assert r.status_code == 502, r.text
    assert srv.wait_for_output("Invalid API key", stream="stderr", timeout=10)
    assert dsm.api_key not in srv.stdout_text() + srv.stderr_text()


def test_start_up_failures(dsm, dsm_cert, start_kes, tmp_path):
    bad = dict(section(dsm, dsm_cert), credentials={
        "key": base64.b64encode(b"00000000-0000-4000-8000-00000000a99e:wrong").decode()})
    with pytest.raises(RuntimeError):
        start_kes(bad)
    # tls.ca is the only trust: a directory with a non-PEM file is refused.
    ca_dir = tmp_path / "cas"
    ca_dir.mkdir()
    (ca_dir / "ca.pem").write_text(Path(dsm_cert.ca).read_text())
    (ca_dir / "notes.txt").write_text("not a certificate")
    with pytest.raises(RuntimeError):
        start_kes(section(dsm, dsm_cert, tls={"ca": str(ca_dir)}))
    # Without tls.ca the system roots do not know the test CA.
    no_ca = section(dsm, dsm_cert)
    del no_ca["tls"]
    with pytest.raises(RuntimeError):
        start_kes(no_ca)
    # A CA directory of PEM files only works.
    (ca_dir / "notes.txt").unlink()
    srv = start_kes(section(dsm, dsm_cert, tls={"ca": str(ca_dir)}))
    assert srv.put("/v1/key/create/ok").status_code == 200


def test_migrate_fs_to_fortanix_and_back(dsm, dsm_cert, tmp_path, certs, server_cert):
    def check_stored():
        value = base64.b64decode(stored(dsm, dsm_cert, "legacy")["value"]).decode()
        assert value == LEGACY_VALUE  # copied unchanged

    migrate_round_trip(tmp_path, certs, server_cert,
                       {"fortanix": {"sdkms": section(dsm, dsm_cert)}}, check_stored)

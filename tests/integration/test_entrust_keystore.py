"""The Entrust KeyControl keystore end to end: the real `kes` binary with an
upstream-shaped `keystore: entrust: keycontrol:` config (config.md §3.10),
pointed over TLS at the loopback KeyControl test endpoint
(tools/entrust-test-endpoint, proven by test_entrust_endpoint.py). What KES
stored is read back through the endpoint's admin API, as KeyControl holds it.

Nothing here reaches a real KeyControl: loopback only, dummy credentials.
"""
import base64
import time
from pathlib import Path

import pytest
from cli_helpers import migrate_round_trip
from kes_harness import LEGACY_VALUE, UPSTREAM_VALUE, CreateTraffic, tool_module, use_key

EntrustTestEndpoint = tool_module("entrust-test-endpoint").EntrustTestEndpoint


class Endpoint:
    """The endpoint over HTTPS, and its admin API through a context that
    trusts the test CA."""

    def __init__(self, workdir, cert, *args):
        import ssl
        self.ep = EntrustTestEndpoint(workdir, "--tls-cert", cert.cert, "--tls-key", cert.key,
                                      *args)
        self.ca = cert.ca
        self.ctx = ssl.create_default_context(cafile=cert.ca)

    def admin(self, method, path, doc=None):
        return self.ep.admin(method, path, doc, context=self.ctx)

    def secrets(self):
        return self.admin("GET", "/__admin/secrets")[self.ep.box_id]

    def ops(self, op):
        return [r for r in self.admin("GET", "/__admin/requests")["requests"] if r["op"] == op]

    def section(self):
        """keystore.entrust.keycontrol as upstream's docs write it."""
        return {"keycontrol": {"endpoint": self.ep.url, "vault_id": self.ep.vault_id,
                               "box_id": self.ep.box_id,
                               "credentials": {"username": self.ep.username,
                                               "password": self.ep.password},
                               "tls": {"ca": self.ca}}}

    def stop(self):
        self.ep.stop()


@pytest.fixture
def endpoint(tmp_path, cert_factory):
    ep = Endpoint(tmp_path / "kc", cert_factory.server("keycontrol"), "--token-ttl", "4")
    yield ep
    ep.stop()


@pytest.fixture
def start_kes(keystore_kes):
    return lambda section, **extra: keystore_kes({"entrust": section}, **extra)


def test_upstream_config_starts_and_serves_keys(endpoint, start_kes):
    srv = start_kes(endpoint.section())
    assert "Entrust KeyControl: " + endpoint.ep.url in srv.stdout_text()
    assert srv.put("/v1/key/create/my-key").status_code == 200
    assert srv.put("/v1/key/create/my-key").json()["message"] == "key already exists"
    use_key(srv, "my-key")
    r = srv.get("/v1/key/list/*")
    assert r.status_code == 200 and "my-key" in r.text
    # Stored under its exact name; the secret's bytes are KES's stored value.
    stored = endpoint.secrets()["my-key"]["value"]
    assert base64.b64decode(stored)
    assert srv.delete("/v1/key/delete/my-key").status_code == 200
    assert "my-key" not in endpoint.secrets()
    assert srv.delete("/v1/key/delete/my-key").status_code == 404


def test_entries_stored_by_upstream_serve_and_list_skips_expired(endpoint, start_kes):
    endpoint.admin("POST", "/__admin/secrets", {"name": "upstream", "value": UPSTREAM_VALUE})
    endpoint.admin("POST", "/__admin/secrets", {"name": "legacy", "value": LEGACY_VALUE})
    endpoint.admin("POST", "/__admin/secrets", {"name": "gone", "value": LEGACY_VALUE,
                                                "expired": True})
    endpoint.admin("POST", "/__admin/secrets", {"secrets": [  # two server pages
        {"name": "page-%03d" % i, "value": UPSTREAM_VALUE} for i in range(260)]})
    srv = start_kes(endpoint.section())
    use_key(srv, "upstream")
    use_key(srv, "legacy")
    r = srv.get("/v1/key/list/*")
    assert r.status_code == 200, r.text
    names = r.json()["names"]
    assert len(names) == 262 and "gone" not in names and "" not in names  # upstream: 256 ""
    assert names == sorted(names)
    r = srv.get("/v1/key/list/page-25*")
    assert r.status_code == 200 and r.json()["names"] == ["page-25%d" % i for i in range(10)]


def test_backend_errors_and_outage_while_cached_keys_serve(endpoint, start_kes):
    srv = start_kes(endpoint.section(), cache={"expiry": {"offline": "5m"}})
    assert srv.put("/v1/key/create/cached").status_code == 200
    use_key(srv, "cached")
    endpoint.admin("POST", "/__faults", {"kind": "error", "status": 503, "count": 1000})
    assert srv.put("/v1/key/create/x").status_code == 502
    use_key(srv, "cached")
    endpoint.admin("DELETE", "/__faults")
    assert srv.put("/v1/key/create/x").status_code == 200
    endpoint.stop()  # unreachable
    use_key(srv, "cached")
    assert srv.put("/v1/key/create/y").status_code != 200


def test_token_renewed_and_replaced_while_traffic_flows(endpoint, start_kes):
    # Tokens live 4 s: renewed every ~2 s; then renewals fail and KES logs
    # in again (the unit tests cover a failing login too).
    srv = start_kes(endpoint.section())
    with CreateTraffic(srv) as traffic:
        deadline = time.monotonic() + 30
        while len(endpoint.ops("Renew")) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        endpoint.admin("POST", "/__faults",
                       {"kind": "error", "status": 400, "op": "Renew", "count": 1000})
        while len(endpoint.ops("Login")) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # traffic goes on with the new token
    assert len(endpoint.ops("Renew")) >= 3  # two renewals, one refused
    assert len(endpoint.ops("Login")) >= 3
    assert not traffic.failures
    assert "keycontrol: failed to renew auth token" in srv.stdout_text() + srv.stderr_text()


def test_migrate_fs_to_keycontrol_and_back(endpoint, tmp_path, certs, server_cert):
    def check_stored():
        assert endpoint.secrets()["legacy"]["value"] == LEGACY_VALUE  # copied unchanged

    migrate_round_trip(tmp_path, certs, server_cert, {"entrust": endpoint.section()},
                       check_stored)


def test_tls_ca_is_needed_and_added_to_system_roots(endpoint, start_kes, tmp_path):
    # Without tls.ca the test CA is unknown: start-up fails.
    section = endpoint.section()
    del section["keycontrol"]["tls"]
    with pytest.raises(RuntimeError):
        start_kes(section)
    # A directory of CAs works as well as a file.
    ca_dir = tmp_path / "cas"
    ca_dir.mkdir()
    (ca_dir / "ca.pem").write_text(Path(endpoint.ca).read_text())
    section = endpoint.section()
    section["keycontrol"]["tls"]["ca"] = str(ca_dir)
    srv = start_kes(section)
    assert srv.put("/v1/key/create/tls-key").status_code == 200

"""The Vault keystore end to end: the real `kes` binary with a `keystore:
vault:` config shaped like upstream's examples (spec examples/vault*.yml),
pointed at the loopback Vault test endpoint (tools/vault-test-endpoint, proven
with the spec's conformance_vault.py and python3-hvac). What KES stored is
read back with the endpoint's root token, as Vault would show it.

Nothing here reaches a real Vault: loopback only, dummy credentials.
"""
import importlib.util
import json
import os
import time
import urllib.request
from pathlib import Path

import pytest

from keystore_e2e import KesStarter, Traffic, migrate_fs_and_back, use_key
from kes_harness import LEGACY_VALUE, UPSTREAM_VALUE

SOURCE_DIR = Path(os.environ.get("KES_SOURCE_DIR", Path(__file__).resolve().parents[2]))
ENDPOINT_DIR = SOURCE_DIR / "tools" / "vault-test-endpoint"


def _load_launcher():
    # Loaded under its own name: the AWS endpoint has a `launcher` module too.
    import sys
    sys.path.insert(0, str(ENDPOINT_DIR))
    spec = importlib.util.spec_from_file_location("vault_launcher", ENDPOINT_DIR / "launcher.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.VaultTestEndpoint


VaultTestEndpoint = _load_launcher()



@pytest.fixture(autouse=True)
def no_vault_env(monkeypatch):
    for k in list(os.environ):
        if k.startswith("VAULT_"):
            monkeypatch.delenv(k)


@pytest.fixture
def vault(tmp_path):
    ep = VaultTestEndpoint(tmp_path / "vault", "--namespace", "ns1", "--login-ttl", "5s")
    yield ep
    ep.stop()


def vault_api(vault, method, path, doc=None, namespace=""):
    """A Vault API call with the root token; returns (status, decoded body)."""
    data = None if doc is None else json.dumps(doc).encode()
    req = urllib.request.Request(vault.url + "/v1/" + path, data=data, method=method)
    req.add_header("X-Vault-Token", vault.root_token)
    if namespace:
        req.add_header("X-Vault-Namespace", namespace)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
            return r.status, json.loads(body) if body else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def vault_section(vault, version="v2", namespace="ns1", auth="approle", tmp_path=None):
    creds = vault.credentials(namespace)
    section = {"endpoint": vault.url, "engine": "secret" if version == "v2" else "kv",
               "version": version, "prefix": "tenant-1", "status": {"ping": "1s"}}
    if namespace:
        section["namespace"] = namespace
    if auth == "approle":
        section["approle"] = {"engine": "approle", "id": creds["role_id"],
                              "secret": creds["secret_id"]}
    else:
        jwt = tmp_path / "sa-token"
        jwt.write_text(creds["kubernetes_jwt"])
        section["kubernetes"] = {"engine": "kubernetes", "role": creds["kubernetes_role"],
                                 "jwt": str(jwt)}
    return section


@pytest.fixture
def start_kes(tmp_path, certs, server_cert):
    starter = KesStarter(tmp_path, certs, server_cert)
    yield lambda section, **extra: starter.start({"vault": section}, **extra)
    starter.stop_all()


def test_upstream_vault_yml_shape_starts_and_serves_keys(vault, start_kes):
    # vault.yml: K/V v2, engine, namespace ns1, prefix tenant-1, AppRole.
    srv = start_kes(vault_section(vault))
    assert "Hashicorp Vault: " + vault.url in srv.stdout_text()
    assert srv.put("/v1/key/create/my-key").status_code == 200
    assert srv.put("/v1/key/create/my-key").json()["message"] == "key already exists"
    use_key(srv, "my-key")
    # Empty store before, one key now: both listings answer 200.
    r = srv.get("/v1/key/list/*")
    assert r.status_code == 200, r.text
    assert "my-key" in r.text
    status, body = vault_api(vault, "GET", "secret/data/tenant-1/my-key", namespace="ns1")
    assert status == 200
    assert set(body["data"]["data"]) == {"my-key"}  # one field named like the key
    assert srv.delete("/v1/key/delete/my-key").status_code == 200
    status, _ = vault_api(vault, "GET", "secret/data/tenant-1/my-key", namespace="ns1")
    assert status == 404


def test_empty_store_lists_empty(vault, start_kes):
    srv = start_kes(vault_section(vault, version="v1", namespace=""))
    r = srv.get("/v1/key/list/*")
    assert r.status_code == 200, r.text  # upstream answered 502


def test_kv_v1_kubernetes_login_serves_upstream_entries(vault, start_kes, tmp_path):
    for name, value in (("upstream", UPSTREAM_VALUE), ("legacy", LEGACY_VALUE)):
        status, _ = vault_api(vault, "PUT", "kv/tenant-1/" + name, {name: value})
        assert status == 204
    srv = start_kes(vault_section(vault, version="v1", namespace="", auth="kubernetes",
                                  tmp_path=tmp_path))
    use_key(srv, "upstream")
    use_key(srv, "legacy")
    assert srv.put("/v1/key/create/new-key").status_code == 200
    status, body = vault_api(vault, "GET", "kv/tenant-1/new-key")
    assert status == 200 and set(body["data"]) == {"new-key"}


def test_transit_encrypted_entries(vault, start_kes):
    section = vault_section(vault)
    section["transit"] = {"engine": "transit", "key": "kes"}
    srv = start_kes(section)
    assert srv.put("/v1/key/create/t-key").status_code == 200
    use_key(srv, "t-key")
    status, body = vault_api(vault, "GET", "secret/data/tenant-1/t-key", namespace="ns1")
    assert status == 200
    assert body["data"]["data"]["t-key"].startswith("vault:v1:")


def test_short_tokens_renewed_and_revoked_ones_replaced_under_traffic(vault, start_kes):
    # Login tokens live 5 s: below 30 s upstream's loop logs in again every
    # 3 s; revoking every token makes KES log in again at the next 403.
    srv = start_kes(vault_section(vault))
    with Traffic(srv) as traffic:
        time.sleep(7)
        accessors = {r["accessor"] for r in vault.requests_log() if r.get("accessor")}
        assert accessors
        for a in accessors:
            try:
                vault.admin("POST", "/__admin/tokens/revoke", {"accessor": a})
            except Exception:
                pass  # already expired
        time.sleep(3)
    assert not traffic.failures
    logins = [r for r in vault.requests_log() if r["path"].endswith("/login")]
    assert len(logins) >= 2


def create_answers(srv, name, status, logged="", timeout=60):
    """Polls key creation until it answers `status` and the error log holds
    `logged` (the seal poll runs every second; before it notices, a create
    fails on Vault's own 503 after the retries)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.put("/v1/key/create/" + name).status_code == status and logged in srv.stderr_text():
            return True
        time.sleep(0.2)
    return False


def test_sealed_5xx_and_unreachable_vault_cached_keys_serve(vault, start_kes):
    srv = start_kes(vault_section(vault), cache={"expiry": {"offline": "5m"}})
    assert srv.put("/v1/key/create/cached").status_code == 200
    use_key(srv, "cached")
    vault.admin("POST", "/__admin/seal")
    assert create_answers(srv, "x", 502, logged="vault: key store is sealed")
    use_key(srv, "cached")
    vault.admin("POST", "/__admin/unseal")
    vault.admin("POST", "/__faults", {"kind": "error", "status": 500, "count": 100})
    use_key(srv, "cached")
    vault.admin("DELETE", "/__faults")
    assert create_answers(srv, "x", 200)
    assert srv.get("/v1/key/describe/x").status_code == 200
    vault.stop()  # unreachable
    use_key(srv, "cached")


def test_migrate_fs_to_vault_and_back(vault, tmp_path, certs, server_cert):
    def stored_value(name):
        _, body = vault_api(vault, "GET", "secret/data/tenant-1/" + name, namespace="ns1")
        return body["data"]["data"][name]

    migrate_fs_and_back(tmp_path, certs, server_cert, {"vault": vault_section(vault)},
                        stored_value)


def test_tls_ca_directory_and_client_certificate(tmp_path, cert_factory, start_kes):
    # Vault over HTTPS that requires a client certificate: tls.ca is a
    # directory holding the CA, tls.cert/key the client certificate.
    srv_cert = cert_factory.server("vault-tls")
    client = cert_factory.client("vault-tls-client", ca=True)
    ep = VaultTestEndpoint(tmp_path / "vault-tls", "--tls-cert", srv_cert.cert, "--tls-key",
                           srv_cert.key, "--tls-client-ca", client.cert)
    try:
        assert ep.url.startswith("https://")
        ca_dir = tmp_path / "vault-cas" / "nested"
        ca_dir.mkdir(parents=True)
        (ca_dir / "ca.pem").write_text(Path(srv_cert.ca).read_text())
        section = vault_section(ep, namespace="")
        section["tls"] = {"ca": str(tmp_path / "vault-cas"), "cert": client.cert,
                          "key": client.key}
        srv = start_kes(section)
        assert srv.put("/v1/key/create/tls-key").status_code == 200
        use_key(srv, "tls-key")
        # Without the client certificate Vault refuses the handshake: start fails.
        del section["tls"]["cert"], section["tls"]["key"]
        with pytest.raises(RuntimeError):
            start_kes(section)
    finally:
        ep.stop()

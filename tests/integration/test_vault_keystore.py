"""The Vault keystore end to end: the real `kes` binary with a `keystore:
vault:` config shaped like upstream's examples (spec examples/vault*.yml),
pointed at the loopback Vault test endpoint (tools/vault-test-endpoint, proven
with the spec's conformance_vault.py and python3-hvac). What KES stored is
read back with the endpoint's root token, as Vault would show it.

Nothing here reaches a real Vault: loopback only, dummy credentials.
"""
import base64
import importlib.util
import json
import os
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from cli_helpers import clean_env, kes, out
from kes_harness import LEGACY_VALUE, UPSTREAM_VALUE, KesServer, base_config

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
    started = []

    def start(section, **extra):
        cfg = base_config(certs, server_cert, Path("/nonexistent"), **extra)
        cfg["keystore"] = {"vault": section}
        srv = KesServer(tmp_path / ("kes%d" % len(started)), cfg, server_cert, certs)
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()


def use_key(srv, name):
    ctx = base64.b64encode(b"ctx").decode()
    r = srv.put("/v1/key/generate/" + name, json={"context": ctx})
    assert r.status_code == 200, r.text
    dek = r.json()
    r = srv.put("/v1/key/decrypt/" + name, json={"ciphertext": dek["ciphertext"], "context": ctx})
    assert r.status_code == 200, r.text
    assert r.json()["plaintext"] == dek["plaintext"]
    return dek


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
    failures, done = [], threading.Event()

    def traffic():
        i = 0
        while not done.is_set():
            r = srv.put("/v1/key/create/traffic-%d" % i)
            if r.status_code != 200:
                failures.append(r.text)
            i += 1
            time.sleep(0.05)

    t = threading.Thread(target=traffic)
    t.start()
    try:
        time.sleep(7)
        accessors = {r["accessor"] for r in vault.requests_log() if r.get("accessor")}
        assert accessors
        for a in accessors:
            try:
                vault.admin("POST", "/__admin/tokens/revoke", {"accessor": a})
            except Exception:
                pass  # already expired
        time.sleep(3)
    finally:
        done.set()
        t.join()
    assert not failures
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
    src_dir = tmp_path / "src-keys"
    src_dir.mkdir()
    (src_dir / "upstream").write_text(UPSTREAM_VALUE)
    (src_dir / "legacy").write_text(LEGACY_VALUE)
    fs_cfg = tmp_path / "fs.yml"
    fs_cfg.write_text(yaml.safe_dump(base_config(certs, server_cert, src_dir)))
    vault_cfg = tmp_path / "vault.yml"
    cfg = base_config(certs, server_cert, Path("/nonexistent"))
    cfg["keystore"] = {"vault": vault_section(vault)}
    vault_cfg.write_text(yaml.safe_dump(cfg))
    back_dir = tmp_path / "back-keys"
    back_cfg = tmp_path / "back.yml"
    back_cfg.write_text(yaml.safe_dump(base_config(certs, server_cert, back_dir)))

    p = kes(["migrate", "--from", str(fs_cfg), "--to", str(vault_cfg)], clean_env())
    assert p.returncode == 0, p.stderr
    assert "Migrated      2 keys successfully!" in out(p)
    status, body = vault_api(vault, "GET", "secret/data/tenant-1/legacy", namespace="ns1")
    assert body["data"]["data"]["legacy"] == LEGACY_VALUE  # copied unchanged
    p = kes(["migrate", "--from", str(vault_cfg), "--to", str(back_cfg)], clean_env())
    assert p.returncode == 0, p.stderr
    assert (back_dir / "upstream").read_text() == UPSTREAM_VALUE
    assert (back_dir / "legacy").read_text() == LEGACY_VALUE


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


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_key_rotation_on_vault(vault, start_kes, version):
    """Key versions (rotation.md §4.1, §4.8) on Vault: each internal entry is
    one more secret with one field named after it; K/V v2's `cas: 0` makes
    concurrent rotations through two servers lose no version (409 for the
    losers); on K/V v1 (check-then-write) rotations of one server queue."""
    import concurrent.futures
    v2 = version == "v2"
    section = vault_section(vault, version=version, namespace="ns1" if v2 else "")
    a = start_kes(section)
    assert a.put("/v1/key/create/rot").status_code == 200
    old = use_key(a, "rot")
    r = a.put("/v1/key/rotate/rot")
    assert r.status_code == 200 and r.json()["version"] == "2", r.text
    assert use_key(a, "rot")["version"] == "2"
    r = a.put("/v1/key/decrypt/rot", json={"ciphertext": old["ciphertext"],
                                           "context": base64.b64encode(b"ctx").decode()})
    assert r.status_code == 200 and r.json()["plaintext"] == old["plaintext"]
    path = ("secret/data/tenant-1/" if v2 else "kv/tenant-1/") + "rot-v2-"
    status, body = vault_api(vault, "GET", path, namespace="ns1" if v2 else "")
    assert status == 200
    assert set(body["data"]["data"] if v2 else body["data"]) == {"rot-v2-"}
    assert a.get("/v1/key/list/*").json()["names"] == ["rot"]

    servers = [a, start_kes(section)] if v2 else [a]

    def one(i):
        return servers[i % len(servers)].put("/v1/key/rotate/rot")

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, range(8)))
    wins = sorted(int(r.json()["version"]) for r in results if r.status_code == 200)
    assert all(r.status_code == 409 and r.json()["message"] == "key version conflict"
               for r in results if r.status_code != 200)
    assert wins == list(range(3, 3 + len(wins))) and wins
    assert a.get("/v1/key/versions/rot").json()["latest_version"] == str(2 + len(wins))
    assert a.delete("/v1/key/delete/rot").status_code == 200
    status, _ = vault_api(vault, "GET", path, namespace="ns1" if v2 else "")
    assert status == 404

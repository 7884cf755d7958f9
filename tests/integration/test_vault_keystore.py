"""The Vault keystore end to end: the real `kes` binary with a `keystore:
vault:` config shaped like upstream's examples (spec examples/vault*.yml),
pointed at the loopback Vault test endpoint (tools/vault-test-endpoint, proven
with the spec's conformance_vault.py and python3-hvac). What KES stored is
read back with the endpoint's root token, as Vault would show it.

Nothing here reaches a real Vault: loopback only, dummy credentials.
"""
import base64
import json
import os
import socket
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from cli_helpers import clean_env, kes, out
from kes_harness import (LEGACY_VALUE, UPSTREAM_VALUE, CreateTraffic, base_config,
                         tool_module, use_key)

VaultTestEndpoint = tool_module("vault-test-endpoint").VaultTestEndpoint


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
def start_kes(keystore_kes):
    return lambda section, **extra: keystore_kes({"vault": section}, **extra)



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
    with CreateTraffic(srv) as traffic:
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


def test_migrate_between_fs_vault_and_aws_in_both_directions(vault, tmp_path, certs,
                                                             server_cert):
    # fs -> Vault -> AWS -> fs and fs -> AWS -> Vault -> fs: every direction
    # between the three; stored values (current and legacy formats) are
    # copied unchanged.
    aws_endpoint = tool_module("aws-test-endpoint").AwsTestEndpoint
    src_dir = tmp_path / "src-keys"
    src_dir.mkdir()
    (src_dir / "upstream").write_text(UPSTREAM_VALUE)
    (src_dir / "legacy").write_text(LEGACY_VALUE)
    (tmp_path / "aws-empty").write_text("")
    env = clean_env(AWS_EC2_METADATA_DISABLED="true",
                    AWS_CONFIG_FILE=str(tmp_path / "aws-empty"),
                    AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "aws-empty"))

    def config(name, keystore):
        cfg = base_config(certs, server_cert, keystore if isinstance(keystore, Path)
                          else Path("/nonexistent"))
        if not isinstance(keystore, Path):
            cfg["keystore"] = keystore
        path = tmp_path / (name + ".yml")
        path.write_text(yaml.safe_dump(cfg))
        return str(path)

    def vault_store(prefix):
        section = vault_section(vault)
        section["prefix"] = prefix
        return {"vault": section}

    def aws_store(ep):
        return {"aws": {"secretsmanager": {
            "endpoint": ep.url, "region": "us-east-1",
            "credentials": {"accesskey": "AKIDEXAMPLE",
                            "secretkey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}}}}

    def migrate(src, dst):
        p = kes(["migrate", "--from", src, "--to", dst], env, timeout=120)
        assert p.returncode == 0, p.stderr
        assert "Migrated      2 keys successfully!" in out(p)

    aws_a = aws_endpoint(tmp_path / "aws-a")
    aws_b = aws_endpoint(tmp_path / "aws-b")
    try:
        src = config("src", src_dir)
        migrate(src, config("vault-a", vault_store("tenant-a")))
        status, body = vault_api(vault, "GET", "secret/data/tenant-a/legacy", namespace="ns1")
        assert body["data"]["data"]["legacy"] == LEGACY_VALUE
        migrate(config("vault-a", vault_store("tenant-a")), config("aws-a", aws_store(aws_a)))
        migrate(config("aws-a", aws_store(aws_a)), config("back-a", tmp_path / "back-a"))

        migrate(src, config("aws-b", aws_store(aws_b)))
        migrate(config("aws-b", aws_store(aws_b)), config("vault-b", vault_store("tenant-b")))
        migrate(config("vault-b", vault_store("tenant-b")), config("back-b", tmp_path / "back-b"))
    finally:
        aws_a.stop()
        aws_b.stop()
    for back in ("back-a", "back-b"):
        assert (tmp_path / back / "upstream").read_text() == UPSTREAM_VALUE
        assert (tmp_path / back / "legacy").read_text() == LEGACY_VALUE


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


# ---- transport: VAULT_* variables, redirects, proxies, Unix sockets -----------------
def requests_on(vault, listener, method=None, path=None):
    return [r for r in vault.requests_log() if r["listener"] == listener
            and (method is None or r["method"] == method)
            and (path is None or r["path"].startswith("/v1/" + path))]


def test_standby_307_is_followed_to_the_active_node(tmp_path, start_kes, monkeypatch):
    # The configured endpoint is a standby with request forwarding off: it
    # answers 307 to the active node; login and writes are re-sent there
    # with their body and token.
    ep = VaultTestEndpoint(tmp_path / "vault-ha", "--standby-port", "0")
    try:
        section = vault_section(ep, version="v1", namespace="")
        section["endpoint"] = "http://127.0.0.1:%d" % ep.info["standby_port"]
        srv = start_kes(section)
        assert srv.put("/v1/key/create/ha-key").status_code == 200
        use_key(srv, "ha-key")
        assert requests_on(ep, "standby", "PUT", "auth/approle/login")[0]["status"] == 307
        assert requests_on(ep, "standby", "PUT", "kv/tenant-1/ha-key")[0]["status"] == 307
        writes = requests_on(ep, "main", "PUT", "kv/tenant-1/ha-key")
        assert writes and writes[0]["token"] and writes[0]["status"] in (200, 204)
        status, body = vault_api(ep, "GET", "kv/tenant-1/ha-key")
        assert status == 200 and set(body["data"]) == {"ha-key"}  # the body arrived
        # VAULT_DISABLE_REDIRECTS: the 307 is an error, start-up fails.
        monkeypatch.setenv("VAULT_DISABLE_REDIRECTS", "true")
        with pytest.raises(RuntimeError, match="Code: 307"):
            start_kes(section)
    finally:
        ep.stop()


def test_redirect_from_https_to_http_is_refused(tmp_path, cert_factory, start_kes):
    srv_cert = cert_factory.server("vault-redirect")
    ep = VaultTestEndpoint(tmp_path / "vault-redirect", "--tls-cert", srv_cert.cert,
                           "--tls-key", srv_cert.key, "--https-port", "0")
    try:
        ep.admin("POST", "/__faults", {
            "kind": "error", "status": 307, "path": "auth/approle/login", "body": False,
            "count": 10, "headers": {"Location": ep.url + "/v1/auth/approle/login"}})
        section = vault_section(ep, namespace="")
        section["endpoint"] = "https://127.0.0.1:%d" % ep.info["https_port"]
        section["tls"] = {"ca": srv_cert.ca}
        with pytest.raises(RuntimeError, match="redirect would cause protocol downgrade"):
            start_kes(section)
        assert requests_on(ep, "https", "PUT", "auth/approle/login")
        assert not requests_on(ep, "main")  # the secret_id never went out in clear text
    finally:
        ep.stop()


def test_unix_socket_endpoint(tmp_path, start_kes):
    sock = tmp_path / "vault.sock"
    ep = VaultTestEndpoint(tmp_path / "vault-unix", "--unix-socket", str(sock))
    try:
        section = vault_section(ep, version="v1", namespace="")
        section["endpoint"] = "unix://" + str(sock)
        srv = start_kes(section)
        assert srv.put("/v1/key/create/unix-key").status_code == 200
        use_key(srv, "unix-key")
        assert requests_on(ep, "unix", "PUT", "kv/tenant-1/unix-key")
        assert not requests_on(ep, "main", "PUT")
    finally:
        ep.stop()


def test_tls_server_name(tmp_path, cert_factory, start_kes, monkeypatch):
    # Vault's certificate names only vault.test; KES connects to 127.0.0.1.
    srv_cert = cert_factory.server("vault-sni", sans=("vault.test",))
    ep = VaultTestEndpoint(tmp_path / "vault-sni", "--tls-cert", srv_cert.cert,
                           "--tls-key", srv_cert.key, "--https-port", "0")
    try:
        section = vault_section(ep, version="v1", namespace="")
        section["endpoint"] = "https://127.0.0.1:%d" % ep.info["https_port"]
        section["tls"] = {"ca": srv_cert.ca}
        with pytest.raises(RuntimeError, match="certificate|SSL"):
            start_kes(section)
        monkeypatch.setenv("VAULT_TLS_SERVER_NAME", "vault.test")
        srv = start_kes(section)
        assert srv.put("/v1/key/create/sni-key").status_code == 200
        use_key(srv, "sni-key")
        # The Host header still names the address connected to.
        assert requests_on(ep, "https", "PUT", "kv/tenant-1/sni-key")[0]["host"] == \
            "127.0.0.1:%d" % ep.info["https_port"]
    finally:
        ep.stop()


def test_vault_proxy_variables(vault, start_kes, monkeypatch):
    # vault.invalid never resolves: only the proxy (the test endpoint, which
    # also serves absolute-form requests) can answer. VAULT_PROXY_ADDR wins
    # over VAULT_HTTP_PROXY, which points nowhere.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    monkeypatch.setenv("VAULT_HTTP_PROXY", "http://127.0.0.1:%d" % dead)
    monkeypatch.setenv("VAULT_PROXY_ADDR", vault.url)
    monkeypatch.setenv("NO_PROXY", "*")  # VAULT_* proxies win over the environment's
    section = vault_section(vault)
    section["endpoint"] = "http://vault.invalid:8200"
    srv = start_kes(section)
    assert "is plain HTTP" in srv.stdout_text() + srv.stderr_text()
    assert srv.put("/v1/key/create/proxied-key").status_code == 200
    use_key(srv, "proxied-key")
    sent = requests_on(vault, "main", "PUT", "secret/data/tenant-1/proxied-key")
    assert sent and all(r["proxied"] for r in sent)
    assert sent[0]["host"] == "vault.invalid:8200"


def test_vault_rate_limit(vault, start_kes, monkeypatch):
    # 4 requests a second, bursts of 1: six creates (a read and a write
    # each) cannot take less than ~2.75 s; unlimited they take milliseconds.
    monkeypatch.setenv("VAULT_RATE_LIMIT", "4:1")
    srv = start_kes(vault_section(vault))
    start = time.monotonic()
    for i in range(6):
        assert srv.put("/v1/key/create/limited-%d" % i).status_code == 200
    assert time.monotonic() - start >= 1.5
    monkeypatch.setenv("VAULT_RATE_LIMIT", "fast")
    with pytest.raises(RuntimeError, match='could not parse "VAULT_RATE_LIMIT"'):
        start_kes(vault_section(vault))


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

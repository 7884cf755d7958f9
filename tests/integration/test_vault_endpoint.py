"""Proves tools/vault-test-endpoint faithful to HashiCorp Vault with an
independent client, Debian's python3-hvac (plus raw `requests` where hvac
hides the wire): the spec's conformance_vault.py through run-conformance.sh,
KV v1/v2 CRUD and check-and-set, AppRole and Kubernetes login, token
renewal / revocation / expiry, transit, policies, namespaces, the sealed
state, fault injection and HTTPS with client certificates.

Nothing leaves loopback; every credential is a dummy made up by the test.
"""
import base64
import os
import re
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

hvac = pytest.importorskip("hvac")  # Debian's python3-hvac
import hvac.exceptions  # noqa: E402

from kes_harness import tool_module  # noqa: E402

SOURCE_DIR = Path(os.environ.get("KES_SOURCE_DIR", Path(__file__).resolve().parents[2]))
SPEC_DIR = Path(os.environ.get("KES_SPEC_DIR", SOURCE_DIR / "spec"))
ENDPOINT_DIR = SOURCE_DIR / "tools" / "vault-test-endpoint"

VaultTestEndpoint = tool_module("vault-test-endpoint").VaultTestEndpoint

NS = "team-a"
CAS_MISMATCH = ["check-and-set parameter did not match the current version"]


@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    with VaultTestEndpoint(tmp_path_factory.mktemp("vault"), "--namespace", NS) as ep:
        yield ep


@pytest.fixture
def root(vault):
    return hvac.Client(url=vault.url, token=vault.root_token)


def unique(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def raw(vault, method, path, token=None, namespace=None, **kw):
    headers = {"X-Vault-Request": "true"}
    if token:
        headers["X-Vault-Token"] = token
    if namespace:
        headers["X-Vault-Namespace"] = namespace
    return requests.request(method, f"{vault.url}/v1/{path}", headers=headers, timeout=30, **kw)


# ---- the spec's conformance script ------------------------------------------------
@pytest.mark.parametrize("namespace", ["", NS])
def test_conformance_suite_passes_through_the_ci_runner(namespace):
    """run-conformance.sh starts its own endpoint and runs conformance_vault.py with
    every group enabled (AppRole, expiry, transit, restricted token, seal/unseal)."""
    env = dict(os.environ, VAULT_NAMESPACE=namespace)
    out = subprocess.run(["bash", str(ENDPOINT_DIR / "run-conformance.sh"), str(SPEC_DIR)],
                         env=env, capture_output=True, text=True, timeout=300)
    summary = re.findall(r"^(\d+) passed, (\d+) failed, (\d+) skipped$", out.stdout, re.M)
    assert out.returncode == 0, out.stdout + out.stderr
    assert summary and int(summary[-1][0]) >= 73 and summary[-1][1:] == ("0", "0"), out.stdout


# ---- KV version 1 -----------------------------------------------------------------
def test_kv1_create_read_list_delete(root):
    folder = unique("kv1")
    kv = root.secrets.kv.v1
    kv.create_or_update_secret(path=f"{folder}/a", secret={"a": "1"}, mount_point="kv")
    kv.create_or_update_secret(path=f"{folder}/sub/b", secret={"b": "2"}, mount_point="kv")
    got = kv.read_secret(path=f"{folder}/a", mount_point="kv")
    assert got["data"] == {"a": "1"} and got["lease_duration"] == 768 * 3600
    assert kv.list_secrets(path=folder, mount_point="kv")["data"]["keys"] == ["a", "sub/"]
    kv.create_or_update_secret(path=f"{folder}/a", secret={"a": "overwritten"}, mount_point="kv")
    assert kv.read_secret(path=f"{folder}/a", mount_point="kv")["data"] == {"a": "overwritten"}
    kv.delete_secret(path=f"{folder}/a", mount_point="kv")
    kv.delete_secret(path=f"{folder}/sub/b", mount_point="kv")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret(path=f"{folder}/a", mount_point="kv")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.list_secrets(path=folder, mount_point="kv")


# ---- KV version 2 -----------------------------------------------------------------
def test_kv2_versions_cas_and_metadata(root):
    path = unique("kv2")
    kv = root.secrets.kv.v2
    assert kv.create_or_update_secret(path=path, secret={"v": "1"}, cas=0,
                                      mount_point="secret")["data"]["version"] == 1
    with pytest.raises(hvac.exceptions.InvalidRequest) as conflict:
        kv.create_or_update_secret(path=path, secret={"v": "x"}, cas=0, mount_point="secret")
    assert conflict.value.errors == CAS_MISMATCH
    assert kv.create_or_update_secret(path=path, secret={"v": "2"}, cas=1,
                                      mount_point="secret")["data"]["version"] == 2
    assert kv.read_secret_version(path=path, mount_point="secret")["data"]["data"] == {"v": "2"}
    assert kv.read_secret_version(path=path, version=1,
                                  mount_point="secret")["data"]["data"] == {"v": "1"}
    meta = kv.read_secret_metadata(path=path, mount_point="secret")["data"]
    assert meta["current_version"] == 2 and sorted(meta["versions"]) == ["1", "2"]
    # Soft delete, undelete, destroy.
    kv.delete_latest_version_of_secret(path=path, mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version(path=path, mount_point="secret")
    kv.undelete_secret_versions(path=path, versions=[2], mount_point="secret")
    assert kv.read_secret_version(path=path, mount_point="secret")["data"]["data"] == {"v": "2"}
    kv.destroy_secret_versions(path=path, versions=[1], mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version(path=path, version=1, mount_point="secret")
    kv.delete_metadata_and_all_versions(path=path, mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_metadata(path=path, mount_point="secret")


def test_kv2_destroyed_version_reads_404_with_metadata(vault, root):
    path = unique("kv2d")
    root.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": "1"}, mount_point="secret")
    root.secrets.kv.v2.destroy_secret_versions(path=path, versions=[1], mount_point="secret")
    r = raw(vault, "GET", f"secret/data/{path}", token=vault.root_token, params={"version": "1"})
    assert r.status_code == 404
    assert r.json()["data"]["data"] is None and r.json()["data"]["metadata"]["destroyed"] is True


def test_kv2_cas_required_and_max_versions(vault, root):
    path = unique("kv2c")
    kv = root.secrets.kv.v2
    kv.update_metadata(path=path, max_versions=2, cas_required=True, mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidRequest) as missing:
        kv.create_or_update_secret(path=path, secret={"v": "1"}, mount_point="secret")
    assert missing.value.errors == ["check-and-set parameter required for this call"]
    for n in range(3):
        kv.create_or_update_secret(path=path, secret={"v": str(n)}, cas=n, mount_point="secret")
    meta = kv.read_secret_metadata(path=path, mount_point="secret")["data"]
    assert meta["oldest_version"] == 2 and sorted(meta["versions"]) == ["2", "3"]
    r = raw(vault, "GET", f"secret/data/{path}", token=vault.root_token, params={"version": "1"})
    assert r.status_code == 404 and r.json() == {"errors": []}


def test_kv2_v1_style_path_answers_404_with_a_warning(vault):
    r = raw(vault, "GET", "secret/some-key", token=vault.root_token)
    assert r.status_code == 404 and "errors" not in r.json()
    assert "Invalid path for a versioned K/V secrets engine" in r.json()["warnings"][0]


# ---- tokens -------------------------------------------------------------------------
def test_token_create_lookup_renew_revoke(vault, root):
    created = root.auth.token.create(policies=["kes"], ttl="60s", explicit_max_ttl="90s")
    token = created["auth"]["client_token"]
    assert created["auth"]["lease_duration"] == 60 and token.startswith("hvs.")
    client = hvac.Client(url=vault.url, token=token)
    data = client.auth.token.lookup_self()["data"]
    assert data["policies"] == ["default", "kes"] and 0 < data["ttl"] <= 60
    assert data["explicit_max_ttl"] == 90
    # Renewing past the explicit max caps the TTL and says so.
    renewed = client.auth.token.renew_self(increment="600s")
    assert 0 < renewed["auth"]["lease_duration"] <= 90
    assert "capped accordingly" in renewed["warnings"][0]
    client.auth.token.revoke_self()
    with pytest.raises(hvac.exceptions.Forbidden):
        client.auth.token.lookup_self()


def test_token_expiry_follows_the_endpoint_clock(vault):
    token = vault.admin("POST", "/__admin/tokens", {"policies": ["kes"], "ttl": "30s"})
    client = hvac.Client(url=vault.url, token=token["client_token"])
    assert client.auth.token.lookup_self()["data"]["ttl"] <= 30
    vault.admin("POST", "/__admin/clock", {"advance_seconds": 31})
    try:
        r = raw(vault, "GET", "auth/token/lookup-self", token=token["client_token"])
        assert r.status_code == 403
        assert r.json() == {"errors": ["permission denied", "invalid token"]}
    finally:
        vault.admin("POST", "/__admin/clock", {"offset_seconds": 0})


def test_admin_ttl_and_revoke_change_a_live_token(vault):
    token = vault.admin("POST", "/__admin/tokens", {"policies": ["kes"], "ttl": "1h"})
    looked = vault.admin("POST", "/__admin/tokens/ttl",
                         {"accessor": token["accessor"], "ttl": 5, "max_ttl": 20})
    assert looked["ttl"] == 5 and looked["explicit_max_ttl"] == 20
    client = hvac.Client(url=vault.url, token=token["client_token"])
    assert 15 <= client.auth.token.renew_self()["auth"]["lease_duration"] <= 20
    vault.admin("POST", "/__admin/tokens/revoke", {"token": token["client_token"]})
    with pytest.raises(hvac.exceptions.Forbidden):
        client.auth.token.lookup_self()


def test_revoking_a_parent_revokes_its_children(vault, root):
    root.sys.create_or_update_policy(
        "token-maker", {"path": {"auth/token/create": {"capabilities": ["update"]}}})
    parent = root.auth.token.create(policies=["kes", "token-maker"],
                                    ttl="1h")["auth"]["client_token"]
    parent_client = hvac.Client(url=vault.url, token=parent)
    child = parent_client.auth.token.create(policies=["kes"], ttl="1h")["auth"]["client_token"]
    with pytest.raises(hvac.exceptions.InvalidRequest):  # not a subset of the parent's
        parent_client.auth.token.create(policies=["root"])
    root.auth.token.revoke(parent)
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=vault.url, token=child).auth.token.lookup_self()


def test_non_renewable_token_cannot_be_renewed(vault, root):
    token = root.auth.token.create(policies=["kes"], ttl="1h", renewable=False)
    client = hvac.Client(url=vault.url, token=token["auth"]["client_token"])
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        client.auth.token.renew_self()
    assert err.value.errors == ["lease is not renewable"]


def test_missing_and_unknown_tokens_are_denied(vault):
    r = raw(vault, "GET", "kv/x")
    assert r.status_code == 403 and r.json() == {"errors": ["permission denied"]}
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Cache-Control"] == "no-store"
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=vault.url, token="hvs.not-a-token").secrets.kv.v1.read_secret(
            path="x", mount_point="kv")


# ---- policies ------------------------------------------------------------------------
def test_policy_grants_exactly_its_capabilities(vault, root):
    name, folder = unique("pol"), unique("p")
    root.sys.create_or_update_policy(name, f'''
        # create new secrets and read them, but never overwrite or delete
        path "kv/{folder}/*" {{ capabilities = ["create", "read"] }}
        path "kv/{folder}/locked" {{ capabilities = ["deny"] }}
    ''')
    token = root.auth.token.create(policies=[name], ttl="1h")["auth"]["client_token"]
    client = hvac.Client(url=vault.url, token=token)
    kv = client.secrets.kv.v1
    kv.create_or_update_secret(path=f"{folder}/a", secret={"a": "1"}, mount_point="kv")
    assert kv.read_secret(path=f"{folder}/a", mount_point="kv")["data"] == {"a": "1"}
    r = raw(vault, "PUT", f"kv/{folder}/a", token=token, json={"a": "2"})  # update: denied
    assert r.status_code == 403
    assert r.json() == {"errors": ["1 error occurred:\n\t* permission denied\n\n"]}
    for forbidden in (lambda: kv.delete_secret(path=f"{folder}/a", mount_point="kv"),
                      lambda: kv.read_secret(path=f"{folder}/locked", mount_point="kv"),
                      lambda: kv.read_secret(path="other", mount_point="kv")):
        with pytest.raises(hvac.exceptions.Forbidden):
            forbidden()


def test_malformed_fields_answer_400(vault):
    r = raw(vault, "POST", "auth/token/create", token=vault.root_token, json={"num_uses": "x"})
    assert r.status_code == 400 and r.json()["errors"][0].startswith("invalid request")
    r = raw(vault, "PUT", "kv/x", token=vault.root_token, data=b"[1]")
    assert r.status_code == 400 and r.json()["errors"][0].startswith("failed to parse JSON")


def test_unmounted_path_answers_no_handler(vault):
    r = raw(vault, "GET", "nowhere/x", token=vault.root_token)
    assert r.status_code == 404
    assert r.json() == {"errors": ['no handler for route "nowhere/x". route entry not found.']}


def test_mounts_enabled_through_the_api(vault, root):
    path = unique("mnt")
    root.sys.enable_secrets_engine("kv", path=path, options={"version": "2"})
    assert root.sys.list_mounted_secrets_engines()[f"{path}/"]["options"] == {"version": "2"}
    root.secrets.kv.v2.create_or_update_secret(path="x", secret={"x": "y"}, mount_point=path)
    root.sys.disable_secrets_engine(path)
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v2.read_secret_version(path="x", mount_point=path)


# ---- AppRole and Kubernetes ------------------------------------------------------------
def test_approle_login_with_the_seeded_role(vault):
    creds = vault.credentials()
    client = hvac.Client(url=vault.url)
    auth = client.auth.approle.login(role_id=creds["role_id"], secret_id=creds["secret_id"])
    assert auth["auth"]["policies"] == ["default", "kes"]
    assert auth["auth"]["metadata"] == {"role_name": "kes"} and auth["auth"]["renewable"]
    client.secrets.kv.v2.create_or_update_secret(path=unique("ar"), secret={"a": "b"},
                                                 mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        client.auth.approle.login(role_id=creds["role_id"], secret_id="wrong")
    assert err.value.errors == ["invalid role or secret ID"]
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        client.auth.approle.login(role_id="unknown", secret_id=creds["secret_id"])
    assert err.value.errors == ["invalid role or secret ID"]


def test_approle_role_made_through_the_api(vault, root):
    role = unique("role")
    root.auth.approle.create_or_update_approle(role, token_policies=["kes"], token_ttl="45s",
                                               secret_id_num_uses=1)
    role_id = root.auth.approle.read_role_id(role)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(role)["data"]["secret_id"]
    client = hvac.Client(url=vault.url)
    auth = client.auth.approle.login(role_id=role_id, secret_id=secret_id)
    assert auth["auth"]["lease_duration"] == 45
    with pytest.raises(hvac.exceptions.InvalidRequest):  # the secret id had one use
        client.auth.approle.login(role_id=role_id, secret_id=secret_id)


def test_kubernetes_login(vault, root):
    creds = vault.credentials()
    client = hvac.Client(url=vault.url)
    auth = client.auth.kubernetes.login(role="kes", jwt=creds["kubernetes_jwt"])
    assert auth["auth"]["metadata"]["service_account_name"] == "kes"
    assert auth["auth"]["policies"] == ["default", "kes"]
    assert client.auth.token.lookup_self()["data"]["path"] == "auth/kubernetes/login"
    with pytest.raises(hvac.exceptions.Forbidden):
        client.auth.kubernetes.login(role="kes", jwt=creds["kubernetes_jwt"] + "x")
    other = vault.admin("POST", "/__admin/kubernetes/tokens",
                        {"service_account": "someone-else", "namespace": "default"})["jwt"]
    with pytest.raises(hvac.exceptions.Forbidden) as err:
        client.auth.kubernetes.login(role="kes", jwt=other)
    assert err.value.errors == ["service account name not authorized"]
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        client.auth.kubernetes.login(role="no-such-role", jwt=creds["kubernetes_jwt"])
    assert err.value.errors == ['invalid role name "no-such-role"']


# ---- transit -------------------------------------------------------------------------
def test_transit_round_trip_rotation_and_tampering(vault, root):
    name = unique("tk")
    transit = root.secrets.transit
    transit.create_key(name)
    value = base64.b64encode(b"a stored key value").decode()
    v1 = transit.encrypt_data(name, plaintext=value)["data"]["ciphertext"]
    assert v1.startswith("vault:v1:")
    assert transit.decrypt_data(name, ciphertext=v1)["data"]["plaintext"] == value
    transit.rotate_key(name)
    v2 = transit.encrypt_data(name, plaintext=value)["data"]["ciphertext"]
    assert v2.startswith("vault:v2:")
    assert transit.decrypt_data(name, ciphertext=v1)["data"]["plaintext"] == value
    blob = bytearray(base64.b64decode(v2[len("vault:v2:"):]))
    blob[-1] ^= 1
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        transit.decrypt_data(name, ciphertext="vault:v2:" + base64.b64encode(blob).decode())
    assert err.value.errors == ["cipher: message authentication failed"]
    transit.update_key_configuration(name, min_decryption_version=2)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        transit.decrypt_data(name, ciphertext=v1)
    # Encrypting under a missing key creates it (upsert), as Vault does.
    upsert = unique("tk")
    transit.encrypt_data(upsert, plaintext=value)
    assert transit.read_key(upsert)["data"]["latest_version"] == 1


# ---- namespaces ----------------------------------------------------------------------
def test_namespaces_separate_data_and_tokens(vault, root):
    in_ns = hvac.Client(url=vault.url, token=vault.root_token, namespace=NS)
    path = unique("ns")
    in_ns.secrets.kv.v2.create_or_update_secret(path=path, secret={"ns": "a"}, mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v2.read_secret_version(path=path, mount_point="secret")
    # A token from a login inside the namespace works there, not at the root.
    creds = vault.credentials(NS)
    login = hvac.Client(url=vault.url, namespace=NS)
    token = login.auth.approle.login(role_id=creds["role_id"],
                                     secret_id=creds["secret_id"])["auth"]["client_token"]
    assert token.endswith("." + token.rsplit(".", 1)[1]) and token.count(".") == 2
    assert login.secrets.kv.v2.read_secret_version(path=path, mount_point="secret")
    r = raw(vault, "GET", f"{NS}/secret/data/{path}", token=vault.root_token)  # path form
    assert r.status_code == 200 and r.json()["data"]["data"] == {"ns": "a"}
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=vault.url, token=token).secrets.kv.v2.read_secret_version(
            path=path, mount_point="secret")
    # The root namespace's AppRole credentials do not exist inside it.
    with pytest.raises(hvac.exceptions.InvalidRequest):
        login.auth.approle.login(role_id=vault.credentials()["role_id"],
                                 secret_id=vault.credentials()["secret_id"])


def test_health_is_root_only(vault):
    r = raw(vault, "GET", "sys/health", namespace=NS)
    assert r.status_code == 404 and r.json() == {"errors": ["unsupported path"]}
    assert raw(vault, "GET", "sys/health").status_code == 200
    vault.admin("POST", "/__admin/health", {"root_paths_ignore_namespace": True})
    try:
        assert raw(vault, "GET", "sys/health", namespace=NS).status_code == 200
    finally:
        vault.admin("POST", "/__admin/health", {"root_paths_ignore_namespace": False})


def test_namespaces_created_through_the_api(vault, root):
    name = unique("api-ns")
    root.sys.create_namespace(name)
    child = hvac.Client(url=vault.url, token=vault.root_token, namespace=name)
    child.sys.enable_secrets_engine("kv", path="kv", options={"version": "1"})
    child.secrets.kv.v1.create_or_update_secret(path="x", secret={"x": "1"}, mount_point="kv")
    assert child.secrets.kv.v1.read_secret(path="x", mount_point="kv")["data"] == {"x": "1"}
    r = raw(vault, "GET", "kv/x", token=vault.root_token, namespace="no-such-namespace")
    assert r.status_code == 404


# ---- health, seal ----------------------------------------------------------------------
def test_sealed_endpoint_answers_503(vault, root):
    vault.admin("POST", "/__admin/seal")
    try:
        with pytest.raises(hvac.exceptions.VaultDown) as err:
            root.secrets.kv.v1.read_secret(path="x", mount_point="kv")
        assert err.value.errors == ["Vault is sealed"]
        assert root.sys.read_health_status(method="GET").status_code == 503
        assert root.sys.read_health_status(method="HEAD").status_code == 503
        assert root.sys.read_seal_status()["sealed"] is True
        # Unseal through the API with the unseal key, as an operator would.
        assert root.sys.submit_unseal_key(vault.unseal_key)["sealed"] is False
    finally:
        vault.admin("POST", "/__admin/unseal")
    root.sys.seal()  # the root token may seal through the API too
    try:
        assert root.sys.is_sealed()
    finally:
        vault.admin("POST", "/__admin/unseal")


def test_health_codes_for_standby_and_uninitialized(vault):
    try:
        vault.admin("POST", "/__admin/health", {"standby": True})
        assert raw(vault, "GET", "sys/health").status_code == 429
        assert raw(vault, "GET", "sys/health", params={"standbyok": "true"}).status_code == 200
        assert raw(vault, "GET", "sys/health", params={"standbycode": "299"}).status_code == 299
        vault.admin("POST", "/__admin/health", {"standby": False, "initialized": False})
        r = raw(vault, "GET", "sys/health")
        assert r.status_code == 501 and r.json()["initialized"] is False
    finally:
        vault.admin("POST", "/__admin/health", {"standby": False, "initialized": True})


# ---- faults -----------------------------------------------------------------------------
def test_fault_error_latency_and_drop(vault, root):
    vault.admin("POST", "/__faults", {"kind": "error", "status": 500, "path": "kv/",
                                      "retry_after": 2})
    r = raw(vault, "GET", "kv/x", token=vault.root_token)
    assert r.status_code == 500 and r.json() == {"errors": ["internal error"]}
    assert r.headers["Retry-After"] == "2"
    assert raw(vault, "GET", "kv/x", token=vault.root_token).status_code == 404  # one use
    vault.admin("POST", "/__faults", {"kind": "error", "status": 502, "body": False})
    with pytest.raises(hvac.exceptions.BadGateway):
        root.secrets.kv.v1.read_secret(path="x", mount_point="kv")
    vault.admin("POST", "/__faults", {"kind": "latency", "delay_ms": 700, "path": "sys/health"})
    start = time.monotonic()
    assert raw(vault, "GET", "sys/health").status_code == 200
    vault.admin("POST", "/__admin/health", {"root_paths_ignore_namespace": True})
    try:
        assert raw(vault, "GET", "sys/health", namespace=NS).status_code == 200
    finally:
        vault.admin("POST", "/__admin/health", {"root_paths_ignore_namespace": False})
    assert time.monotonic() - start >= 0.6
    target = f"{vault.url}/v1/sys/seal-status"
    vault.admin("POST", "/__faults", {"kind": "error", "status": 307, "body": False,
                                      "path": "sys/health", "headers": {"Location": target}})
    r = requests.get(f"{vault.url}/v1/sys/health", timeout=30)  # follows the redirect
    assert r.status_code == 200 and r.json()["type"] == "shamir"
    vault.admin("POST", "/__faults", {"kind": "drop", "method": "PUT"})
    with pytest.raises(requests.exceptions.ConnectionError):
        raw(vault, "PUT", "kv/x", token=vault.root_token, json={"x": "1"})
    assert vault.admin("GET", "/__faults") == {"rules": []}
    log = vault.requests_log()
    assert [e.get("fault") for e in log[-6:] if e.get("fault")] == ["error", "latency", "error",
                                                                     "drop"]


# ---- HTTPS with client certificates -------------------------------------------------------
def test_https_with_required_client_certificate(tmp_path, cert_factory):
    server = cert_factory.server("vault-server")
    client = cert_factory.chain_client("vault-client")
    with VaultTestEndpoint(tmp_path, "--tls-cert", server.cert, "--tls-key", server.key,
                           "--tls-client-ca", client.ca) as ep:
        assert ep.url.startswith("https://")
        c = hvac.Client(url=ep.url, token=ep.root_token, verify=server.ca,
                        cert=(client.cert, client.key))
        c.secrets.kv.v1.create_or_update_secret(path="tls", secret={"t": "1"}, mount_point="kv")
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(ep.url + "/v1/sys/health", verify=server.ca, timeout=30)
        ctx = ssl.create_default_context(cafile=server.ca)
        ctx.load_cert_chain(client.cert, client.key)
        log = ep.admin("GET", "/__admin/requests", context=ctx)["requests"]
        assert any(e["path"] == "/v1/kv/tls" and "CN=vault-client" in (e["client_cert"] or "")
                   .replace("commonName", "CN") for e in log)


# ---- response wrapping (what VAULT_WRAP_TTL does to every request) ------------------------
def test_wrapped_answers_hide_the_data_until_unwrapped(vault, root):
    path = unique("wrap")
    root.secrets.kv.v1.create_or_update_secret(path=path, secret={"w": "1"}, mount_point="kv")
    r = requests.get(f"{vault.url}/v1/kv/{path}", timeout=30,
                     headers={"X-Vault-Token": vault.root_token, "X-Vault-Wrap-TTL": "60s"})
    doc = r.json()
    assert r.status_code == 200 and doc["data"] is None and doc["wrap_info"]["ttl"] == 60
    wrapping = doc["wrap_info"]["token"]
    unwrapped = hvac.Client(url=vault.url, token=wrapping).sys.unwrap()
    assert unwrapped["data"] == {"w": "1"}
    with pytest.raises(hvac.exceptions.Forbidden):  # single use
        hvac.Client(url=vault.url, token=wrapping).sys.unwrap()

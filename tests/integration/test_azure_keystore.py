"""The Azure Key Vault keystore end to end: the real `kes` binary with a
`keystore: azure: keyvault:` config shaped like upstream's, pointed at the
loopback Azure test endpoint (tools/azure-test-endpoint: Key Vault, an Azure
AD authority and IMDS on one TLS port, proven with Debian's python3-azure in
test_azure_endpoint.py). Key Vault's bearer challenge needs the vault host to
end with "." + the challenge resource's host: the vault is addressed as
kv.localhost, the resource is https://localhost:<port>.

Nothing here reaches Azure: loopback only, dummy credentials.
"""
import time

import pytest

from cli_helpers import clean_env, migrate_round_trip
from kes_harness import LEGACY_VALUE, UPSTREAM_VALUE, CreateTraffic, tool_module, use_key

AzureTestEndpoint = tool_module("azure-test-endpoint").AzureTestEndpoint
MI_CLIENT = "22222222-2222-2222-2222-2222222222a1"


@pytest.fixture(scope="module")
def endpoint_cert(cert_factory):
    return cert_factory.server("azure-endpoint", sans=("127.0.0.1", "localhost", "kv.localhost"))


@pytest.fixture
def azure(tmp_path, monkeypatch, endpoint_cert):
    for k in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
              "AZURE_FEDERATED_TOKEN_FILE", "AZURE_POD_IDENTITY_AUTHORITY_HOST"):
        monkeypatch.delenv(k, raising=False)
    ep = AzureTestEndpoint(tmp_path / "azure", "--managed-identity", MI_CLIENT,
                           "--tls-cert", endpoint_cert.cert, "--tls-key", endpoint_cert.key,
                           "--tls-ca", endpoint_cert.ca)
    # Go's system roots honour SSL_CERT_FILE, and so does kes; the authority
    # host is the SDK's own AZURE_AUTHORITY_HOST.
    monkeypatch.setenv("SSL_CERT_FILE", ep.ca)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", ep.url + "/")
    yield ep
    ep.stop()


def secret_section(ep):
    return {"endpoint": ep.vault_url,
            "credentials": {"tenant_id": ep.info["tenant_id"], "client_id": ep.info["client_id"],
                            "client_secret": ep.info["client_secret"]}}


@pytest.fixture
def start_kes(keystore_kes):
    return lambda section, **extra: keystore_kes({"azure": {"keyvault": section}}, **extra)


def stored(ep, name):
    return [v["value"] for v in ep.admin("GET", "/__admin/secrets/" + name)["versions"]]


def logged(srv, text):
    """The error log gets `text` (it is written after the answer)."""
    return srv.wait_for_output(text, stream="stderr", timeout=30)


def kv_requests(ep):
    return [r for r in ep.requests_log() if r["service"] == "keyvault"]


def test_client_secret_config_serves_keys_through_the_challenge(azure, start_kes):
    srv = start_kes(secret_section(azure))
    assert "Azure KeyVault: " + azure.vault_url in srv.stdout_text()
    assert srv.put("/v1/key/create/my-key").status_code == 200
    assert srv.put("/v1/key/create/my-key").json()["message"] == "key already exists"
    use_key(srv, "my-key")
    r = srv.get("/v1/key/list/*")
    assert r.status_code == 200 and "my-key" in r.text, r.text
    # One secret named like the key, one version holding the stored value.
    assert len(stored(azure, "my-key")) == 1 and stored(azure, "my-key")[0]
    reqs = kv_requests(azure)
    # The first request learns the scope: no token and no body.
    assert not reqs[0]["authorization"] and reqs[0]["body_bytes"] == 0 and reqs[0]["status"] == 401
    assert all(r["authorization"] for r in reqs[1:])
    assert {r["api_version"] for r in reqs if r.get("authorized")} == {"7.5"}
    issued = azure.admin("GET", "/__admin/state")["issued"]
    assert [i["how"] for i in issued] == ["client_secret"]  # cached, not fetched per call
    assert issued[0]["scope"] == azure.info["resource"] + "/.default"
    # Delete soft-deletes and purges: the name is free again at once.
    assert srv.delete("/v1/key/delete/my-key").status_code == 200
    assert azure.admin("GET", "/__admin/state")["deleted"] == []
    assert srv.get("/v1/key/describe/my-key").status_code == 404
    assert srv.delete("/v1/key/delete/my-key").status_code == 200  # missing: success (upstream)
    assert srv.put("/v1/key/create/my-key").status_code == 200


def test_entries_written_by_upstream_and_the_oldest_version_wins(azure, start_kes):
    for name, value in (("upstream", UPSTREAM_VALUE), ("legacy", LEGACY_VALUE)):
        azure.admin("POST", "/__admin/secrets/" + name, {"value": value})
    # Two replicas raced: the second "create" added a newer version.
    azure.admin("POST", "/__admin/secrets/raced", {"value": UPSTREAM_VALUE, "created": 1000})
    azure.admin("POST", "/__admin/secrets/raced", {"value": "not a key", "created": 2000})
    srv = start_kes(secret_section(azure))
    use_key(srv, "upstream")
    use_key(srv, "legacy")
    use_key(srv, "raced")
    # A disabled secret is an error, not a missing key (Key Vault: 403).
    azure.admin("POST", "/__admin/secrets/off", {"value": UPSTREAM_VALUE, "enabled": False})
    r = srv.get("/v1/key/describe/off")
    assert r.status_code == 502, r.text
    assert logged(srv, "Operation get is not allowed on a disabled secret. (SecretDisabled)")
    # Names Key Vault cannot hold are refused before any request.
    assert srv.put("/v1/key/create/a_b").status_code == 502
    assert logged(srv, "Key Vault secret names consist of")
    assert not [r for r in kv_requests(azure) if "a_b" in r["path"]]


def test_soft_deleted_names_are_purged_on_create_and_delete(azure, start_kes):
    srv = start_kes(secret_section(azure))
    assert srv.put("/v1/key/create/k1").status_code == 200
    # Purge protection: the secret stays soft-deleted and Delete reports it.
    azure.admin("POST", "/__admin/settings", {"purge_protection": True})
    assert srv.delete("/v1/key/delete/k1").status_code == 502
    assert logged(srv, "failed to purge deleted secret")
    assert azure.admin("GET", "/__admin/state")["deleted"] == ["k1"]
    r = srv.put("/v1/key/create/k1")
    assert r.status_code == 502, r.text
    # Protection off, and each delete stays "in progress" for a moment: create
    # purges the deleted name, waiting out ObjectIsBeingDeleted.
    azure.admin("POST", "/__admin/settings", {"purge_protection": False, "deleting_seconds": 1.0})
    assert srv.put("/v1/key/create/k1").status_code == 200, srv.stderr_text()
    use_key(srv, "k1")
    assert srv.delete("/v1/key/delete/k1").status_code == 200
    conflicts = [r for r in kv_requests(azure)
                 if r["path"] == "/deletedsecrets/k1" and r["status"] == 409]
    assert conflicts  # the purge met ObjectIsBeingDeleted and retried
    state = azure.admin("GET", "/__admin/state")
    assert state["deleted"] == [] and "k1" not in state["secrets"]


def test_managed_identity_through_imds(azure, start_kes, monkeypatch):
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", azure.url)  # test-only knob
    srv = start_kes({"endpoint": azure.vault_url, "managed_identity": {"client_id": MI_CLIENT}})
    assert srv.put("/v1/key/create/mi-key").status_code == 200
    use_key(srv, "mi-key")
    imds = [r for r in azure.requests_log() if r["service"] == "imds"]
    assert imds and all(r["metadata"] == "true" for r in imds)
    assert imds[0]["query"]["client_id"] == MI_CLIENT
    assert imds[0]["query"]["resource"] == azure.info["resource"]
    # An identity IMDS does not know: key operations fail, the server stays up.
    azure.admin("POST", "/__admin/tokens/revoke")
    srv2 = start_kes({"endpoint": azure.vault_url, "managed_identity": {"client_id": "unknown"}})
    assert srv2.put("/v1/key/create/other").status_code == 502
    assert logged(srv2, "Identity not found")


def test_default_chain_environment_credential(azure, start_kes, monkeypatch):
    monkeypatch.setenv("AZURE_TENANT_ID", azure.info["tenant_id"])
    monkeypatch.setenv("AZURE_CLIENT_ID", azure.info["client_id"])
    monkeypatch.setenv("AZURE_CLIENT_SECRET", azure.info["client_secret"])
    srv = start_kes({"endpoint": azure.vault_url})
    assert srv.put("/v1/key/create/env-key").status_code == 200
    use_key(srv, "env-key")


def test_default_chain_workload_identity(azure, start_kes, monkeypatch, tmp_path):
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(azure.info["federated_token"] + "\n")
    monkeypatch.setenv("AZURE_TENANT_ID", azure.info["tenant_id"])
    monkeypatch.setenv("AZURE_CLIENT_ID", azure.info["client_id"])
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    srv = start_kes({"endpoint": azure.vault_url})
    assert srv.put("/v1/key/create/wi-key").status_code == 200
    assert [i["how"] for i in azure.admin("GET", "/__admin/state")["issued"]] == ["workload"]


def test_wrong_client_secret_fails_key_operations_not_start_up(azure, start_kes):
    section = secret_section(azure)
    section["credentials"]["client_secret"] = "wrong"
    srv = start_kes(section)
    assert srv.put("/v1/key/create/x").status_code == 502
    assert logged(srv, "AADSTS7000215")
    assert "wrong" not in srv.stderr_text()


def test_5xx_and_unreachable_vault_cached_keys_serve(azure, start_kes):
    srv = start_kes(secret_section(azure), cache={"expiry": {"offline": "5m"}})
    assert srv.put("/v1/key/create/cached").status_code == 200
    use_key(srv, "cached")
    # A few 503s are retried away.
    azure.admin("POST", "/__faults", {"kind": "error", "status": 503, "count": 2,
                                      "service": "keyvault"})
    assert srv.put("/v1/key/create/after-503").status_code == 200
    # Every answer a 500 (after the retries: 502; `Retry-After: 0` is
    # honoured, so they follow at once), then no vault at all: the cached key
    # keeps serving.
    azure.admin("POST", "/__faults", {"kind": "error", "status": 500, "count": 1000,
                                      "service": "keyvault", "path": "/secrets/x",
                                      "retry_after": 0})
    assert srv.put("/v1/key/create/x").status_code == 502
    assert len([r for r in kv_requests(azure) if r["path"].startswith("/secrets/x")]) == 8
    use_key(srv, "cached")
    azure.stop()  # unreachable
    use_key(srv, "cached")


def test_token_renewal_and_revocation_under_traffic(azure, start_kes):
    # Tokens live 302 s: the SDK refreshes below 5 minutes left, so every
    # couple of seconds; revoking every token makes the next call meet a
    # new challenge and fetch a fresh token.
    azure.admin("POST", "/__admin/settings", {"token_ttl": 302})
    srv = start_kes(secret_section(azure))
    with CreateTraffic(srv) as traffic:
        time.sleep(2.5)
        azure.admin("POST", "/__admin/tokens/revoke")
        time.sleep(1)
        azure.admin("POST", "/__admin/tokens/revoke")
        time.sleep(1)
    assert not traffic.failures, traffic.failures[:3]
    assert len(azure.admin("GET", "/__admin/state")["issued"]) >= 3
    rejected = [r for r in kv_requests(azure) if r["status"] == 401 and r["authorization"]]
    assert rejected  # revoked tokens met the challenge and were replaced


def test_migrate_fs_to_azure_and_back(azure, tmp_path, certs, server_cert):
    def check_stored():
        assert stored(azure, "legacy") == [LEGACY_VALUE]  # copied unchanged

    migrate_round_trip(tmp_path, certs, server_cert, {"azure": {"keyvault": secret_section(azure)}},
                       check_stored,
                       env=clean_env(SSL_CERT_FILE=azure.ca, AZURE_AUTHORITY_HOST=azure.url + "/"))

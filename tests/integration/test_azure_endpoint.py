"""Proves the Azure test endpoint (tools/azure-test-endpoint) behaves like
Key Vault, Azure AD and IMDS, by driving it with Debian's python3-azure
(azure.keyvault.secrets 4.7, azure.identity 1.13, MSAL): the SDK's bearer
challenge, its token requests, paging, soft delete and purge, and error
bodies (keystores-cloud.md §1.8). The keystore tests trust this endpoint
only because these pass.

Loopback only; dummy credentials.
"""
import json
import urllib.error
import urllib.request

import pytest

from kes_harness import tool_module

azure_identity = pytest.importorskip("azure.identity")
azure_secrets = pytest.importorskip("azure.keyvault.secrets")
from azure.core.exceptions import (ClientAuthenticationError, HttpResponseError,  # noqa: E402
                                   ResourceNotFoundError)

MI_CLIENT = "33333333-3333-3333-3333-3333333333a1"
AzureTestEndpoint = tool_module("azure-test-endpoint").AzureTestEndpoint


@pytest.fixture(scope="module")
def ep(tmp_path_factory):
    endpoint = AzureTestEndpoint(tmp_path_factory.mktemp("azure-ep"), "--managed-identity",
                                 MI_CLIENT)
    yield endpoint
    endpoint.stop()


def credential(ep, secret=None):
    return azure_identity.ClientSecretCredential(
        ep.info["tenant_id"], ep.info["client_id"], secret or ep.info["client_secret"],
        authority=ep.url, instance_discovery=False, connection_verify=ep.ca)


def client(ep, cred=None, **kw):
    return azure_secrets.SecretClient(ep.url, cred or credential(ep),
                                      verify_challenge_resource=False, connection_verify=ep.ca,
                                      **kw)


def test_challenge_then_token_then_secret_round_trip(ep):
    ep.admin("DELETE", "/__admin/requests")
    c = client(ep)
    s = c.set_secret("round-trip", "value-1")
    assert len(s.properties.version) == 32
    assert c.get_secret("round-trip").value == "value-1"
    assert c.get_secret("round-trip", s.properties.version).value == "value-1"
    log = ep.requests_log()
    # The SDK's first request carries neither token nor body: the 401
    # challenge names the resource, MSAL reads the openid configuration and
    # posts the client-credentials grant, then the PUT is sent again.
    assert [(r["method"], r["service"], r["status"]) for r in log[:4]] == [
        ("PUT", "keyvault", 401), ("GET", "aad", 200), ("POST", "aad", 200),
        ("PUT", "keyvault", 200)]
    assert log[0]["body_bytes"] == 0 and not log[0]["authorization"]
    assert log[3]["authorization"] and log[3]["api_version"] == "7.3"
    issued = ep.admin("GET", "/__admin/state")["issued"]
    assert issued[-1]["scope"] == ep.info["resource"] + "/.default"


def test_versions_oldest_first_and_paged_listing(ep):
    c = client(ep)
    first = c.set_secret("versioned", "one").properties
    c.set_secret("versioned", "two")
    versions = list(c.list_properties_of_secret_versions("versioned"))
    assert [v.version for v in versions][0] == first.version
    assert c.get_secret("versioned").value == "two"  # latest
    for i in range(30):
        c.set_secret("paged-%02d" % i, "x")
    ep.admin("DELETE", "/__admin/requests")
    names = {p.name for p in c.list_properties_of_secrets()}
    assert {"paged-%02d" % i for i in range(30)} <= names
    pages = [r for r in ep.requests_log() if r["path"] == "/secrets" and r["status"] == 200]
    assert len(pages) >= 2 and "$skiptoken" in pages[1]["query"]  # followed the nextLink


def test_soft_delete_recover_and_purge(ep):
    c = client(ep)
    c.set_secret("gone", "v")
    ep.admin("POST", "/__admin/settings", {"deleting_seconds": 0.5})
    try:
        poller = c.begin_delete_secret("gone", _polling_interval=0.1)
        assert poller.result().recovery_id.endswith("/deletedsecrets/gone")
        # While the deletion runs, the name is "being deleted"...
        with pytest.raises(HttpResponseError) as e:
            c.set_secret("gone", "again")
        assert e.value.status_code == 409 and "ObjectIsBeingDeleted" in e.value.message
        poller.wait()  # polls GET /deletedsecrets/gone until it answers 200
        with pytest.raises(ResourceNotFoundError):
            c.get_secret("gone")
        # ... then deleted but recoverable until purged or recovered.
        with pytest.raises(HttpResponseError) as e:
            c.set_secret("gone", "again")
        assert e.value.status_code == 409 and e.value.error.code == "Conflict"
        assert "deleted but recoverable" in e.value.message
        assert "ObjectIsDeletedButRecoverable" in e.value.message
        assert "gone" in {d.name for d in c.list_deleted_secrets()}
        c.begin_recover_deleted_secret("gone", _polling_interval=0.1).wait()
        assert c.get_secret("gone").value == "v"
        c.begin_delete_secret("gone", _polling_interval=0.1).wait()
        c.purge_deleted_secret("gone")
        with pytest.raises(ResourceNotFoundError):
            c.get_deleted_secret("gone")
        c.set_secret("gone", "new")  # the name is free after the purge
    finally:
        ep.admin("POST", "/__admin/settings", {"deleting_seconds": 0})


def test_error_bodies(ep):
    c = client(ep)
    with pytest.raises(ResourceNotFoundError) as e:
        c.get_secret("never-there")
    assert e.value.error.code == "SecretNotFound"
    with pytest.raises(HttpResponseError) as e:
        c.set_secret("a_b", "v")
    assert e.value.status_code == 400 and e.value.error.code == "BadParameter"
    c.set_secret("disabled", "v")
    c.update_secret_properties("disabled", enabled=False)
    with pytest.raises(HttpResponseError) as e:
        c.get_secret("disabled")
    assert e.value.status_code == 403 and "disabled secret" in e.value.message
    ep.admin("POST", "/__admin/settings", {"purge_protection": True})
    try:
        c.begin_delete_secret("disabled").wait()
        with pytest.raises(HttpResponseError) as e:
            c.purge_deleted_secret("disabled")
        assert e.value.status_code == 403 and "purge protection" in e.value.message
    finally:
        ep.admin("POST", "/__admin/settings", {"purge_protection": False})


def test_wrong_client_secret_is_an_aad_error(ep):
    with pytest.raises(ClientAuthenticationError) as e:
        client(ep, credential(ep, secret="wrong")).get_secret("x")
    assert "AADSTS7000215" in str(e.value)


def test_managed_identity_through_imds(ep, monkeypatch):
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", ep.url)
    client(ep).set_secret("mi-read", "mi-value")
    mi = azure_identity.ManagedIdentityCredential(client_id=MI_CLIENT, connection_verify=ep.ca)
    assert client(ep, mi).get_secret("mi-read").value == "mi-value"
    imds = [r for r in ep.requests_log() if r["service"] == "imds" and r["status"] == 200]
    assert imds and imds[-1]["metadata"] == "true"
    assert imds[-1]["query"]["client_id"] == MI_CLIENT
    unknown = azure_identity.ManagedIdentityCredential(client_id="nobody",
                                                       connection_verify=ep.ca)
    with pytest.raises(ClientAuthenticationError):
        unknown.get_token(ep.info["resource"] + "/.default")


def test_faults_are_retried_by_the_sdk(ep):
    c = client(ep, retry_backoff_factor=0.01)
    c.set_secret("flaky", "v")
    ep.admin("POST", "/__faults", {"kind": "error", "status": 503, "count": 2,
                                   "service": "keyvault", "path": "/secrets/flaky"})
    assert c.get_secret("flaky").value == "v"
    assert ep.admin("GET", "/__faults")["rules"] == []


def test_api_versions_and_raw_answers(ep):
    token = credential(ep).get_token(ep.info["resource"] + "/.default").token
    client(ep).set_secret("raw", "v")

    def get(path):
        req = urllib.request.Request(ep.url + path, headers={"Authorization": "Bearer " + token})
        try:
            with urllib.request.urlopen(req, context=ep._context, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    status, body = get("/secrets/raw/?api-version=7.5")  # upstream Go's version
    assert status == 200 and body["value"] == "v"
    assert body["attributes"]["recoveryLevel"] == "Recoverable+Purgeable"
    status, body = get("/secrets/raw/versions?api-version=7.5")
    assert status == 200 and body["nextLink"] is None and len(body["value"]) == 1
    status, body = get("/secrets/unknown-name/versions?api-version=7.5")
    assert status == 200 and body["value"] == []  # unknown names list no versions
    status, body = get("/secrets/raw?api-version=1.0")
    assert status == 400 and body["error"]["code"] == "BadParameter"

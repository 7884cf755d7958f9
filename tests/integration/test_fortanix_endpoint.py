"""Proves tools/fortanix-test-endpoint faithful to the Fortanix DSM REST API
that keystores-cloud.md §4 documents, with an independent client: Python's
own http.client over TLS (no DSM client is packaged for Debian 12, and the
endpoint shares no code with kes-cpp). Every request/response shape of §4 is
checked on the wire: health 204, session auth/terminate, the Basic API-key
header passed through byte for byte, import (201 / 409 `sobject already
exists`), export (200 / 404 `sobject does not exist`), delete by kid, the
listing with limit/start/offset over several pages, the error body formats
and fault injection.

Nothing leaves loopback; every credential is a dummy made up by the endpoint.
"""
import base64
import http.client
import json
import os
import socket
import ssl
import time
import uuid
from urllib.parse import quote

import pytest

from kes_harness import tool_module

FortanixTestEndpoint = tool_module("fortanix-test-endpoint").FortanixTestEndpoint


@pytest.fixture(scope="module")
def tls_cert(cert_factory):
    return cert_factory.server("fortanix-endpoint")


@pytest.fixture(scope="module")
def dsm(tmp_path_factory, tls_cert):
    with FortanixTestEndpoint(tmp_path_factory.mktemp("dsm"), "--tls-cert", tls_cert.cert,
                              "--tls-key", tls_cert.key, "--group", "group-2") as ep:
        yield ep


@pytest.fixture(scope="module")
def tls(tls_cert):
    ctx = ssl.create_default_context(cafile=tls_cert.ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


@pytest.fixture(autouse=True)
def clean(dsm, tls):
    yield
    dsm.admin("DELETE", "/__faults", context=tls)
    dsm.admin("POST", "/__admin/api-key", {"revoked": False}, context=tls)
    dsm.admin("POST", "/__admin/health", {"status": 204}, context=tls)


class Answer:
    def __init__(self, resp):
        self.status = resp.status
        self.content_type = resp.getheader("Content-Type")
        self.body = resp.read()

    def json(self):
        return json.loads(self.body)

    @property
    def text(self):
        return self.body.decode()


def call(dsm, tls, method, path, body=None, auth=None, headers=None):
    """One request on a fresh TLS connection: (Answer)."""
    conn = http.client.HTTPSConnection("127.0.0.1", dsm.port, context=tls, timeout=30)
    try:
        hdrs = dict(headers or {})
        if auth is not None:
            hdrs["Authorization"] = auth
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        return Answer(conn.getresponse())
    finally:
        conn.close()


def basic(dsm):
    return "Basic " + dsm.api_key


def unique(prefix="k"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def import_body(name, value=b"stored-value", group=None):
    doc = {"obj_type": "OPAQUE", "name": name, "key_ops": ["EXPORT", "APPMANAGEABLE"],
           "value": base64.b64encode(value).decode(), "enabled": True}
    if group is not None:
        doc["group_id"] = group
    return doc


def test_health_answers_204_without_body_or_auth(dsm, tls):
    r = call(dsm, tls, "GET", "/sys/v1/health")
    assert r.status == 204 and r.body == b""
    dsm.admin("POST", "/__admin/health", {"status": 503}, context=tls)
    assert call(dsm, tls, "GET", "/sys/v1/health").status == 503


def test_api_key_is_base64_of_app_and_secret_and_passes_byte_for_byte(dsm, tls):
    app, _, secret = base64.b64decode(dsm.api_key).decode().partition(":")
    assert app == dsm.app_id and secret
    assert call(dsm, tls, "POST", "/sys/v1/session/auth", auth=basic(dsm)).status == 200
    # Re-encoded, one byte changed or truncated: refused (verbatim passthrough).
    flipped = dsm.api_key[:-2] + ("A" if dsm.api_key[-2] != "A" else "B") + dsm.api_key[-1]
    for wrong in ("Basic " + flipped, "Basic " + dsm.api_key[:-1], "Basic " + dsm.api_key + "=",
                  "basic " + dsm.api_key, "Bearer " + dsm.api_key, None):
        r = call(dsm, tls, "POST", "/sys/v1/session/auth", auth=wrong)
        assert r.status == 401, wrong
    log = dsm.admin("GET", "/__admin/requests", context=tls)["requests"]
    assert log[-7]["authorization"] == basic(dsm)


def test_session_auth_and_terminate(dsm, tls):
    before = dsm.admin("GET", "/__admin/state", context=tls)
    r = call(dsm, tls, "POST", "/sys/v1/session/auth", auth=basic(dsm))
    assert r.status == 200 and r.content_type == "application/json"
    doc = r.json()
    assert doc["token_type"] == "Bearer" and doc["expires_in"] == 600
    assert doc["entity_id"] == dsm.app_id and doc["access_token"]
    bearer = "Bearer " + doc["access_token"]
    # The session token authenticates crypto calls while it lives.
    assert call(dsm, tls, "GET", "/crypto/v1/keys?limit=1", auth=bearer).status == 200
    r = call(dsm, tls, "POST", "/sys/v1/session/terminate", auth=bearer)
    assert r.status == 204 and r.body == b""
    assert call(dsm, tls, "POST", "/sys/v1/session/terminate", auth=bearer).status == 401
    assert call(dsm, tls, "GET", "/crypto/v1/keys?limit=1", auth=bearer).status == 401
    after = dsm.admin("GET", "/__admin/state", context=tls)
    assert after["sessions_issued"] == before["sessions_issued"] + 1
    assert after["sessions_terminated"] == before["sessions_terminated"] + 1
    # A revoked API key fails the login with a 401.
    dsm.admin("POST", "/__admin/api-key", {"revoked": True}, context=tls)
    assert call(dsm, tls, "POST", "/sys/v1/session/auth", auth=basic(dsm)).status == 401
    assert call(dsm, tls, "GET", "/crypto/v1/keys", auth=basic(dsm)).status == 401


def test_import_export_delete_round_trip(dsm, tls):
    name, value = unique(), os.urandom(48)
    r = call(dsm, tls, "PUT", "/crypto/v1/keys", import_body(name, value), auth=basic(dsm))
    assert r.status == 201, r.body
    created = r.json()
    assert created["name"] == name and created["obj_type"] == "OPAQUE"
    assert created["kid"] and created["enabled"] is True and "value" not in created
    assert created["group_id"] == dsm.groups[0]  # the app's default group
    assert created["key_ops"] == ["EXPORT", "APPMANAGEABLE"]

    r = call(dsm, tls, "PUT", "/crypto/v1/keys", import_body(name, b"other"), auth=basic(dsm))
    assert (r.status, r.text) == (409, "sobject already exists")
    assert r.content_type.startswith("text/plain")

    r = call(dsm, tls, "POST", "/crypto/v1/keys/export", {"name": name}, auth=basic(dsm))
    assert r.status == 200
    exported = r.json()
    assert exported["kid"] == created["kid"] and exported["name"] == name
    assert exported["enabled"] is True and exported["obj_type"] == "OPAQUE"
    assert base64.b64decode(exported["value"]) == value  # standard base64, unchanged bytes

    r = call(dsm, tls, "DELETE", "/crypto/v1/keys/" + created["kid"], auth=basic(dsm))
    assert r.status == 204 and r.body == b""
    r = call(dsm, tls, "POST", "/crypto/v1/keys/export", {"name": name}, auth=basic(dsm))
    assert (r.status, r.text) == (404, "sobject does not exist")
    r = call(dsm, tls, "DELETE", "/crypto/v1/keys/" + created["kid"], auth=basic(dsm))
    assert (r.status, r.text) == (404, "sobject does not exist")
    # The name can be used again.
    r = call(dsm, tls, "PUT", "/crypto/v1/keys", import_body(name), auth=basic(dsm))
    assert r.status == 201


def test_group_id_is_honoured_and_unknown_group_refused(dsm, tls):
    name = unique()
    r = call(dsm, tls, "PUT", "/crypto/v1/keys", import_body(name, group="group-2"),
             auth=basic(dsm))
    assert r.status == 201 and r.json()["group_id"] == "group-2"
    r = call(dsm, tls, "PUT", "/crypto/v1/keys", import_body(unique(), group="nope"),
             auth=basic(dsm))
    assert r.status == 404 and r.text != "sobject already exists"


def test_disabled_object_exports_with_enabled_false(dsm, tls):
    name = unique()
    dsm.admin("POST", "/__admin/objects", import_body(name), context=tls)
    dsm.admin("POST", "/__admin/objects/enabled", {"name": name, "enabled": False}, context=tls)
    r = call(dsm, tls, "POST", "/crypto/v1/keys/export", {"name": name}, auth=basic(dsm))
    assert r.status == 200 and r.json()["enabled"] is False


def test_crypto_calls_need_the_api_key(dsm, tls):
    for method, path, body in (("PUT", "/crypto/v1/keys", import_body(unique())),
                               ("POST", "/crypto/v1/keys/export", {"name": "x"}),
                               ("GET", "/crypto/v1/keys", None),
                               ("DELETE", "/crypto/v1/keys/some-kid", None)):
        assert call(dsm, tls, method, path, body).status == 401
        assert call(dsm, tls, method, path, body, auth="Basic bm9wZTpub3Bl").status == 401


def test_listing_pages_with_limit_start_and_offset(dsm, tls):
    prefix = unique("list") + "-"
    names = sorted(prefix + "%03d" % i for i in range(25))
    for n in names:
        r = call(dsm, tls, "PUT", "/crypto/v1/keys", import_body(n), auth=basic(dsm))
        assert r.status == 201

    def page(query):
        r = call(dsm, tls, "GET", "/crypto/v1/keys?" + query, auth=basic(dsm))
        assert r.status == 200 and r.content_type == "application/json"
        doc = r.json()
        assert isinstance(doc, list)
        for obj in doc:
            assert obj["kid"] and obj["obj_type"] == "OPAQUE" and "value" not in obj
        return [o["name"] for o in doc]

    everything = page("sort=name:asc")
    assert everything == sorted(everything, key=str.encode)
    mine = [n for n in everything if n.startswith(prefix)]
    assert mine == names
    # start (inclusive) + limit: each page repeats the last name of the one before.
    seen, start = [], prefix
    while True:
        got = page("sort=name%3Aasc&limit=10&start=" + quote(start, safe=""))
        fresh = [n for n in got if n not in seen]
        seen += fresh
        if len(got) < 10 or not got[-1].startswith(prefix):
            break
        assert got[0] == start or start == prefix
        start = got[-1]
    assert [n for n in seen if n.startswith(prefix)] == names
    # offset skips the first n matches.
    first, second = page("sort=name:asc&limit=10"), page("sort=name:asc&limit=10&offset=10")
    assert first + second == everything[:20]
    assert page("sort=name:desc&limit=3") == list(reversed(everything))[:3]
    assert page("sort=name:asc&limit=100000") == everything  # capped at 1000, not refused
    r = call(dsm, tls, "GET", "/crypto/v1/keys?limit=0", auth=basic(dsm))
    assert r.status == 400


def test_json_error_bodies_when_asked(tmp_path, tls_cert, tls):
    with FortanixTestEndpoint(tmp_path, "--tls-cert", tls_cert.cert, "--tls-key", tls_cert.key,
                              "--json-errors") as ep:
        r = call(ep, tls, "POST", "/crypto/v1/keys/export", {"name": "x"}, auth=basic(ep))
        assert r.status == 404 and r.content_type == "application/json"
        assert r.json() == {"message": "sobject does not exist"}


def test_fault_injection(dsm, tls):
    dsm.admin("POST", "/__faults", {"kind": "error", "status": 503, "count": 2, "method": "GET",
                                    "path": "/crypto/v1/keys", "message": "busy"}, context=tls)
    r = call(dsm, tls, "GET", "/crypto/v1/keys", auth=basic(dsm))
    assert (r.status, r.text) == (503, "busy")
    dsm.admin("POST", "/__faults", {"kind": "error", "status": 409, "json": True,
                                    "method": "PUT", "message": "conflict"}, context=tls)
    r = call(dsm, tls, "PUT", "/crypto/v1/keys", import_body(unique()), auth=basic(dsm))
    assert r.status == 409 and r.json() == {"message": "conflict"}
    assert call(dsm, tls, "GET", "/crypto/v1/keys", auth=basic(dsm)).status == 503
    assert call(dsm, tls, "GET", "/crypto/v1/keys", auth=basic(dsm)).status == 200

    dsm.admin("POST", "/__faults", {"kind": "drop", "path": "/sys/v1/health"}, context=tls)
    with pytest.raises((ConnectionError, http.client.HTTPException, ssl.SSLError, OSError)):
        call(dsm, tls, "GET", "/sys/v1/health")
    assert call(dsm, tls, "GET", "/sys/v1/health").status == 204

    dsm.admin("POST", "/__faults", {"kind": "latency", "delay_ms": 1500,
                                    "path": "/sys/v1/health"}, context=tls)
    conn = http.client.HTTPSConnection("127.0.0.1", dsm.port, context=tls, timeout=0.3)
    with pytest.raises((socket.timeout, TimeoutError)):
        conn.request("GET", "/sys/v1/health")
        conn.getresponse()
    conn.close()
    start = time.monotonic()
    assert call(dsm, tls, "GET", "/sys/v1/health").status == 204
    assert time.monotonic() - start < 30


def test_plain_http_is_not_served_on_the_tls_port(dsm):
    conn = http.client.HTTPConnection("127.0.0.1", dsm.port, timeout=10)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("GET", "/sys/v1/health")
        r = conn.getresponse()
        if r.status:  # an answer at all would be wrong
            raise AssertionError("plain HTTP answered")
    conn.close()

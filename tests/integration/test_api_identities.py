"""Policy and identity routes (api.md §3.6, §3.7): describe, read, list,
self-describe for the admin, a policy identity and an unknown one."""
import json

import pytest

from kes_harness import error_body, parse_transcript, spec_dir

TRANSCRIPTS = spec_dir() / "transcripts"


def test_policy_describe_and_read(module_server, certs):
    r = module_server.get("/v1/policy/describe/my-app")
    assert r.status_code == 200
    d = r.json()
    assert list(d) == ["name", "created_at", "created_by"]
    assert d["name"] == "my-app" and d["created_by"] == certs["admin"].identity
    r = module_server.get("/v1/policy/read/my-app")
    p = r.json()
    assert list(p) == ["name", "allow", "deny", "created_at", "created_by"]
    assert p["allow"]["/v1/key/create/my-app*"] == {}
    assert p["deny"] == {"/v1/key/generate/my-app-internal*": {}}
    assert list(p["allow"]) == sorted(p["allow"])
    assert module_server.get("/v1/policy/read/nope").content == error_body("policy does not exist")
    assert module_server.get("/v1/policy/describe/nope").status_code == 404
    r = module_server.get("/v1/policy/describe/my.app")
    assert r.status_code == 400
    assert r.content == error_body("policy name 'my.app' is empty, too long or contains invalid characters")


def test_policy_list(module_server):
    assert module_server.get("/v1/policy/list/").json() == {"names": ["my-app"], "continue_at": ""}
    assert module_server.get("/v1/policy/list/%2A").json()["names"] == ["my-app"]
    assert module_server.get("/v1/policy/list/my%2A").json()["names"] == ["my-app"]
    assert module_server.get("/v1/policy/list/x").content == b'{"names":null,"continue_at":""}\n'


def test_identity_describe(module_server, certs):
    admin = certs["admin"].identity
    r = module_server.get("/v1/identity/describe/" + admin)
    assert list(r.json()) == ["admin", "created_at"] and r.json()["admin"] is True
    r = module_server.get("/v1/identity/describe/" + certs["client"].identity)
    d = r.json()
    assert list(d) == ["policy", "created_at", "created_by"]
    assert d["policy"] == "my-app" and d["created_by"] == admin
    r = module_server.get("/v1/identity/describe/" + certs["unknown"].identity)
    assert r.content == error_body("identity does not exist")
    r = module_server.get("/v1/identity/describe/a.b")
    assert r.content == error_body("identity 'a.b' is empty, too long or contains invalid characters")


def test_identity_list_includes_admin(module_server, certs):
    ids = module_server.get("/v1/identity/list/").json()
    want = sorted([certs["admin"].identity, certs["client"].identity, certs["apikey"].identity])
    assert ids == {"identities": want, "continue_at": ""}


def test_self_describe(module_server, certs):
    _, status, _, body = parse_transcript(TRANSCRIPTS / "25-self-describe.txt")
    r = module_server.get("/v1/identity/self/describe", client="unknown")
    assert r.status_code == status == 404 and r.content == body
    r = module_server.get("/v1/identity/self/describe")
    d = r.json()
    assert list(d) == ["identity", "admin", "created_at"]
    assert d["identity"] == certs["admin"].identity and d["admin"] is True
    # kes-cpp answers policy identities with the SDK's shape (api.md §3.7.3).
    r = module_server.get("/v1/identity/self/describe", client="apikey")
    d = r.json()
    assert d["identity"] == certs["apikey"].identity
    assert d["policy"] == "my-app"
    assert d["created_by"] == certs["admin"].identity
    assert "/v1/key/create/my-app*" in d["allow"]
    assert d["deny"] == {"/v1/key/generate/my-app-internal*": {}}

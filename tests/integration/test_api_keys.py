"""Key routes end to end: create, import, describe, list, delete,
generate, encrypt, decrypt, HMAC; status codes and error texts from
api.md and the upstream transcripts; policy decisions for a policy client
and an API-key (Ed25519) client."""
import base64
import json

import pytest

from kes_harness import error_body, parse_transcript, spec_dir

TRANSCRIPTS = spec_dir() / "transcripts"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_transcript_create_flow(kes_server):
    srv = kes_server()
    for name in ["06-key-create.txt", "07-key-create-again.txt", "08-key-create-post.txt",
                 "18-key-generate-missing.txt"]:
        request, status, headers, body = parse_transcript(TRANSCRIPTS / name)
        method, path = request.split()[0], request.split()[1]
        r = srv.request(method, path, client="client")
        assert r.status_code == status, name
        assert r.content == body.rstrip(b"\n") if status == 200 else r.content == body, name
        if status == 200:
            assert r.headers["Content-Length"] == "0"
            assert "Content-Type" not in r.headers


def test_describe_shape(kes_server, certs):
    srv = kes_server()
    assert srv.put("/v1/key/create/my-app-x", client="client").status_code == 200
    _, _, _, body = parse_transcript(TRANSCRIPTS / "09-key-describe.txt")
    want = json.loads(body)
    r = srv.get("/v1/key/describe/my-app-x", client="client")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    got = r.json()
    assert list(got) == list(want)
    assert got["name"] == "my-app-x"
    assert got["algorithm"] in ("AES256", "ChaCha20")
    assert got["created_by"] == certs["client"].identity
    assert got["created_at"].endswith("Z")
    assert srv.get("/v1/key/describe/my-app-nokey", client="client").content == \
        error_body("key does not exist")


def test_generate_decrypt_roundtrip_with_context(kes_server):
    srv = kes_server()
    srv.put("/v1/key/create/my-app-x", client="client")
    ctx = base64.b64encode(b'{"bucket":"b1"}').decode()
    for body in (None, {}, {"context": ctx}):
        r = srv.put("/v1/key/generate/my-app-x", client="client",
                    json=body) if body is not None else srv.put("/v1/key/generate/my-app-x", client="client")
        assert r.status_code == 200, r.content
        dek = r.json()
        assert list(dek) == ["plaintext", "ciphertext"]
        assert len(base64.b64decode(dek["plaintext"])) == 32
        assert len(base64.b64decode(dek["ciphertext"])) == 76
        dec = {"ciphertext": dek["ciphertext"]}
        if body and "context" in body:
            dec["context"] = ctx
        r = srv.post("/v1/key/decrypt/my-app-x", client="client", json=dec)
        assert r.status_code == 200
        assert r.json() == {"plaintext": dek["plaintext"]}
        if body and "context" in body:
            r = srv.put("/v1/key/decrypt/my-app-x", client="client",
                        json={"ciphertext": dek["ciphertext"]})
            assert r.status_code == 400
            assert r.content == error_body("decryption failed: ciphertext is not authentic")


def test_encrypt_decrypt_vector(kes_server):
    """vectors:api-encrypt-decrypt-0: 1000 zero bytes, 80-byte zero context."""
    srv = kes_server()
    srv.put("/v1/key/create/k")
    pt, ctx = b"\0" * 1000, b"\0" * 80
    c1 = srv.put("/v1/key/encrypt/k", json={"plaintext": b64(pt), "context": b64(ctx)}).json()
    c2 = srv.put("/v1/key/encrypt/k", json={"plaintext": b64(pt), "context": b64(ctx)}).json()
    assert c1 != c2
    assert len(base64.b64decode(c1["ciphertext"])) == 1044
    r = srv.put("/v1/key/decrypt/k", json={"ciphertext": c1["ciphertext"], "context": b64(ctx)})
    assert base64.b64decode(r.json()["plaintext"]) == pt


def test_decrypt_bad_ciphertext(kes_server):
    srv = kes_server()
    srv.put("/v1/key/create/my-app-x", client="client")
    _, status, _, body = parse_transcript(TRANSCRIPTS / "16-key-decrypt-badct.txt")
    r = srv.put("/v1/key/decrypt/my-app-x", client="client", data=b'{"ciphertext":"AAAA"}')
    assert r.status_code == status == 400
    assert r.content == body


def test_hmac(kes_server):
    srv = kes_server()
    srv.put("/v1/key/create/my-app-h", client="client")
    sums = []
    for msg in (b"Hello World", b"Hello World!", b"Hello World"):
        r = srv.put("/v1/key/hmac/my-app-h", client="client", data=json.dumps({"message": b64(msg)}))
        assert r.status_code == 200
        sums.append(r.json()["hmac"])
        assert len(base64.b64decode(sums[-1])) == 32
    assert sums[0] == sums[2] != sums[1]


@pytest.mark.parametrize("body,status,message", [
    ({"key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "cipher": "AES256"}, 200, None),
    ({"key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "cipher": "ChaCha20"}, 200, None),
    ({"key": "AAAAAAAAAAAAAAAAAAAAAA==", "cipher": "AES256"}, 406, "invalid key size for 'AES256'"),
    ({"key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "cipher": "ChaCha20"}, 406,
     "invalid key size for 'ChaCha20'"),
    ({"key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "cipher": "%!2"}, 406,
     "algorithm '%!2' is not supported"),
    ({"key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, 406, "algorithm '' is not supported"),
    ({"key": "not base64!", "cipher": "AES256"}, 400, "invalid import key request body"),
])
def test_import_vectors(kes_server, body, status, message):
    srv = kes_server()
    r = srv.put("/v1/key/import/imported", json=body)
    assert r.status_code == status
    if message:
        assert r.content == error_body(message)
    else:
        assert r.content == b""
        d = srv.get("/v1/key/describe/imported").json()
        assert d["algorithm"] == body["cipher"]
        # The imported key really is the given bytes: decrypting a
        # ciphertext made under the same bytes by a second import works.
        r = srv.put("/v1/key/import/imported", json=body)
        assert r.content == error_body("key already exists")


def test_imported_keys_share_ciphertexts_but_not_hmac(kes_server):
    srv = kes_server()
    key = b64(bytes(range(32)))
    srv.put("/v1/key/import/a", json={"key": key, "cipher": "AES256"})
    srv.post("/v1/key/import/b", json={"key": key, "cipher": "AES256"})
    ct = srv.put("/v1/key/encrypt/a", json={"plaintext": b64(b"secret")}).json()["ciphertext"]
    r = srv.put("/v1/key/decrypt/b", json={"ciphertext": ct})
    assert base64.b64decode(r.json()["plaintext"]) == b"secret"
    ha = srv.put("/v1/key/hmac/a", json={"message": b64(b"m")}).json()["hmac"]
    hb = srv.put("/v1/key/hmac/b", json={"message": b64(b"m")}).json()["hmac"]
    assert ha != hb


def test_request_json_is_go_lenient(kes_server):
    srv = kes_server()
    srv.put("/v1/key/create/k")
    pt = b64(b"hello")
    for body in ['{"Plaintext":"%s"}' % pt, '{"PLAINTEXT":"x","plaintext":"%s"}' % pt,
                 '{"plaintext":"%s","unknown":{"a":[1,2]}}' % pt,
                 '{"plaintext":"%s","context":null} trailing' % pt,
                 '{"plaintext":"%s","version":"v1"}' % pt]:
        r = srv.put("/v1/key/encrypt/k", data=body)
        assert r.status_code == 200, body
        ct = r.json()["ciphertext"]
        r = srv.put("/v1/key/decrypt/k", data='{"Ciphertext":"%s"}' % ct)
        assert base64.b64decode(r.json()["plaintext"]) == b"hello"


@pytest.mark.parametrize("body", ["", "{", "[]", '"x"', '{"plaintext":1}', '{"plaintext":"@@@"}',
                                  '{"plaintext":"aGk"}', '{"context":{}}'])
def test_malformed_bodies(kes_server, body):
    srv = kes_server()
    srv.put("/v1/key/create/k")
    r = srv.put("/v1/key/encrypt/k", data=body)
    assert r.status_code == 400, body
    assert r.content == error_body("invalid request body")


def test_generate_reads_body_only_when_present(kes_server):
    srv = kes_server()
    srv.put("/v1/key/create/k")
    assert srv.put("/v1/key/generate/k", data=b"").status_code == 200
    r = srv.put("/v1/key/generate/k", data=b"{")
    assert r.content == error_body("invalid request body")


def test_oversized_bodies(kes_server):
    srv = kes_server()
    srv.put("/v1/key/create/k")
    big = '{"plaintext":"' + "A" * 1000000 + '"}'
    r = srv.put("/v1/key/encrypt/k", data=big)
    assert r.status_code == 400
    assert r.content == error_body("invalid request body")
    r = srv.put("/v1/key/import/big", data=big)
    assert r.status_code == 400
    assert r.content == error_body("invalid import key request body")
    # Just under the limit still works (base64 of 749,970 bytes + JSON framing).
    pt = b"\1" * 749970
    body = json.dumps({"plaintext": b64(pt)})
    assert len(body) <= 1000000
    r = srv.put("/v1/key/encrypt/k", data=body)
    assert r.status_code == 200
    # The server is still healthy afterwards.
    assert srv.get("/version").status_code == 200


@pytest.mark.parametrize("name", ["", "a.b", "-a", "a-", "_", "a" * 81, "%E2%98%B0", "hel%3Clo"])
def test_invalid_key_names(kes_server, name):
    srv = kes_server()
    import urllib.parse
    decoded = urllib.parse.unquote(name)
    for method, route in [("PUT", "create"), ("GET", "describe"), ("DELETE", "delete"),
                          ("PUT", "generate"), ("PUT", "encrypt"), ("PUT", "decrypt"), ("PUT", "hmac"),
                          ("PUT", "import")]:
        r = srv.request(method, "/v1/key/%s/%s" % (route, name), data=b"{}")
        assert r.status_code == 400, (route, name)
        assert r.content == error_body(
            "key name '%s' is empty, too long or contains invalid characters" % decoded)


def test_list_keys(kes_server):
    """vectors:api-list-keys-0 plus kes-cpp's `prefix*` semantics."""
    srv = kes_server()
    names = ["my-key", "abc123", "0", "123ABC321", "_-___---_", "_0", "0-Z", "my_key-0"]
    for n in names:
        assert srv.put("/v1/key/create/" + n).status_code == 200
    r = srv.get("/v1/key/list/")
    assert r.status_code == 200
    assert r.json() == {"names": sorted(names)}
    assert r.content.endswith(b"]}\n")
    assert srv.get("/v1/key/list/%2A").json() == {"names": sorted(names)}
    assert srv.get("/v1/key/list/my").json() == {"names": ["my-key", "my_key-0"]}
    assert srv.get("/v1/key/list/my%2A").json() == {"names": ["my-key", "my_key-0"]}
    assert srv.get("/v1/key/list/zzz").content == b'{"names":null}\n'
    r = srv.get("/v1/key/list/a%2Ab")
    assert r.status_code == 400
    assert r.content == error_body("listing pattern 'a*b' is empty, too long or is invalid")


def test_list_is_complete_beyond_1024(kes_server):
    srv = kes_server()
    sess = srv.session("admin")
    for i in range(1100):
        assert sess.put(srv.base_url + "/v1/key/create/k%04d" % i).status_code == 200
    names = srv.get("/v1/key/list/").json()["names"]
    assert len(names) == 1100
    assert names == sorted(names)


def test_delete(kes_server):
    srv = kes_server()
    srv.put("/v1/key/create/k")
    srv.get("/v1/key/describe/k")  # cached
    r = srv.delete("/v1/key/delete/k")
    assert r.status_code == 200 and r.content == b""
    assert srv.get("/v1/key/describe/k").status_code == 404
    r = srv.delete("/v1/key/delete/k")
    assert r.status_code == 404
    assert r.content == error_body("key does not exist")


def test_policy_client_and_api_key_client(kes_server, certs):
    srv = kes_server()
    for client in ("client", "apikey"):
        assert srv.put("/v1/key/create/my-app-" + client, client=client).status_code == 200
        assert srv.put("/v1/key/create/other-" + client, client=client).status_code == 403
        assert srv.put("/v1/key/generate/my-app-" + client, client=client).status_code == 200
        assert srv.delete("/v1/key/delete/my-app-" + client, client=client).status_code == 403
        assert srv.get("/v1/key/list/", client=client).status_code == 200
        assert srv.get("/v1/policy/list/", client=client).status_code == 403
    d = srv.get("/v1/key/describe/my-app-apikey", client="apikey").json()
    assert d["created_by"] == certs["apikey"].identity
    # Deny wins over allow.
    srv.put("/v1/key/create/my-app-internal-1")
    assert srv.put("/v1/key/generate/my-app-internal-1", client="client").status_code == 403
    assert srv.put("/v1/key/encrypt/my-app-internal-1", client="client",
                   json={"plaintext": ""}).status_code == 200
    # Admin bypasses every policy.
    assert srv.delete("/v1/key/delete/my-app-client").status_code == 200


def test_audit_log_on_stdout(kes_server, certs):
    srv = kes_server()
    srv.put("/v1/key/create/my-app-audit", client="client")
    srv.delete("/v1/key/delete/my-app-audit")
    assert srv.wait_for_output("msg=\"secret key 'my-app-audit' deleted\"")
    lines = [l for l in srv.stdout_text().splitlines() if "my-app-audit" in l]
    assert len(lines) == 2
    assert "msg=\"secret key 'my-app-audit' created\" req.method=PUT " \
           "req.path=/v1/key/create/my-app-audit req.ip=127.0.0.1 req.identity=%s res.code=200 res.time=" \
           % certs["client"].identity in lines[0]
    # Key material never reaches a log.
    r = srv.put("/v1/key/generate/my-app-audit2", client="client")
    assert r.status_code == 404


def test_bulk_decrypt_for_older_minio(kes_server, certs):
    """api.md §6: POST /v1/key/bulk/decrypt/<name>, an array of at most 1000
    {ciphertext, context}; the answer is the array of {plaintext}. Older
    MinIO releases use it once self-describe shows an allow rule starting
    with /v1/key/bulk/decrypt/; it is authorized by that (bulk) path."""
    import copy
    from conftest import MY_APP_POLICY
    policy = copy.deepcopy(MY_APP_POLICY)
    policy["my-app"]["allow"].append("/v1/key/bulk/decrypt/my-app*")
    policy["my-app"]["identities"] = [certs["client"].identity]
    srv = kes_server(policies=policy)
    assert srv.put("/v1/key/create/my-app-bulk", client="client").status_code == 200
    assert srv.put("/v1/key/create/other-bulk").status_code == 200
    ctx = b64(b'{"bucket":"b1"}')
    deks = [srv.put("/v1/key/generate/my-app-bulk", client="client",
                    json={"context": ctx} if i % 2 else {}).json() for i in range(3)]
    items = [{"ciphertext": d["ciphertext"], "context": ctx} if i % 2 else
             {"ciphertext": d["ciphertext"]} for i, d in enumerate(deks)]

    r = srv.post("/v1/key/bulk/decrypt/my-app-bulk", client="client", json=items)
    assert r.status_code == 200, r.content
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == [{"plaintext": d["plaintext"]} for d in deks]
    assert srv.put("/v1/key/bulk/decrypt/my-app-bulk", client="client", json=[]).json() == []

    # Errors are those of a single decrypt.
    bad = [items[0], {"ciphertext": deks[1]["ciphertext"]}]
    r = srv.post("/v1/key/bulk/decrypt/my-app-bulk", client="client", json=bad)
    assert r.status_code == 400
    assert r.content == error_body("decryption failed: ciphertext is not authentic")
    for body in (b'{"ciphertext":"AAAA"}', b"[1]", b'[{"ciphertext":1}]', b"[", b'[{"ciphertext":"!"}]'):
        r = srv.post("/v1/key/bulk/decrypt/my-app-bulk", client="client", data=body)
        assert r.status_code == 400, body
        assert r.content == error_body("invalid request body"), body
    r = srv.post("/v1/key/bulk/decrypt/my-app-bulk", client="client", json=[items[0]] * 1001)
    assert r.status_code == 400
    assert r.content == error_body("too many ciphertexts")
    assert srv.post("/v1/key/bulk/decrypt/my-app-bulk", client="client",
                    json=[items[0]] * 1000).status_code == 200
    r = srv.post("/v1/key/bulk/decrypt/my-app-missing", client="client", json=items)
    assert r.status_code == 404
    assert r.content == error_body("key does not exist")
    r = srv.post("/v1/key/bulk/decrypt/bad%2Fname", client="client", json=items)
    assert r.status_code in (400, 403)

    # The policy of the bulk path decides: single-decrypt rights are not enough.
    r = srv.post("/v1/key/bulk/decrypt/other-bulk", client="client", json=items)
    assert r.status_code == 403
    assert r.content == error_body("not authorized: insufficient permissions")
    r = srv.get("/v1/key/bulk/decrypt/my-app-bulk", client="client")
    assert r.status_code == 405

    # Not in upstream's current route table.
    assert all(e["path"] != "/v1/key/bulk/decrypt/" for e in srv.get("/v1/api").json())


def test_key_version_routes_and_bulk_decrypt_of_a_rotated_key(kes_server):
    """The key-version routes (rotation.md §6) through this file's protocol
    (HTTP/1.1, and HTTP/2 in the .h2 run); bulk decrypt opens every version
    of the ring and honours the minimum decryption version."""
    srv = kes_server()
    assert srv.put("/v1/key/create/ring").status_code == 200
    old = srv.post("/v1/key/generate/ring", json={}).json()
    r = srv.put("/v1/key/rotate/ring")
    assert r.status_code == 200 and r.json()["version"] == "2", r.content
    new = srv.post("/v1/key/generate/ring", json={}).json()
    assert new["version"] == "2"
    versions = srv.get("/v1/key/versions/ring").json()
    assert versions["latest_version"] == "2" and len(versions["versions"]) == 2
    r = srv.post("/v1/key/bulk/decrypt/ring",
                 json=[{"ciphertext": old["ciphertext"]}, {"ciphertext": new["ciphertext"]}])
    assert r.status_code == 200, r.content
    assert r.json() == [{"plaintext": old["plaintext"]}, {"plaintext": new["plaintext"]}]
    r = srv.post("/v1/key/rewrap/ring", json={"ciphertext": old["ciphertext"]})
    assert r.status_code == 200 and r.json()["version"] == "2", r.content
    r = srv.put("/v1/key/config/ring", json={"min_decryption_version": "2"})
    assert r.json() == {"name": "ring", "latest_version": "2", "min_decryption_version": "2"}
    r = srv.post("/v1/key/bulk/decrypt/ring", json=[{"ciphertext": old["ciphertext"]}])
    assert r.status_code == 400
    assert r.content == error_body(
        "decryption failed: key version is below the minimum decryption version")

"""Key versions and rotation (kes-cpp extension, spec rotation.md §11)
through the real binary, on the fs keystore and on the AWS Secrets Manager
keystore via the loopback AWS test endpoint: upstream ciphertexts of every
format survive rotations, new ciphertexts carry the latest version, the
minimum decryption version, pinning, rewrap, concurrent rotations, kill -9
during rotations, two servers on one keystore, and clients that never send
a version."""
import base64
import concurrent.futures
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import requests

from kes_harness import KesServer, base_config, error_body, spec_dir

SOURCE_DIR = Path(os.environ.get("KES_SOURCE_DIR", Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(SOURCE_DIR / "tools" / "aws-test-endpoint"))
from launcher import AwsTestEndpoint  # noqa: E402
from test_aws_keystore import isolated_aws_env  # noqa: E402,F401  (autouse)
from test_fs_keystore import protobuf_fields  # noqa: E402

B64 = base64.b64encode


def b64(data: bytes) -> str:
    return B64(data).decode()


def vectors(group):
    with open(spec_dir() / "vectors" / "kes-test-vectors.json") as f:
        return json.load(f)[group]


class Backend:
    """Starts servers that share one keystore: an fs directory, or one
    loopback AWS endpoint."""

    def __init__(self, kind, tmp_path, certs, server_cert):
        self.kind, self.tmp, self.certs, self.server_cert = kind, tmp_path, certs, server_cert
        self.servers = []
        self.endpoint = AwsTestEndpoint(tmp_path / "endpoint") if kind == "aws" else None
        self.keys_dir = tmp_path / "keys"

    def config(self, **extra):
        cfg = base_config(self.certs, self.server_cert, self.keys_dir, {}, **extra)
        if self.endpoint:
            cfg["keystore"] = {"aws": {"secretsmanager": {
                "endpoint": self.endpoint.url, "region": "us-east-1",
                "credentials": {"accesskey": "AKIDEXAMPLE",
                                "secretkey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}}}}
        return cfg

    def start(self, **extra):
        srv = KesServer(self.tmp / ("kes%d" % len(self.servers)), self.config(**extra),
                        self.server_cert, self.certs)
        self.servers.append(srv)
        return srv.start()

    def close(self):
        for s in self.servers:
            s.stop()
        if self.endpoint:
            self.endpoint.stop()


@pytest.fixture(params=["fs", "aws"])
def backend(request, tmp_path, certs, server_cert):
    b = Backend(request.param, tmp_path, certs, server_cert)
    yield b
    b.close()


@pytest.fixture
def fs_backend(tmp_path, certs, server_cert):
    b = Backend("fs", tmp_path, certs, server_cert)
    yield b
    b.close()


def ok(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text)
    return resp.json() if resp.content else None


def rotate(srv, name):
    return ok(srv.put("/v1/key/rotate/" + name))


def encrypt(srv, name, plaintext, context=b"", **extra):
    return ok(srv.put("/v1/key/encrypt/" + name,
                      json={"plaintext": b64(plaintext), "context": b64(context), **extra}))


def decrypt(srv, name, ciphertext, context=b"", **extra):
    return srv.put("/v1/key/decrypt/" + name,
                   json={"ciphertext": b64(ciphertext), "context": b64(context), **extra})


def assert_error(resp, status, message):
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.content == error_body(message)


def logged(srv, text, timeout=10):
    """Whether `srv` logged `text` (the keystore code logs through spdlog to
    stdout, the server's own error log goes to stderr) within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in srv.stdout_text() + srv.stderr_text():
            return True
        time.sleep(0.05)
    return False


def thread_session(srv):
    s = requests.Session()
    s.trust_env = False
    s.cert = srv.identities["admin"].pair
    s.verify = srv.server_cert.ca
    return s


# --- §11.1, §11.18: old data and version-less clients ---------------------------

def test_upstream_ciphertexts_decrypt_after_rotations(backend):
    srv = backend.start()
    cases = vectors("secret_key_decrypt")
    for i, v in enumerate(cases):
        inp = v["input"]
        ok(srv.put("/v1/key/import/vec-%d" % i, json={"key": inp["key_b64"],
                                                       "cipher": inp["key_type"]}))
        for _ in range(2):
            rotate(srv, "vec-%d" % i)
    formats = set()
    for i, v in enumerate(cases):
        inp = v["input"]
        for sent in ({}, {"version": ""}, {"version": "2"}, {"version": "7"}):
            r = srv.put("/v1/key/decrypt/vec-%d" % i, json={
                "ciphertext": inp["ciphertext_b64"], "context": inp["context_b64"], **sent})
            if v["expected"]["should_fail"]:
                assert_error(r, 400, "decryption failed: ciphertext is not authentic")
            else:
                assert ok(r) == {"plaintext": v["expected"]["plaintext_b64"]}, v["id"]
                formats.add(v["derived"]["format"])
    assert formats == {"raw", "json", "msgpack"}


# --- §11.2, §11.3: parity and the latest version ---------------------------------

def test_never_rotated_key_answers_as_upstream(backend):
    srv = backend.start()
    ok(srv.put("/v1/key/create/plain"))
    dek = ok(srv.put("/v1/key/generate/plain"))
    assert set(dek) == {"plaintext", "ciphertext"}
    assert len(base64.b64decode(dek["ciphertext"])) == 76
    assert set(encrypt(srv, "plain", b"x")) == {"ciphertext"}
    # Upstream ignores a `version` it does not know; so does a one-version key.
    for v in ("9", "v1", "1"):
        assert set(encrypt(srv, "plain", b"x", version=v)) == {"ciphertext"}
    assert set(ok(srv.get("/v1/key/describe/plain"))) == {"name", "algorithm", "created_at",
                                                          "created_by"}
    assert set(ok(srv.put("/v1/key/hmac/plain", json={"message": b64(b"m")}))) == {"hmac"}
    assert ok(srv.get("/v1/key/list/*"))["names"] == ["plain"]
    info = ok(srv.get("/v1/key/versions/plain"))
    assert info["latest_version"] == "1" and info["min_decryption_version"] == "1"
    assert [v["version"] for v in info["versions"]] == ["1"]


def test_new_ciphertexts_use_the_latest_version(backend):
    srv = backend.start()
    ok(srv.put("/v1/key/create/k"))
    old = base64.b64decode(encrypt(srv, "k", b"old data", b"ctx")["ciphertext"])
    stored_v1 = (backend.keys_dir / "k").read_bytes() if backend.kind == "fs" else None
    r = rotate(srv, "k")
    assert r["name"] == "k" and r["version"] == "2" and r["algorithm"] in ("AES256", "ChaCha20")
    dek = ok(srv.put("/v1/key/generate/k", json={"context": b64(b"ctx")}))
    assert dek["version"] == "2"
    ct = base64.b64decode(dek["ciphertext"])
    assert len(ct) == 84 and ct[:8] == b"kesv\x00\x00\x00\x02"
    assert ok(decrypt(srv, "k", ct, b"ctx"))["plaintext"] == dek["plaintext"]
    # The body alone is a version-2 raw ciphertext: version 1 cannot open it.
    assert_error(decrypt(srv, "k", ct[8:], b"ctx"), 400,
                 "decryption failed: ciphertext is not authentic")
    # A forged header names another key and fails too.
    assert_error(decrypt(srv, "k", b"kesv\x00\x00\x00\x01" + ct[8:], b"ctx"), 400,
                 "decryption failed: ciphertext is not authentic")
    assert ok(decrypt(srv, "k", old, b"ctx"))["plaintext"] == b64(b"old data")
    rotate(srv, "k")
    e = encrypt(srv, "k", b"new")
    assert e["version"] == "3" and base64.b64decode(e["ciphertext"])[:8] == b"kesv\x00\x00\x00\x03"
    d = ok(srv.get("/v1/key/describe/k"))
    assert d["version"] == "3" and d["min_decryption_version"] == "1"
    info = ok(srv.get("/v1/key/versions/k"))
    assert [v["version"] for v in info["versions"]] == ["1", "2", "3"]
    assert all(v["enabled"] for v in info["versions"])
    # Internal entries are never listed; version 1's stored bytes never change.
    assert ok(srv.get("/v1/key/list/*"))["names"] == ["k"]
    if stored_v1 is not None:
        assert (backend.keys_dir / "k").read_bytes() == stored_v1
        assert sorted(p.name for p in backend.keys_dir.iterdir()) == ["k", "k-v2-", "k-v3-"]


# --- §11.6 - §11.9 ------------------------------------------------------------------

def test_minimum_decryption_version(fs_backend):
    srv = fs_backend.start()
    ok(srv.put("/v1/key/create/m"))
    v1 = base64.b64decode(encrypt(srv, "m", b"one")["ciphertext"])
    rotate(srv, "m")
    v2 = base64.b64decode(encrypt(srv, "m", b"two")["ciphertext"])
    assert ok(srv.put("/v1/key/config/m", json={"min_decryption_version": "2"})) == {
        "name": "m", "latest_version": "2", "min_decryption_version": "2"}
    assert_error(decrypt(srv, "m", v1), 400,
                 "decryption failed: key version is below the minimum decryption version")
    assert_error(decrypt(srv, "m", os.urandom(80)), 400,
                 "decryption failed: ciphertext is not authentic")
    assert ok(decrypt(srv, "m", v2))["plaintext"] == b64(b"two")
    assert [v["enabled"] for v in ok(srv.get("/v1/key/versions/m"))["versions"]] == [False, True]
    assert_error(srv.put("/v1/key/encrypt/m", json={"plaintext": "", "version": "1"}), 400,
                 "key version is below the minimum decryption version")
    # Policy, not erasure: lowering it re-enables version 1 (integer form accepted).
    assert ok(srv.put("/v1/key/config/m", json={"min_decryption_version": 1}))[
        "min_decryption_version"] == "1"
    assert ok(decrypt(srv, "m", v1))["plaintext"] == b64(b"one")
    for bad in (0, 3, "x", "02", None):
        assert_error(srv.put("/v1/key/config/m", json={"min_decryption_version": bad}), 400,
                     "minimum decryption version must be between 1 and 2")
    assert_error(srv.put("/v1/key/config/m", data=b"not json"), 400, "invalid request body")
    assert_error(srv.put("/v1/key/config/nokey", json={"min_decryption_version": 1}), 404,
                 "key does not exist")
    assert srv.wait_for_output("minimum decryption version of secret key 'm' set to 2")
    assert srv.wait_for_output("secret key 'm' rotated to version 2")


def test_pinned_versions_and_hmac(fs_backend):
    srv = fs_backend.start()
    ok(srv.put("/v1/key/create/p"))
    mac1 = ok(srv.put("/v1/key/hmac/p", json={"message": b64(b"msg")}))["hmac"]
    rotate(srv, "p")
    rotate(srv, "p")
    e = encrypt(srv, "p", b"pinned", version="1")
    assert e["version"] == "1" and len(base64.b64decode(e["ciphertext"])) == 6 + 44
    assert ok(decrypt(srv, "p", base64.b64decode(e["ciphertext"])))["plaintext"] == b64(b"pinned")
    assert ok(srv.put("/v1/key/generate/p", json={"version": "2"}))["version"] == "2"
    assert_error(srv.put("/v1/key/encrypt/p", json={"plaintext": "", "version": "9"}), 404,
                 "key version does not exist")
    for bad in ("01", "abc", "-1", "4294967296"):
        assert_error(srv.put("/v1/key/encrypt/p", json={"plaintext": "", "version": bad}), 400,
                     "key version '%s' is invalid" % bad)
    assert_error(srv.put("/v1/key/encrypt/p", json={"plaintext": "", "version": 2}), 400,
                 "invalid request body")
    # HMAC stays on version 1 (MinIO's derived credentials); pinned 2 differs.
    h = ok(srv.put("/v1/key/hmac/p", json={"message": b64(b"msg")}))
    assert h == {"hmac": mac1, "version": "1"}
    h2 = ok(srv.put("/v1/key/hmac/p", json={"message": b64(b"msg"), "version": "2"}))
    assert h2["version"] == "2" and h2["hmac"] != mac1
    # A legacy JSON version 1 has no HMAC key, rotated or not.
    (fs_backend.keys_dir / "legacy").write_text(json.dumps({"bytes": b64(bytes(32))}))
    rotate(srv, "legacy")
    assert_error(srv.put("/v1/key/hmac/legacy", json={"message": ""}), 409,
                 "key does not support HMAC")
    assert ok(srv.put("/v1/key/hmac/legacy", json={"message": "", "version": "2"}))["version"] == "2"


def test_rewrap(fs_backend):
    srv = fs_backend.start()
    by_format = {}
    for i, v in enumerate(vectors("secret_key_decrypt")):
        if v["expected"]["should_fail"] or v["derived"]["format"] in by_format:
            continue
        by_format[v["derived"]["format"]] = (i, v)
        ok(srv.put("/v1/key/import/rw-%d" % i, json={"key": v["input"]["key_b64"],
                                                      "cipher": v["input"]["key_type"]}))
        rotate(srv, "rw-%d" % i)
    assert set(by_format) == {"raw", "json", "msgpack"}
    for i, v in by_format.values():
        body = {"ciphertext": v["input"]["ciphertext_b64"], "context": v["input"]["context_b64"]}
        r = ok(srv.put("/v1/key/rewrap/rw-%d" % i, json=body))
        assert set(r) == {"ciphertext", "version"} and r["version"] == "2"
        new = base64.b64decode(r["ciphertext"])
        assert new[:8] == b"kesv\x00\x00\x00\x02"
        d = ok(srv.put("/v1/key/decrypt/rw-%d" % i,
                       json={"ciphertext": r["ciphertext"], "context": body["context"]}))
        assert d["plaintext"] == v["expected"]["plaintext_b64"]
        # Back to version 1: the raw upstream form.
        back = ok(srv.put("/v1/key/rewrap/rw-%d" % i, json={**body, "ciphertext": r["ciphertext"],
                                                             "version": "1"}))
        assert back["version"] == "1" and base64.b64decode(back["ciphertext"])[:4] != b"kesv"
        assert_error(srv.put("/v1/key/rewrap/rw-%d" % i, json={**body, "context": b64(b"wrong")}),
                     400, "decryption failed: ciphertext is not authentic")
    # A retired source version is refused, without plaintext.
    i, v = by_format["raw"]
    ok(srv.put("/v1/key/config/rw-%d" % i, json={"min_decryption_version": "2"}))
    r = srv.put("/v1/key/rewrap/rw-%d" % i, json={"ciphertext": v["input"]["ciphertext_b64"],
                                                   "context": v["input"]["context_b64"]})
    assert_error(r, 400, "decryption failed: key version is below the minimum decryption version")
    assert_error(srv.put("/v1/key/rewrap/rw-%d" % i, json={"ciphertext": 5}), 400,
                 "invalid request body")


# --- §11.10, §11.11, §11.13: concurrency, crashes, several servers ----------------

def test_concurrent_rotations_on_one_server(backend):
    # Rotations of one key queue behind each other in the server; a longer
    # route timeout than the default 15 s keeps the last in the queue from
    # being cut off on a slow (loaded) machine with the AWS endpoint.
    srv = backend.start(api={"/v1/key/rotate/": {"timeout": "120s"}})
    ok(srv.put("/v1/key/create/c"))
    n = 50

    def one(_):
        with thread_session(srv) as s:
            return s.put(srv.base_url + "/v1/key/rotate/c", timeout=120)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(n)))
    assert [r.status_code for r in results] == [200] * n
    assert sorted(int(r.json()["version"]) for r in results) == list(range(2, n + 2))
    info = ok(srv.get("/v1/key/versions/c"))
    assert info["latest_version"] == str(n + 1)
    for v in ("1", "2", str(n // 2), str(n + 1)):
        e = encrypt(srv, "c", b"v" + v.encode(), version=v)
        assert ok(decrypt(srv, "c", base64.b64decode(e["ciphertext"])))["plaintext"] == b64(
            b"v" + v.encode())


def test_concurrent_rotations_on_two_servers(backend):
    slow_ok = {"/v1/key/rotate/": {"timeout": "120s"}}  # as on one server
    a, b = backend.start(api=slow_ok), backend.start(api=slow_ok)
    ok(a.put("/v1/key/create/two"))
    n = 32

    def one(i):
        srv = (a, b)[i % 2]
        with thread_session(srv) as s:
            return s.put(srv.base_url + "/v1/key/rotate/two", timeout=120)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(n)))
    wins = [int(r.json()["version"]) for r in results if r.status_code == 200]
    for r in results:
        if r.status_code != 200:
            assert_error(r, 409, "key version conflict")
    assert sorted(wins) == list(range(2, len(wins) + 2))
    assert ok(a.get("/v1/key/versions/two"))["latest_version"] == str(len(wins) + 1)


def test_kill_during_rotations_leaves_a_consistent_ring(fs_backend):
    srv = fs_backend.start()
    ok(srv.put("/v1/key/create/crash"))
    ok(srv.put("/v1/key/config/crash", json={"min_decryption_version": "1"}))
    done = []

    def spin(i):
        with thread_session(srv) as s:
            while True:
                try:
                    path = "/v1/key/rotate/crash" if i % 2 else "/v1/key/config/crash"
                    body = None if i % 2 else json.dumps({"min_decryption_version": "1"})
                    r = s.put(srv.base_url + path, data=body, timeout=30)
                except requests.RequestException:
                    return
                if r.status_code == 200 and i % 2:
                    done.append(int(r.json()["version"]))

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(spin, i) for i in range(4)]
        deadline = time.monotonic() + 60
        try:
            while len(done) < 10 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:  # the callers stop once the server is gone
            srv.proc.send_signal(signal.SIGKILL)
            srv.proc.wait()
        for f in futures:
            f.result(timeout=60)
    assert len(done) >= 10

    again = fs_backend.start()  # removes stale temporaries at start-up
    info = ok(again.get("/v1/key/versions/crash"))
    latest = int(info["latest_version"])
    assert latest >= max(done)  # every answered rotation survived
    assert [v["version"] for v in info["versions"]] == [str(i) for i in range(1, latest + 1)]
    # A temporary of an interrupted create may remain (the fs keystore removes
    # those older than 10 minutes in the background); it is never a key.
    names = sorted(p.name for p in fs_backend.keys_dir.iterdir()
                   if not p.name.startswith(".kes-tmp-"))
    assert ok(again.get("/v1/key/list/*"))["names"] == ["crash"]
    assert set(names) <= {"crash"} | {"crash-v%d-" % i for i in range(2, latest + 1)} | {
        "crash-c%d-" % i for i in range(1, 1000)}
    for v in (1, latest):
        e = encrypt(again, "crash", b"after", version=str(v))
        assert ok(decrypt(again, "crash", base64.b64decode(e["ciphertext"])))["plaintext"] == b64(
            b"after")
    assert rotate(again, "crash")["version"] == str(latest + 1)
    assert ok(again.put("/v1/key/config/crash", json={"min_decryption_version": "2"}))[
        "min_decryption_version"] == "2"


def test_two_servers_agree_within_the_cache_expiry(backend):
    cache = {"cache": {"expiry": {"any": "2s", "unused": "1m"}}}
    a, b = backend.start(**cache), backend.start(**cache)
    ok(a.put("/v1/key/create/x"))
    v1 = base64.b64decode(encrypt(b, "x", b"one")["ciphertext"])  # B caches the ring
    rotate(a, "x")
    v2 = base64.b64decode(encrypt(a, "x", b"two")["ciphertext"])
    # B decrypts A's new version at once (the header forces one refresh).
    assert ok(decrypt(b, "x", v2))["plaintext"] == b64(b"two")
    ok(a.put("/v1/key/config/x", json={"min_decryption_version": "2"}))
    deadline = time.monotonic() + 2 + 10
    while decrypt(b, "x", v1).status_code == 200:
        assert time.monotonic() < deadline, "B never enforced A's minimum version"
        time.sleep(0.1)
    assert_error(decrypt(b, "x", v1), 400,
                 "decryption failed: key version is below the minimum decryption version")
    assert ok(b.put("/v1/key/generate/x"))["version"] == "2"
    # Bogus headers naming unknown versions cost at most one refresh per
    # second (plus the fills after each 2 s expiry), not one per request.
    before = metric(b, "kes_cpp_keystore_backend_gets_total")
    start = time.monotonic()
    for _ in range(200):
        assert decrypt(b, "x", b"kesv\x00\x00\x03\xe7" + os.urandom(60)).status_code == 400
    elapsed = time.monotonic() - start
    fills = metric(b, "kes_cpp_keystore_backend_gets_total") - before
    assert fills <= 1.5 * elapsed + 3 and fills < 100, (fills, elapsed)


def metric(srv, name):
    for line in ok_text(srv.get("/v1/metrics")).splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("metric %s missing" % name)


def ok_text(resp):
    assert resp.status_code == 200, resp.text
    return resp.text


# --- §11.12, §11.15-17: names, deletion, corruption, limits ------------------------

def test_delete_removes_versions_and_recreate_starts_fresh(backend):
    srv = backend.start()
    ok(srv.put("/v1/key/create/d"))
    rotate(srv, "d")
    rotate(srv, "d")
    ok(srv.put("/v1/key/config/d", json={"min_decryption_version": "3"}))
    ok(srv.delete("/v1/key/delete/d"))
    assert_error(srv.put("/v1/key/rotate/d"), 404, "key does not exist")
    assert_error(srv.get("/v1/key/versions/d"), 404, "key does not exist")
    assert ok(srv.get("/v1/key/list/*"))["names"] is None
    if backend.kind == "fs":
        assert list(backend.keys_dir.iterdir()) == []
    ok(srv.put("/v1/key/create/d"))
    info = ok(srv.get("/v1/key/versions/d"))
    assert info["latest_version"] == "1" and info["min_decryption_version"] == "1"


def test_orphans_of_a_deleted_key_are_ignored_and_replaced(fs_backend):
    srv = fs_backend.start()
    keys = fs_backend.keys_dir
    ok(srv.put("/v1/key/create/o"))
    rotate(srv, "o")
    rotate(srv, "o")
    orphan_v2, orphan_v3 = (keys / "o-v2-").read_bytes(), (keys / "o-v3-").read_bytes()
    srv.stop()
    # A crash after the key's own entry was removed leaves its versions behind.
    (keys / "o").unlink()
    srv = fs_backend.start()
    assert_error(srv.get("/v1/key/describe/o"), 404, "key does not exist")
    ok(srv.put("/v1/key/create/o"))  # removes the orphans
    assert ok(srv.get("/v1/key/versions/o"))["latest_version"] == "1"
    assert not (keys / "o-v2-").exists()
    assert logged(srv, "removed orphan entry 'o-v2-'")  # §8: WARN
    # An orphan written back (another incarnation's genesis) is inert...
    (keys / "o-v2-").write_bytes(orphan_v2)
    (keys / "o-v3-").write_bytes(orphan_v3)
    srv.stop()
    srv = fs_backend.start()  # an empty cache reads the ring again
    assert ok(srv.get("/v1/key/versions/o"))["latest_version"] == "1"
    assert logged(srv, "ignoring orphan entry 'o-v2-' of an earlier key 'o'")
    # ...and a rotation replaces it.
    assert rotate(srv, "o")["version"] == "2"
    assert (keys / "o-v2-").read_bytes() != orphan_v2


def test_corrupt_version_entries_fail_the_key(fs_backend):
    srv = fs_backend.start(**{"cache": {"expiry": {"any": "1s"}}})
    keys = fs_backend.keys_dir
    ok(srv.put("/v1/key/create/bad"))
    rotate(srv, "bad")
    rotate(srv, "bad")
    good_v3 = (keys / "bad-v3-").read_bytes()
    (keys / "bad-v2-").write_text("not base64!")
    srv.stop()
    srv = fs_backend.start()
    assert_error(srv.get("/v1/key/describe/bad"), 502, "failed to read key")
    assert logged(srv, "corrupt internal entry 'bad-v2-'")  # §8: named in the error log
    # Right genesis but the number of another entry.
    (keys / "bad-v2-").write_bytes(good_v3)
    srv.stop()
    srv = fs_backend.start()
    assert_error(srv.put("/v1/key/generate/bad"), 502, "failed to read key")


def test_version_limit(fs_backend):
    srv = fs_backend.start()
    ok(srv.put("/v1/key/create/full"))
    rotate(srv, "full")
    # Entries up to 1000 made by copying version 2's entry with its number
    # patched (field 5 is the varint after the KeyVersion fields).
    keys = fs_backend.keys_dir
    raw = base64.b64decode((keys / "full-v2-").read_bytes())
    genesis_field = raw[-18:]
    body = raw[:-18 - 2]
    assert raw[-20:-18] == b"\x28\x02"
    for n in range(3, 1001):
        varint = bytes([n & 0x7F | 0x80, n >> 7]) if n >= 128 else bytes([n])
        (keys / ("full-v%d-" % n)).write_bytes(B64(body + b"\x28" + varint + genesis_field))
    srv.stop()
    srv = fs_backend.start()
    assert ok(srv.get("/v1/key/describe/full"))["version"] == "1000"
    assert_error(srv.put("/v1/key/rotate/full"), 409, "key has too many versions")


def test_new_routes_follow_policies(kes_server, certs):
    srv = kes_server()
    ok(srv.put("/v1/key/create/my-app-r"))
    # MinIO's usual rules do not grant rotation.
    assert_error(srv.put("/v1/key/rotate/my-app-r", client="client"), 403,
                 "not authorized: insufficient permissions")
    assert_error(srv.get("/v1/key/versions/my-app-r", client="client"), 403,
                 "not authorized: insufficient permissions")
    api = {e["path"]: e for e in ok(srv.get("/v1/api"))}
    for p in ("/v1/key/rotate/", "/v1/key/versions/", "/v1/key/config/", "/v1/key/rewrap/"):
        assert p in api
    assert api["/v1/key/rotate/"]["max_body"] == 0


# --- §9, §11.20: the CLI ----------------------------------------------------------

def test_cli_rotate_info_rewrap(fs_backend):
    from cli_helpers import err, kes, kes_tty, out, server_env
    srv = fs_backend.start()
    env = server_env(srv)
    assert kes(["key", "create", "cli-a", "cli-b"], env).returncode == 0
    old = json.loads(out(kes(["key", "encrypt", "cli-a", "hello"], env)))["ciphertext"]
    # Upstream output for a never-rotated key.
    info = json.loads(out(kes(["key", "info", "--json", "cli-a"], env)))
    assert "version" not in info and "versions" not in info
    p = kes(["key", "rotate", "cli-a", "cli-b"], env)
    assert p.returncode == 0, err(p)
    lines = [json.loads(line) for line in out(p).splitlines()]
    assert [(j["name"], j["version"]) for j in lines] == [("cli-a", "2"), ("cli-b", "2")]
    rc, text = kes_tty(["key", "rotate", "cli-a"], env)
    assert rc == 0 and "cli-a  version 3" in text
    p = kes(["key", "rotate", "missing"], env)
    assert p.returncode == 1 and 'failed to rotate key "missing": key does not exist' in err(p)
    info = json.loads(out(kes(["key", "info", "--json", "cli-a"], env)))
    assert info["version"] == "3" and info["min_decryption_version"] == "1"
    assert [v["version"] for v in info["versions"]] == ["1", "2", "3"]
    rc, text = kes_tty(["key", "info", "cli-a"], env)
    assert rc == 0 and "Version     3" in text and "Min Version 1" in text
    assert "State" in text and text.count("enabled") == 3
    r = json.loads(out(kes(["key", "rewrap", "cli-a", old], env)))
    assert r["version"] == "3"
    assert base64.b64decode(r["ciphertext"])[:8] == b"kesv\x00\x00\x00\x03"
    pt = json.loads(out(kes(["key", "decrypt", "cli-a", r["ciphertext"]], env)))
    assert base64.b64decode(pt["plaintext"]) == b"hello"
    r1 = json.loads(out(kes(["key", "rewrap", "--version", "1", "cli-a", r["ciphertext"]], env)))
    assert r1["version"] == "1"


def test_migrate_carries_every_version(fs_backend, tmp_path, certs, server_cert):
    import yaml
    from cli_helpers import err, kes, out, server_env
    srv = fs_backend.start()
    ok(srv.put("/v1/key/create/mig-a"))
    ok(srv.put("/v1/key/create/other"))
    rotate(srv, "mig-a")
    rotate(srv, "other")
    ok(srv.put("/v1/key/config/mig-a", json={"min_decryption_version": "2"}))
    ct = encrypt(srv, "mig-a", b"moved")["ciphertext"]
    srv.stop()
    dst = tmp_path / "dst-keys"
    cfg_from, cfg_to = tmp_path / "from.yml", tmp_path / "to.yml"
    cfg_from.write_text(yaml.safe_dump(base_config(certs, server_cert, fs_backend.keys_dir)))
    cfg_to.write_text(yaml.safe_dump(base_config(certs, server_cert, dst)))
    p = kes(["migrate", "--from", str(cfg_from), "--to", str(cfg_to), "mig-*"])
    assert p.returncode == 0, err(p)
    assert out(p).endswith("Migrated      1 keys successfully!\n")
    assert sorted(f.name for f in dst.iterdir()) == ["mig-a", "mig-a-c1-", "mig-a-v2-"]
    fs_backend.keys_dir = dst
    moved = fs_backend.start()
    assert ok(decrypt(moved, "mig-a", base64.b64decode(ct)))["plaintext"] == b64(b"moved")
    assert ok(moved.get("/v1/key/versions/mig-a"))["min_decryption_version"] == "2"


def test_cli_config_and_pinned_versions(fs_backend):
    from cli_helpers import err, kes, kes_tty, out, server_env
    srv = fs_backend.start()
    env = server_env(srv)
    assert kes(["key", "create", "cv"], env).returncode == 0
    # A never-rotated key: upstream's output, no version.
    assert set(json.loads(out(kes(["key", "encrypt", "cv", "hi"], env)))) == {"ciphertext"}
    assert set(json.loads(out(kes(["key", "dek", "cv"], env)))) == {"plaintext", "ciphertext"}
    rc, text = kes_tty(["key", "dek", "cv"], env)
    assert rc == 0 and "version:" not in text
    rotate(srv, "cv")
    e = json.loads(out(kes(["key", "encrypt", "cv", "hi"], env)))
    assert e["version"] == "2" and base64.b64decode(e["ciphertext"])[:8] == b"kesv\x00\x00\x00\x02"
    e1 = json.loads(out(kes(["key", "encrypt", "--version", "1", "cv", "hi"], env)))
    assert e1["version"] == "1" and len(base64.b64decode(e1["ciphertext"])) == 2 + 44
    d1 = json.loads(out(kes(["key", "dek", "--version", "1", "cv"], env)))
    assert d1["version"] == "1" and len(base64.b64decode(d1["ciphertext"])) == 76
    rc, text = kes_tty(["key", "dek", "cv"], env)
    assert rc == 0 and text.endswith("\nversion:    2\n"), text
    rc, text = kes_tty(["key", "encrypt", "--version", "1", "cv", "hi"], env)
    assert rc == 0 and text.endswith("\nversion:    1\n"), text
    p = kes(["key", "encrypt", "--version", "9", "cv", "hi"], env)
    assert p.returncode == 1 and "failed to encrypt message: key version does not exist" in err(p)

    p = kes(["key", "config", "--min-decryption-version", "2", "cv"], env)
    assert p.returncode == 0, err(p)
    assert json.loads(out(p)) == {"name": "cv", "latest_version": "2",
                                  "min_decryption_version": "2"}
    p = kes(["key", "decrypt", "cv", e1["ciphertext"]], env)
    assert p.returncode == 1
    assert ("failed to decrypt ciphertext: decryption failed: key version is below the minimum "
            "decryption version") in err(p)
    rc, text = kes_tty(["key", "config", "--min-decryption-version", "1", "cv"], env)
    assert rc == 0 and text == "min decryption version: 1\n", text
    pt = json.loads(out(kes(["key", "decrypt", "cv", e1["ciphertext"]], env)))
    assert base64.b64decode(pt["plaintext"]) == b"hi"
    p = kes(["key", "config", "--min-decryption-version", "3", "cv"], env)
    assert p.returncode == 1
    assert ('failed to configure key "cv": minimum decryption version must be between 1 and 2'
            in err(p))
    p = kes(["key", "config", "cv"], env)
    assert p.returncode != 0 and "no minimum decryption version specified" in err(p)
    p = kes(["key", "config", "--min-decryption-version", "1"], env)
    assert p.returncode != 0 and "no key name specified" in err(p)


# --- §8: audit events of rotations and configurations ---------------------------------

def test_audit_events_name_the_key_version(fs_backend):
    srv = fs_backend.start()
    with thread_session(srv) as s:
        stream = s.get(srv.base_url + "/v1/log/audit", stream=True, timeout=30)
        assert stream.status_code == 200
        lines = (json.loads(line) for line in stream.iter_lines() if line)
        ok(srv.put("/v1/key/create/aud"))
        created = next(lines)
        assert created["request"]["path"] == "/v1/key/create/aud" and "key" not in created
        rotate(srv, "aud")
        rotated = next(lines)
        assert rotated["request"]["path"] == "/v1/key/rotate/aud"
        assert rotated["response"]["code"] == 200
        assert rotated["key"] == {"name": "aud", "version": "2", "min_decryption_version": "1"}
        ok(srv.put("/v1/key/config/aud", json={"min_decryption_version": "2"}))
        configured = next(lines)
        assert configured["request"]["path"] == "/v1/key/config/aud"
        assert configured["key"] == {"name": "aud", "version": "2",
                                     "min_decryption_version": "2"}
        rotate(srv, "aud")
        assert next(lines)["key"] == {"name": "aud", "version": "3",
                                      "min_decryption_version": "2"}
        stream.close()


# --- §11.14: upstream's parse rules on the same fs directory ---------------------------

def upstream_read_key(path):
    """What upstream's fs keystore reads for a key (crypto.md §4.1): the file
    named like the key, base64 of KeyVersion; the secret key and its type."""
    version = protobuf_fields(base64.b64decode(path.read_bytes()))
    secret = protobuf_fields(version[1])
    return secret[1], secret[2]


def upstream_decrypt(key, ciphertext, context):
    """Upstream's decrypt of an AES256 key (crypto.md §5, §6.1): not
    MessagePack (0x95) nor JSON ('{'), so the raw form sealed||tag||iv||nonce
    with subkey HMAC-SHA256(key, iv). Raises InvalidTag where upstream answers
    400 "ciphertext is not authentic"."""
    import hashlib
    import hmac
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    assert ciphertext[0] != 0x95 and ciphertext[:1] != b"{"
    iv, nonce = ciphertext[-28:-12], ciphertext[-12:]
    subkey = hmac.new(key, iv, hashlib.sha256).digest()
    return AESGCM(subkey).decrypt(nonce, ciphertext[:-28], context)


def test_upstream_parse_rules_after_rotation(fs_backend):
    from cryptography.exceptions import InvalidTag
    srv = fs_backend.start()
    secret = bytes(range(32))
    ok(srv.put("/v1/key/import/up", json={"key": b64(secret), "cipher": "AES256"}))
    entry = fs_backend.keys_dir / "up"
    stored = entry.read_bytes()
    old = base64.b64decode(encrypt(srv, "up", b"old data", b"ctx")["ciphertext"])
    rotate(srv, "up")
    rotate(srv, "up")
    new = base64.b64decode(encrypt(srv, "up", b"new data", b"ctx")["ciphertext"])
    pinned = encrypt(srv, "up", b"pinned", b"ctx", version="1")
    # Upstream reads only "<name>": unchanged, still its one AES256 key.
    assert entry.read_bytes() == stored
    assert upstream_read_key(entry) == (secret, 1)
    assert ok(srv.get("/v1/key/versions/up"))["versions"][0]["algorithm"] == "AES256"
    # Version-1 data (old, or pinned to "1" after rotation) decrypts upstream.
    assert upstream_decrypt(secret, old, b"ctx") == b"old data"
    assert upstream_decrypt(secret, base64.b64decode(pinned["ciphertext"]), b"ctx") == b"pinned"
    # Versioned data is "not authentic" to upstream (400; no SDK failover).
    assert new[:8] == b"kesv\x00\x00\x00\x03"
    with pytest.raises(InvalidTag):
        upstream_decrypt(secret, new, b"ctx")
    # Upstream's fs listing shows the internal entries (rotation.md §4.9).
    assert sorted(p.name for p in fs_backend.keys_dir.iterdir()) == ["up", "up-v2-", "up-v3-"]


# --- §11.18: the requests of the Go SDK (v0.3.1 and HEAD) ------------------------------

def test_sdk_requests_against_a_rotated_key(backend):
    """The SDK's request shapes (kms-go `kes`): v0.3.1 sends no version and
    a null context when it has none; HEAD (#31) reads `version` from generate
    into DEK.Version and sends a non-empty `version` on decrypt."""
    srv = backend.start()
    ok(srv.put("/v1/key/create/sdk"))
    before = ok(srv.post("/v1/key/generate/sdk", data=json.dumps({"context": None})))
    rotate(srv, "sdk")
    ctx = b64(b'{"bucket":"b"}')
    # v0.3.1
    dek = ok(srv.post("/v1/key/generate/sdk", data=json.dumps({"context": ctx})))
    assert ok(srv.post("/v1/key/decrypt/sdk", data=json.dumps(
        {"ciphertext": dek["ciphertext"], "context": ctx}))) == {"plaintext": dek["plaintext"]}
    assert ok(srv.post("/v1/key/decrypt/sdk", data=json.dumps(
        {"ciphertext": before["ciphertext"], "context": None})))["plaintext"] == \
        before["plaintext"]
    # HEAD: DEK.Version is "2"; any version sent on decrypt is ignored.
    assert dek["version"] == "2"
    for version in ("", "2", "7"):
        body = {"ciphertext": dek["ciphertext"], "context": ctx}
        if version:
            body["version"] = version
        assert ok(srv.post("/v1/key/decrypt/sdk", data=json.dumps(body)))["plaintext"] == \
            dek["plaintext"]


# --- §11.19: MinIO's calls through a rotation and a restart -----------------------------

def test_minio_calls_survive_rotation_and_restart(fs_backend):
    """MinIO's use of KES, call for call: its IAM/config data and SSE-KMS
    objects are sealed with DEKs from generate (context: the object's path
    as JSON), read back with decrypt (no version: released MinIO stores
    none), and its root credentials derive from HMAC of the default key."""
    srv = fs_backend.start()
    ok(srv.put("/v1/key/create/minio-default"))

    def seal(path):
        ctx = b64(json.dumps({"minio": path}, separators=(",", ":")).encode())
        return ctx, ok(srv.post("/v1/key/generate/minio-default",
                                data=json.dumps({"context": ctx})))

    def unseal(server, ctx, dek):
        return ok(server.post("/v1/key/decrypt/minio-default", data=json.dumps(
            {"ciphertext": dek["ciphertext"], "context": ctx})))["plaintext"]

    def root_mac(server):
        return ok(server.post("/v1/key/hmac/minio-default",
                              data=json.dumps({"message": b64(b"root credentials")})))["hmac"]

    iam = seal(".minio.sys/config/iam/format.json")
    obj_before = seal("bucket/object-before")
    mac = root_mac(srv)
    rotate(srv, "minio-default")
    obj_after = seal("bucket/object-after")
    assert obj_after[1]["version"] == "2"
    for ctx, dek in (iam, obj_before, obj_after):
        assert unseal(srv, ctx, dek) == dek["plaintext"]
    assert root_mac(srv) == mac
    # MinIO restarts against a restarted KES (empty cache): the IAM data,
    # both objects and the root credentials are still the same.
    srv.stop()
    again = fs_backend.start()
    for ctx, dek in (iam, obj_before, obj_after):
        assert unseal(again, ctx, dek) == dek["plaintext"]
    assert root_mac(again) == mac

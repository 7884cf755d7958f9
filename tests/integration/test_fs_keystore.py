"""The filesystem keystore and the config loader through the real server:
upstream's on-disk layout in both directions, persistence across restarts,
predefined keys, ${VAR} expansion, unsupported backends, and the cache's
offline detection when the directory disappears (keystores.md §3, §5;
config.md §2, §3.9, §3.10)."""
import base64
import json
import os
import shutil
import stat
import time

import pytest

from kes_harness import KesServer, base_config, error_body, spec_dir


def vectors():
    with open(spec_dir() / "vectors" / "kes-test-vectors.json") as f:
        return json.load(f)


def read_varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def protobuf_fields(buf):
    """Top-level fields of a protobuf message: {number: bytes-or-int}."""
    out, i = {}, 0
    while i < len(buf):
        tag, i = read_varint(buf, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            out[number], i = read_varint(buf, i)
        elif wire == 2:
            n, i = read_varint(buf, i)
            out[number] = buf[i:i + n]
            i += n
        else:
            raise AssertionError("unexpected wire type %d" % wire)
    return out


def test_created_keys_use_upstream_layout(kes_server, certs):
    srv = kes_server()
    keys = srv.keystore_dir
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o700
    assert srv.put("/v1/key/create/my-app-a", client="client").status_code == 200
    path = keys / "my-app-a"
    assert path.is_file()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    raw = path.read_bytes()
    assert not raw.endswith(b"\n")
    # base64(protobuf KeyVersion): secret key, HMAC key, created_at, created_by.
    msg = protobuf_fields(base64.b64decode(raw, validate=True))
    secret, hmac = protobuf_fields(msg[1]), protobuf_fields(msg[2])
    assert len(secret[1]) == 32 and secret[2] in (1, 2)
    assert len(hmac[1]) == 32 and hmac[2] == 1
    assert msg[4].decode() == certs["client"].identity
    # No temporary or other files are left behind.
    assert sorted(p.name for p in keys.iterdir()) == ["my-app-a"]

    assert srv.delete("/v1/key/delete/my-app-a").status_code == 200
    assert not path.exists()
    r = srv.get("/v1/key/describe/my-app-a", client="client")
    assert r.status_code == 404 and r.content == error_body("key does not exist")


def test_serves_a_directory_written_by_upstream(tmp_path, certs, server_cert, my_app_policy):
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o755)
    stored = {}
    for v in vectors()["key_version_parse"]:
        if v["expected"]["should_fail"]:
            continue
        name = "my-app-upstream-%d" % len(stored)
        (keys / name).write_text(v["input"]["stored_value_text"])
        stored[name] = v
    # Files upstream never lists as keys here: hidden files and directories.
    (keys / ".hidden").write_text("x")
    (keys / "my-app-dir").mkdir()
    srv = KesServer(tmp_path / "srv", base_config(certs, server_cert, keys, my_app_policy),
                    server_cert, certs).start()
    try:
        for name, v in stored.items():
            r = srv.get("/v1/key/describe/" + name, client="client")
            assert r.status_code == 200, (name, r.content)
            assert r.json()["algorithm"] == v["expected"]["key_type"]
            plaintext = base64.b64encode(b"hello").decode()
            enc = srv.put("/v1/key/encrypt/" + name, client="client", json={"plaintext": plaintext})
            assert enc.status_code == 200, enc.content
            dec = srv.put("/v1/key/decrypt/" + name, client="client",
                          json={"ciphertext": enc.json()["ciphertext"]})
            assert dec.status_code == 200 and dec.json()["plaintext"] == plaintext
        r = srv.get("/v1/key/list/my-app-upstream*", client="client")
        assert r.status_code == 200
        text = r.text
        for name in stored:
            assert name in text
        assert ".hidden" not in text and "my-app-dir" not in text
        # The files are untouched (never rewritten in another format).
        for name, v in stored.items():
            assert (keys / name).read_text() == v["input"]["stored_value_text"]
    finally:
        srv.stop()


def test_keys_survive_a_restart_and_predefined_keys_are_created(tmp_path, certs, server_cert,
                                                                my_app_policy):
    keys = tmp_path / "keys"
    cfg = base_config(certs, server_cert, keys, my_app_policy,
                      keys=[{"name": "my-app-predefined"}, {"name": "my-app-other"}])
    srv = KesServer(tmp_path / "srv1", cfg, server_cert, certs).start()
    try:
        assert srv.put("/v1/key/create/my-app-k", client="client").status_code == 200
        r = srv.put("/v1/key/generate/my-app-k", client="client")
        assert r.status_code == 200
        dek = r.json()
        d = srv.get("/v1/key/describe/my-app-predefined", client="client")
        assert d.status_code == 200
        assert d.json()["created_by"] == certs["admin"].identity
    finally:
        assert srv.stop() == 0
    assert (keys / "my-app-predefined").is_file() and (keys / "my-app-other").is_file()
    before = (keys / "my-app-predefined").read_bytes()

    # A second server on the same directory: existing keys are served, the
    # predefined ones are left as they are ("already exists" is ignored).
    srv = KesServer(tmp_path / "srv2", cfg, server_cert, certs).start()
    try:
        r = srv.put("/v1/key/decrypt/my-app-k", client="client",
                    json={"ciphertext": dek["ciphertext"]})
        assert r.status_code == 200 and r.json()["plaintext"] == dek["plaintext"]
        assert srv.put("/v1/key/create/my-app-k", client="client").content == \
            error_body("key already exists")
    finally:
        srv.stop()
    assert (keys / "my-app-predefined").read_bytes() == before


def test_keystore_path_from_environment(tmp_path, certs, server_cert, my_app_policy, monkeypatch):
    keys = tmp_path / "env-keys"
    monkeypatch.setenv("KES_TEST_FS_PATH", str(keys))
    cfg = base_config(certs, server_cert, "${KES_TEST_FS_PATH}", my_app_policy)
    srv = KesServer(tmp_path / "srv", cfg, server_cert, certs).start()
    try:
        assert "Filesystem: " + str(keys) in srv.stdout_text()
        assert srv.put("/v1/key/create/my-app-env", client="client").status_code == 200
        assert (keys / "my-app-env").is_file()
    finally:
        srv.stop()


def test_missing_environment_variable_fails_start(tmp_path, certs, server_cert):
    os.environ.pop("KES_TEST_UNSET_VAR", None)
    cfg = base_config(certs, server_cert, "${KES_TEST_UNSET_VAR}")
    srv = KesServer(tmp_path / "srv", cfg, server_cert, certs)
    with pytest.raises(RuntimeError):
        srv.start(timeout=30)
    assert srv.proc.returncode == 1
    assert "kesconf: referenced env. variable 'KES_TEST_UNSET_VAR' in line '" in srv.stderr_text()


def test_a_keystore_that_cannot_connect_fails_start_with_one_clear_line(tmp_path, certs,
                                                                       server_cert):
    cfg = base_config(certs, server_cert, tmp_path / "unused")
    cfg["keystore"] = {"entrust": {"keycontrol": {
        "endpoint": "e", "vault_id": "v", "box_id": "b",
        "credentials": {"username": "u", "password": "p"}}}}
    srv = KesServer(tmp_path / "srv", cfg, server_cert, certs)
    with pytest.raises(RuntimeError):
        srv.start(timeout=30)
    assert srv.proc.returncode == 1
    assert "keycontrol: invalid endpoint" in srv.stderr_text()
    assert "not supported" not in srv.stderr_text()


def test_vanished_directory_makes_the_keystore_unreachable(kes_server):
    srv = kes_server()
    assert srv.get("/v1/ready").status_code == 200
    shutil.rmtree(srv.keystore_dir)
    # The cache probes every 10 s; poll with a generous deadline.
    deadline = time.monotonic() + 90
    status = None
    while time.monotonic() < deadline:
        status = srv.get("/v1/ready").status_code
        if status == 504:
            break
        time.sleep(0.5)
    assert status == 504
    r = srv.get("/v1/status")
    assert r.status_code == 200 and r.json()["keystore_unreachable"] is True

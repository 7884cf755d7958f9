"""Shared by the remote-keystore test files (Vault, GCP): `kes server`
processes started with a given `keystore:` section, a key round trip through
the API, and `kes migrate` from fs to the backend and back."""
import base64
import threading
import time
from pathlib import Path

import yaml

from cli_helpers import kes, out
from kes_harness import LEGACY_VALUE, UPSTREAM_VALUE, KesServer, base_config


class KeystoreServers:
    """Starts `kes server`s whose config has `keystore` as its keystore
    section; stop_all() ends every one started."""

    def __init__(self, tmp_path, certs, server_cert):
        self.tmp_path, self.certs, self.server_cert = tmp_path, certs, server_cert
        self.started = []

    def start(self, keystore, **extra):
        cfg = base_config(self.certs, self.server_cert, Path("/nonexistent"), **extra)
        cfg["keystore"] = keystore
        srv = KesServer(self.tmp_path / ("kes%d" % len(self.started)), cfg, self.server_cert,
                        self.certs)
        self.started.append(srv)
        return srv.start()

    def stop_all(self):
        for srv in self.started:
            srv.stop()


def use_key(srv, name):
    """Generates a data key with `name` and decrypts it again."""
    ctx = base64.b64encode(b"ctx").decode()
    r = srv.put("/v1/key/generate/" + name, json={"context": ctx})
    assert r.status_code == 200, r.text
    dek = r.json()
    r = srv.put("/v1/key/decrypt/" + name, json={"ciphertext": dek["ciphertext"], "context": ctx})
    assert r.status_code == 200, r.text
    assert r.json()["plaintext"] == dek["plaintext"]
    return dek


def failures_under_create_traffic(srv, during):
    """Creates keys traffic-0, traffic-1, ... every 50 ms on a thread while
    `during()` runs; returns the bodies of the creates that failed."""
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
        during()
    finally:
        done.set()
        t.join()
    return failures


def migrate_fs_to_and_back(tmp_path, certs, server_cert, keystore, env, stored):
    """`kes migrate` of an upstream and a legacy key from an fs store to
    `keystore` and back to a fresh fs store; `stored(name)` reads what the
    backend holds, which must be the value unchanged."""
    src_dir = tmp_path / "src-keys"
    src_dir.mkdir()
    (src_dir / "upstream").write_text(UPSTREAM_VALUE)
    (src_dir / "legacy").write_text(LEGACY_VALUE)
    fs_cfg = tmp_path / "fs.yml"
    fs_cfg.write_text(yaml.safe_dump(base_config(certs, server_cert, src_dir)))
    remote_cfg = tmp_path / "remote.yml"
    cfg = base_config(certs, server_cert, Path("/nonexistent"))
    cfg["keystore"] = keystore
    remote_cfg.write_text(yaml.safe_dump(cfg))
    back_dir = tmp_path / "back-keys"
    back_cfg = tmp_path / "back.yml"
    back_cfg.write_text(yaml.safe_dump(base_config(certs, server_cert, back_dir)))

    p = kes(["migrate", "--from", str(fs_cfg), "--to", str(remote_cfg)], env)
    assert p.returncode == 0, p.stderr
    assert "Migrated      2 keys successfully!" in out(p)
    assert stored("legacy") == LEGACY_VALUE  # copied unchanged
    p = kes(["migrate", "--from", str(remote_cfg), "--to", str(back_cfg)], env)
    assert p.returncode == 0, p.stderr
    assert (back_dir / "upstream").read_text() == UPSTREAM_VALUE
    assert (back_dir / "legacy").read_text() == LEGACY_VALUE

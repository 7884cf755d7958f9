"""Helpers the keystore backends' end-to-end tests share: a KES server
started on a given `keystore:` section, a key used through the API, and
`kes migrate` from fs to a backend and back."""
import base64
import threading
from pathlib import Path

import yaml

from cli_helpers import clean_env, kes, out
from kes_harness import LEGACY_VALUE, UPSTREAM_VALUE, KesServer, base_config


class KesStarter:
    """start(keystore, **extra) starts `kes server` with `keystore:` set to
    `keystore` (e.g. {"vault": {...}}); stop_all() ends every one started."""

    def __init__(self, tmp_path, certs, server_cert):
        self.tmp_path, self.certs, self.server_cert = tmp_path, certs, server_cert
        self.started = []

    def config(self, keystore, **extra):
        cfg = base_config(self.certs, self.server_cert, Path("/nonexistent"), **extra)
        cfg["keystore"] = keystore
        return cfg

    def start(self, keystore, **extra):
        srv = KesServer(self.tmp_path / ("kes%d" % len(self.started)),
                        self.config(keystore, **extra), self.server_cert, self.certs)
        self.started.append(srv)
        return srv.start()

    def stop_all(self):
        for srv in self.started:
            srv.stop()


def use_key(srv, name):
    """generate + decrypt with the key `name` through the API; returns the DEK."""
    ctx = base64.b64encode(b"ctx").decode()
    r = srv.put("/v1/key/generate/" + name, json={"context": ctx})
    assert r.status_code == 200, r.text
    dek = r.json()
    r = srv.put("/v1/key/decrypt/" + name, json={"ciphertext": dek["ciphertext"], "context": ctx})
    assert r.status_code == 200, r.text
    assert r.json()["plaintext"] == dek["plaintext"]
    return dek


def migrate_fs_and_back(tmp_path, certs, server_cert, keystore, stored_value):
    """Migrates an fs store holding `upstream` (current format) and `legacy`
    (JSON) to `keystore`, checks with stored_value(name) that the backend
    holds them unchanged, then migrates them back to a new fs store."""
    src_dir = tmp_path / "src-keys"
    src_dir.mkdir()
    (src_dir / "upstream").write_text(UPSTREAM_VALUE)
    (src_dir / "legacy").write_text(LEGACY_VALUE)
    fs_cfg = tmp_path / "fs.yml"
    fs_cfg.write_text(yaml.safe_dump(base_config(certs, server_cert, src_dir)))
    backend_cfg = tmp_path / "backend.yml"
    cfg = base_config(certs, server_cert, Path("/nonexistent"))
    cfg["keystore"] = keystore
    backend_cfg.write_text(yaml.safe_dump(cfg))
    back_dir = tmp_path / "back-keys"
    back_cfg = tmp_path / "back.yml"
    back_cfg.write_text(yaml.safe_dump(base_config(certs, server_cert, back_dir)))

    p = kes(["migrate", "--from", str(fs_cfg), "--to", str(backend_cfg)], clean_env())
    assert p.returncode == 0, p.stderr
    assert "Migrated      2 keys successfully!" in out(p)
    assert stored_value("legacy") == LEGACY_VALUE  # copied unchanged
    assert stored_value("upstream") == UPSTREAM_VALUE
    p = kes(["migrate", "--from", str(backend_cfg), "--to", str(back_cfg)], clean_env())
    assert p.returncode == 0, p.stderr
    assert (back_dir / "upstream").read_text() == UPSTREAM_VALUE
    assert (back_dir / "legacy").read_text() == LEGACY_VALUE


class Traffic:
    """`with Traffic(srv) as t:` creates keys traffic-0, traffic-1, ... about
    20 times a second in a background thread; t.failures holds the answers
    that were not 200."""

    def __init__(self, srv):
        self.srv = srv
        self.failures = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self):
        i = 0
        while not self._done.is_set():
            r = self.srv.put("/v1/key/create/traffic-%d" % i)
            if r.status_code != 200:
                self.failures.append(r.text)
            i += 1
            self._done.wait(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()

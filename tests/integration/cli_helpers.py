"""Helpers for tests that run the `kes` CLI as a subprocess against a real
server started with the shared fixtures (conftest.py / kes_harness.py)."""
from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from typing import Dict, List, Optional

from pathlib import Path

import yaml

from kes_harness import (LEGACY_VALUE, UPSTREAM_VALUE, base_config, check_no_sanitizer_report,
                         kes_bin)

# Variables that would leak the caller's settings into a test.
_SCRUB_PREFIXES = ("KES_", "MINIO_", "SSL_CERT_", "HTTPS_PROXY", "HTTP_PROXY", "https_proxy",
                   "http_proxy", "NO_COLOR", "COMP_LINE")


def clean_env(**overrides) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(_SCRUB_PREFIXES) or k in ("KES_BIN", "KES_SPEC_DIR")}
    env.pop("KES_BIN", None)
    env.update({k: v for k, v in overrides.items() if v is not None})
    return env


def server_env(srv, client: str = "admin", trust: bool = True, **overrides) -> Dict[str, str]:
    """Environment for talking to `srv` as `client` (a key of srv.identities)."""
    ident = srv.identities[client]
    env = {"KES_SERVER": srv.base_url}
    if ident.api_key and client == "apikey":
        env["KES_API_KEY"] = ident.api_key
    else:
        env["KES_CLIENT_CERT"] = ident.cert
        env["KES_CLIENT_KEY"] = ident.key
    if trust:
        env["SSL_CERT_FILE"] = srv.server_cert.ca
    env.update(overrides)
    return clean_env(**env)


def kes(args: List[str], env: Optional[Dict[str, str]] = None, cwd=None, timeout=60,
        input: Optional[bytes] = None) -> subprocess.CompletedProcess:
    """Runs `kes args...` with pipes (non-terminal mode); text output."""
    p = subprocess.run([kes_bin()] + list(args), env=env if env is not None else clean_env(),
                       cwd=cwd, capture_output=True, timeout=timeout, input=input)
    check_no_sanitizer_report("kes " + " ".join(args), p.stderr.decode("utf-8", "replace"))
    return p


def out(p: subprocess.CompletedProcess) -> str:
    return p.stdout.decode()


def err(p: subprocess.CompletedProcess) -> str:
    return p.stderr.decode()


def kes_tty(args: List[str], env: Dict[str, str], cwd=None, timeout=60):
    """Runs `kes` with stdout and stderr on a pseudo-terminal (terminal mode).
    Returns (exit code, combined output with '\\r\\n' turned into '\\n')."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        try:
            if cwd:
                os.chdir(cwd)
            os.execve(kes_bin(), [kes_bin()] + list(args), env)
        finally:
            os._exit(127)
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            raise TimeoutError("kes did not finish: %r" % (args,))
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    check_no_sanitizer_report("kes " + " ".join(args), text)
    return os.waitstatus_to_exitcode(status), text


def migrate_round_trip(tmp_path, certs, server_cert, keystore: dict, check_stored,
                       env: Optional[Dict[str, str]] = None) -> None:
    """`kes migrate` of an upstream and a legacy key from an fs keystore to
    `keystore` (a config's `keystore:` section), `check_stored()` on the
    backend, and back to a fresh fs keystore: the values come back unchanged.
    `env` is the CLI's environment (default clean_env(), e.g. one with
    SSL_CERT_FILE for a backend whose CA the config cannot name)."""
    if env is None:
        env = clean_env()
    src_dir = tmp_path / "src-keys"
    src_dir.mkdir()
    (src_dir / "upstream").write_text(UPSTREAM_VALUE)
    (src_dir / "legacy").write_text(LEGACY_VALUE)
    fs_cfg = tmp_path / "fs.yml"
    fs_cfg.write_text(yaml.safe_dump(base_config(certs, server_cert, src_dir)))
    to_cfg = tmp_path / "to.yml"
    cfg = base_config(certs, server_cert, Path("/nonexistent"))
    cfg["keystore"] = keystore
    to_cfg.write_text(yaml.safe_dump(cfg))
    back_dir = tmp_path / "back-keys"
    back_cfg = tmp_path / "back.yml"
    back_cfg.write_text(yaml.safe_dump(base_config(certs, server_cert, back_dir)))

    p = kes(["migrate", "--from", str(fs_cfg), "--to", str(to_cfg)], env)
    assert p.returncode == 0, p.stderr
    assert "Migrated      2 keys successfully!" in out(p)
    check_stored()
    p = kes(["migrate", "--from", str(to_cfg), "--to", str(back_cfg)], env)
    assert p.returncode == 0, p.stderr
    assert (back_dir / "upstream").read_text() == UPSTREAM_VALUE
    assert (back_dir / "legacy").read_text() == LEGACY_VALUE

"""VAULT_SRV_LOOKUP through the real thing: `kes server` with the endpoint
http://vault.test (no port) finds the Vault test endpoint through the SRV
record _http._tcp.vault.test, answered by a DNS responder inside a private
user + network + mount namespace (vault_srv_netns.py); the host's DNS and
network are never touched.
"""
import subprocess
import sys
from pathlib import Path

import pytest

HELPER = Path(__file__).resolve().parent / "vault_srv_netns.py"


def test_srv_lookup_finds_vault_by_srv_record(tmp_path):
    probe = subprocess.run(["unshare", "-rnm", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("cannot create user+net+mount namespaces here: " + probe.stderr.strip())
    run = subprocess.run(["unshare", "-rnm", sys.executable, str(HELPER), str(tmp_path)],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    queries = [ln for ln in run.stdout.splitlines() if ln.startswith("srv queries:")]
    assert queries and int(queries[-1].split(":")[1]) >= 1, run.stdout

"""`kes migrate` between two fs keystores (cli.md §3.11): keys are copied
unchanged (old ciphertexts still decrypt at the target), existing keys are
never overwritten unless --force, --merge resumes an earlier run."""
import json

import pytest
import yaml

from cli_helpers import clean_env, err, kes, out, server_env
from kes_harness import base_config


def write_config(path, certs, server_cert, keystore_dir):
    path.write_text(yaml.safe_dump(base_config(certs, server_cert, keystore_dir)))
    return str(path)


@pytest.fixture
def setup(tmp_path, kes_server, certs, server_cert):
    src = kes_server()
    env = server_env(src)
    assert kes(["key", "create", "app-1", "app-2", "other"], env).returncode == 0
    dek = json.loads(out(kes(["key", "dek", "app-1"], env)))
    src.stop()
    dst_dir = tmp_path / "dst-keys"
    from_cfg = write_config(tmp_path / "from.yml", certs, server_cert, src.keystore_dir)
    to_cfg = write_config(tmp_path / "to.yml", certs, server_cert, dst_dir)
    return from_cfg, to_cfg, dst_dir, dek


def test_migrate_pattern_then_merge_then_force(setup, kes_server, my_app_policy, certs,
                                               server_cert):
    from_cfg, to_cfg, dst_dir, dek = setup
    p = kes(["migrate", "--from", from_cfg, "--to", to_cfg, "app-*"])
    assert p.returncode == 0, err(p)
    assert out(p).startswith("Starting key migration:\n\n")
    assert out(p).endswith("Migrated      2 keys successfully!\n")
    assert sorted(f.name for f in dst_dir.iterdir()) == ["app-1", "app-2"]

    # Existing keys abort a plain run ...
    p = kes(["migrate", "--from", from_cfg, "--to", to_cfg])
    assert p.returncode == 1
    assert "key already exists" in err(p)
    # ... --merge resumes: only the missing key is copied.
    p = kes(["migrate", "--merge", "--from", from_cfg, "--to", to_cfg])
    assert p.returncode == 0, err(p)
    assert out(p).endswith("Migrated      1 keys successfully!\n")
    p = kes(["migrate", "--merge", "--from", from_cfg, "--to", to_cfg])
    assert out(p).endswith("Migration succeeded! No keys migrated.\n")
    p = kes(["migrate", "--force", "--from", from_cfg, "--to", to_cfg, "other"])
    assert p.returncode == 0, err(p)

    # The target serves the same key material.
    dst = kes_server(config=base_config(certs, server_cert, dst_dir, my_app_policy))
    p = kes(["key", "decrypt", "app-1", dek["ciphertext"]], server_env(dst))
    assert p.returncode == 0, err(p)
    assert json.loads(out(p))["plaintext"] == dek["plaintext"]


@pytest.mark.parametrize("args,message", [
    (["--to", "b.yml"], "no source specified. Use '--from' flag"),
    (["--from", "a.yml", "--to", "b.yml", "-s", "h"], "cannot use '-s / --server' and '--to' flag"),
    (["--from", "a.yml", "--to", "b.yml", "-k"], "cannot use '-k / --insecure' and '--to' flag"),
    (["--from", "a.yml"], "missing migration target. Use '--to' or '--server'"),
    (["--from", "a.yml", "--to", "b.yml", "-f", "--merge"],
     "'--force' and '--merge' flags are mutually exclusive"),
    (["--from", "a.yml", "--to", "b.yml", "x", "y"], "too many arguments"),
    (["--from", "missing.yml", "--to", "b.yml"], "missing.yml"),
])
def test_migrate_argument_errors(tmp_path, args, message):
    p = kes(["migrate"] + args, clean_env(), cwd=tmp_path)
    assert p.returncode == 1
    assert err(p).startswith("Error: ") and message in err(p)

"""`kes key ...` against a real server (cli.md §3.5, transcripts/cli.txt)."""
import base64
import json
import os

import pytest

from cli_helpers import err, kes, kes_tty, out, server_env


@pytest.fixture
def srv(kes_server):
    return kes_server()


def test_create_twice_reports_upstream_error(srv):
    env = server_env(srv)
    p = kes(["key", "create", "my-app-key1"], env)
    assert p.returncode == 0, err(p)
    assert out(p) == "" and err(p) == ""
    p = kes(["key", "create", "my-app-key1"], env)
    assert p.returncode == 1
    assert err(p) == 'Error: failed to create key "my-app-key1": key already exists\n'
    # The server really has the key.
    assert srv.get("/v1/key/describe/my-app-key1").status_code == 200


def test_create_many_stops_at_first_error(srv):
    env = server_env(srv)
    assert kes(["key", "create", "k2"], env).returncode == 0
    p = kes(["key", "create", "k1", "k2", "k3"], env)
    assert p.returncode == 1
    assert '"k2": key already exists' in err(p)
    assert srv.get("/v1/key/describe/k1").status_code == 200
    assert srv.get("/v1/key/describe/k3").status_code == 404


def test_dek_non_terminal_json_and_decrypt_round_trip(srv):
    env = server_env(srv)
    assert kes(["key", "create", "k"], env).returncode == 0
    p = kes(["key", "dek", "k"], env)
    assert p.returncode == 0, err(p)
    assert not out(p).endswith("\n")  # upstream: no newline
    dek = json.loads(out(p))
    assert list(dek) == ["plaintext", "ciphertext"]
    assert len(base64.b64decode(dek["plaintext"])) == 32
    p = kes(["key", "decrypt", "k", dek["ciphertext"]], env)
    assert p.returncode == 0, err(p)
    assert json.loads(out(p)) == {"plaintext": dek["plaintext"]}


def test_dek_with_context(srv):
    env = server_env(srv)
    assert kes(["key", "create", "k"], env).returncode == 0
    ctx = base64.b64encode(b"bucket/object").decode()
    dek = json.loads(out(kes(["key", "dek", "k", ctx], env)))
    p = kes(["key", "decrypt", "k", dek["ciphertext"], ctx], env)
    assert json.loads(out(p))["plaintext"] == dek["plaintext"]
    p = kes(["key", "decrypt", "k", dek["ciphertext"]], env)  # context missing
    assert p.returncode == 1
    assert err(p) == "Error: failed to decrypt ciphertext: decryption failed: ciphertext is not authentic\n"


def test_dek_terminal_form(srv):
    env = server_env(srv, NO_COLOR="1")
    assert kes(["key", "create", "k"], env).returncode == 0
    rc, text = kes_tty(["key", "dek", "k"], env)
    assert rc == 0
    lines = text.split("\n")
    assert lines[0] == ""
    assert lines[1].startswith("plaintext:  ")
    assert lines[2].startswith("ciphertext: ")
    assert len(base64.b64decode(lines[1][len("plaintext:  "):])) == 32


def test_dek_json_flag_is_unknown(srv):
    p = kes(["key", "dek", "--json", "k"], server_env(srv))
    assert p.returncode == 1
    assert err(p) == "Error: unknown flag: --json. See 'kes key dek --help'\n"


def test_encrypt_decrypt_message(srv):
    env = server_env(srv)
    assert kes(["key", "create", "k"], env).returncode == 0
    p = kes(["key", "encrypt", "k", "Hello World"], env)
    assert p.returncode == 0, err(p)
    ct = json.loads(out(p))["ciphertext"]
    p = kes(["key", "decrypt", "k", ct], env)
    assert base64.b64decode(json.loads(out(p))["plaintext"]) == b"Hello World"


def test_import_info_ls_rm(srv):
    env = server_env(srv)
    key = base64.b64encode(os.urandom(32)).decode()
    p = kes(["key", "import", "imp", key], env)
    assert p.returncode == 0, err(p)
    p = kes(["key", "info", "imp", "--json"], env)
    info = json.loads(out(p))
    assert info["name"] == "imp" and "algorithm" not in info  # AES256 omitted (upstream)
    assert info["created_by"] == srv.identities["admin"].identity
    p = kes(["key", "info", "imp"], env)
    text = out(p)
    assert text.startswith("Name        imp\nAlgorithm   AES256\nDate        ")
    assert text.endswith("Owner       " + srv.identities["admin"].identity)  # no newline
    assert kes(["key", "create", "imp-2"], env).returncode == 0
    assert out(kes(["key", "ls"], env)) == "Key\nimp\nimp-2\n"
    assert out(kes(["key", "ls", "imp-*"], env)) == "Key\nimp-2\n"
    p = kes(["key", "ls", "--json"], env)
    assert out(p) == '["imp","imp-2"]\n'  # JSON only (upstream also prints the table)
    assert kes(["key", "rm", "imp", "imp-2"], env).returncode == 0
    assert out(kes(["key", "ls", "--json"], env)) == "null\n"
    assert out(kes(["key", "ls"], env)) == ""
    p = kes(["key", "rm", "imp"], env)
    assert p.returncode == 1
    assert err(p) == 'Error: failed to remove key "imp": key does not exist\n'


def test_import_rejects_bad_input(srv):
    env = server_env(srv)
    # Go's base64 error offsets: the first bad byte; a missing '=' is reported
    # at the end of the input.
    for text, offset in (("not-base64!", 3), ("Zg=", 3), ("abc", 0)):
        p = kes(["key", "import", "x", text], env)
        assert p.returncode == 1
        assert err(p) == ("Error: invalid key: illegal base64 data at input byte %d. "
                          "See 'kes key import --help'\n" % offset), text
    p = kes(["key", "import", "x", base64.b64encode(b"short").decode()], env)
    assert p.returncode == 1
    assert err(p) == "Error: failed to import \"x\": invalid key size for 'AES256'\n"


@pytest.mark.parametrize("args,message", [
    (["create"], "no key name specified. See 'kes key create --help'"),
    (["import"], "no key name specified. See 'kes key import --help'"),
    (["import", "a"], "no crypto key specified. See 'kes key import --help'"),
    (["import", "a", "b", "c"], "too many arguments. See 'kes key import --help'"),
    (["info"], "no key name specified. See 'kes key info --help'"),
    (["info", "a", "b"], "too many arguments. See 'kes key info --help'"),
    (["ls", "a", "b"], "too many arguments. See 'kes key ls --help'"),
    (["rm"], "no key name specified. See 'kes key rm --help'"),
    (["encrypt", "a"], "no message specified. See 'kes key encrypt --help'"),
    (["decrypt", "a"], "no ciphertext specified. See 'kes key decrypt --help'"),
    (["dek"], "no key name specified. See 'kes key dek --help'"),
    (["dek", "a", "b", "c"], "too many arguments. See 'kes key dek --help'"),
    (["nope"], "\"nope\" is not a key command. See 'kes key --help'"),
    (["create", "--bogus", "x"], "unknown flag: --bogus. See 'kes key create --help'"),
    (["ls", "--color", "pink"],
     "invalid argument \"pink\" for \"--color\" flag: invalid color option. See 'kes key ls --help'"),
])
def test_argument_errors(args, message):
    # Argument checks happen before any connection attempt.
    p = kes(["key"] + args)
    assert p.returncode == 1
    assert err(p) == "Error: " + message + "\n"


def test_group_usage_and_help_exit_2():
    p = kes(["key"])
    assert p.returncode == 2 and "create" in err(p)
    p = kes(["key", "create", "--help"])
    assert p.returncode == 2 and "Example" in err(p)


def test_permission_denied_for_policy_client(srv):
    env = server_env(srv, client="client")
    p = kes(["key", "create", "my-app-1"], env)
    assert p.returncode == 0, err(p)
    p = kes(["key", "create", "other"], env)
    assert p.returncode == 1
    assert err(p) == 'Error: failed to create key "other": not authorized: insufficient permissions\n'


def test_api_key_client(srv):
    env = server_env(srv, client="apikey")
    assert "KES_API_KEY" in env and "KES_CLIENT_CERT" not in env
    p = kes(["key", "create", "my-app-api"], env)
    assert p.returncode == 0, err(p)
    p = kes(["key", "info", "--json", "my-app-api"], env)
    assert json.loads(out(p))["created_by"] == srv.identities["apikey"].identity

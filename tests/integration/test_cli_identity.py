"""`kes identity ...` (cli.md §3.4): offline commands checked against an
independent implementation (Python cryptography), online ones against a
real server."""
import base64
import hashlib
import json
import os
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cli_helpers import clean_env, err, kes, kes_tty, out, server_env

# vectors: api-key-identity (api.md §2.2)
VECTOR_KEY = "kes:v1:AD9E7FSYWrMD+VjhI6q545cYT9YOyFxZb7UnjEepYDRc"
VECTOR_ID = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"


def spki_identity(public_key):
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def test_generate_api_key_non_terminal():
    p = kes(["identity"])
    assert p.returncode == 0, err(p)
    key = out(p)
    assert re.fullmatch(r"kes:v1:[A-Za-z0-9+/]{44}", key)  # no newline
    raw = base64.b64decode(key[7:])
    assert raw[0] == 0 and len(raw) == 33
    # Its identity is the SPKI hash of the Ed25519 public key.
    pub = ed25519.Ed25519PrivateKey.from_private_bytes(raw[1:]).public_key()
    assert out(kes(["identity", key])) == spki_identity(pub)


def test_identity_of_api_key_vector():
    assert out(kes(["identity", "of", VECTOR_KEY])) == VECTOR_ID
    assert out(kes(["identity", VECTOR_KEY])) == VECTOR_ID
    assert out(kes(["identity", VECTOR_KEY[len("kes:v1:"):]])) == VECTOR_ID  # prefix optional


def test_identity_of_terminal_form():
    rc, text = kes_tty(["identity", "of", VECTOR_KEY], clean_env(NO_COLOR="1"))
    assert rc == 0
    assert text == "Identity:\n\n   " + VECTOR_ID + "\n"


def test_new_api_key_only_output():
    p = kes(["identity", "new"])
    assert p.returncode == 0, err(p)
    text = out(p)
    m = re.fullmatch(
        r"Your API key:\n\n   (kes:v1:\S{44})\n\n"
        r"This is the only time it is shown\. Keep it secret and secure!\n\n"
        r"Your Identity:\n\n   ([0-9a-f]{64})\n\n"
        r"The identity is not a secret\. It can be shared\. Any peer\n"
        r"needs this identity in order to verify your API key\.\n\n"
        r"The identity can be computed again via:\n\n    kes identity of (kes:v1:\S{44})\n\n", text)
    assert m, text
    assert m.group(1) == m.group(3)
    assert out(kes(["identity", "of", m.group(1)])) == m.group(2)


def test_new_with_files_matches_spec(tmp_path):
    p = kes(["identity", "new", "--key", "c.key", "--cert", "c.crt", "--dns", "a.example,b.example",
             "--ip", "127.0.0.1", "--ip", "::1", "--expiry", "48h", "MyApp"], cwd=tmp_path)
    assert p.returncode == 0, err(p)
    cert = x509.load_pem_x509_certificate((tmp_path / "c.crt").read_bytes())
    key = serialization.load_pem_private_key((tmp_path / "c.key").read_bytes(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "MyApp"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["a.example", "b.example"]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    life = cert.not_valid_after - cert.not_valid_before
    assert abs(life.total_seconds() - 48 * 3600) < 5
    ident = spki_identity(cert.public_key())
    assert "\n   " + ident + "\n" in out(p)
    assert out(p).endswith("    kes identity of c.crt\n")
    # `kes identity <private key file>` gives back the API key printed above.
    api_key = re.search(r"kes:v1:\S{44}", out(p)).group(0)
    assert out(kes(["identity", "c.key"], cwd=tmp_path)) == api_key
    assert out(kes(["identity", "c.crt"], cwd=tmp_path)) == ident


def test_new_encrypted_key_loads_with_password(tmp_path):
    env = clean_env(KES_CLIENT_KEY_PASSWORD="correct horse")
    p = kes(["identity", "new", "--encrypt", "--key", "e.key", "--cert", "e.crt", "X"], env,
            cwd=tmp_path)
    assert p.returncode == 0, err(p)
    pem = (tmp_path / "e.key").read_text()
    assert "Proc-Type: 4,ENCRYPTED" in pem and "DEK-Info: AES-256-CBC," in pem
    # An independent decoder (OpenSSL) accepts the password.
    import subprocess
    r = subprocess.run(["openssl", "pkey", "-in", "e.key", "-passin", "pass:correct horse",
                        "-noout"], cwd=tmp_path, capture_output=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("args,message", [
    (["new", "a", "b"], "too many arguments. See 'kes identity new --help'"),
    (["new", "--key", "k"], "private key file specified but no certificate file. Set the '--cert' flag"),
    (["new", "--cert", "c"], "certificate file specified but no private key file. Set the '--key' flag"),
    (["new", "--ip", "1.2.3"],
     "invalid argument \"1.2.3\" for \"--ip\" flag: invalid string being converted to IP address: "
     "1.2.3. See 'kes identity new --help'"),
    (["of"], "no API key or certificate specified. See 'kes identity of --help'"),
    (["of", "kes:v1:AAAA"], "invalid API key: invalid length"),
    (["of", "missing.crt"], "open missing.crt: no such file or directory"),
    (["rm"], "open rm: no such file or directory"),
    (["rm", "x"], "too many arguments"),
])
def test_identity_errors(tmp_path, args, message):
    p = kes(["identity"] + args, cwd=tmp_path)
    assert p.returncode == 1
    assert err(p).startswith("Error: ")
    assert message in err(p)


def test_new_refuses_to_overwrite(tmp_path):
    args = ["identity", "new", "--key", "k.key", "--cert", "k.crt"]
    assert kes(args, cwd=tmp_path).returncode == 0
    before = (tmp_path / "k.key").read_bytes()
    p = kes(args, cwd=tmp_path)
    assert p.returncode == 1
    assert err(p) == "Error: private key already exists. Use --force to overwrite it\n"
    assert (tmp_path / "k.key").read_bytes() == before
    assert kes(args + ["--force"], cwd=tmp_path).returncode == 0
    assert (tmp_path / "k.key").read_bytes() != before


def test_identity_of_rejects_non_certificate(tmp_path):
    (tmp_path / "junk.pem").write_text("hello")
    p = kes(["identity", "of", "junk.pem"], cwd=tmp_path)
    assert p.returncode == 1
    assert err(p).startswith("Error: failed to parse certificate in 'junk.pem': ")
    (tmp_path / "empty.pem").write_text("")
    p = kes(["identity", "of", "empty.pem"], cwd=tmp_path)
    assert p.returncode == 1
    assert err(p) == "Error: failed to parse certificate in 'empty.pem': https: no valid PEM data\n"


def test_identity_info_and_ls_online(kes_server):
    srv = kes_server()
    env = server_env(srv)
    admin = srv.identities["admin"].identity
    p = kes(["identity", "info"], env)
    assert p.returncode == 0, err(p)
    assert out(p).startswith("Identity    " + admin + "\n")
    assert "Role        Admin\n" in out(p)
    client = srv.identities["client"].identity
    p = kes(["identity", "info", client], env)
    assert p.returncode == 0, err(p)
    assert "Policy      my-app\n" in out(p) and "Role        User\n" in out(p)
    p = kes(["identity", "ls", "--json"], env)
    assert out(p).count("\n") == 1  # JSON only, no table after it
    ids = json.loads(out(p))
    assert admin in ids and client in ids and ids == sorted(ids)
    p = kes(["identity", "info", "ff" * 32], env)
    assert p.returncode == 1
    assert err(p) == "Error: identity does not exist\n"
    # A non-admin sees its own policy (fixed server, api.md §3.7.3).
    p = kes(["identity", "info"], server_env(srv, client="client"))
    assert p.returncode == 0, err(p)
    assert "Policy      my-app" in out(p) and "/v1/key/create/my-app*" in out(p)


def _interact(args, cwd, answers, env):
    """Runs kes on a pty and answers prompts: [(prompt, reply), ...]."""
    import pty
    import select
    import time
    from kes_harness import kes_bin
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        os.execve(kes_bin(), [kes_bin()] + args, env)
    seen = b""
    pending = list(answers)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            seen += data
        if pending and pending[0][0].encode() in seen:
            os.write(fd, pending.pop(0)[1].encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), seen.decode("utf-8", "replace")


def test_new_encrypt_prompts_twice_and_checks_match(tmp_path):
    import subprocess
    env = clean_env(NO_COLOR="1")
    args = ["identity", "new", "--encrypt", "--key", "p.key", "--cert", "p.crt"]
    rc, text = _interact(args, tmp_path, [("Enter password for private key:", "pw-1"),
                                          ("Confirm password for private key:", "pw-1")], env)
    assert rc == 0, text
    assert "pw-1" not in text  # no echo
    r = subprocess.run(["openssl", "pkey", "-in", "p.key", "-passin", "pass:pw-1", "-noout"],
                       cwd=tmp_path, capture_output=True)
    assert r.returncode == 0, r.stderr
    rc, text = _interact(args + ["--force"], tmp_path,
                         [("Enter password for private key:", "a"),
                          ("Confirm password for private key:", "b")], env)
    assert rc == 1
    assert "Error: passwords don't match" in text

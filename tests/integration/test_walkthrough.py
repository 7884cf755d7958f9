"""The seed walk-through, verbatim (cli.md §6; README "Walk-through"):

    kes identity new --ip "127.0.0.1" localhost
    kes identity new --key=client.key --cert=client.crt MyApp
    kes identity of client.crt
    <config.yml: admin disabled, tls private.key/public.crt, policy my-app, fs keystore>
    kes server --config config.yml --auth off --mlock
    export KES_SERVER=https://127.0.0.1:<port> KES_CLIENT_CERT=client.crt KES_CLIENT_KEY=client.key
    kes key create my-key-1          -> certificate not trusted: one hint line, exit 1
    SSL_CERT_FILE=public.crt kes key create my-key-1   (the way the hint says)
    kes key dek my-key-1
    kes key decrypt my-key-1 <ciphertext>  -> the DEK's plaintext

The only deviation from the guide: a free port instead of 7373.
"""
import json
import re
import socket
import subprocess
import time

import pytest

from cli_helpers import clean_env, err, kes, kes_tty, out
from kes_harness import free_port, kes_bin, stop_process

CONFIG = """\
address: 127.0.0.1:{port}

admin:
  identity: disabled

tls:
  key: private.key
  cert: public.crt

policy:
  my-app:
    allow:
    - /v1/key/create/my-key*
    - /v1/key/generate/my-key*
    - /v1/key/decrypt/my-key*
    identities:
    - {identity}

keystore:
  fs:
    path: ./keys
"""


@pytest.fixture
def walk(tmp_path):
    procs = []
    yield tmp_path, procs
    for p in procs:
        stop_process(p)


def start_server(cwd, procs, port):
    proc = subprocess.Popen([kes_bin(), "server", "--config", "config.yml", "--auth", "off",
                             "--mlock"], cwd=cwd, env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    procs.append(proc)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("server exited: %s" % proc.stdout.read().decode())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not listen on %d" % port)


def test_seed_walkthrough(walk):
    cwd, procs = walk
    env = clean_env()

    # 1. Server key pair (historical form; silent when stdout is not a terminal).
    p = kes(["identity", "new", "--ip", "127.0.0.1", "localhost"], env, cwd=cwd)
    assert p.returncode == 0, err(p)
    assert (cwd / "private.key").stat().st_mode & 0o777 == 0o600
    assert (cwd / "public.crt").stat().st_mode & 0o777 == 0o644
    cert_text = subprocess.run(["openssl", "x509", "-in", "public.crt", "-noout", "-text"],
                               cwd=cwd, capture_output=True, check=True).stdout.decode()
    assert "CN = localhost" in cert_text or "CN=localhost" in cert_text
    assert "IP Address:127.0.0.1" in cert_text

    # 2. Client identity.
    p = kes(["identity", "new", "--key=client.key", "--cert=client.crt", "MyApp"], env, cwd=cwd)
    assert p.returncode == 0, err(p)
    assert "The generated TLS certificate is stored at: client.crt" in out(p)

    # 3. Its identity.
    p = kes(["identity", "of", "client.crt"], env, cwd=cwd)
    assert p.returncode == 0, err(p)
    identity = out(p)
    assert re.fullmatch(r"[0-9a-f]{64}", identity)

    # 4. Config and server.
    port = free_port()
    (cwd / "config.yml").write_text(CONFIG.format(port=port, identity=identity))
    start_server(cwd, procs, port)

    client_env = clean_env(KES_SERVER="https://127.0.0.1:%d" % port,
                           KES_CLIENT_CERT="client.crt", KES_CLIENT_KEY="client.key")

    # 5. Without trusting the self-signed server certificate: one clear hint.
    p = kes(["key", "create", "my-key-1"], client_env, cwd=cwd)
    assert p.returncode == 1
    lines = err(p).splitlines()
    assert lines[0].startswith('Error: failed to create key "my-key-1": POST "https://127.0.0.1:')
    assert "certificate signed by unknown authority" in lines[0]
    assert len(lines) == 2 and "SSL_CERT_FILE" in lines[1] and "--insecure" in lines[1]

    # 6. The way the hint says: trust public.crt ...
    trusted = dict(client_env, SSL_CERT_FILE="public.crt")
    p = kes(["key", "create", "my-key-1"], trusted, cwd=cwd)
    assert p.returncode == 0, err(p)
    # ... or skip verification explicitly.
    p = kes(["key", "create", "-k", "my-key-2"], client_env, cwd=cwd)
    assert p.returncode == 0, err(p)

    # 7. A data encryption key, and its decryption.
    p = kes(["key", "dek", "my-key-1"], trusted, cwd=cwd)
    assert p.returncode == 0, err(p)
    dek = json.loads(out(p))
    p = kes(["key", "decrypt", "my-key-1", dek["ciphertext"]], trusted, cwd=cwd)
    assert p.returncode == 0, err(p)
    assert json.loads(out(p)) == {"plaintext": dek["plaintext"]}

    # 8. The policy holds: other keys and other APIs are denied.
    p = kes(["key", "create", "other-key"], trusted, cwd=cwd)
    assert p.returncode == 1
    assert "not authorized: insufficient permissions" in err(p)


def test_seed_identity_new_terminal_output(tmp_path):
    env = clean_env(NO_COLOR="1")
    rc, text = kes_tty(["identity", "new", "--ip", "127.0.0.1", "localhost"], env, cwd=tmp_path)
    assert rc == 0, text
    m = re.fullmatch(r"\n  Private key:  private\.key\n  Certificate:  public\.crt\n"
                     r"  Identity:     ([0-9a-f]{64})\n", text)
    assert m, repr(text)
    p = kes(["identity", "of", "public.crt"], env, cwd=tmp_path)
    assert out(p) == m.group(1)
    # Running it again refuses to overwrite.
    p = kes(["identity", "new", "--ip", "127.0.0.1", "localhost"], env, cwd=tmp_path)
    assert p.returncode == 1
    assert err(p) == "Error: private key already exists. Use --force to overwrite it\n"
    p = kes(["identity", "new", "--force", "--ip", "127.0.0.1", "localhost"], env, cwd=tmp_path)
    assert p.returncode == 0, err(p)
    assert kes(["identity", "of", "public.crt"], env, cwd=tmp_path).stdout.decode() != m.group(1)

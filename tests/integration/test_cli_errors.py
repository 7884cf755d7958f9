"""Bad input and broken connections: one clear `Error:` line, exit 1, no
hang (cli.md §1.2, §1.4); plus the top-level commands (version, usage,
completion, update)."""
import os
import re
import socket
import threading

import pytest

from cli_helpers import clean_env, err, kes, out, server_env

# A test API key (vectors: api-key-identity).
API_KEY = "kes:v1:AD9E7FSYWrMD+VjhI6q545cYT9YOyFxZb7UnjEepYDRc"


def one_error_line(p):
    assert p.returncode == 1, (p.stdout, p.stderr)
    lines = err(p).splitlines()
    assert lines and lines[0].startswith("Error: ")
    assert "Traceback" not in err(p) and "terminate called" not in err(p)
    return lines[0]


@pytest.mark.parametrize("env,message", [
    ({}, "no API key specified. Consider setting MINIO_KES_API_KEY"),
    ({"KES_API_KEY": API_KEY, "KES_CLIENT_KEY": "k"},
     "API key and private key file cannot be used at the same time"),
    ({"KES_API_KEY": API_KEY, "KES_CLIENT_CERT": "c"},
     "API key and certificate file cannot be used at the same time"),
    ({"KES_CLIENT_KEY": "k"}, "no certificate file specified. Consider setting MINIO_KES_CERT_FILE"),
    ({"KES_CLIENT_CERT": "c"}, "no private key file specified. Consider setting MINIO_KES_KEY_FILE"),
    ({"KES_API_KEY": "kes:v1:%%%"}, "parsing API key: "),
    ({"KES_CLIENT_CERT": "/nonexistent/c.crt", "KES_CLIENT_KEY": "/nonexistent/c.key"},
     "reading certificate file: open /nonexistent/c.crt: no such file or directory"),
])
def test_credential_validation(env, message):
    p = kes(["key", "create", "x"], clean_env(KES_SERVER="127.0.0.1:1", **env))
    assert message in one_error_line(p)


def test_env_precedence_minio_first(tmp_path):
    # MINIO_KES_API_KEY wins over KES_API_KEY: an invalid KES_API_KEY is never parsed.
    env = clean_env(MINIO_KES_API_KEY=API_KEY, KES_API_KEY="garbage", KES_SERVER="127.0.0.1:1")
    line = one_error_line(kes(["key", "create", "x"], env, timeout=60))
    assert "parsing API key" not in line
    assert "connect" in line


def test_connection_refused_is_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on `port` now.
    env = clean_env(KES_SERVER="127.0.0.1:%d" % port, KES_API_KEY=API_KEY)
    line = one_error_line(kes(["key", "create", "x"], env))
    assert line == ('Error: failed to create key "x": POST "https://127.0.0.1:%d/v1/key/create/x": '
                    'dial tcp 127.0.0.1:%d: connect: connection refused' % (port, port))


def test_connection_reset_by_peer():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    stop = threading.Event()

    def rst():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            c.close()  # RST instead of a TLS handshake

    t = threading.Thread(target=rst, daemon=True)
    t.start()
    try:
        env = clean_env(KES_SERVER="127.0.0.1:%d" % port, KES_API_KEY=API_KEY)
        line = one_error_line(kes(["status"], env, timeout=60))
        assert line.startswith('Error: GET "https://127.0.0.1:%d/v1/status": ' % port)
    finally:
        stop.set()
        t.join()
        srv.close()


def test_not_tls_server_fails_cleanly():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    stop = threading.Event()

    def http():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            c.close()

    t = threading.Thread(target=http, daemon=True)
    t.start()
    try:
        env = clean_env(KES_SERVER="127.0.0.1:%d" % port, KES_API_KEY=API_KEY)
        one_error_line(kes(["key", "ls"], env, timeout=60))
    finally:
        stop.set()
        t.join()
        srv.close()


def test_untrusted_server_gets_hint_and_insecure_works(kes_server):
    srv = kes_server()
    env = server_env(srv, trust=False)
    p = kes(["status"], env)
    line = one_error_line(p)
    assert "certificate signed by unknown authority" in line
    assert err(p).splitlines()[1].startswith("Hint: ")
    assert len(err(p).splitlines()) == 2
    assert kes(["status", "-k"], env).returncode == 0
    assert kes(["status"], dict(env, SSL_CERT_FILE=srv.server_cert.ca)).returncode == 0


def test_mismatched_key_and_cert(kes_server):
    srv = kes_server()
    env = server_env(srv, KES_CLIENT_KEY=srv.identities["client"].key)  # admin cert
    assert "private key does not match public key" in one_error_line(kes(["key", "ls"], env))


def test_combined_key_cert_file_is_rejected(tmp_path, kes_server):
    srv = kes_server()
    ident = srv.identities["admin"]
    both = tmp_path / "both.pem"
    both.write_bytes(open(ident.key, "rb").read() + open(ident.cert, "rb").read())
    env = server_env(srv, KES_CLIENT_CERT=str(both))
    line = one_error_line(kes(["key", "ls"], env))
    assert line == "Error: reading certificate file: https: unsupported PEM data block"


def test_encrypted_client_key_password(tmp_path, kes_server):
    srv = kes_server()
    pw_env = clean_env(KES_CLIENT_KEY_PASSWORD="s3cret")
    p = kes(["identity", "new", "--encrypt", "--key", "c.key", "--cert", "c.crt"], pw_env,
            cwd=tmp_path)
    assert p.returncode == 0, err(p)
    env = server_env(srv, KES_CLIENT_CERT=str(tmp_path / "c.crt"),
                     KES_CLIENT_KEY=str(tmp_path / "c.key"), KES_CLIENT_KEY_PASSWORD="wrong")
    assert one_error_line(kes(["identity", "info"], env)) == "Error: incorrect password"
    env["KES_CLIENT_KEY_PASSWORD"] = "s3cret"
    # The right password gets through TLS; the unknown identity is then refused.
    p = kes(["key", "create", "x"], env)
    assert one_error_line(p) == ('Error: failed to create key "x": '
                                 'not authorized: insufficient permissions')


def test_multiple_endpoints_fail_over(kes_server):
    srv = kes_server()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    env = server_env(srv, KES_SERVER="127.0.0.1:%d, http://127.0.0.1:%d" % (dead, srv.port))
    for i in range(3):
        p = kes(["key", "create", "fo-%d" % i], env)
        assert p.returncode == 0, err(p)


def test_version_usage_and_unknown_commands():
    p = kes(["--version"])
    assert p.returncode == 0
    lines = out(p).splitlines()
    assert [l[:11] for l in lines] == ["Version    ", "Runtime    ", "Project    "]
    assert re.match(r"Version    \S+\s+commit=", lines[0])
    p = kes([])
    assert p.returncode == 2 and "server" in err(p)
    p = kes(["--help"])
    assert p.returncode == 2 and "identity" in err(p) and "server" in err(p)
    p = kes(["frobnicate"])
    assert p.returncode == 1
    assert err(p) == "Error: \"frobnicate\" is not a kes command. See 'kes --help'\n"
    p = kes(["--x"])
    assert err(p) == "Error: unknown flag: --x. See 'kes --help'\n"


@pytest.mark.parametrize("line,expected", [
    ("kes ", ["server", "key", "policy", "identity", "log", "status", "metric", "update"]),
    ("kes ke", ["key"]),
    ("kes key ", ["create", "import", "info", "ls", "rm", "encrypt", "decrypt", "dek"]),
    ("kes key ls --", ["--insecure", "--json", "--color"]),
    ("kes identity new --e", ["--expiry", "--encrypt"]),
])
def test_bash_completion_mode(line, expected):
    env = clean_env(SHELL="/bin/bash", COMP_LINE=line)
    p = kes(["ignored"], env)
    assert p.returncode == 0
    assert out(p).splitlines() == expected


def test_auto_completion_installs_once(tmp_path):
    (tmp_path / ".bashrc").write_text("# rc\n")
    env = clean_env(SHELL="/bin/bash", HOME=str(tmp_path))
    p = kes(["--auto-completion"], env)
    assert p.returncode == 0, err(p)
    assert out(p).startswith("Added completion to '%s/.bashrc'\n\n" % tmp_path)
    rc = (tmp_path / ".bashrc").read_text()
    assert re.search(r"^complete -o default -C /\S+ \S+$", rc, re.M)
    p = kes(["--auto-completion"], env)
    assert out(p) == "Completion is already installed.\n"
    p = kes(["--auto-completion"], clean_env(SHELL="/usr/bin/tcsh", HOME=str(tmp_path)))
    assert err(p) == "Error: auto-completion for 'tcsh' is not available\n"


def test_update_explains_and_never_downloads():
    p = kes(["update"], clean_env(HTTPS_PROXY="http://127.0.0.1:1"))
    line = one_error_line(p)
    assert "cannot update itself" in line and "Rebuild from source" in line
    p = kes(["update", "not-a-version"])
    assert "invalid release version 'not-a-version'" in one_error_line(p)
    p = kes(["update", "--os", "windows"])
    assert "cannot update to a 'windows' binary" in one_error_line(p)


def _silent_listener():
    """A TCP listener that accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    return srv


@pytest.mark.parametrize("args,expected_err", [
    (["key", "create", "x"], ""),                          # key commands: silent
    (["status"], "Error: context canceled\n"),             # others: context canceled
])
def test_sigint_during_request(args, expected_err):
    import signal
    import subprocess
    from kes_harness import kes_bin
    srv = _silent_listener()
    try:
        env = clean_env(KES_SERVER="127.0.0.1:%d" % srv.getsockname()[1], KES_API_KEY=API_KEY)
        proc = subprocess.Popen([kes_bin()] + args, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        conn, _ = srv.accept()  # the request is in flight (TLS handshake pending)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
        conn.close()
    finally:
        srv.close()
    assert proc.returncode == 1
    assert stdout == b""
    assert stderr.decode() == expected_err


def test_auto_completion_zsh_adds_bashcompinit(tmp_path):
    (tmp_path / ".zshrc").write_text("")
    env = clean_env(SHELL="/usr/bin/zsh", HOME=str(tmp_path))
    p = kes(["--auto-completion"], env)
    assert p.returncode == 0, err(p)
    lines = (tmp_path / ".zshrc").read_text().splitlines()
    assert lines[0] == "autoload -U +X bashcompinit && bashcompinit"
    assert lines[1].startswith("complete -o default -C /")
    no_shell = clean_env(HOME=str(tmp_path))
    no_shell.pop("SHELL", None)
    p = kes(["--auto-completion"], no_shell)
    assert err(p) == "Error: failed to detect shell. The env variable $SHELL is not defined\n"

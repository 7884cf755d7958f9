"""Server behaviour beyond single requests: concurrency, keystore
failures, crash safety, SIGHUP reload, graceful shutdown, log streams,
api: overrides, --dev and command-line flags."""
import base64
import concurrent.futures
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest
import requests

from kes_harness import HTTP2, KesServer, base_config, error_body, kes_bin


def test_concurrent_creates_of_one_name(kes_server):
    srv = kes_server()
    ident = srv.identities["admin"]

    def create(_):
        with requests.Session() as s:
            s.trust_env = False
            r = s.put(srv.base_url + "/v1/key/create/contended", cert=ident.pair,
                      verify=srv.server_cert.ca, timeout=60)
            return r.status_code, r.content

    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(create, range(200)))
    ok = [r for r in results if r[0] == 200]
    exists = [r for r in results if r[0] == 400 and r[1] == error_body("key already exists")]
    assert len(ok) == 1
    assert len(exists) == 199


def test_cached_keys_survive_keystore_loss(kes_server):
    srv = kes_server()
    assert srv.put("/v1/key/create/k").status_code == 200
    ct = srv.put("/v1/key/encrypt/k", json={"plaintext": base64.b64encode(b"x").decode()}).json()
    # Replace the keystore directory with a file: every backend call fails.
    moved = str(srv.keystore_dir) + ".moved"
    os.rename(srv.keystore_dir, moved)
    srv.keystore_dir.write_text("not a directory")
    r = srv.put("/v1/key/decrypt/k", json=ct)
    assert r.status_code == 200
    assert base64.b64decode(r.json()["plaintext"]) == b"x"
    r = srv.get("/v1/key/describe/uncached")
    assert r.status_code in (404, 502)
    r = srv.put("/v1/key/create/new")
    assert r.status_code == 502
    assert r.content == error_body("failed to create key")
    assert srv.wait_for_output("level=ERROR", stream="stderr")
    # Health reports the broken keystore; the status stays decodable by the SDK.
    r = srv.get("/v1/ready")
    assert r.status_code in (502, 504)
    assert r.content in (error_body("key store is not reachable"), error_body("key store is unavailable"))
    status = srv.get("/v1/status").json()
    assert status["keystore_unreachable"] is True and status["keystore_unavailable"] is True
    assert "keystore_latency" not in status


def test_acknowledged_creates_survive_kill(kes_server, tmp_path):
    srv = kes_server()
    acked = []
    stop = threading.Event()

    def burst(worker):
        with requests.Session() as s:
            s.trust_env = False
            s.cert = srv.identities["admin"].pair
            s.verify = srv.server_cert.ca
            i = 0
            while not stop.is_set():
                name = "w%d-%d" % (worker, i)
                i += 1
                try:
                    r = s.put(srv.base_url + "/v1/key/create/" + name, timeout=10)
                except requests.RequestException:
                    return
                if r.status_code == 200:
                    acked.append(name)

    threads = [threading.Thread(target=burst, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 300  # a bound against hanging, not a timing assertion
    while len(acked) < 100 and time.monotonic() < deadline and srv.proc.poll() is None:
        time.sleep(0.01)
    srv.kill()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 100

    again = KesServer(srv.workdir, srv.config, srv.server_cert, srv.identities)
    again.start()
    try:
        names = set(again.get("/v1/key/list/").json()["names"])
        missing = [n for n in acked if n not in names]
        assert not missing
        for n in acked[:: max(1, len(acked) // 20)]:
            r = again.put("/v1/key/generate/" + n)
            assert r.status_code == 200
            dek = r.json()
            r = again.put("/v1/key/decrypt/" + n, json={"ciphertext": dek["ciphertext"]})
            assert r.json()["plaintext"] == dek["plaintext"]
    finally:
        again.stop()


def test_sighup_reloads_policies_and_keeps_connections(kes_server, certs):
    srv = kes_server()
    sess = srv.session("admin")
    assert sess.get(srv.base_url + "/version").status_code == 200
    assert srv.get("/v1/key/describe/x", client="unknown").status_code == 403
    cfg = dict(srv.config)
    cfg["policy"] = dict(cfg["policy"])
    cfg["policy"]["reader"] = {"allow": ["/v1/key/describe/*"], "identities": [certs["unknown"].identity]}
    cfg["keys"] = [{"name": "declared"}]
    srv.write_config(cfg)
    srv.signal(signal.SIGHUP)
    assert srv.wait_for_output("=> Reloading configuration after SIGHUP signal completed.")
    assert "SIGHUP signal received. Reloading configuration..." in srv.stderr_text()
    r = srv.get("/v1/key/describe/declared", client="unknown")
    assert r.status_code == 200
    assert r.json()["created_by"] == certs["admin"].identity
    # The admin's keep-alive connection survived the reload.
    assert sess.get(srv.base_url + "/version").status_code == 200
    # A broken config keeps the old state.
    srv.config_path.write_text("admin: [")
    srv.signal(signal.SIGHUP)
    assert srv.wait_for_output("Failed to reload server config", stream="stderr")
    assert srv.get("/v1/key/describe/declared", client="unknown").status_code == 200


def test_graceful_shutdown(kes_server):
    srv = kes_server()
    assert srv.get("/version").status_code == 200  # leaves an idle keep-alive connection
    stream = _stream_lines(srv, "/v1/log/audit")   # a request that never ends by itself
    assert _read_until(stream, b"\r\n\r\n").startswith(b"HTTP/1.1 200 OK")
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=60) == 0
    assert srv.wait_for_output("=> Stopping server... Goodbye.")
    # The stream was cut when the server went away.
    stream.settimeout(30)
    try:
        rest = stream.recv(1024)
    except OSError:
        rest = b""
    assert rest in (b"", b"0\r\n\r\n")
    stream.close()


def _stream_lines(srv, path, client="admin"):
    ctx = ssl.create_default_context(cafile=srv.server_cert.ca)
    ctx.load_cert_chain(*srv.identities[client].pair)
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    return s


def _read_until(s, needle: bytes, limit=30):
    buf = b""
    deadline = time.monotonic() + limit
    while needle not in buf and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def test_audit_log_stream(kes_server, certs):
    srv = kes_server()
    s = _stream_lines(srv, "/v1/log/audit")
    head = _read_until(s, b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: application/x-ndjson" in head
    assert b"Transfer-Encoding: chunked" in head
    srv.put("/v1/key/create/my-app-streamed", client="client")
    data = _read_until(s, b"my-app-streamed")
    s.close()
    line = [l for l in data.split(b"\r\n") if l.startswith(b"{")][0]
    event = json.loads(line)
    assert event["request"] == {"ip": "127.0.0.1", "path": "/v1/key/create/my-app-streamed",
                                "identity": certs["client"].identity}
    assert event["response"]["code"] == 200
    assert isinstance(event["response"]["time"], int)
    # The counter shows the event.
    text = srv.get("/v1/metrics").text
    assert "kes_log_audit_events 1" in text


def test_error_log_stream(kes_server):
    srv = kes_server()
    s = _stream_lines(srv, "/v1/log/error")
    _read_until(s, b"\r\n\r\n")
    # A TLS handshake failure is logged at INFO.
    with socket.create_connection(("127.0.0.1", srv.port)) as raw:
        raw.sendall(b"not tls at all\r\n\r\n")
        try:
            raw.recv(100)
        except OSError:
            pass
    data = _read_until(s, b"TLS handshake error")
    s.close()
    line = [l for l in data.split(b"\r\n") if l.startswith(b"{")][0]
    assert list(json.loads(line)) == ["message"]
    assert "http: TLS handshake error from 127.0.0.1:" in json.loads(line)["message"]


def test_log_stream_requires_authorization(kes_server):
    srv = kes_server()
    assert srv.get("/v1/log/audit", client="client").status_code == 403


def test_skip_auth_relaxes_handshake(kes_server):
    srv = kes_server(api={"/v1/status": {"skip_auth": True, "timeout": "17s"},
                          "/v1/key/create": {"skip_auth": True}})
    r = srv.get("/v1/status", client=None)
    assert r.status_code == 200
    r = srv.get("/v1/status", client="unknown")
    assert r.status_code == 200
    r = srv.get("/v1/ready", client=None)
    assert r.status_code == 400
    assert r.content == error_body("tls: client certificate is required")
    api = {e["path"]: e for e in srv.get("/v1/api").json()}
    assert api["/v1/status"]["timeout"] == 17
    # Unknown api keys (no trailing slash) are ignored.
    assert srv.put("/v1/key/create/x", client="unknown").status_code == 403


def test_declared_keys_are_created_at_start(kes_server, certs):
    srv = kes_server(keys=[{"name": "k1"}, {"name": "k2"}])
    names = srv.get("/v1/key/list/").json()["names"]
    assert names == ["k1", "k2"]
    assert srv.get("/v1/key/describe/k1").json()["created_by"] == certs["admin"].identity


def test_banner(kes_server, certs):
    srv = kes_server()
    out = srv.stdout_text()
    lines = out.splitlines()
    assert lines[0].startswith("Version" + " " * 27)
    assert any(l.startswith("KMS" + " " * 31 + "Filesystem: ") for l in lines)
    assert any(l == "API" + " " * 31 + "· https://127.0.0.1:%d" % srv.port for l in lines)
    assert any(l == "Admin" + " " * 29 + certs["admin"].identity for l in lines)
    assert "Logs" + " " * 30 + "error=stderr level=INFO\n" + " " * 12 + "audit=stdout level=INFO" in out
    assert "\n\n=> Server is up and running...\n" in out


def test_deprecated_flags_warn(kes_server):
    srv = kes_server(args=["--auth", "off", "--mlock"])
    assert srv.wait_for_output("WARNING: '--auth' flag is deprecated and no longer honored. "
                               "Specify the client certificate verification in the config file",
                               stream="stderr")
    assert srv.get("/version").status_code == 200


def test_dev_mode(tmp_path, certs, cert_factory):
    srv = KesServer(tmp_path, None, None, {}, dev=True)
    srv.start()
    try:
        assert srv.api_key and srv.api_key.startswith("kes:v1:")
        ident = cert_factory.api_key_client("devadmin", srv.api_key)
        srv.identities["admin"] = ident
        out = srv.stdout_text()
        assert "KMS                               In Memory" in out
        assert "Admin                             " + ident.identity in out
        r = srv.put("/v1/key/create/dev-key")
        assert r.status_code == 200
        assert srv.get("/v1/key/list/").json() == {"names": ["dev-key"]}
        d = srv.get("/v1/identity/self/describe").json()
        assert d["identity"] == ident.identity and d["admin"] is True
    finally:
        srv.stop()


def test_command_line_errors(tmp_path):
    r = subprocess.run([kes_bin(), "server", "--dev", "--config", "x.yml"], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip() == "Error: '--config' flag is not supported in development mode"
    r = subprocess.run([kes_bin(), "server", "extra"], capture_output=True, text=True)
    assert r.returncode == 1
    assert "too many arguments" in r.stderr
    r = subprocess.run([kes_bin(), "server", "--nope"], capture_output=True, text=True)
    assert r.returncode == 1
    assert "unknown flag: --nope" in r.stderr
    r = subprocess.run([kes_bin(), "server", "--help"], capture_output=True, text=True)
    assert r.returncode == 2
    r = subprocess.run([kes_bin(), "server"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip() == "Error: open : no such file or directory"


def test_address_in_use(kes_server, certs, server_cert, tmp_path):
    srv = kes_server()
    other = KesServer(tmp_path / "other", base_config(certs, server_cert, tmp_path / "k2"),
                      server_cert, certs, args=["--addr", "127.0.0.1:%d" % srv.port])
    with pytest.raises(RuntimeError) as e:
        other.start()
    assert "bind: address already in use" in str(e.value)


def test_tls_auth_on_verifies_client_chains(kes_server, certs, server_cert, my_app_policy):
    policies = dict(my_app_policy)
    policies["chained"] = {"allow": ["/v1/status"], "identities": [certs["chain"].identity]}
    srv = kes_server(policies=policies)
    srv.stop()
    cfg = dict(srv.config)
    cfg["tls"] = dict(cfg["tls"], auth="on", ca=certs["chain"].ca)
    again = KesServer(srv.workdir / "auth-on", cfg, server_cert, certs)
    again.start()
    try:
        assert again.get("/v1/status", client="chain").status_code == 200
        with pytest.raises(requests.exceptions.RequestException):
            again.get("/v1/status", client="unknown").raise_for_status()
    finally:
        again.stop()


def test_sighup_reloads_the_tls_certificate(kes_server, cert_factory, certs):
    srv = kes_server()
    old_session = srv.session("admin")
    assert old_session.get(srv.base_url + "/version").status_code == 200
    new_cert = cert_factory.server("server-reloaded")
    cfg = dict(srv.config)
    cfg["tls"] = dict(cfg["tls"], key=new_cert.key, cert=new_cert.cert)
    srv.write_config(cfg)
    srv.signal(signal.SIGHUP)
    assert srv.wait_for_output("=> Reloading configuration after SIGHUP signal completed.")
    # New handshakes present the new certificate...
    with requests.Session() as s:
        s.trust_env = False
        r = s.get(srv.base_url + "/version", cert=certs["admin"].pair, verify=new_cert.ca, timeout=30)
        assert r.status_code == 200
    with requests.Session() as s:
        s.trust_env = False
        with pytest.raises(requests.exceptions.SSLError):
            s.get(srv.base_url + "/version", cert=certs["admin"].pair, verify=srv.server_cert.ca,
                  timeout=30)
    if HTTP2:
        # Over HTTP/2 the reload drains the old connection with GOAWAY, so
        # its client reconnects and meets the new certificate
        # (test_http2.py checks the GOAWAY).
        return
    # ...while the connection opened before the reload keeps working.
    assert old_session.get(srv.base_url + "/version").status_code == 200

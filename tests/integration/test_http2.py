"""HTTP/2 (RFC 9113) on the API listener: ALPN, log streams as long-lived
streams, GOAWAY on reload and shutdown. Every route over HTTP/2 is covered by
the integration.test_api_*.h2 runs (KES_TEST_HTTP2=1); the defences against
hostile clients are in test_http2_defences.py."""
import json
import signal
import socket
import ssl

from cli_helpers import kes, server_env
from kes_harness import (H2_DATA, H2_END_STREAM, H2_GOAWAY, H2_HEADERS, Http2Session, RawH2,
                         h2_goaway_error)


def test_alpn_prefers_h2_and_serves_over_it(kes_server):
    srv = kes_server()
    ctx = ssl.create_default_context(cafile=srv.server_cert.ca)
    ctx.load_cert_chain(*srv.identities["admin"].pair)
    ctx.set_alpn_protocols(["http/1.1", "h2"])  # the client's order does not matter
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            assert s.selected_alpn_protocol() == "h2"
    # An HTTP/2 client library gets HTTP/2 answers (Http2Session asserts it).
    h2 = Http2Session(srv.identities["admin"].pair, srv.server_cert.ca)
    try:
        r = h2.put(srv.base_url + "/v1/key/create/k")
        assert r.status_code == 200
        r = h2.put(srv.base_url + "/v1/key/generate/k", data=b"{}")
        assert r.status_code == 200 and "plaintext" in r.json()
        r = h2.get(srv.base_url + "/v1/key/nope")
        assert (r.status_code, r.content) == (404, b"404 page not found\n")
        assert r.headers["x-content-type-options"] == "nosniff"
    finally:
        h2.close()


def test_many_requests_share_one_connection(kes_server):
    srv = kes_server()
    c = RawH2(srv)
    for sid in range(1, 40, 2):
        c.request(sid, "GET", "/version")
    for sid in range(1, 40, 2):
        status, headers, body = c.response(sid)
        assert status == 200 and headers["content-type"] == "application/json"
        assert json.loads(body)["version"]
    c.close()


def test_log_stream_delivers_lines_as_they_come(kes_server):
    srv = kes_server()
    c = RawH2(srv)
    c.request(1, "GET", "/v1/log/audit")
    c.until(lambda f: f[2] == 1 and f[0] == H2_HEADERS)
    assert c.streams[1]["status"] == 200
    assert c.streams[1]["headers"]["content-type"] == "application/x-ndjson"
    for i in range(3):
        assert srv.put("/v1/key/create/s%d" % i).status_code == 200
        f = c.until(lambda f: f[2] == 1 and f[0] == H2_DATA and f[3])
        event = json.loads(f[3].decode().splitlines()[0])
        assert event["request"]["path"] == "/v1/key/create/s%d" % i
    c.close()


def test_sighup_sends_goaway_and_lets_open_streams_finish(kes_server):
    srv = kes_server()
    c = RawH2(srv)
    c.request(1, "PUT", "/v1/key/create/before", end=False)  # still sending its body
    srv.signal(signal.SIGHUP)
    f = c.until(lambda f: f[0] == H2_GOAWAY)
    assert f is not None and h2_goaway_error(f) == 0  # NO_ERROR
    assert int.from_bytes(f[3][:4], "big") == 1       # stream 1 will be served
    c.send(bytes([0, 0, 0, H2_DATA, H2_END_STREAM, 0, 0, 0, 1]))
    status, _, _ = c.response(1)
    assert status == 200
    assert c.frame(timeout=10) is None  # then the server closes the connection
    assert srv.get("/v1/key/describe/before").status_code == 200


def test_shutdown_sends_goaway_and_ends_log_streams(kes_server):
    srv = kes_server()
    c = RawH2(srv)
    c.request(1, "GET", "/v1/log/error")
    c.until(lambda f: f[2] == 1 and f[0] == H2_HEADERS)
    srv.proc.send_signal(signal.SIGTERM)
    f = c.until(lambda f: f[0] == H2_GOAWAY)
    assert f is not None and h2_goaway_error(f) == 0
    # The log stream ends cleanly (END_STREAM), not with a cut connection.
    f = c.until(lambda f: f[2] == 1 and f[1] & H2_END_STREAM)
    assert f is not None
    assert srv.proc.wait(timeout=60) == 0


def test_cli_negotiates_h2(kes_server):
    # The server logs each HTTP/2 connection at DEBUG; the CLI's requests and
    # its log stream (test_cli_server_info.py's kes log test) go over it.
    srv = kes_server(log={"error": "DEBUG", "audit": "on"})
    assert kes(["key", "create", "cli-h2"], server_env(srv)).returncode == 0
    assert srv.wait_for_output("http: HTTP/2 connection from 127.0.0.1:", stream="stderr")

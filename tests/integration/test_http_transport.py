"""The HTTP/1.1 transport over TLS, byte by byte: what the server's own reader
(TlsSocket + Beast's parser) must do with requests that arrive split,
pipelined, chunked, with "Expect: 100-continue", too large, or never finish.
Every check is functional: waits are bounded from above by generous client
timeouts and nothing asserts how fast the server is."""
import json
import socket
import ssl
import time

import pytest

GENERATE = b"/v1/key/generate/my-app-transport"


def tls_connect(srv, client="admin"):
    ctx = ssl.create_default_context(cafile=srv.server_cert.ca)
    if client:
        ctx.load_cert_chain(*srv.identities[client].pair)
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def read_response(s, buf=b""):
    """Reads one HTTP/1.1 response with a Content-Length; returns
    (status, headers, body, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("connection closed before a full header: %r" % buf)
        buf += chunk
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    n = int(headers.get("content-length", "0"))
    while len(buf) < n:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("connection closed inside a body")
        buf += chunk
    return status, headers, buf[:n], buf[n:]


def read_until_closed(s):
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ssl.SSLError, ConnectionResetError):
            return out
        if not chunk:
            return out
        out += chunk


def post(path: bytes, body: bytes, extra=b"") -> bytes:
    return (b"POST " + path + b" HTTP/1.1\r\nHost: kes\r\nContent-Length: " +
            str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


@pytest.fixture(scope="module")
def srv(module_server):
    assert module_server.post("/v1/key/create/my-app-transport").status_code == 200
    return module_server


def check_generate(status, body):
    assert status == 200, body
    doc = json.loads(body)
    assert set(doc) == {"plaintext", "ciphertext"}


def test_pipelined_requests_are_answered_in_order(srv):
    with tls_connect(srv) as s:
        s.sendall(post(GENERATE, b'{"context":"YQ=="}') + b"GET /version HTTP/1.1\r\nHost: kes\r\n\r\n" +
                  post(GENERATE, b"{}"))
        status, _, body, rest = read_response(s)
        check_generate(status, body)
        status, _, body, rest = read_response(s, rest)
        assert status == 200 and b'"version"' in body
        status, _, body, rest = read_response(s, rest)
        check_generate(status, body)
        assert rest == b""


def test_request_split_into_tiny_records(srv):
    """A client that sends one byte per TLS record still gets its answer."""
    data = post(GENERATE, b'{"context":"YQ=="}')
    with tls_connect(srv) as s:
        for i in range(len(data)):
            s.sendall(data[i:i + 1])
        status, _, body, _ = read_response(s)
        check_generate(status, body)
        # and the connection stays usable
        s.sendall(b"GET /version HTTP/1.1\r\nHost: kes\r\n\r\n")
        assert read_response(s)[0] == 200


def test_chunked_request_body(srv):
    body = b'{"context":"YQ=="}'
    data = (b"POST " + GENERATE + b" HTTP/1.1\r\nHost: kes\r\nTransfer-Encoding: chunked\r\n\r\n" +
            b"%x\r\n" % 5 + body[:5] + b"\r\n" + b"%x\r\n" % (len(body) - 5) + body[5:] +
            b"\r\n0\r\n\r\n")
    with tls_connect(srv) as s:
        s.sendall(data)
        status, _, body, _ = read_response(s)
        check_generate(status, body)


def test_expect_100_continue(srv):
    body = b'{"context":"YQ=="}'
    with tls_connect(srv) as s:
        s.sendall(post(GENERATE, b"", b"Expect: 100-continue\r\n").replace(
            b"Content-Length: 0", b"Content-Length: %d" % len(body)))
        interim = b""
        while b"\r\n\r\n" not in interim:
            chunk = s.recv(65536)
            assert chunk, "closed before 100 Continue"
            interim += chunk
        head, _, rest = interim.partition(b"\r\n\r\n")
        assert head == b"HTTP/1.1 100 Continue"
        s.sendall(body)
        status, _, out, _ = read_response(s, rest)
        check_generate(status, out)


def test_over_long_body_is_refused_and_the_server_lives_on(srv):
    # The generate route reads at most 1 MiB; 2 MiB with a known length is
    # drained and refused.
    big = b"{" + b" " * (2 << 20) + b"}"
    with tls_connect(srv) as s:
        s.sendall(post(GENERATE, big))
        status, _, body, _ = read_response(s)
        assert status == 400, body
    assert srv.get("/version").status_code == 200


def test_malformed_request_gets_400_and_close(srv):
    with tls_connect(srv) as s:
        s.sendall(b"GET /version HTTP/1.1\r\nBad Header Without Colon\r\n\r\n")
        out = read_until_closed(s)
    assert out.startswith(b"HTTP/1.1 400 Bad Request\r\n")


@pytest.mark.parametrize("request_bytes,why", [
    (b"GET /version HTTP/1.1\r\n\r\n", b"missing required Host header"),
    (b"GET /version HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", b"too many Host headers"),
    (b"GET /version HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", b"too many Host headers"),
], ids=["http11-none", "http11-two", "http10-two"])
def test_requests_without_exactly_one_host_get_400_like_go(srv, request_bytes, why):
    """Go's net/http: an HTTP/1.1 request needs one Host field; more than
    one is refused in any version."""
    with tls_connect(srv) as s:
        s.sendall(request_bytes)
        out = read_until_closed(s)
    assert out.startswith(b"HTTP/1.")
    assert out.split(b" ", 2)[1] == b"400", out
    assert out.endswith(b"400 Bad Request: " + why), out


def test_http10_request_may_omit_host(srv):
    with tls_connect(srv) as s:
        s.sendall(b"GET /version HTTP/1.0\r\n\r\n")
        out = read_until_closed(s)
    assert out.startswith(b"HTTP/1.0 200 OK\r\n"), out


@pytest.mark.parametrize("body", [
    b"\xef\xbb\xbf{}",
    b'{"other":' + b"[" * 10000 + b"]" * 10000 + b"}",
], ids=["bom", "depth-10001"])
def test_a_bom_or_nesting_past_gos_limit_is_an_invalid_body(srv, body):
    with tls_connect(srv) as s:
        s.sendall(post(GENERATE, body))
        status, _, resp, _ = read_response(s)
    assert status == 400, resp
    assert json.loads(resp) == {"message": "invalid request body"}


def test_half_sent_request_then_close_leaves_server_serving(srv):
    with tls_connect(srv) as s:
        s.sendall(b"POST " + GENERATE + b" HTTP/1.1\r\nHost: kes\r\nContent-Le")
    with tls_connect(srv) as s:
        s.sendall(post(GENERATE, b"{}"))
        status, _, body, _ = read_response(s)
        check_generate(status, body)


def test_unfinished_header_is_closed_after_the_header_timeout(srv):
    """Upstream's ReadHeaderTimeout is 5 s: a client that never finishes its
    header is disconnected. Only a lower bound on the wait is checked."""
    with tls_connect(srv) as s:
        started = time.monotonic()
        s.sendall(b"GET /version HTTP/1.1\r\nHost: kes\r\n")
        out = read_until_closed(s)  # the client's own timeout is 30 s
        waited = time.monotonic() - started
    assert out == b""
    assert waited >= 4.0


def test_silent_client_is_closed_before_the_handshake_completes(srv):
    """No ClientHello within the header timeout: the server closes the TCP
    connection."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as raw:
        started = time.monotonic()
        assert raw.recv(1) == b""
        assert time.monotonic() - started >= 4.0

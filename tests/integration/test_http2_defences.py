"""Hostile HTTP/2 clients. Each test attacks one connection with raw frames
and shows that the server ends or bounds that connection, keeps serving
another client, and keeps its memory bounded (src/server/http2_session.h
lists the limits)."""
import pytest

from kes_harness import (H2_CONTINUATION, H2_END_HEADERS, H2_END_STREAM, H2_GOAWAY, H2_HEADERS,
                         H2_PING, H2_RST_STREAM, H2_SETTINGS, RawH2, h2_frame, h2_goaway_error,
                         vm_rss_kib)

INTERNAL_ERROR, REFUSED_STREAM, CANCEL = 0x2, 0x7, 0x8
RSS_GROWTH_KIB = 64 * 1024


@pytest.fixture
def srv(kes_server):
    s = kes_server(api={"/v1/api": {"timeout": "2s"}})
    s.rss_before = vm_rss_kib(s.proc.pid)
    return s


def assert_still_serving(srv):
    other = RawH2(srv, client="client")
    other.request(1, "GET", "/version")
    assert other.response(1)[0] == 200
    other.close()
    assert vm_rss_kib(srv.proc.pid) - srv.rss_before < RSS_GROWTH_KIB


def test_rapid_reset_ends_the_connection(srv):
    # CVE-2023-44487: requests opened and reset at once cost the server work
    # but never count against the client's concurrent-stream limit.
    c = RawH2(srv)
    batch = bytearray()
    for sid in range(1, 2 * 3000, 2):
        batch += h2_frame(H2_HEADERS, H2_END_HEADERS | H2_END_STREAM, sid,
                          c.headers_block("GET", "/v1/key/describe/none"))
        batch += h2_frame(H2_RST_STREAM, 0, sid, CANCEL.to_bytes(4, "big"))
    try:
        c.send(bytes(batch))
    except OSError:
        pass  # the server closed the connection mid-send
    f = c.until(lambda f: f[0] == H2_GOAWAY)
    # nghttp2's RST_STREAM rate limit (burst 1000) answers INTERNAL_ERROR.
    assert f is not None and h2_goaway_error(f) == INTERNAL_ERROR
    assert int.from_bytes(f[3][:4], "big") < 2 * 1100  # the last stream it took
    assert_still_serving(srv)


def test_continuation_flood_ends_the_connection(srv):
    # CVE-2024-27316: a header block that never ends.
    c = RawH2(srv)
    c.send(h2_frame(H2_HEADERS, 0, 1, c.headers_block("GET", "/version")))
    field = b"\x00\x03x-a\x04aaaa"  # literal without indexing: x-a: aaaa
    sent = 0
    try:
        for _ in range(100):  # 10,000 frames, 14 MB: more than socket buffers hold
            c.send(h2_frame(H2_CONTINUATION, 0, 1, field * 100) * 100)
            sent += 100
    except OSError:
        pass
    # The server cut the connection long before the flood was through
    # (nghttp2 allows 8 CONTINUATIONs); without the limit every frame is
    # read and decoded.
    assert sent < 100 * 100
    assert_still_serving(srv)


@pytest.mark.parametrize("frame", [h2_frame(H2_PING, 0, 0, b"12345678"), h2_frame(H2_SETTINGS, 0, 0)],
                         ids=["ping", "settings"])
def test_ack_flood_from_a_client_that_does_not_read(srv, frame):
    # Every PING and SETTINGS asks for an acknowledgement; a client that
    # never reads them must not make the server queue them without bound.
    c = RawH2(srv)
    c.request(1, "GET", "/v1/log/error")  # an open stream: not an idle connection
    c.sock.settimeout(5)
    try:
        for _ in range(300):
            c.send(frame * 1000)
    except OSError:
        pass  # the server stopped reading or closed: what the test wants
    # Over 1000 unsent acks the server closes the connection (having sent
    # what the socket took) instead of reading on; without the limit it
    # acknowledges all 300,000 and keeps the connection.
    assert c.until(lambda f: False, timeout=60) is None
    assert_still_serving(srv)


def test_hpack_bomb_is_counted_not_stored(srv):
    # 16 KB of header block that decodes to ~48 MB: one 4 KB field entered in
    # the dynamic table, then referenced 12,000 times with one byte each.
    c = RawH2(srv)
    block = c.encoder.encode([(":method", "GET"), (":scheme", "https"), (":authority", "x"),
                              (":path", "/version"), ("x-bomb", "a" * 4000)])
    block += b"\xbe" * 12000  # indexed field 62: the newest dynamic entry
    c.send(h2_frame(H2_HEADERS, H2_END_HEADERS | H2_END_STREAM, 1, block))
    assert c.response(1)[0] == 431
    # The connection stays usable.
    c.request(3, "GET", "/version")
    assert c.response(3)[0] == 200
    assert_still_serving(srv)


def test_streams_beyond_the_limit_are_refused(srv):
    c = RawH2(srv)
    for sid in range(1, 2 * 150, 2):  # 150 requests still sending their bodies
        c.request(sid, "PUT", "/v1/key/create/k%d" % sid, end=False)
    refused = set()
    while len(refused) < 50:
        f = c.until(lambda f: f[0] == H2_RST_STREAM, timeout=30)
        assert f is not None and int.from_bytes(f[3], "big") == REFUSED_STREAM
        refused.add(f[2])
    assert min(refused) > 2 * 100  # the first 100 streams were accepted
    assert_still_serving(srv)


def test_a_client_that_never_opens_its_window_is_cut_at_the_deadline(srv):
    # SETTINGS_INITIAL_WINDOW_SIZE = 0: the answer can never be sent; the
    # stream ends at the route's deadline (2 s here) instead of holding it.
    c = RawH2(srv, settings=(4).to_bytes(2, "big") + (0).to_bytes(4, "big"))
    c.request(1, "GET", "/v1/api")
    f = c.until(lambda f: f[0] == H2_RST_STREAM and f[2] == 1, timeout=30)
    assert f is not None and int.from_bytes(f[3], "big") == CANCEL
    assert c.streams[1]["status"] == 200 and c.streams[1]["body"] == b""
    assert_still_serving(srv)


def test_idle_connections_are_closed(srv):
    silent = RawH2(srv, preface=False)       # TLS done, not a byte of HTTP/2
    idle = RawH2(srv)                        # preface, then no stream
    assert silent.until(lambda f: False, timeout=30) is None
    f = idle.until(lambda f: f[0] == H2_GOAWAY, timeout=30)
    assert f is not None and h2_goaway_error(f) == 0
    assert idle.until(lambda f: False, timeout=30) is None
    assert_still_serving(srv)

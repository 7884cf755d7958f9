"""HTTP-level behaviour of the KES API: transport, routing (Go ServeMux
404/301), method checks (405 + Accept), authentication errors, and the
server-information routes compared with upstream transcripts."""
import json
import socket
import ssl

import pytest
import requests

from kes_harness import error_body, parse_transcript, spec_dir

TRANSCRIPTS = spec_dir() / "transcripts"


def raw_request(srv, data: bytes, client="admin") -> bytes:
    """Sends raw bytes over TLS and returns everything until the server closes."""
    ctx = ssl.create_default_context(cafile=srv.server_cert.ca)
    if client:
        ctx.load_cert_chain(*srv.identities[client].pair)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(data)
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except (ssl.SSLError, ConnectionResetError):
                    break
                if not chunk:
                    break
                out += chunk
            return out


def test_version_is_open_and_json(module_server):
    r = module_server.get("/version", client="unknown")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.content.endswith(b"}\n")
    body = r.json()
    assert set(body) == {"version", "commit"}
    assert list(json.loads(r.content)) == ["version", "commit"]


def test_unknown_path_is_go_404(module_server):
    _, status, headers, body = parse_transcript(TRANSCRIPTS / "24-unknown-path.txt")
    r = module_server.get("/v1/nope", client="client")
    assert r.status_code == status == 404
    assert r.headers["Content-Type"] == headers["content-type"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.content == body == b"404 page not found\n"
    # Exact routes have no subtree.
    assert module_server.get("/version/").status_code == 404
    assert module_server.get("/v1/status/x").status_code == 404


def test_wrong_method_is_405_with_accept(module_server):
    _, status, headers, body = parse_transcript(TRANSCRIPTS / "23-wrong-method.txt")
    r = module_server.get("/v1/key/generate/my-app-x", client="client")
    assert r.status_code == status == 405
    assert r.headers["Accept"] == headers["accept"] == "PUT"
    assert r.headers["Content-Type"] == "application/json"
    assert r.content == body
    r = module_server.request("HEAD", "/v1/status")
    assert r.status_code == 405
    r = module_server.put("/v1/status")
    assert r.status_code == 405
    assert r.content == error_body("received method 'PUT' expected 'GET'")
    r = module_server.post("/v1/key/delete/x")
    assert r.content == error_body("received method 'POST' expected 'DELETE'")
    assert r.headers["Accept"] == "DELETE"


def test_method_check_comes_before_authentication(module_server):
    r = module_server.get("/v1/key/create/x", client="unknown")
    assert r.status_code == 405


def test_missing_trailing_slash_redirects(module_server):
    r = module_server.get("/v1/key/list", client="client")
    assert r.status_code == 301
    assert r.headers["Location"] == "/v1/key/list/"
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.content == b'<a href="/v1/key/list/">Moved Permanently</a>.\n\n'
    # The query survives; non-GET redirects carry no body.
    r = module_server.get("/v1/key/list?x=1")
    assert r.headers["Location"] == "/v1/key/list/?x=1"
    r = module_server.put("/v1/key/create")
    assert r.status_code == 301 and r.headers["Location"] == "/v1/key/create/"
    assert r.content == b"" and "Content-Type" not in r.headers
    # Redirects come before authentication.
    assert module_server.get("/v1/key/list", client="unknown").status_code == 301
    # requests follows it like the Go SDK does.
    r = module_server.get("/v1/key/list", client="client", allow_redirects=True)
    assert r.status_code == 200


def test_unclean_paths_redirect(module_server):
    for path, want in [("/v1//status", "/v1/status"), ("/v1/./status", "/v1/status"),
                       ("/v1/key/create/../delete/k", "/v1/key/delete/k"),
                       ("/v1/key/list/a/../", "/v1/key/list/")]:
        raw = raw_request(module_server,
                          b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head = raw.split(b"\r\n\r\n")[0].decode()
        assert head.startswith("HTTP/1.1 301"), (path, head)
        assert "Location: " + want in head, (path, head)


def raw_response(srv, method, path, client="admin"):
    raw = raw_request(srv, ("%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                            "Connection: close\r\n\r\n" % (method, path)).encode(), client)
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_percent_encoded_traversal_is_a_name(module_server):
    # Sent raw: HTTP client libraries normalise %2E%2E themselves.
    status, body = raw_response(module_server, "PUT", "/v1/key/create/%2E%2E")
    assert status == 400
    assert body == error_body("key name '..' is empty, too long or contains invalid characters")
    status, body = raw_response(module_server, "PUT", "/v1/key/create/a%2Fb")
    assert status == 400
    assert body == error_body("key name 'a/b' is empty, too long or contains invalid characters")
    status, body = raw_response(module_server, "PUT", "/v1/key/create/a/b")
    assert status == 400
    status, body = raw_response(module_server, "GET", "/v1/key/describe/%2e%2e%2f%2e%2e%2fx")
    assert status == 400
    assert body == error_body("key name '../../x' is empty, too long or contains invalid characters")


def test_bad_percent_escape_is_400(module_server):
    raw = raw_request(module_server,
                      b"GET /v1/key/describe/%zz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_keep_alive_serves_many_requests_on_one_connection(module_server):
    data = b"".join(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n" for _ in range(5))
    data += b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    raw = raw_request(module_server, data)
    assert raw.count(b"HTTP/1.1 200 OK") == 6


def test_forbidden_is_403(module_server):
    for name in ["04-ready.txt", "20-forbidden-delete.txt", "21-forbidden-policy-list.txt",
                 "22-forbidden-other-key.txt", "19-key-generate-denied.txt"]:
        request, status, headers, body = parse_transcript(TRANSCRIPTS / name)
        method, path = request.split()[0], request.split()[1]
        r = module_server.request(method, path, client="client")
        assert r.status_code == status == 403, name
        assert r.content == body, name
        assert r.headers["Content-Type"] == "application/json"
    # Unknown identities are rejected on every authenticated route, even
    # before the name is validated.
    r = module_server.put("/v1/key/create/in..valid", client="unknown")
    assert r.status_code == 403
    assert r.content == error_body("not authorized: insufficient permissions")


def test_ca_certificate_has_no_identity(module_server):
    r = module_server.get("/v1/status", client="ca")
    assert r.status_code == 400
    assert r.content == error_body("tls: client certificate is required")


def test_leaf_with_its_ca_authenticates_as_leaf(module_server, certs):
    r = module_server.get("/v1/identity/self/describe", client="chain")
    assert r.status_code == 404  # a valid identity, just not bound to a policy
    r = module_server.get("/v1/status", client="chain")
    assert r.status_code == 403


def test_rsa_and_ed25519_clients(module_server):
    assert module_server.get("/version", client="rsa").status_code == 200
    assert module_server.get("/v1/status", client="rsa").status_code == 403
    assert module_server.get("/v1/status", client="apikey").status_code == 200


def test_no_client_certificate_fails_the_handshake(module_server):
    with pytest.raises(requests.exceptions.RequestException):
        r = module_server.get("/version", client=None)
        # TLS 1.3 reports the missing certificate after the handshake.
        r.raise_for_status()


def test_tls_versions(module_server, certs):
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = ssl.create_default_context(cafile=module_server.server_cert.ca)
        ctx.minimum_version = ctx.maximum_version = version
        ctx.load_cert_chain(*certs["apikey"].pair)
        # As upstream: h2 preferred, http/1.1 for a client that offers only it.
        ctx.set_alpn_protocols(["http/1.1", "h2"])
        with socket.create_connection(("127.0.0.1", module_server.port)) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                assert s.selected_alpn_protocol() == "h2"
        ctx.set_alpn_protocols(["http/1.1"])
        with socket.create_connection(("127.0.0.1", module_server.port)) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                assert s.version() == ("TLSv1.2" if version == ssl.TLSVersion.TLSv1_2 else "TLSv1.3")
                assert s.selected_alpn_protocol() == "http/1.1"
                s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert s.recv(100).startswith(b"HTTP/1.1 200 OK")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    except ValueError:
        pytest.skip("local OpenSSL cannot offer TLS 1.1")
    with socket.create_connection(("127.0.0.1", module_server.port)) as raw:
        with pytest.raises(ssl.SSLError):
            ctx.wrap_socket(raw).do_handshake()


def test_status_shape(module_server):
    _, status, headers, body = parse_transcript(TRANSCRIPTS / "02-status.txt")
    want = json.loads(body)
    r = module_server.get("/v1/status", client="client")
    assert r.status_code == status
    assert r.headers["Content-Type"] == "application/json"
    got = json.loads(r.content)
    assert list(got) == list(want)  # same fields, same order
    assert got["os"] == "linux"
    assert got["keystore_latency"] >= 1
    assert isinstance(got["uptime"], int)


def test_api_lists_all_routes(module_server):
    _, status, _, body = parse_transcript(TRANSCRIPTS / "05-api-admin.txt")
    want = sorted(json.loads(body), key=lambda r: r["path"])
    r = module_server.get("/v1/api")
    assert r.status_code == status
    got = sorted(r.json(), key=lambda r: r["path"])
    # kes-cpp's key-version routes (rotation.md §6.7) are listed as well.
    extension = {"/v1/key/rotate/", "/v1/key/versions/", "/v1/key/config/", "/v1/key/rewrap/"}
    assert {r["path"] for r in got} - {r["path"] for r in want} == extension
    assert [r for r in got if r["path"] not in extension] == want


def test_metrics_text_format(module_server):
    module_server.get("/v1/key/describe/does-not-exist")
    r = module_server.get("/v1/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = r.text
    _, _, _, body = parse_transcript(TRANSCRIPTS / "26-metrics-admin.txt")
    want_families = {l.split()[2] for l in body.decode().splitlines() if l.startswith("# TYPE")}
    got_families = {l.split()[2] for l in text.splitlines() if l.startswith("# TYPE")}
    assert want_families <= got_families
    assert 'kes_http_request_error{code="404"}' in text
    assert "kes_cpp_keystore_backend_gets_total" in text
    assert 'kes_http_response_time_bucket{le="+Inf"}' in text


def test_ready(module_server):
    assert module_server.get("/v1/ready").status_code == 200
    assert module_server.get("/v1/ready").content == b""


def test_http10_keep_alive(module_server):
    data = (b"GET /version HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
            b"GET /version HTTP/1.0\r\n\r\n")
    raw = raw_request(module_server, data)
    assert raw.count(b"HTTP/1.0 200 OK\r\n") == 2
    first = raw.split(b"\r\n\r\n")[0].decode().lower()
    assert "connection: keep-alive" in first

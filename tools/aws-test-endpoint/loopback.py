"""HTTP plumbing shared by the AWS and Vault test endpoints: loopback-only
listeners (optional TLS), request bodies, dropped connections, the port file
and serving until SIGTERM / SIGINT."""
import ipaddress
import json
import os
import signal
import socket
import ssl
import sys
import threading
from http.server import ThreadingHTTPServer


def require_loopback(host):
    """Exits unless host is a loopback address (127.0.0.0/8, ::1, localhost)."""
    try:
        addr = ipaddress.ip_address("127.0.0.1" if host == "localhost" else host)
    except ValueError:
        sys.exit(f"--host must be a loopback address, not {host!r}")
    if not addr.is_loopback:
        sys.exit(f"--host must be a loopback address, not {host!r}")


class Listener(ThreadingHTTPServer):
    """A threaded HTTP(S) listener; keyword attributes (state, name, ...) are
    set on it for the handlers to read."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host, port, handler_class, tls_context=None, **attributes):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), handler_class)
        self.tls_context = tls_context
        for name, value in attributes.items():
            setattr(self, name, value)

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's thread, so a slow or
        # failing client cannot stall the accept loop.
        if self.tls_context is None:
            super().finish_request(request, client_address)
            return
        # wrap_socket detaches the plain socket, so shutdown_request cannot close
        # this one: close it here.
        with self.tls_context.wrap_socket(request, server_side=True) as tls_request:
            super().finish_request(tls_request, client_address)

    @property
    def port(self):
        return self.server_address[1]

    def handle_error(self, request, client_address):
        # Clients that time out, fail the handshake or are dropped on purpose
        # (faults) are routine; keep stderr for real bugs.
        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def read_body(handler, max_body):
    """The request body (Content-Length or chunked); ValueError when too large."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks, total = [], 0
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > max_body:
                raise ValueError("body too large")
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    if length < 0 or length > max_body:
        raise ValueError("bad Content-Length")
    return handler.rfile.read(length) if length else b""


def drop(handler):
    """Closes the handler's connection with a reset, without answering."""
    handler.close_connection = True
    try:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      b"\x01\x00\x00\x00\x00\x00\x00\x00")
        handler.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def write_port_file(path, doc):
    """Writes the JSON atomically (readers poll for the file)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def serve(listeners):
    """Serves every listener until SIGTERM or SIGINT."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for listener in listeners:
        threading.Thread(target=listener.serve_forever, daemon=True).start()
    stop.wait()
    for listener in listeners:
        listener.shutdown()
        listener.server_close()

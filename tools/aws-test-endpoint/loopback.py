"""HTTP plumbing shared by the AWS and Vault test endpoints: loopback-only
listeners (optional TLS), request bodies, dropped connections, the port file,
serving until SIGTERM / SIGINT and the fault / request-log admin routes."""
import argparse
import ipaddress
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import ThreadingHTTPServer


def argument_parser(description, port_file_help):
    """The command line both endpoints start with: --host, --port, --port-file."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    p.add_argument("--port", type=int, default=0,
                   help="main port (0: pick a free one); printed on stdout's first line")
    p.add_argument("--port-file", help=port_file_help)
    return p


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


def delay_or_drop(handler, rule, entry, request_log):
    """Applies a fault rule's timing part: sleeps for `latency`; for `drop`
    logs the request and resets the connection, and answers True (no reply)."""
    entry["fault"] = rule.kind
    if rule.kind == "latency":
        time.sleep(rule.delay_ms / 1000.0)
    elif rule.kind == "drop":
        entry["status"] = None
        request_log.append(entry)
        drop(handler)
        return True
    return False


def server_tls_context(cert_file, key_file):
    """TLS 1.2+ server context with this certificate chain and key."""
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(cert_file, key_file)
    return tls


def announce_and_serve(listeners, port_file, info):
    """Writes `info` to the port file (atomically: readers poll for it), prints
    the main port and `name=port` for the others on stdout, then serves every
    listener until SIGTERM or SIGINT."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if port_file:
        tmp = port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(info, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, port_file)
    print(listeners[0].port)
    for listener in listeners[1:]:
        print(f"{listener.name}={listener.port}")
    sys.stdout.flush()
    for listener in listeners:
        threading.Thread(target=listener.serve_forever, daemon=True).start()
    stop.wait()
    for listener in listeners:
        listener.shutdown()
        listener.server_close()


def shared_admin(state, method, path, doc):
    """The answer to the admin routes both endpoints serve alike (/__faults,
    /__admin/requests) from state.faults and state.requests, or None."""
    if path == "/__faults":
        if method == "GET":
            return {"rules": state.faults.list()}
        if method == "DELETE":
            state.faults.clear()
            return {"rules": []}
        if method == "POST":
            for rule in doc.get("rules", [doc]) if isinstance(doc, dict) else doc:
                state.faults.add(rule)
            return {"rules": state.faults.list()}
    elif path == "/__admin/requests":
        if method == "GET":
            return {"requests": list(state.requests)}
        if method == "DELETE":
            state.requests.clear()
            return {"requests": []}
    return None

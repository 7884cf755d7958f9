"""Connection slots (docs/architecture.md, "Connection slots"): the server
raises its soft open-file limit to the hard one, and when its connections
fill what that allows, it sheds connections of unknown identities and then
the longest-idle ones before refusing anybody. The server runs under a low
limit (prlimit) so that a few hundred connections fill it."""
import os
import socket
import ssl
import stat

import pytest

from kes_harness import kes_bin


def under_prlimit(tmp_path, monkeypatch, soft, hard):
    wrapper = tmp_path / "kes-prlimit"
    wrapper.write_text('#!/bin/sh\nexec prlimit --nofile=%d:%d -- "%s" "$@"\n' %
                       (soft, hard, kes_bin()))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("KES_BIN", str(wrapper))


def open_files_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        line = next(l for l in f if l.startswith("Max open files"))
    return [int(v) for v in line.split()[3:5]]


def connect(srv, who):
    ctx = ssl.create_default_context(cafile=srv.server_cert.ca)
    ctx.load_cert_chain(*srv.identities[who].pair)
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def get_version(s):
    """One keep-alive GET /version on `s`; True if answered 200."""
    s.sendall(b"GET /version HTTP/1.1\r\nHost: kes\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return False
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < n:
        chunk = s.recv(65536)
        if not chunk:
            return False
        body += chunk
    return head.startswith(b"HTTP/1.1 200 ")


def test_soft_open_file_limit_is_raised_to_the_hard_limit(kes_server, tmp_path, monkeypatch):
    under_prlimit(tmp_path, monkeypatch, 100, 300)
    srv = kes_server()
    assert open_files_limit(srv.proc.pid) == [300, 300]


def test_idle_unknown_clients_cannot_lock_out_legitimate_ones(kes_server, tmp_path, monkeypatch):
    # 160 descriptors: about 96 connections.
    under_prlimit(tmp_path, monkeypatch, 160, 160)
    srv = kes_server()
    admin = connect(srv, "admin")
    assert get_version(admin)
    flood = []
    try:
        # Unknown identities (a self-signed certificate in no policy) fill
        # every slot and stay idle.
        for _ in range(130):
            try:
                s = connect(srv, "unknown")
                if get_version(s):
                    flood.append(s)
                else:
                    s.close()
            except (OSError, ssl.SSLError):
                pass
        assert len(flood) >= 90
        # A legitimate client is served on a new connection...
        with connect(srv, "client") as fresh:
            assert get_version(fresh)
        # ...and the admin's idle keep-alive connection, older than every
        # unknown one, was not the one shed.
        assert get_version(admin)
        # The flood lost connections to make that room.
        alive = 0
        for s in flood:
            try:
                if get_version(s):
                    alive += 1
            except (OSError, ssl.SSLError):
                pass
        assert alive < len(flood)
    finally:
        for s in flood:
            s.close()
        admin.close()

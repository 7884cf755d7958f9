"""Test harness for the real `kes` binary: certificates, config files and
server processes on loopback.

Everything here is plain Python (cryptography, requests, PyYAML) so that
integration tests exercise kes-cpp through an independent TLS and HTTP
stack. Typical use from a test (see conftest.py for the fixtures)::

    def test_version(kes_server):
        srv = kes_server()                     # fs keystore, default policies
        r = srv.get("/version", client="admin")
        assert r.status_code == 200

Identities: every client certificate made here is a self-signed leaf; its
KES identity is the SHA-256 of its DER SubjectPublicKeyInfo (api.md §2.1).
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import importlib.util
import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import requests
import urllib3
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

urllib3.disable_warnings()

# The server's Python clients must never follow redirects implicitly when a
# test looks at 301s, so helpers pass allow_redirects explicitly.
DEFAULT_TIMEOUT = 30

# KES_TEST_HTTP2=1: the request helpers (KesServer.session/request/get/...)
# speak HTTP/2 (httpx over python3-h2) instead of HTTP/1.1 (requests), and
# every answer is checked to have come over HTTP/2, so a server that falls
# back to HTTP/1.1 fails the run instead of passing it silently.
HTTP2 = os.environ.get("KES_TEST_HTTP2") == "1"


class Http2Session:
    """An httpx HTTP/2 client with the slice of requests.Session's interface
    the tests use (get/put/post/delete/request, data=, json=, headers=,
    allow_redirects=, timeout=); transport errors surface as requests'
    exception types so that tests expecting a failed handshake hold."""

    def __init__(self, cert, verify):
        import httpx
        self._httpx = httpx
        self.client = httpx.Client(http2=True, cert=cert, verify=verify, trust_env=False,
                                   follow_redirects=False)

    def request(self, method, url, data=None, allow_redirects=False, **kw):
        if data is not None:
            kw["content"] = data.encode() if isinstance(data, str) else data
        try:
            try:
                r = self.client.request(method, url, follow_redirects=allow_redirects, **kw)
            except self._httpx.RemoteProtocolError as e:
                # A graceful GOAWAY (NO_ERROR) that arrived as the request
                # went out: the server did not take the stream, so it is
                # retried once on a new connection, as Go's client does.
                if "error_code:0," not in str(e):
                    raise
                r = self.client.request(method, url, follow_redirects=allow_redirects, **kw)
        except self._httpx.ConnectError as e:
            raise requests.exceptions.SSLError(str(e)) from e
        except self._httpx.TransportError as e:
            raise requests.exceptions.ConnectionError(str(e)) from e
        assert r.http_version == "HTTP/2", "answer came over %s" % r.http_version
        return r

    def get(self, url, **kw):
        return self.request("GET", url, **kw)

    def put(self, url, **kw):
        return self.request("PUT", url, **kw)

    def post(self, url, **kw):
        return self.request("POST", url, **kw)

    def delete(self, url, **kw):
        return self.request("DELETE", url, **kw)

    def close(self):
        self.client.close()


def kes_bin() -> str:
    """Path of the built kes binary (ctest sets KES_BIN)."""
    path = os.environ.get("KES_BIN")
    if not path:
        build = os.environ.get("KES_BUILD_DIR", "")
        path = os.path.join(build, "kes") if build else ""
    if not path or not os.path.exists(path):
        raise RuntimeError("KES_BIN is not set or does not exist: %r" % path)
    return path


# What AddressSanitizer, LeakSanitizer and UBSan print when a `kes` built
# with -DKES_SANITIZE=ON finds something (scripts/test.sh runs this suite
# against such a binary). The processes also exit non-zero (halt_on_error),
# but a test that expects a failing exit code would not notice that.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def check_no_sanitizer_report(what: str, text: str):
    """Fails the calling test if `text` (a process's stderr) holds a sanitizer report."""
    for marker in SANITIZER_MARKERS:
        at = text.find(marker)
        if at >= 0:
            raise AssertionError("%s: sanitizer report:\n%s" % (what, text[max(0, at - 200):at + 6000]))


def spec_dir() -> Path:
    return Path(os.environ.get("KES_SPEC_DIR", Path(__file__).resolve().parents[3] / "shared" / "spec"))


def identity_of_public_key(public_key) -> str:
    spki = public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


@dataclass
class Identity:
    """A client credential on disk: certificate + key PEM files."""
    name: str
    cert: str
    key: str
    identity: str
    api_key: Optional[str] = None  # "kes:v1:..." for Ed25519 API-key identities
    ca: Optional[str] = None       # server certificates: the CA file clients trust

    @property
    def pair(self):
        return (self.cert, self.key)


def _write_pem(path: Path, data: bytes):
    path.write_bytes(data)
    os.chmod(path, 0o600)


def _self_signed(key, subject_cn: str, *, client=True, server=False, sans=(), ca=False,
                 days=90, issuer_key=None, issuer_name=None, not_before=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    builder = (x509.CertificateBuilder()
               .subject_name(name)
               .issuer_name(issuer_name or name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before or now - datetime.timedelta(minutes=1))
               .not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    usages = []
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if usages and not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if sans:
        alt = []
        for s in sans:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                alt.append(x509.DNSName(s))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    signer = issuer_key or key
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, algorithm)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class CertFactory:
    """Makes server and client credentials in a directory."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def server(self, name="server", sans=("127.0.0.1", "localhost")) -> Identity:
        """A server certificate issued by a fresh test CA (OpenSSL clients do
        not accept a self-signed CA:FALSE leaf as its own trust anchor)."""
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _self_signed(ca_key, name + " test CA", client=False, ca=True)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _self_signed(key, "localhost", client=False, server=True, sans=sans,
                            issuer_key=ca_key, issuer_name=ca_cert.subject)
        out = self._store(name, key, cert)
        ca_path = self.dir / (name + "-ca.crt")
        _write_pem(ca_path, ca_cert.public_bytes(serialization.Encoding.PEM))
        out.ca = str(ca_path)
        return out

    def client(self, name: str, kind="ecdsa", ca=False) -> Identity:
        if kind == "ecdsa":
            key = ec.generate_private_key(ec.SECP256R1())
        elif kind == "rsa":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif kind == "ed25519":
            key = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(kind)
        cert = _self_signed(key, name, ca=ca)
        return self._store(name, key, cert)

    def api_key_client(self, name: str, api_key: Optional[str] = None) -> Identity:
        """An Ed25519 identity as the SDK derives it from a `kes:v1:` API key."""
        if api_key is None:
            seed = os.urandom(32)
            api_key = "kes:v1:" + base64.b64encode(b"\x00" + seed).decode()
        raw = base64.b64decode(api_key[len("kes:v1:"):])
        key = ed25519.Ed25519PrivateKey.from_private_bytes(raw[1:])
        ident = identity_of_public_key(key.public_key())
        cert = _self_signed(key, ident)
        out = self._store(name, key, cert)
        out.api_key = api_key
        return out

    def chain_client(self, name: str) -> Identity:
        """A leaf signed by a CA, with the CA appended to the certificate file."""
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _self_signed(ca_key, name + "-ca", client=False, ca=True)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _self_signed(key, name, issuer_key=ca_key, issuer_name=ca_cert.subject)
        out = self._store(name, key, cert)
        with open(out.cert, "ab") as f:
            f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
        ca_path = self.dir / (name + "-ca.crt")
        _write_pem(ca_path, ca_cert.public_bytes(serialization.Encoding.PEM))
        out.ca = str(ca_path)
        return out

    def _store(self, name, key, cert) -> Identity:
        cert_path = self.dir / (name + ".crt")
        key_path = self.dir / (name + ".key")
        _write_pem(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        _write_pem(key_path, _key_pem(key))
        return Identity(name, str(cert_path), str(key_path), identity_of_public_key(key.public_key()))


def stop_process(proc: subprocess.Popen, timeout=30) -> int:
    """SIGTERM, then SIGKILL if it has not exited after `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, deadline: float) -> bool:
    """True once 127.0.0.1:`port` accepts a TCP connection, False at `deadline`
    (time.monotonic())."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class KesServer:
    """One `kes server` process with its captured stdout/stderr.

    `config` is a dict written as YAML, or the text of a config file. The process listens on 127.0.0.1
    with a port chosen by the kernel (`--addr 127.0.0.1:0`); the real port
    is read from the start-up banner.
    """

    def __init__(self, workdir: Path, config: Optional[dict], server_cert: Identity,
                 identities: Dict[str, Identity], args: Optional[List[str]] = None,
                 dev: bool = False):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.server_cert = server_cert
        self.identities = identities
        self.config_path = self.workdir / "config.yml"
        self.args = args or []
        self.dev = dev
        self.stdout: List[str] = []
        self.stderr: List[str] = []
        self._lock = threading.Lock()
        self.proc: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None
        self.api_key: Optional[str] = None
        self._sessions: Dict[str, requests.Session] = {}  # or Http2Session

    # --- process control ---------------------------------------------------

    def write_config(self, config: Optional[dict] = None):
        if config is not None:
            self.config = config
        if isinstance(self.config, str):
            self.config_path.write_text(self.config)
        else:
            self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))

    def start(self, timeout=60):
        cmd = [kes_bin(), "server"]
        if self.dev:
            cmd += ["--dev"]
        else:
            self.write_config()
            cmd += ["--config", str(self.config_path)]
        if not any(a.startswith("--addr") for a in self.args):
            cmd += ["--addr", "127.0.0.1:0"]
        cmd += self.args
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr), daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.stdout_text()
            if "=> Server is up and running..." in out:
                # The API line: the KMS line may name a loopback https backend.
                m = re.search(r"^API\s.*?https://127\.0\.0\.1:(\d+)", out, re.M)
                if m:
                    self.port = int(m.group(1))
                k = re.search(r"API Key\s+(kes:v1:\S+)", out)
                if k:
                    self.api_key = k.group(1)
                if self.port:
                    self._wait_ready(deadline)
                    return self
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the pumps drain
                raise RuntimeError("kes server exited with %s\nstdout:\n%s\nstderr:\n%s" %
                                   (self.proc.returncode, self.stdout_text(), self.stderr_text()))
            time.sleep(0.05)
        raise RuntimeError("kes server did not start\nstdout:\n%s\nstderr:\n%s" %
                           (self.stdout_text(), self.stderr_text()))

    def _wait_ready(self, deadline):
        # The banner is printed once the socket listens; a TCP connect proves it.
        if not wait_for_port(self.port, deadline):
            raise RuntimeError("kes server port never accepted connections")

    def _pump(self, stream, sink):
        for raw in iter(stream.readline, b""):
            with self._lock:
                sink.append(raw.decode("utf-8", "replace"))
        stream.close()

    def stdout_text(self) -> str:
        with self._lock:
            return "".join(self.stdout)

    def stderr_text(self) -> str:
        with self._lock:
            return "".join(self.stderr)

    def wait_for_output(self, needle: str, stream="stdout", timeout=30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.stdout_text() if stream == "stdout" else self.stderr_text()
            if needle in text:
                return True
            time.sleep(0.05)
        return False

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return 0
        for s in self._sessions.values():
            s.close()
        self._sessions.clear()
        code = stop_process(self.proc, timeout)
        self.check_sanitizer()
        return code

    def check_sanitizer(self):
        """Raises if the server's stderr holds a sanitizer report (leaks are
        reported at exit, so after stop())."""
        if self.proc is not None and self.proc.poll() is not None:
            time.sleep(0.1)  # let the stderr pump drain
        check_no_sanitizer_report("kes server", self.stderr_text())

    def kill(self):
        """SIGKILL: no graceful shutdown."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for s in self._sessions.values():
            s.close()
        self._sessions.clear()
        self.check_sanitizer()

    # --- HTTP -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return "https://127.0.0.1:%d" % self.port

    def session(self, client: Optional[str] = "admin") -> requests.Session:
        """A keep-alive session presenting `client`'s certificate (None: no
        certificate); an Http2Session when KES_TEST_HTTP2=1."""
        key = client or "<none>"
        if key not in self._sessions and HTTP2:
            cert = self.identities[client].pair if client is not None else None
            self._sessions[key] = Http2Session(cert, self.server_cert.ca if not self.dev else False)
        if key not in self._sessions:
            s = requests.Session()
            # Ignore REQUESTS_CA_BUNDLE & co (they override Session.verify)
            # and any proxy settings: tests talk to loopback only.
            s.trust_env = False
            if client is not None:
                s.cert = self.identities[client].pair
            s.verify = self.server_cert.ca if not self.dev else False
            self._sessions[key] = s
        return self._sessions[key]

    def request(self, method: str, path: str, client: Optional[str] = "admin", **kw):
        kw.setdefault("timeout", DEFAULT_TIMEOUT)
        kw.setdefault("allow_redirects", False)
        return self.session(client).request(method, self.base_url + path, **kw)

    def get(self, path, client="admin", **kw):
        return self.request("GET", path, client, **kw)

    def put(self, path, client="admin", **kw):
        return self.request("PUT", path, client, **kw)

    def post(self, path, client="admin", **kw):
        return self.request("POST", path, client, **kw)

    def delete(self, path, client="admin", **kw):
        return self.request("DELETE", path, client, **kw)


def error_body(message: str) -> bytes:
    """The exact body of a KES API error (api.md §1.7)."""
    import json
    return ('{"message":' + json.dumps(message, ensure_ascii=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n}").encode()


def base_config(certs: Dict[str, Identity], server_cert: Identity, keystore_dir: Path,
                policies: Optional[dict] = None, **extra) -> dict:
    """A config with the admin identity, an fs keystore and the given policies."""
    cfg = {
        "version": "v1",
        "address": "127.0.0.1:0",
        "admin": {"identity": certs["admin"].identity},
        "tls": {"key": server_cert.key, "cert": server_cert.cert},
        "policy": policies or {},
        "log": {"error": "on", "audit": "on"},
        "keystore": {"fs": {"path": str(keystore_dir)}},
    }
    cfg.update(extra)
    return cfg


def parse_transcript(path: Path):
    """Parses spec/transcripts/NN-*.txt: (request line, status, headers, body)."""
    raw = Path(path).read_bytes()
    head, _, rest = raw.partition(b"\n\n")
    request = head.decode().splitlines()[0].lstrip("# ").strip()
    resp_head, _, body = rest.partition(b"\r\n\r\n")
    lines = resp_head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(": ")
        headers[k.lower()] = v
    if "content-length" in headers:
        body = body[:int(headers["content-length"])]
    return request, status, headers, body


# --- HTTP/2 frames --------------------------------------------------------

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_DATA, H2_HEADERS, H2_RST_STREAM, H2_SETTINGS, H2_PING, H2_GOAWAY, H2_CONTINUATION = \
    0x0, 0x1, 0x3, 0x4, 0x6, 0x7, 0x9
H2_END_STREAM, H2_END_HEADERS, H2_ACK = 0x1, 0x4, 0x1


def h2_frame(ftype: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    """One HTTP/2 frame (RFC 9113 §4.1)."""
    return (len(payload).to_bytes(3, "big") + bytes([ftype, flags]) +
            (stream & 0x7FFFFFFF).to_bytes(4, "big") + payload)


class RawH2:
    """A TLS connection that negotiated ALPN h2, writing frames as given
    (hostile ones included) and reading frames back: the server's side of
    the protocol seen without a client library smoothing it over. Header
    blocks are HPACK-encoded with python3-h2's hpack."""

    def __init__(self, srv: "KesServer", client: Optional[str] = "admin", preface=True,
                 settings: bytes = b""):
        import ssl
        import hpack
        ctx = ssl.create_default_context(cafile=srv.server_cert.ca)
        if client is not None:
            ctx.load_cert_chain(*srv.identities[client].pair)
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        assert self.sock.selected_alpn_protocol() == "h2"
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.buf = b""
        self.streams = {}
        if preface:
            self.send(H2_PREFACE + h2_frame(H2_SETTINGS, 0, 0, settings))

    def send(self, data: bytes):
        self.sock.sendall(data)

    def headers_block(self, method: str, path: str, extra=()) -> bytes:
        return self.encoder.encode([(":method", method), (":scheme", "https"),
                                    (":authority", "127.0.0.1"), (":path", path), *extra])

    def request(self, stream: int, method: str, path: str, body: Optional[bytes] = None,
                end: bool = True):
        """HEADERS (+ DATA) for one request; end=False leaves the stream open."""
        flags = H2_END_HEADERS | (H2_END_STREAM if body is None and end else 0)
        self.send(h2_frame(H2_HEADERS, flags, stream, self.headers_block(method, path)))
        if body is not None:
            self.send(h2_frame(H2_DATA, H2_END_STREAM if end else 0, stream, body))

    def frame(self, timeout=30):
        """The next frame as (type, flags, stream, payload); None once closed."""
        self.sock.settimeout(timeout)
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            try:
                chunk = self.sock.recv(65536)
            except ConnectionError:  # reset by the server: closed too
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        n = int.from_bytes(self.buf[:3], "big")
        f = (self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF,
             self.buf[9:9 + n])
        self.buf = self.buf[9 + n:]
        if f[0] == H2_SETTINGS and not f[1] & H2_ACK:
            try:
                self.send(h2_frame(H2_SETTINGS, H2_ACK, 0))
            except OSError:
                pass  # a hostile test's write was cut off; reading goes on
        self._record(f)
        return f

    def _record(self, f):
        # Every header block is decoded as it arrives (HPACK state is shared
        # by the connection); answers are kept per stream for response().
        if f[0] not in (H2_HEADERS, H2_DATA, H2_RST_STREAM) or f[2] == 0:
            return
        st = self.streams.setdefault(f[2], {"status": None, "headers": {}, "body": b"",
                                            "ended": False, "reset": None})
        if f[0] == H2_HEADERS:
            for k, v in self.decoder.decode(f[3]):
                k = k.decode() if isinstance(k, bytes) else k
                v = v.decode() if isinstance(v, bytes) else v
                if k == ":status":
                    st["status"] = int(v)
                else:
                    st["headers"][k] = v
        elif f[0] == H2_DATA:
            st["body"] += f[3]
        else:
            st["reset"] = int.from_bytes(f[3], "big")
        if f[1] & H2_END_STREAM and f[0] != H2_RST_STREAM:
            st["ended"] = True

    def until(self, want, timeout=30):
        """Reads frames until want(frame) holds; returns that frame (None if
        the connection closed first)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching HTTP/2 frame")
            f = self.frame(timeout=left)
            if f is None or want(f):
                return f

    def response(self, stream: int, timeout=30):
        """(status, headers dict, body) of `stream`, read to its END_STREAM."""
        st = lambda: self.streams.get(stream, {})
        if not (st().get("ended") or st().get("reset") is not None):
            f = self.until(lambda f: st().get("ended") or st().get("reset") is not None, timeout)
            if f is None:
                raise EOFError("connection closed before stream %d ended" % stream)
        if st()["reset"] is not None:
            raise ConnectionResetError("stream %d reset, error %d" % (stream, st()["reset"]))
        return st()["status"], st()["headers"], st()["body"]

    def close(self):
        self.sock.close()


def h2_goaway_error(frame) -> int:
    """The error code of a GOAWAY frame."""
    return int.from_bytes(frame[3][4:8], "big")


def vm_rss_kib(pid: int) -> int:
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# Stored keys as upstream KES writes them into any keystore: the current format
# (keystores.md §2.1 worked example) and the legacy JSON format (§2.2).
UPSTREAM_VALUE = ("CiQKIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fEAESJAogICEiIyQlJicoKSorLC0uLzAx"
                  "MjM0NTY3ODk6Ozw9Pj8QARoGCICByKwGIghkaXNhYmxlZA==")
LEGACY_VALUE = json.dumps({"bytes": base64.b64encode(bytes(range(32))).decode(),
                           "algorithm": "AES256", "created_at": "2023-01-01T00:00:00Z",
                           "created_by": "legacy"})


def use_key(srv: "KesServer", name: str) -> dict:
    """Generates a data key with `name` and decrypts it again; the DEK."""
    ctx = base64.b64encode(b"ctx").decode()
    r = srv.put("/v1/key/generate/" + name, json={"context": ctx})
    assert r.status_code == 200, r.text
    dek = r.json()
    r = srv.put("/v1/key/decrypt/" + name, json={"ciphertext": dek["ciphertext"], "context": ctx})
    assert r.status_code == 200, r.text
    assert r.json()["plaintext"] == dek["plaintext"]
    return dek


def tool_module(tool: str, module: str = "launcher"):
    """tools/<tool>/<module>.py, loaded under a name of its own: every test
    endpoint has a launcher.py, and they must not shadow each other."""
    source = Path(os.environ.get("KES_SOURCE_DIR", Path(__file__).resolve().parents[2]))
    directory = source / "tools" / tool
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))  # the tool's own modules import each other
    name = tool.replace("-", "_") + "_" + module
    spec = importlib.util.spec_from_file_location(name, directory / f"{module}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class CreateTraffic:
    """Creates keys <prefix>-0, <prefix>-1, ... on `srv` from a thread while
    the `with` block runs (`pause` seconds apart); `failures` collects the
    text of every answer that was not 200."""

    def __init__(self, srv: "KesServer", prefix: str = "traffic", pause: float = 0.05):
        self.srv, self.prefix, self.pause = srv, prefix, pause
        self.failures: List[str] = []
        self.created = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self):
        while not self._done.is_set():
            r = self.srv.put("/v1/key/create/%s-%d" % (self.prefix, self.created))
            if r.status_code != 200:
                self.failures.append(r.text)
            self.created += 1
            self._done.wait(self.pause)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()

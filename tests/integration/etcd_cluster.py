"""Real etcd clusters and HAProxy on loopback for the etcd keystore tests.

EtcdCluster starts N members of Debian's etcd-server (plain HTTP on
127.0.0.1 ports chosen by the kernel, data in a temporary directory) and can
kill -9 and restart single members. Haproxy runs one TCP-mode frontend (TLS
passes through to the kes nodes) with fast health checks.
"""
import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import List, Optional

from kes_harness import free_port, wait_for_port

ETCD_BIN = "/usr/bin/etcd"
HAPROXY_BIN = "/usr/sbin/haproxy"


def etcd_post(endpoint: str, path: str, body: dict, timeout=2.0, context=None) -> dict:
    req = urllib.request.Request(endpoint + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=context))
    with opener.open(req, timeout=timeout) as r:
        return json.loads(r.read())


class EtcdMember:
    def __init__(self, workdir: Path, name: str, scheme: str):
        self.name = name
        self.dir = workdir / name
        self.client_url = "%s://127.0.0.1:%d" % (scheme, free_port())
        self.peer_url = "http://127.0.0.1:%d" % free_port()
        self.proc: Optional[subprocess.Popen] = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class EtcdCluster:
    """`tls`: (member cert, member key, CA, client cert, client key): clients
    must present a certificate issued by the CA; the probes here use the
    client one."""

    def __init__(self, workdir: Path, size: int = 3, tls=None):
        self.workdir = Path(workdir)
        self.tls = tls
        self.context = None
        if tls:
            import ssl
            self.context = ssl.create_default_context(cafile=tls[2])
            self.context.load_cert_chain(tls[3], tls[4])
        scheme = "https" if tls else "http"
        self.members = [EtcdMember(self.workdir, "m%d" % i, scheme) for i in range(size)]
        self.initial = ",".join("%s=%s" % (m.name, m.peer_url) for m in self.members)

    @property
    def endpoints(self) -> List[str]:
        return [m.client_url for m in self.members]

    def start(self, timeout=60):
        for m in self.members:
            self._spawn(m)
        self.wait_healthy(timeout)
        return self

    def _spawn(self, m: EtcdMember):
        m.dir.mkdir(parents=True, exist_ok=True)
        log = open(m.dir / "etcd.log", "ab")
        m.proc = subprocess.Popen(
            [ETCD_BIN, "--name", m.name, "--data-dir", str(m.dir / "data"),
             "--listen-client-urls", m.client_url, "--advertise-client-urls", m.client_url,
             "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
             "--initial-cluster", self.initial, "--initial-cluster-state", "new",
             "--initial-cluster-token", "kes-test", "--logger", "zap", "--log-level", "warn"]
            + (["--cert-file", self.tls[0], "--key-file", self.tls[1], "--client-cert-auth",
                "--trusted-ca-file", self.tls[2]] if self.tls else []),
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()

    def status(self, m: EtcdMember) -> Optional[dict]:
        try:
            return etcd_post(m.client_url, "/v3/maintenance/status", {}, timeout=1,
                             context=self.context)
        except (OSError, ValueError):
            return None

    def leader(self) -> Optional[EtcdMember]:
        """The member that is leader now, according to the first member that
        knows one."""
        for m in self.members:
            if not m.alive():
                continue
            st = self.status(m)
            if st and st.get("leader", "0") != "0":
                for c in self.members:
                    cs = self.status(c) if c.alive() else None
                    if cs and cs["header"]["member_id"] == st["leader"]:
                        return c
        return None

    def wait_healthy(self, timeout=60):
        """Until a leader exists and a linearizable read succeeds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.members:
                if not m.alive():
                    continue
                try:
                    etcd_post(m.client_url, "/v3/kv/range", {"key": "AA=="}, timeout=2,
                              context=self.context)
                    return
                except (OSError, ValueError):
                    pass
            time.sleep(0.1)
        raise RuntimeError("etcd cluster not healthy in %ss: %s" % (timeout, self.logs()))

    def kill(self, m: EtcdMember):
        if m.alive():
            m.proc.kill()
            m.proc.wait()

    def restart(self, m: EtcdMember):
        self._spawn(m)  # its data dir makes it rejoin; the flags are ignored

    def logs(self) -> str:
        out = []
        for m in self.members:
            p = m.dir / "etcd.log"
            if p.exists():
                out.append("--- %s\n%s" % (m.name, p.read_text(errors="replace")[-2000:]))
        return "\n".join(out)

    def stop(self):
        for m in self.members:
            self.kill(m)


class Haproxy:
    """One TCP frontend over `backends` (host:port), TLS passed through."""

    def __init__(self, workdir: Path, backends: List[str]):
        self.port = free_port()
        self.cfg = Path(workdir) / "haproxy.cfg"
        servers = "\n".join("  server n%d %s check inter 200 fall 1 rise 1" % (i, b)
                            for i, b in enumerate(backends))
        self.cfg.write_text(
            "global\n  maxconn 2000\n"
            "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 60s\n"
            "  timeout server 60s\n  retries 3\n  option redispatch\n"
            "frontend kes\n  bind 127.0.0.1:%d\n  default_backend nodes\n"
            "backend nodes\n  balance roundrobin\n%s\n" % (self.port, servers))
        self.proc = subprocess.Popen([HAPROXY_BIN, "-db", "-f", str(self.cfg)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL)
        if not wait_for_port(self.port, time.monotonic() + 20):
            raise RuntimeError("haproxy did not listen")

    @property
    def base_url(self) -> str:
        return "https://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

"""Scale-out and HA on etcd: real etcd members (Debian's etcd-server), three
`kes server` nodes sharing one etcd keystore, HAProxy in TCP mode in front,
everything on loopback and started here. Members and nodes are killed with
SIGKILL in the middle of traffic.
"""
import base64
import concurrent.futures as cf
import json
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from etcd_cluster import EtcdCluster, Haproxy, etcd_post
from kes_harness import KesServer, base_config, free_port

PREFIX = "kes/"


def etcd_config(certs, server_cert, endpoints, **kw):
    cfg = base_config(certs, server_cert, Path("/nonexistent"), {})
    cfg["keystore"] = {"etcd": {"endpoints": list(endpoints), "prefix": PREFIX}}
    # Long expiries: only the watch can make another node forget a key.
    cfg["cache"] = {"expiry": {"any": "10m", "unused": "10m", "offline": "10m"}}
    cfg.update(kw)
    return cfg


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = EtcdCluster(tmp_path_factory.mktemp("etcd3"), 3).start()
    yield c
    c.stop()


@pytest.fixture
def nodes(tmp_path, certs, server_cert, cluster):
    started = []

    def start(n=3, endpoints=None):
        for i in range(n):
            s = KesServer(tmp_path / ("node%d" % i),
                          etcd_config(certs, server_cert, endpoints or cluster.endpoints),
                          server_cert, certs)
            started.append(s.start())
        return started

    yield start
    for s in started:
        s.stop()


def session(url_owner, certs, server_cert):
    s = requests.Session()
    s.trust_env = False
    s.cert = certs["admin"].pair
    s.verify = server_cert.ca
    return s


def call(base_url, certs, server_cert, method, path, body=None, timeout=30):
    with session(None, certs, server_cert) as s:
        return s.request(method, base_url + path, data=body, timeout=timeout)


def generate(node, name):
    r = node.post("/v1/key/generate/" + name, data="{}")
    assert r.status_code == 200, r.text
    return r.json()


def decrypts(node, name, dek):
    r = node.post("/v1/key/decrypt/" + name, data=json.dumps({"ciphertext": dek["ciphertext"]}))
    return r.status_code == 200 and r.json()["plaintext"] == dek["plaintext"]


def forgotten_within(node, name, seconds):
    """Polls `node` until it answers 404 for `name` (True) or time is up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if node.post("/v1/key/generate/" + name, data="{}").status_code == 404:
            return True
        time.sleep(0.05)
    return False


def backend_gets(node):
    for line in node.get("/v1/metrics").text.splitlines():
        if line.startswith("kes_cpp_keystore_backend_gets_total "):
            return float(line.split()[1])
    raise AssertionError("no kes_cpp_keystore_backend_gets_total in /v1/metrics")


def cache_settled(node, name, timeout=10):
    """Generates with `name` until the key stays cached (no backend read
    between two generates), so that a test that then takes etcd away, or
    counts backend reads, starts from a cached key."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        generate(node, name)
        gets = backend_gets(node)
        if gets == last:
            return
        last = gets
        time.sleep(0.3)
    raise AssertionError("key %s never stayed cached" % name)


def unique(name):
    return "%s-%d" % (name, time.monotonic_ns())


def test_a_key_created_on_one_node_works_on_every_other(nodes):
    a, b, c = nodes()
    name = unique("shared")
    assert a.put("/v1/key/create/" + name).status_code == 200
    assert b.put("/v1/key/create/" + name).json()["message"] == "key already exists"
    for node in (b, c):
        dek = generate(node, name)
        assert all(decrypts(n, name, dek) for n in (a, b, c))
    assert name in c.get("/v1/key/list/*").text
    st = c.get("/v1/status").json()
    assert st["keystore_watch"] is True and "keystore_latency" in st
    assert "kes_cpp_keystore_watch_up 1" in c.get("/v1/metrics").text


def test_concurrent_creates_across_nodes_have_exactly_one_winner(nodes, certs, server_cert):
    servers = nodes()
    name = unique("race")
    start = threading.Barrier(50)

    def create(i):
        if i < 50:
            start.wait(timeout=30)
        r = call(servers[i % 3].base_url, certs, server_cert, "PUT", "/v1/key/create/" + name)
        return r.status_code, r.text

    with cf.ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(create, range(200)))
    codes = [c for c, _ in results]
    assert codes.count(200) == 1, results
    assert all(c == 400 and "key already exists" in t for c, t in results if c != 200)


def test_a_node_serves_the_key_it_created_without_reading_it_back(nodes):
    """The creating node caches the key at its etcd revision, and its own
    watch's report of that create (same revision) does not evict it: no
    backend read for the key, before or after the event has arrived."""
    a, b, _ = nodes()
    marker = unique("marker")
    assert a.put("/v1/key/create/" + marker).status_code == 200
    cache_settled(a, marker)
    name = unique("own")
    before = backend_gets(a)
    assert a.put("/v1/key/create/" + name).status_code == 200
    dek = generate(a, name)
    # Events arrive in revision order: once a has dropped the marker deleted
    # through b (one read: the 404), it has seen the create of `name` too.
    assert b.delete("/v1/key/delete/" + marker).status_code == 200
    assert forgotten_within(a, marker, 5.0)
    assert decrypts(a, name, dek)
    assert backend_gets(a) - before == 1  # the marker's 404 alone


def test_a_delete_on_one_node_evicts_the_key_on_the_others_within_two_seconds(nodes):
    a, b, _ = nodes()
    name = unique("evict")
    assert a.put("/v1/key/create/" + name).status_code == 200
    generate(b, name)  # now in b's cache, which would keep it for 10 minutes
    assert a.delete("/v1/key/delete/" + name).status_code == 200
    assert forgotten_within(b, name, 2.0)
    # A re-create through a: b serves the new key, not the old one.
    assert a.put("/v1/key/create/" + name).status_code == 200
    dek = generate(a, name)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and not decrypts(b, name, dek):
        time.sleep(0.05)
    assert decrypts(b, name, dek)


def test_a_rotation_on_one_node_reaches_the_others_through_the_watch(nodes):
    """rotation.md §7 with the etcd watch: the new version entry ("<name>-v2-")
    and configuration record ("<name>-c1-") evict the whole ring of <name> on
    every other node, although their cache would keep it for 10 minutes."""
    a, b, _ = nodes()
    name = unique("rotate")
    assert a.put("/v1/key/create/" + name).status_code == 200
    old = generate(b, name)  # b caches the one-version ring
    assert "version" not in old
    r = a.put("/v1/key/rotate/" + name)
    assert r.status_code == 200 and r.json()["version"] == "2", r.text

    def b_generates_version_2():
        dek = generate(b, name)
        return dek.get("version") == "2" and decrypts(a, name, dek)

    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and not b_generates_version_2():
        time.sleep(0.05)
    assert b_generates_version_2()
    # A new minimum decryption version is enforced by b as quickly.
    r = a.put("/v1/key/config/" + name, data=json.dumps({"min_decryption_version": "2"}))
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and decrypts(b, name, old):
        time.sleep(0.05)
    r = b.post("/v1/key/decrypt/" + name, data=json.dumps({"ciphertext": old["ciphertext"]}))
    assert r.status_code == 400, r.text
    assert r.json()["message"] == ("decryption failed: key version is below the minimum "
                                   "decryption version")


class LostAnswerProxy:
    """Forwards HTTP requests to etcd but drops the answer to the first
    /v3/kv/txn: the write happens, the client never hears of it."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.dropped = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        with conn:
            conn.settimeout(10)
            while True:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                while len(body) < length:
                    body += conn.recv(65536)
                with socket.create_connection(("127.0.0.1", self.target_port)) as up:
                    up.sendall(head.replace(b"keep-alive", b"close") + b"\r\n\r\n" + body)
                    answer = b""
                    up.settimeout(10)
                    while True:
                        chunk = up.recv(65536)
                        if not chunk:
                            break
                        answer += chunk
                        if b"\r\n\r\n" in answer and answer.endswith(b"}\n") or answer.endswith(b"}"):
                            break
                if b"/v3/kv/txn" in head.split(b"\r\n")[0] and self.dropped == 0:
                    self.dropped += 1
                    return  # the write happened; its answer is lost
                conn.sendall(answer)

    def close(self):
        self.sock.close()


def test_a_create_whose_answer_was_lost_is_not_reported_as_existing(nodes, cluster):
    first = cluster.members[0]
    proxy = LostAnswerProxy(int(first.client_url.rsplit(":", 1)[1]))
    try:
        (node,) = nodes(1, ["http://127.0.0.1:%d" % proxy.port] + cluster.endpoints)
        name = unique("lost")
        r = node.put("/v1/key/create/" + name)
        assert proxy.dropped == 1
        assert r.status_code == 200, r.text
        generate(node, name)
    finally:
        proxy.close()


def _burst(base_url, certs, server_cert, prefix, stop, results):
    """Creates and generates through `base_url` until `stop`; records
    (kind, name, outcome)."""
    i = 0
    with session(None, certs, server_cert) as s:
        while not stop.is_set():
            name = "%s-%d" % (prefix, i)
            i += 1
            for kind, method, path, body in (("create", "PUT", "/v1/key/create/" + name, None),
                                             ("generate", "POST", "/v1/key/generate/" + name,
                                              "{}")):
                try:
                    r = s.request(method, base_url + path, data=body, timeout=30)
                    results.append((kind, name, r.status_code, r.text))
                except requests.RequestException as e:
                    results.append((kind, name, "conn", str(e)))
                    s.close()


def test_killing_the_etcd_leader_and_a_node_mid_burst_loses_nothing(tmp_path, nodes, cluster,
                                                                      certs, server_cert):
    servers = nodes()
    lb = Haproxy(tmp_path, ["127.0.0.1:%d" % s.port for s in servers])
    try:
        stop = threading.Event()
        results = []
        workers = [threading.Thread(target=_burst,
                                    args=(lb.base_url, certs, server_cert, unique("burst%d" % w),
                                          stop, results)) for w in range(4)]
        for w in workers:
            w.start()
        time.sleep(1.5)  # traffic is flowing
        leader = cluster.leader()
        assert leader is not None
        cluster.kill(leader)
        servers[2].kill()
        time.sleep(4)  # traffic through the failover
        stop.set()
        for w in workers:
            w.join(timeout=60)
        cluster.restart(leader)
        cluster.wait_healthy()

        created = {n for k, n, c, _ in results if k == "create" and c == 200}
        assert len(created) >= 10, results[:20]
        # Only retryable errors: 5xx or connection errors; never a 4xx for a
        # name this burst made (a create's retry never says "exists").
        for kind, name, code, text in results:
            ok = code == 200 or code == "conn" or (isinstance(code, int) and code >= 500)
            ok = ok or (kind == "generate" and code == 404 and name not in created)
            assert ok, (kind, name, code, text)
        for name in created:
            dek = generate(servers[0], name)
            assert decrypts(servers[1], name, dek), name
    finally:
        lb.stop()


def test_quorum_loss_keeps_cached_keys_serving_and_creates_fail_clearly(nodes, cluster):
    (node,) = nodes(1)
    name = unique("cached")
    assert node.put("/v1/key/create/" + name).status_code == 200
    dek = generate(node, name)
    cache_settled(node, name)
    alive = [m for m in cluster.members if m.alive()]
    assert len(alive) == 3
    try:
        for m in alive[:2]:
            cluster.kill(m)
        assert decrypts(node, name, dek)
        assert generate(node, name)["ciphertext"]
        r = node.put("/v1/key/create/" + unique("noquorum"))
        assert r.status_code == 502 and r.json()["message"] == "failed to create key", r.text
        # The cause, named, is in the error log.
        assert node.wait_for_output("/v3/kv/txn: ", stream="stderr", timeout=5), \
            node.stderr_text()
        # Every member gone: the watch is down, visibly, and logged once.
        down = "etcd: watch of prefix 'kes/' down"
        deadline = time.monotonic() + 10  # re-established on the one member left
        while time.monotonic() < deadline and not node.get("/v1/status").json()["keystore_watch"]:
            time.sleep(0.1)
        logged = node.stdout_text().count(down)
        for m in alive[2:]:
            cluster.kill(m)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and node.get("/v1/status").json().get("keystore_watch"):
            time.sleep(0.1)
        assert node.get("/v1/status").json()["keystore_watch"] is False
        assert "kes_cpp_keystore_watch_up 0" in node.get("/v1/metrics").text
        assert decrypts(node, name, dek)
        outage = node.stdout_text().count(down)
        assert outage >= logged + 1
        time.sleep(1.5)  # several failed reconnect attempts: not logged again
        assert node.stdout_text().count(down) == outage
    finally:
        for m in alive:
            cluster.restart(m)
        cluster.wait_healthy()
    deadline = time.monotonic() + 30
    r = None
    while time.monotonic() < deadline:
        r = node.put("/v1/key/create/" + unique("recovered"))
        if r.status_code == 200:
            break
        time.sleep(0.2)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not node.get("/v1/status").json().get("keystore_watch"):
        time.sleep(0.1)
    assert node.get("/v1/status").json()["keystore_watch"] is True


def test_the_watch_follows_a_killed_member_and_keeps_evicting(nodes, cluster):
    a, b = nodes(2)
    name = unique("follow")
    assert a.put("/v1/key/create/" + name).status_code == 200
    generate(b, name)
    # Both nodes watch through the first endpoint that answered; kill it.
    first = cluster.members[0]
    cluster.kill(first)
    try:
        assert a.delete("/v1/key/delete/" + name).status_code == 200
        assert forgotten_within(b, name, 5.0)
    finally:
        cluster.restart(first)
        cluster.wait_healthy()


class Forwarder:
    """A TCP forwarder to one etcd member that can be cut (listener and every
    connection closed) and restored on the same port."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.port = 0
        self.conns = []
        self.lock = threading.Lock()
        self.listener = None
        self.restore()

    def restore(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener):
        while True:
            try:
                down, _ = listener.accept()
                up = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                return
            with self.lock:
                self.conns += [down, up]
            for a, b in ((down, up), (up, down)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        self.listener.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns = []


def test_a_delete_made_while_the_watch_was_down_is_applied_when_it_resumes(nodes, cluster):
    """The watch resumes from the revision after its last event, not from
    "now": a delete made while it was cut still evicts the key."""
    member = cluster.members[0]
    forwarder = Forwarder(int(member.client_url.rsplit(":", 1)[1]))
    try:
        a = nodes(1)[-1]
        b = nodes(1, ["http://127.0.0.1:%d" % forwarder.port])[-1]  # sees etcd through it
        name = unique("missed")
        assert a.put("/v1/key/create/" + name).status_code == 200
        generate(b, name)  # cached in b for 10 minutes
        forwarder.cut()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and b.get("/v1/status").json().get("keystore_watch"):
            time.sleep(0.1)
        assert b.get("/v1/status").json()["keystore_watch"] is False
        assert a.delete("/v1/key/delete/" + name).status_code == 200
        generate(b, name)  # b cannot know yet: still served from its cache
        forwarder.restore()
        assert forgotten_within(b, name, 10.0)
    finally:
        forwarder.cut()


def etcd_tls_material(directory: Path):
    """A CA, an etcd member certificate (server and client use: etcd's gateway
    dials its own gRPC port with it) and a kes client certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from kes_harness import _key_pem, _self_signed
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _self_signed(ca_key, "etcd test CA", client=False, ca=True)
    paths = {"ca": directory / "ca.crt"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name, server in (("member", True), ("client", False)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _self_signed(key, name, client=True, server=server, sans=("127.0.0.1",),
                            issuer_key=ca_key, issuer_name=ca.subject)
        paths[name + ".crt"] = directory / (name + ".crt")
        paths[name + ".key"] = directory / (name + ".key")
        paths[name + ".crt"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths[name + ".key"].write_bytes(_key_pem(key))
    return {k: str(v) for k, v in paths.items()}


def test_mutual_tls_to_etcd(tmp_path, certs, server_cert):
    t = etcd_tls_material(tmp_path / "etcd-pki")
    c = EtcdCluster(tmp_path / "etcd-tls", 1, tls=(t["member.crt"], t["member.key"], t["ca"], t["client.crt"],
                          t["client.key"]))
    c.start()
    started = []
    try:
        def node(tls):
            cfg = etcd_config(certs, server_cert, c.endpoints)
            cfg["keystore"]["etcd"]["tls"] = tls
            s = KesServer(tmp_path / ("node%d" % len(started)), cfg, server_cert, certs)
            started.append(s)
            return s.start()

        good = node({"key": t["client.key"], "cert": t["client.crt"], "ca": t["ca"]})
        name = unique("tls")
        assert good.put("/v1/key/create/" + name).status_code == 200
        generate(good, name)
        # No client certificate: etcd refuses the handshake.
        anonymous = node({"ca": t["ca"]})
        assert anonymous.post("/v1/key/generate/" + name, data="{}").status_code == 502
    finally:
        for s in started:
            s.stop()
        c.stop()


@pytest.mark.parametrize("section,message", [
    ({"prefix": "kes/"}, "kesconf: invalid etcd keystore: no endpoints specified"),
    ({"endpoints": ["http://127.0.0.1:1/x"]}, "must not have a path"),
    ({"endpoints": ["http://127.0.0.1:1"], "username": "root"},
     "username and password must be given together"),
    ({"endpoints": ["https://127.0.0.1:1"], "tls": {"key": "client.key"}},
     "invalid tls config: key and cert must be given together"),
])
def test_invalid_etcd_sections_fail_with_one_clear_line(tmp_path, certs, server_cert, section,
                                                        message):
    import subprocess
    from kes_harness import kes_bin
    cfg = etcd_config(certs, server_cert, [])
    cfg["keystore"] = {"etcd": section}
    path = tmp_path / "config.yml"
    import yaml
    path.write_text(yaml.safe_dump(cfg))
    r = subprocess.run([kes_bin(), "server", "--config", str(path), "--addr", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert message in r.stderr + r.stdout

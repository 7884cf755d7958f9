"""VAULT_SRV_LOOKUP end to end, run inside a fresh user + network + mount
namespace (`unshare -rnm python3 vault_srv_netns.py <workdir>`), so the
host's DNS is never touched: a bind-mounted resolv.conf points at a tiny DNS
responder on 127.0.0.1:53 that answers the SRV query for
_http._tcp.vault.test with `localhost.` and the Vault test endpoint's port.
`kes server` is configured with endpoint http://vault.test (no port) and
VAULT_SRV_LOOKUP=true; a key create + generate/decrypt must work through it,
with `Host: vault.test` on every Vault request (as the SDK).

Exits 0 and prints "srv queries: N" on success; non-zero otherwise.
"""
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kes_harness import CertFactory, KesServer, base_config, tool_module, use_key  # noqa: E402

SRV_NAME = "_http._tcp.vault.test"
TYPE_SRV = 33


def encode_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split(".")) + b"\0"


def question(packet: bytes):
    """(qname, qtype, end offset) of the first question; no compression in queries."""
    labels, i = [], 12
    while packet[i]:
        labels.append(packet[i + 1:i + 1 + packet[i]].decode("ascii", "replace"))
        i += 1 + packet[i]
    qtype, = struct.unpack("!H", packet[i + 1:i + 3])
    return ".".join(labels).lower(), qtype, i + 5


class DnsResponder:
    """Answers SRV for SRV_NAME; NXDOMAIN for everything else."""

    def __init__(self, srv_port: int):
        self.srv_port = srv_port
        self.srv_queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 53))
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            packet, peer = self.sock.recvfrom(4096)
            try:
                self.sock.sendto(self.answer(packet), peer)
            except (IndexError, struct.error):
                pass  # malformed query: no answer

    def answer(self, packet: bytes) -> bytes:
        qid, = struct.unpack("!H", packet[:2])
        qname, qtype, end = question(packet)
        q = packet[12:end]
        if qname == SRV_NAME and qtype == TYPE_SRV:
            self.srv_queries += 1
            target = encode_name("localhost.")
            rdata = struct.pack("!HHH", 0, 0, self.srv_port) + target
            rr = b"\xc0\x0c" + struct.pack("!HHIH", TYPE_SRV, 1, 60, len(rdata)) + rdata
            return struct.pack("!HHHHHH", qid, 0x8580, 1, 1, 0, 0) + q + rr
        return struct.pack("!HHHHHH", qid, 0x8583, 1, 0, 0, 0) + q  # NXDOMAIN


def isolate_dns(workdir: Path):
    ip = shutil.which("ip") or "/usr/sbin/ip"  # /usr/sbin is not on every user's PATH
    subprocess.run([ip, "link", "set", "lo", "up"], check=True)
    resolv = workdir / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
    subprocess.run(["mount", "--bind", str(resolv), "/etc/resolv.conf"], check=True)


def main() -> int:
    workdir = Path(sys.argv[1])
    isolate_dns(workdir)
    vault_ep = tool_module("vault-test-endpoint").VaultTestEndpoint(workdir / "vault")
    srv = None
    try:
        dns = DnsResponder(vault_ep.port)
        factory = CertFactory(workdir / "certs")
        server_cert = factory.server()
        certs = {"admin": factory.client("admin")}
        creds = vault_ep.credentials("")
        section = {"endpoint": "http://vault.test", "engine": "kv", "version": "v1",
                   "approle": {"engine": "approle", "id": creds["role_id"],
                               "secret": creds["secret_id"]}}
        cfg = base_config(certs, server_cert, Path("/nonexistent"))
        cfg["keystore"] = {"vault": section}
        os.environ["VAULT_SRV_LOOKUP"] = "true"
        srv = KesServer(workdir / "kes", cfg, server_cert, certs)
        try:
            srv.start(timeout=60)
        except Exception as e:  # start-up failed: show why
            print("kes did not start:", e, file=sys.stderr)
            print(srv.stdout_text(), file=sys.stderr)
            return 1
        r = srv.put("/v1/key/create/srv-key")
        if r.status_code != 200:
            print("create:", r.status_code, r.text, file=sys.stderr)
            return 1
        use_key(srv, "srv-key")
        # As the SDK: connected to the SRV target, Host header still the endpoint's.
        hosts = {e["host"] for e in vault_ep.requests_log() if e["path"].startswith("/v1/")}
        if hosts != {"vault.test"}:
            print("Host headers seen by Vault:", hosts, file=sys.stderr)
            return 1
        print("srv queries:", dns.srv_queries)
        return 0 if dns.srv_queries > 0 else 1
    finally:
        if srv is not None:
            srv.stop()
        vault_ep.stop()


if __name__ == "__main__":
    sys.exit(main())

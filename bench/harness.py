#!/usr/bin/env python3
"""The benchmark harness behind bench/run.sh (issue #6).

Runs, on loopback, the kes-cpp server pinned to one CPU and the load
generator pinned to the other, over TLS 1.3 with a client certificate and
keep-alive, next to the ceiling: nginx answering a fixed JSON body of the
same size over the same setup. Prints a table and writes
bench/results/<date>.json. Figures are reported, never asserted: nothing
here fails because the machine is slow. Ratios to the ceiling measured in
the same run (rounds interleave nginx and kes-cpp) are the figures to
compare across machines.
"""

import argparse
import base64
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

# HTTP/1.1 ratios to the ceiling in docs/performance.md before HTTP/2 (full
# run of 2026-11-29 00:35); issue 11 allows at most 3 % less.
H1_RATIO_BEFORE_H2 = {"generate": 0.82, "decrypt": 0.82}
CONTEXT = base64.b64encode(b'{"photos":"photos/2024/holiday/IMG_0001.jpg"}').decode()
KEY = "bench-key"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """utime + stime of all threads of a process and of its direct children
    (nginx's workers), from /proc."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def process_figures(pid):
    """RSS, open file descriptors and threads of a process."""
    threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                threads = int(line.split()[1])
    return {"rss_kib": rss_kib(pid), "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": threads}


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def wait_port(port, proc, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


class Certs:
    """Throw-away certificates made with the openssl CLI."""

    def __init__(self, d):
        self.dir = d

        def p(name):
            return os.path.join(d, name)

        def ec_cert(name, subj, extra):
            run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-keyout", p(name + ".key"),
                 "-out", p(name + ".crt"), "-days", "2", "-subj", subj] + extra)

        ec_cert("server", "/CN=localhost", ["-addext", "subjectAltName=IP:127.0.0.1"])
        # `openssl req -x509` marks certificates CA:TRUE by default, and KES
        # ignores CA certificates when it computes a client identity.
        leaf = ["-addext", "basicConstraints=critical,CA:FALSE",
                "-addext", "extendedKeyUsage=clientAuth"]
        ec_cert("client", "/CN=bench-client", leaf)
        ec_cert("admin", "/CN=bench-admin", leaf)
        with open(p("client.pem"), "w") as out:  # what ab -E wants: chain + key
            for f in ("client.crt", "client.key"):
                out.write(open(p(f)).read())
        self.server_crt, self.server_key = p("server.crt"), p("server.key")
        self.client_crt, self.client_key, self.client_pem = (
            p("client.crt"), p("client.key"), p("client.pem"))
        self.admin_crt, self.admin_key = p("admin.crt"), p("admin.key")
        self.client_id = self.identity(self.client_crt)
        self.admin_id = self.identity(self.admin_crt)
        # An API key: kes:v1: + base64(0x00 || Ed25519 seed); the seed is the
        # tail of the PKCS#8 DER encoding.
        der = subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.api_key = "kes:v1:" + base64.b64encode(b"\x00" + der[-32:]).decode()
        pem = subprocess.run(["openssl", "pkey", "-inform", "DER", "-pubout", "-outform", "DER"],
                             input=der, check=True, capture_output=True).stdout
        self.api_key_id = subprocess.run(["sha256sum"], input=pem, check=True,
                                         capture_output=True).stdout.split()[0].decode()

    @staticmethod
    def identity(crt):
        spki = subprocess.run(
            f"openssl x509 -in {crt} -pubkey -noout | openssl pkey -pubin -outform DER",
            shell=True, check=True, capture_output=True).stdout
        return subprocess.run(["sha256sum"], input=spki, check=True,
                              capture_output=True).stdout.split()[0].decode()


class Server:
    """A server process pinned to CPUs, killed on close."""

    def __init__(self, name, cmd, port, cpus, cwd, env=None):
        self.name, self.port = name, port
        self.log = open(os.path.join(cwd, name + ".log"), "w")
        self.started_ns = time.time_ns()
        self.proc = subprocess.Popen(["taskset", "-c", cpus] + cmd, cwd=cwd, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)
        self.ok = wait_port(port, self.proc)

    @property
    def pid(self):
        return self.proc.pid

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Bench:
    def __init__(self, args):
        self.args = args
        self.loadgen = os.path.join(args.build_dir, "bench", "kes-loadgen")
        self.goclient_bin = os.path.join(args.build_dir, "bench", "kes-goclient")
        self.kes_bin = os.path.join(args.build_dir, "kes")
        self.micro_bin = os.path.join(args.build_dir, "bench", "kes_micro_bench")
        ncpu = os.cpu_count() or 1
        self.server_cpu, self.client_cpu = ("0", "1") if ncpu >= 2 else ("0", "0")
        # tmpfs when there is one: the memory row writes (and cleanup
        # removes) 100,000 key files, which is slow on a disk with discard.
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.tmp = tempfile.mkdtemp(prefix="kes-bench-", dir=shm)
        self.certs = Certs(self.tmp)
        self.servers = []
        self.rows = []
        self.notes = []
        self.quick = args.quick
        self.dur = 2.0 if self.quick else 4.0
        self.warm = 0.5 if self.quick else 1.0

    # -- processes -------------------------------------------------------

    def start_nginx(self, body, workers=1, cpus=None, name="nginx"):
        """One nginx process by default; with workers > 1 a master and that
        many workers (the scaling reference)."""
        port, h2_port = free_port(), free_port()
        tpl = open(os.path.join(self.args.source_dir, "bench", "nginx.conf.in")).read()
        conf = (tpl.replace("@DIR@", self.tmp).replace("@PORT@", str(port))
                .replace("@H2PORT@", str(h2_port))
                .replace("@BODY@", body)
                .replace("@MASTER@", "on" if workers > 1 else "off")
                .replace("@WORKERS@", str(workers))
                .replace("@USER@", "user root;" if os.geteuid() == 0 else ""))
        path = os.path.join(self.tmp, f"{name}.conf")
        open(path, "w").write(conf)
        s = Server(name, ["nginx", "-p", self.tmp, "-c", path, "-e",
                          os.path.join(self.tmp, "nginx-error.log")],
                   port, cpus or self.server_cpu, self.tmp)
        s.h2_port = h2_port
        self.servers.append(s)
        if not s.ok:
            raise RuntimeError("nginx did not start: see " + s.log.name)
        return s

    def kes_config(self, port, keystore=None, name="kes"):
        """`keystore`: the YAML of the keystore section (default: fs)."""
        keys = os.path.join(self.tmp, "keys")
        os.makedirs(keys, exist_ok=True)
        keystore = keystore or f"""  fs:
    path: {keys}
"""
        conf = f"""version: v1
address: 127.0.0.1:{port}
admin:
  identity: {self.certs.admin_id}
tls:
  key: {self.certs.server_key}
  cert: {self.certs.server_crt}
policy:
  bench:
    allow:
    - /v1/key/generate/bench-*
    - /v1/key/decrypt/bench-*
    - /v1/key/encrypt/bench-*
    - /v1/key/hmac/bench-*
    - /v1/key/describe/*
    - /v1/metrics
    identities:
    - {self.certs.client_id}
    - {self.certs.api_key_id}
cache:
  expiry:
    any: 1h
    unused: 1h
log:
  error: "off"
  audit: "off"
keystore:
{keystore}"""
        path = os.path.join(self.tmp, f"{name}.yml")
        open(path, "w").write(conf)
        return path

    def kes_command(self, port, keystore=None, name="kes"):
        return ([self.kes_bin, "server", "--config", self.kes_config(port, keystore, name)],
                dict(os.environ))

    def start_kes(self, cpus=None, name="kes", keystore=None):
        """kes-cpp runs one I/O thread per CPU of its affinity mask, so the
        CPU list given to taskset also sets its thread count."""
        port = free_port()
        cmd, env = self.kes_command(port, keystore, name)
        s = Server(name, cmd, port, cpus or self.server_cpu, self.tmp, env)
        self.servers.append(s)
        if not s.ok:
            s.close()
            self.servers.remove(s)
            raise RuntimeError("kes did not start: " + open(s.log.name).read()[-400:])
        return s

    def stop(self, s):
        s.close()
        if s in self.servers:
            self.servers.remove(s)

    def cleanup(self):
        for s in list(self.servers):
            s.close()
        if not self.args.keep_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- clients ---------------------------------------------------------

    def curl(self, port, method, path, body=None, admin=False):
        crt, key = ((self.certs.admin_crt, self.certs.admin_key) if admin
                    else (self.certs.client_crt, self.certs.client_key))
        cmd = ["curl", "-sk", "--cert", crt, "--key", key, "-X", method, "-w", "\n%{http_code}",
               f"https://127.0.0.1:{port}{path}"]
        if body is not None:
            cmd += ["-H", "Content-Type: application/json", "--data-binary", body]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout
        text, _, code = out.rpartition("\n")
        return int(code or 0), text

    def loadgen_json(self, port, extra, cpus=None):
        cmd = ["taskset", "-c", cpus or self.client_cpu, self.loadgen, "--port", str(port),
               "--tls13", "--json"] + extra
        if "--api-key" not in extra:
            cmd += ["--cert", self.certs.client_crt, "--key", self.certs.client_key]
        p = subprocess.run(cmd, capture_output=True, text=True)
        line = p.stdout.strip().splitlines()
        if not line:
            raise RuntimeError("kes-loadgen failed: " + p.stderr.strip())
        return json.loads(line[-1])

    def measure(self, row, server, extra, cpus=None, port=None, **fields):
        """Runs kes-loadgen against `server` (on `port`, default its HTTP/1.1
        one) and records server CPU time."""
        c0 = cpu_seconds(server.pid)
        r = self.loadgen_json(port or server.port, extra, cpus)
        c1 = cpu_seconds(server.pid)
        total = r["duration_s"] + self.warm if "--requests" not in extra else r["duration_s"]
        # Server CPU is sampled over warm-up + window; scale to the window.
        scpu = (c1 - c0) * r["duration_s"] / total if total > 0 else 0
        rec = {"row": row, "server": server.name, "tool": "kes-loadgen",
               "rps": r["rps"], "requests": r["requests"], "errors": r["errors"],
               "non_2xx": r["non_2xx"], "latency_us": r["latency_us"],
               "server_cpu_s": round(scpu, 3),
               "server_cpu_util": round(scpu / r["duration_s"], 3) if r["duration_s"] else 0,
               "client_cpu_util": round(r["client_cpu_s"] / (total or 1), 3),
               "req_per_server_cpu_s": round(r["requests"] / scpu) if scpu > 0 else None,
               "server_cpu_us_per_request":
                   round(scpu * 1e6 / r["requests"], 2) if r["requests"] else None,
               "connections": r["connections"], "mode": r["mode"],
               "streams_per_connection": r.get("streams_per_connection", 1),
               "offered_rate": r["offered_rate"], "status": r["status"]}
        if "first_error" in r:
            rec["first_error"] = r["first_error"]
        rec.update(fields)
        self.rows.append(rec)
        return rec

    def goclient(self, row, server, op, concurrency, h2, **fields):
        """One kes-goclient run: the KES Go SDK's transport with `concurrency`
        requests in flight, HTTP/2 allowed or off. The client itself reads
        the server's CPU time over its measured window."""
        cmd = ["taskset", "-c", self.client_cpu, self.goclient_bin, "-json",
               "-url", f"https://127.0.0.1:{server.port}/v1/key/{op}/{KEY}",
               "-body", self.bodies[op], "-c", str(concurrency), f"-h2={str(h2).lower()}",
               "-w", f"{self.warm}s", "-d", f"{self.dur}s", "-server-pid", str(server.pid),
               "-cert", self.certs.client_crt, "-key", self.certs.client_key]
        p = subprocess.run(cmd, capture_output=True, text=True)
        lines = p.stdout.strip().splitlines()
        if not lines:
            raise RuntimeError("kes-goclient failed: " + p.stderr.strip()[-300:])
        r = json.loads(lines[-1])
        scpu = r.get("server_cpu_s") or 0
        rec = {"row": row, "server": server.name, "tool": "kes-goclient",
               "rps": r["rps"], "requests": r["requests"], "errors": r["errors"],
               "non_2xx": r["non_2xx"], "latency_us": r["latency_us"],
               "server_cpu_s": round(scpu, 3),
               "server_cpu_util": round(scpu / r["duration_s"], 3) if r["duration_s"] else 0,
               "client_cpu_util": round(r["client_cpu_s"] / r["duration_s"], 3),
               "req_per_server_cpu_s": round(r["requests"] / scpu) if scpu > 0 else None,
               "server_cpu_us_per_request": round(r["server_cpu_us_per_request"], 2)
               if r.get("server_cpu_us_per_request") else None,
               "connections": concurrency, "mode": "h2" if h2 else "http/1.1",
               "proto": r["proto"], "status": r["status"],
               "new_tls_connections": r["new_tls_connections_in_window"],
               "new_tls_connections_total": r["new_tls_connections_total"],
               "tcp_connects": r["tcp_connects_in_window"]}
        if "first_error" in r:
            rec["first_error"] = r["first_error"]
        rec.update(fields)
        self.rows.append(rec)
        return rec

    def ab(self, row, server, path, body, n):
        bodyfile = os.path.join(self.tmp, "ab-body.json")
        open(bodyfile, "w").write(body)
        # -s: a server that does not answer ab's HTTP/1.0 keep-alive request
        # with "Connection: keep-alive" leaves ab waiting for a close.
        cmd = ["taskset", "-c", self.client_cpu, "ab", "-k", "-c", "16", "-n", str(n), "-q", "-s", "5",
               "-f", "TLS1.3", "-E", self.certs.client_pem, "-p", bodyfile, "-T",
               "application/json", f"https://127.0.0.1:{server.port}{path}"]
        c0 = cpu_seconds(server.pid)
        p = subprocess.run(cmd, capture_output=True, text=True)
        c1 = cpu_seconds(server.pid)

        def grab(pattern, cast=float):
            m = re.search(pattern, p.stdout)
            return cast(m.group(1)) if m else None

        rec = {"row": row, "server": server.name, "tool": "ab -k -c 16",
               "rps": grab(r"Requests per second:\s+([\d.]+)"),
               "requests": grab(r"Complete requests:\s+(\d+)", int),
               "errors": grab(r"Failed requests:\s+(\d+)", int),
               "non_2xx": grab(r"Non-2xx responses:\s+(\d+)", int) or 0,
               "server_cpu_s": round(c1 - c0, 3), "connections": 16, "mode": "keep-alive"}
        if rec["requests"] and c1 > c0:
            rec["req_per_server_cpu_s"] = round(rec["requests"] / (c1 - c0))
        if rec["rps"] is None:
            rec["error"] = (p.stderr or p.stdout).strip()[-300:]
        self.rows.append(rec)
        return rec

    # -- the benchmark ---------------------------------------------------

    def prepare_kes(self, kes):
        """Creates the key and the request bodies of every row."""
        code, text = self.curl(kes.port, "POST", f"/v1/key/create/{KEY}", admin=True)
        if code != 200 and "already exists" not in text:  # exists from an earlier start
            raise RuntimeError(f"create key: {code} {text}")
        code, text = self.curl(kes.port, "POST", f"/v1/key/generate/{KEY}",
                               json.dumps({"context": CONTEXT}))
        if code != 200:
            raise RuntimeError(f"generate: {code} {text}")
        gen = json.loads(text)
        self.generate_response_size = len(text)
        plaintext = base64.b64encode(b"\x42" * 32).decode()
        self.bodies = {
            "generate": json.dumps({"context": CONTEXT}),
            "decrypt": json.dumps({"ciphertext": gen["ciphertext"], "context": CONTEXT}),
            "encrypt": json.dumps({"plaintext": plaintext, "context": CONTEXT}),
            "hmac": json.dumps({"message": plaintext}),
        }
        for op, body in self.bodies.items():
            code, text = self.curl(kes.port, "POST", f"/v1/key/{op}/{KEY}", body)
            if code != 200:
                raise RuntimeError(f"{op}: {code} {text}")

    def backend_gets(self, kes):
        """Sum of every kes-cpp metric that counts keystore (backend) reads."""
        code, text = self.curl(kes.port, "GET", "/v1/metrics")
        if code != 200:
            return None
        total, found = 0.0, False
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            m = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+([0-9.eE+-]+)$", line)
            if m and "backend" in m.group(1) and "get" in m.group(1):
                total += float(m.group(3))
                found = True
        return total if found else None

    def throughput_rounds(self, nginx, kes):
        rounds = 1 if self.quick else self.args.rounds
        common = ["-c", "16", "-w", str(self.warm), "-d", str(self.dur), "-m", "POST"]
        for r in range(rounds):
            log(f"round {r + 1}/{rounds}: ceiling and key operations, 16 keep-alive connections")
            self.measure("ceiling", nginx, common + ["-p", f"/v1/key/generate/{KEY}", "-b",
                                                     self.bodies["generate"]], round=r)
            for op in ("generate", "decrypt", "encrypt", "hmac") if kes else ():
                gets0 = self.backend_gets(kes) if op == "generate" else None
                rec = self.measure(op, kes, common + ["-p", f"/v1/key/{op}/{KEY}", "-b",
                                                      self.bodies[op]], round=r)
                if op == "generate":
                    gets1 = self.backend_gets(kes)
                    if gets0 is not None and gets1 is not None and rec["requests"]:
                        rec["backend_gets_per_request"] = (gets1 - gets0) / rec["requests"]
            self.h2_round(nginx, kes, r)

    def h2_round(self, nginx, kes, r):
        """The HTTP/2 rows of one round, next to the HTTP/1.1 ones: kes-loadgen
        with 16 streams on one connection against the nginx HTTP/2 ceiling
        and kes-cpp, then the Go SDK-shaped client at 16 and 64 concurrent
        requests with HTTP/2 allowed and with it off."""
        log(f"round {r + 1}: HTTP/2 (kes-loadgen, 16 streams) and the Go SDK-shaped client")
        h2 = ["--h2", "-c", "1", "--streams", "16", "-w", str(self.warm), "-d", str(self.dur),
              "-m", "POST"]
        self.measure("h2:ceiling", nginx, h2 + ["-p", f"/v1/key/generate/{KEY}", "-b",
                                                self.bodies["generate"]],
                     port=nginx.h2_port, round=r)
        if kes is None:
            return
        for op in ("generate", "decrypt"):
            self.measure("h2:" + op, kes, h2 + ["-p", f"/v1/key/{op}/{KEY}", "-b",
                                                self.bodies[op]], round=r)
        if not os.path.exists(self.goclient_bin):
            if r == 0:
                self.notes.append("Go client rows skipped: kes-goclient did not build")
            return
        for op in ("generate", "decrypt"):
            for conc in (16, 64):
                for http2 in (True, False):
                    self.goclient(f"go:{op}:c{conc}:{'h2' if http2 else 'h1'}", kes, op, conc,
                                  http2, round=r)

    def ab_rows(self, nginx, kes):
        n = 20000 if self.quick else 100000
        log(f"ab -k -c 16 -n {n}: ceiling and key operations")
        self.ab("ab:ceiling", nginx, f"/v1/key/generate/{KEY}", self.bodies["generate"], n)
        if kes is None:
            return
        for op in ("generate", "decrypt", "encrypt", "hmac"):
            self.ab("ab:" + op, kes, f"/v1/key/{op}/{KEY}", self.bodies[op], n)

    def latency_rows(self, nginx, kes):
        log("latency at half of the maximum rate (open loop, 16 connections)")
        for srv, op in ((nginx, "generate"), (kes, "generate"), (kes, "decrypt")):
            if srv is None:
                continue
            row = "ceiling" if srv is nginx else op
            best = max((x["rps"] for x in self.rows
                        if x["row"] == row and x["tool"] == "kes-loadgen"
                        and x["mode"] == "keep-alive" and x["offered_rate"] == 0), default=0)
            if best <= 0:
                continue
            rate = round(best / 2)
            self.measure("latency@half:" + row, srv,
                         ["-c", "16", "-w", str(self.warm), "-d", str(self.dur), "-m", "POST",
                          "-p", f"/v1/key/{op}/{KEY}", "-b", self.bodies[op], "-r", str(rate)])

    def connection_rows(self, nginx, kes):
        log("many connections (256) and new-connection (full handshake) rates")
        for srv in (nginx, kes):
            if srv is None:
                continue
            row = "ceiling" if srv is nginx else "generate"
            self.measure("c256:" + row, srv,
                         ["-c", "256", "-w", str(self.warm), "-d", str(self.dur), "-m", "POST",
                          "-p", f"/v1/key/generate/{KEY}", "-b", self.bodies["generate"]])
            for resume in (False, True):
                extra = ["-c", "8", "-w", str(self.warm), "-d", str(self.dur), "-m", "POST",
                         "-p", f"/v1/key/generate/{KEY}", "-b", self.bodies["generate"],
                         "--new-connection"] + (["--resume"] if resume else [])
                name = ("handshake-resumed:" if resume else "handshake-full:") + row
                self.measure(name, srv, extra)
        if kes is not None:
            log("API-key client (Ed25519 certificate made from kes:v1:...)")
            self.measure("apikey:generate", kes,
                         ["-c", "16", "-w", str(self.warm), "-d", str(self.dur), "-m", "POST",
                          "-p", f"/v1/key/generate/{KEY}", "-b", self.bodies["generate"],
                          "--api-key", self.certs.api_key])

    def scaling_rows(self):
        """Requests per server CPU-second with 1 and with 2 server threads."""
        log("scaling: 1 vs 2 server threads (taskset -c 0 / 0-1), requests per server CPU-second")
        out = {}
        for threads, cpus in ((1, self.server_cpu), (2, "0-1")):
            kes = self.start_kes(cpus=cpus, name=f"kes-{threads}t")
            try:
                self.prepare_kes(kes)
                rec = self.measure(f"scaling:{threads}-thread", kes,
                                   ["-c", "32", "-w", str(self.warm), "-d", str(self.dur),
                                    "-m", "POST", "-p", f"/v1/key/generate/{KEY}", "-b",
                                    self.bodies["generate"]],
                                   cpus="0-1" if threads == 2 else None,
                                   server_threads=threads)
                out[threads] = rec.get("req_per_server_cpu_s")
            finally:
                self.stop(kes)
        return out

    def scaling_ceiling_rows(self):
        """The same with nginx, 1 worker vs 2: what adding a core gives the
        ceiling itself on this machine, where the second server CPU is also
        the load generator's."""
        log("scaling reference: nginx with 1 vs 2 workers")
        out = {}
        body = '{"ciphertext":"' + "A" * 140 + '"}'
        for workers, cpus in ((1, self.server_cpu), (2, "0-1")):
            ng = self.start_nginx(body, workers=workers, cpus=cpus, name=f"nginx-{workers}w")
            try:
                rec = self.measure(f"scaling:nginx-{workers}-worker", ng,
                                   ["-c", "32", "-w", str(self.warm), "-d", str(self.dur),
                                    "-m", "POST", "-p", f"/v1/key/generate/{KEY}", "-b",
                                    self.bodies["generate"]],
                                   cpus="0-1" if workers == 2 else None, server_threads=workers)
                out[workers] = rec.get("req_per_server_cpu_s")
            finally:
                self.stop(ng)
        return out

    def memory_rows(self, kes):
        """`kes` is a fresh server that has served only the set-up requests."""
        time.sleep(0.5)
        res = {"idle_rss_kib": rss_kib(kes.pid)}
        n = self.args.rss_requests or (100000 if self.quick else 1000000)
        log(f"RSS after {n} generate requests")
        self.measure("rss-run:generate", kes,
                     ["-c", "16", "-w", "0", "-d", "600", "--requests", str(n), "-m", "POST",
                      "-p", f"/v1/key/generate/{KEY}", "-b", self.bodies["generate"]])
        res["requests"] = n
        res["rss_after_kib"] = rss_kib(kes.pid)
        return res

    def cached_keys_rows(self, kes):
        """Copies one stored key under many names, touches each once through
        the cache, and divides the RSS growth by the number of keys."""
        n = self.args.keys or (20000 if self.quick else 100000)
        log(f"memory per cached key: {n} keys")
        keys = os.path.join(self.tmp, "keys")
        src = open(os.path.join(keys, KEY), "rb").read()
        for i in range(n):
            with open(os.path.join(keys, f"bench-k{i}"), "wb") as f:
                f.write(src)
        # Warm up the code path and the allocator with a first pass over a
        # few keys, then measure a pass over all of them.
        self.loadgen_json(kes.port, ["-c", "16", "-w", "0", "-d", "60", "--requests", "1000",
                                     "-p", "/v1/key/describe/bench-k{n}", "--names", "1000"])
        before = rss_kib(kes.pid)
        r = self.loadgen_json(kes.port, ["-c", "16", "-w", "0", "-d", "120", "--requests",
                                         str(n), "-p", "/v1/key/describe/bench-k{n}",
                                         "--names", str(n)])
        after = rss_kib(kes.pid)
        return {"keys": n, "rss_before_kib": before, "rss_after_kib": after,
                "bytes_per_key": round((after - before) * 1024 / n),
                "describe_requests": r["requests"], "non_2xx": r["non_2xx"]}

    def cold_start(self):
        log("cold start to first served request (generate with a key load)")
        trials = 3 if self.quick else 5
        results = []
        for _ in range(trials):
            port = free_port()
            cmd, env = self.kes_command(port)
            poll = subprocess.Popen(
                ["taskset", "-c", self.client_cpu, self.loadgen, "--port", str(port),
                 "--cert", self.certs.client_crt, "--key", self.certs.client_key, "-m", "POST",
                 "-p", f"/v1/key/generate/{KEY}", "-b", self.bodies["generate"],
                 "--first-response", "10"], stdout=subprocess.PIPE, text=True)
            time.sleep(0.05)  # the poller is running
            logf = open(os.path.join(self.tmp, "kes-cold.log"), "w")
            t0 = time.time_ns()
            proc = subprocess.Popen(["taskset", "-c", self.server_cpu] + cmd, env=env,
                                    stdout=logf, stderr=subprocess.STDOUT, cwd=self.tmp)
            out, _ = poll.communicate(timeout=15)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            logf.close()
            if out.strip():
                results.append((json.loads(out)["first_response_unix_ns"] - t0) / 1e6)
        return {"trials_ms": [round(x, 2) for x in results],
                "median_ms": round(statistics.median(results), 2) if results else None}

    def other_rows(self, nginx, kes, summary):
        """Everything after the throughput rounds; stops `nginx` and `kes`."""
        self.ab_rows(nginx, kes)
        self.latency_rows(nginx, kes)
        self.connection_rows(nginx, kes)
        self.stop(nginx)
        if kes is not None:
            self.stop(kes)
            # The keystore holds one key here; the memory row adds many.
            summary["cold_start"] = self.cold_start()
            kes = self.start_kes(name="kes-mem")
            self.prepare_kes(kes)
            summary["memory"] = self.memory_rows(kes)
            summary["cached_keys"] = self.cached_keys_rows(kes)
            self.stop(kes)
            try:
                summary["scaling"] = self.scaling_rows()
                summary["scaling_ceiling"] = self.scaling_ceiling_rows()
            except Exception as e:
                self.notes.append(f"scaling rows skipped: {e}")
            summary["cold_start_many_keys"] = self.cold_start()
            summary["cold_start_many_keys"]["stored_keys"] = summary["cached_keys"]["keys"] + 1
        summary["micro_ns"] = self.micro()

    def soak(self):
        """Soak (issue 10): --soak-requests mixed requests on one fresh server
        while two log-stream subscribers stay connected; RSS, open fds and
        threads of the server before and after. Figures, never asserted.

        Client shape: five kes-loadgen processes at once, closed loop, TLS 1.3
        keep-alive, each with an equal share of the requests -- generate,
        decrypt and hmac on one key (4 connections each, the bench client),
        and key churn: create and delete over the same 1,000 names (2
        connections each, the admin), racing, so some creates meet an
        existing key and some deletes a missing one (counted as non-2xx).
        The subscribers are curl processes on /v1/log/audit and /v1/log/error
        (admin) reading to the end of the run."""
        n = self.args.soak_requests
        kes = self.start_kes(name="kes-soak")
        try:
            self.prepare_kes(kes)
            subscribers = []
            for stream in ("audit", "error"):
                out = open(os.path.join(self.tmp, f"log-{stream}.out"), "wb")
                subscribers.append((stream, out, subprocess.Popen(
                    ["taskset", "-c", self.client_cpu, "curl", "-sNk", "--cert",
                     self.certs.admin_crt, "--key", self.certs.admin_key,
                     f"https://127.0.0.1:{kes.port}/v1/log/{stream}"], stdout=out)))
            time.sleep(0.5)  # both streams are open
            before = process_figures(kes.pid)
            share = max(1, n // 5)
            names = 1000
            mix = [("generate", "POST", f"/v1/key/generate/{KEY}", self.bodies["generate"], 4, False),
                   ("decrypt", "POST", f"/v1/key/decrypt/{KEY}", self.bodies["decrypt"], 4, False),
                   ("hmac", "POST", f"/v1/key/hmac/{KEY}", self.bodies["hmac"], 4, False),
                   ("create", "POST", "/v1/key/create/bench-churn-{n}", "", 2, True),
                   ("delete", "DELETE", "/v1/key/delete/bench-churn-{n}", "", 2, True)]
            log(f"soak: {share * len(mix)} mixed requests, log subscribers on audit and error")
            procs = []
            t0 = time.time()
            for op, method, path, body, conns, admin in mix:
                crt, key = ((self.certs.admin_crt, self.certs.admin_key) if admin
                            else (self.certs.client_crt, self.certs.client_key))
                cmd = ["taskset", "-c", self.client_cpu, self.loadgen, "--port", str(kes.port),
                       "--tls13", "--json", "--cert", crt, "--key", key, "-c", str(conns),
                       "-w", "0", "-d", "3600", "--requests", str(share), "-m", method, "-p", path]
                if body:
                    cmd += ["-b", body]
                if "{n}" in path:
                    cmd += ["--names", str(names)]
                procs.append((op, subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                                   stderr=subprocess.PIPE, text=True)))
            ops = {}
            for op, proc in procs:
                out, err = proc.communicate()
                lines = out.strip().splitlines()
                if not lines:
                    raise RuntimeError(f"soak {op}: kes-loadgen failed: {err.strip()}")
                r = json.loads(lines[-1])
                ops[op] = {"requests": r["requests"], "rps": r["rps"], "errors": r["errors"],
                           "non_2xx": r["non_2xx"], "p99_us": r["latency_us"].get("p99")}
            wall = time.time() - t0
            time.sleep(0.5)
            after = process_figures(kes.pid)
            streamed = {}
            for stream, out, proc in subscribers:
                proc.terminate()
                proc.wait()
                out.close()
                streamed[stream + "_log_bytes"] = os.path.getsize(out.name)
            time.sleep(0.5)
            closed = process_figures(kes.pid)
        finally:
            self.stop(kes)
        total = sum(o["requests"] for o in ops.values())
        return {"requests": total, "wall_s": round(wall, 1), "rps": round(total / wall),
                "ops": ops, "before": before, "after": after,
                "after_subscribers_closed": closed, **streamed}

    def micro(self):
        log("micro-benchmarks (Google Benchmark)")
        if not os.path.exists(self.micro_bin):
            return None
        min_time = "0.05" if self.quick else "0.2"
        p = subprocess.run(["taskset", "-c", self.client_cpu, self.micro_bin,
                            "--benchmark_format=json", f"--benchmark_min_time={min_time}"],
                           capture_output=True, text=True)
        try:
            data = json.loads(p.stdout)
        except json.JSONDecodeError:
            return {"error": p.stderr[-300:]}
        return {b["name"] + (" " + b["label"] if b.get("label") else ""):
                round(b["cpu_time"], 1) for b in data["benchmarks"]}


class EtcdBench:
    """The etcd rows (issue 13): cold-cache get latency against etcd next
    to etcd's own answer to the same read, for a 1- and a 3-member cluster;
    throughput through HAProxy (TCP passthrough) with 1 and with 3 kes-cpp
    nodes over the 3-member cluster. Members come from tests/integration's
    etcd_cluster (Debian's etcd-server, plain HTTP on loopback)."""

    def __init__(self, bench):
        self.b = bench
        sys.path.insert(0, os.path.join(bench.args.source_dir, "tests", "integration"))
        global etcd_cluster
        import etcd_cluster  # noqa: E402 (needs the path above)
        self.keys = 100 if bench.quick else 300

    def keystore(self, cluster):
        eps = ", ".join(cluster.endpoints)
        return f"  etcd:\n    endpoints: [{eps}]\n    prefix: bench/\n"

    def tls_connection(self, port, admin=False):
        import http.client
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        c = self.b.certs
        ctx.load_cert_chain(*((c.admin_crt, c.admin_key) if admin else (c.client_crt, c.client_key)))
        return http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=20)

    @staticmethod
    def timed(conn, method, path, body, headers):
        """One request on a keep-alive connection: (status, microseconds)."""
        t0 = time.perf_counter_ns()
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status, (time.perf_counter_ns() - t0) / 1e3

    @staticmethod
    def summary(row, samples, **fields):
        samples = sorted(samples)
        q = lambda p: round(samples[min(len(samples) - 1, int(p * len(samples)))], 1)  # noqa: E731
        return {"row": row, "requests": len(samples), "p50_us": q(0.5), "p90_us": q(0.9),
                "p99_us": q(0.99), "mean_us": round(statistics.fmean(samples), 1), **fields}

    def latency_rows(self, members):
        """Creates the keys through one node, then reads each once through a
        fresh node (a cold cache: one etcd range per request), again (warm),
        and straight from etcd."""
        b = self.b
        cluster = etcd_cluster.EtcdCluster(os.path.join(b.tmp, f"etcd{members}"), members).start()
        rows = []
        try:
            names = [f"{KEY}-{i}" for i in range(self.keys)]
            maker = b.start_kes(name=f"kes-etcd{members}-maker", keystore=self.keystore(cluster))
            conn = self.tls_connection(maker.port, admin=True)
            for n in names:
                status, _ = self.timed(conn, "POST", f"/v1/key/create/{n}", None, {})
                if status != 200:
                    raise RuntimeError(f"create {n}: {status}")
            conn.close()
            b.stop(maker)
            kes = b.start_kes(name=f"kes-etcd{members}", keystore=self.keystore(cluster))
            conn = self.tls_connection(kes.port)
            body, hdr = b.bodies["generate"], {"Content-Type": "application/json"}
            for warm in (False, True):
                samples, gets0 = [], b.backend_gets(kes)
                for n in names:
                    status, us = self.timed(conn, "POST", f"/v1/key/generate/{n}", body, hdr)
                    if status != 200:
                        raise RuntimeError(f"generate {n}: {status}")
                    samples.append(us)
                gets = b.backend_gets(kes) - gets0
                rows.append(self.summary("etcd:generate-" + ("warm" if warm else "cold"), samples,
                                         etcd_members=members, backend_gets=gets))
            conn.close()
            b.stop(kes)
            import http.client
            host, port = cluster.endpoints[0].rsplit("//", 1)[1].split(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=20)
            samples = []
            for n in names:
                key = base64.b64encode(f"bench/{n}".encode()).decode()
                status, us = self.timed(conn, "POST", "/v3/kv/range", json.dumps({"key": key}),
                                        {"Content-Type": "application/json"})
                if status != 200:
                    raise RuntimeError(f"etcd range {n}: {status}")
                samples.append(us)
            conn.close()
            rows.append(self.summary("etcd:range-direct", samples, etcd_members=members))
        finally:
            cluster.stop()
        return rows

    def haproxy_rows(self):
        """kes-loadgen (16 keep-alive connections, warm cache) through
        HAProxy in TCP mode to 1 and to 3 kes-cpp nodes, and straight to one
        node. Every server process shares the one server CPU."""
        b = self.b
        cluster = etcd_cluster.EtcdCluster(os.path.join(b.tmp, "etcd-ha"), 3).start()
        nodes, rows = [], []
        try:
            for i in range(3):
                nodes.append(b.start_kes(name=f"kes-ha{i}", keystore=self.keystore(cluster)))
            b.prepare_kes(nodes[0])
            extra = ["-c", "16", "-w", str(b.warm), "-d", str(b.dur), "-m", "POST",
                     "-p", f"/v1/key/generate/{KEY}", "-b", b.bodies["generate"]]
            rec = b.measure("etcd:direct-1-node", nodes[0], extra, etcd_members=3, kes_nodes=1)
            rows.append(rec)
            for count in (1, 3):
                backends = [f"127.0.0.1:{n.port}" for n in nodes[:count]]
                workdir = os.path.join(b.tmp, f"haproxy{count}")
                os.makedirs(workdir)
                proxy = etcd_cluster.Haproxy(workdir, backends)
                try:
                    subprocess.run(["taskset", "-pc", b.server_cpu, str(proxy.proc.pid)],
                                   capture_output=True)
                    rec = b.measure(f"etcd:haproxy-{count}-nodes", nodes[0], extra,
                                    port=proxy.port, etcd_members=3, kes_nodes=count)
                    rows.append(rec)
                finally:
                    proxy.stop()
        finally:
            for n in nodes:
                b.stop(n)
            cluster.stop()
        return rows

    def run(self):
        rows = []
        for members in (1, 3):
            log(f"etcd: cold-cache generate vs etcd range, {members}-member cluster, "
                f"{self.keys} keys, one sequential keep-alive client")
            rows += self.latency_rows(members)
        log("etcd: throughput through HAProxy, 1 vs 3 kes-cpp nodes")
        rows += self.haproxy_rows()
        return rows


def etcd_main(args, b, started):
    try:
        b.bodies = {"generate": json.dumps({"context": CONTEXT})}
        rows = EtcdBench(b).run()
    finally:
        b.cleanup()
    print(f"{'row':26} {'etcd':>4} {'requests':>8} {'p50us':>8} {'p90us':>8} {'p99us':>8} "
          f"{'req/s':>8} {'gets':>5}")
    for r in rows:
        lat = r.get("latency_us") or {}
        print(f"{r['row']:26} {r.get('etcd_members', ''):>4} {r['requests']:>8} "
              f"{r.get('p50_us', lat.get('p50', '')):>8} {r.get('p90_us', lat.get('p90', '')):>8} "
              f"{r.get('p99_us', lat.get('p99', '')):>8} {round(r.get('rps', 0)) or '':>8} "
              f"{r.get('backend_gets', ''):>5}")
    b.notes.append("etcd rows: members on loopback, plain HTTP; latency rows from one Python "
                   "client, one keep-alive connection (TLS 1.3 with a client certificate to "
                   "kes-cpp, plain HTTP to etcd), one request in flight")
    write_result(args, b, started, "etcd", {"rows": rows})


def median_of(rows, row, key, **match):
    vals = [r[key] for r in rows if r["row"] == row and r.get(key) is not None
            and all(r.get(k) == v for k, v in match.items())]
    return statistics.median(vals) if vals else None


def per_round_ratio(rows, row, ref_row, key):
    """Median over rounds of rows[row][key] / rows[ref_row][key], each pair
    measured in the same round."""
    vals = []
    for r in rows:
        if r["row"] != row or r.get(key) is None:
            continue
        ref = [c for c in rows if c["row"] == ref_row and c.get("round") == r.get("round")
               and c.get(key)]
        if ref:
            vals.append(r[key] / ref[0][key])
    return round(statistics.median(vals), 3) if vals else None


def ratio_rows(rows):
    """Per round: kes-cpp figure / ceiling figure of the same round; median."""
    out = {}
    for op in ("generate", "decrypt", "encrypt", "hmac"):
        rps, eff = [], []
        for r in rows:
            if r["row"] != op or r["tool"] != "kes-loadgen":
                continue
            ceil = [c for c in rows if c["row"] == "ceiling" and c.get("round") == r.get("round")]
            if not ceil:
                continue
            rps.append(r["rps"] / ceil[0]["rps"])
            if r.get("req_per_server_cpu_s") and ceil[0].get("req_per_server_cpu_s"):
                eff.append(r["req_per_server_cpu_s"] / ceil[0]["req_per_server_cpu_s"])
        if rps:
            out[op] = {"rps_ratio": round(statistics.median(rps), 3),
                       "cpu_efficiency_ratio": round(statistics.median(eff), 3) if eff else None}
    for op in ("generate", "decrypt"):
        v = per_round_ratio(rows, "h2:" + op, "h2:ceiling", "rps")
        if v is not None:
            out.setdefault(op, {})["h2_rps_ratio"] = v
    for op in ("generate", "decrypt", "encrypt", "hmac"):
        a = [r for r in rows if r["row"] == "ab:" + op and r.get("rps")]
        c = [r for r in rows if r["row"] == "ab:ceiling" and r.get("rps")]
        if a and c:
            out.setdefault(op, {})["ab_rps_ratio"] = round(a[0]["rps"] / c[0]["rps"], 3)
    return out


def print_columns(rows, columns):
    """A fixed-width table: `columns` are (header, width, value of a row,
    format spec or None for text); a missing value prints as '-'."""
    hdr = " ".join(f"{h:{w}}" if spec is None else f"{h:>{w}}" for h, w, _, spec in columns)
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        cells = []
        for _, w, get, spec in columns:
            v = get(r)
            if v is None:
                cells.append("-".rjust(w))
            elif spec is None:
                cells.append(f"{str(v)[:w]:{w}}")
            else:
                cells.append(format(v, f"{w}{spec}"))
        print(" ".join(cells))


def latency(r, q):
    return r.get("latency_us", {}).get(q)


def print_table(rows):
    print_columns(rows, [
        ("row", 28, lambda r: r["row"], None),
        ("server", 8, lambda r: r["server"], None),
        ("tool", 12, lambda r: r["tool"], None),
        ("conns", 5, lambda r: r.get("connections"), "d"),
        ("req/s", 9, lambda r: r.get("rps"), ".0f"),
        ("p50us", 8, lambda r: latency(r, "p50"), ".1f"),
        ("p99us", 8, lambda r: latency(r, "p99"), ".1f"),
        ("p999us", 8, lambda r: latency(r, "p999"), ".1f"),
        ("srvCPU", 6, lambda r: r.get("server_cpu_util"), ".2f"),
        ("cliCPU", 6, lambda r: r.get("client_cpu_util"), ".2f"),
        ("req/CPUs", 9, lambda r: r.get("req_per_server_cpu_s"), ".0f"),
        ("err", 4, lambda r: (r.get("errors") or 0) + (r.get("non_2xx") or 0), "d"),
    ])


def print_connection_table(rows):
    """What the connection handling costs: server CPU per request and the
    connections dialled and TLS handshakes completed inside the window."""
    picked = [r for r in rows if r["tool"] == "kes-goclient" or r["row"].startswith("h2:")
              or (r["row"] in ("ceiling", "generate", "decrypt") and r["tool"] == "kes-loadgen")]
    if not picked:
        return
    print()
    print_columns(picked, [
        ("row", 22, lambda r: r["row"], None),
        ("round", 5, lambda r: r.get("round"), "d"),
        ("proto", 8, lambda r: r.get("proto", r.get("mode")), None),
        ("req/s", 9, lambda r: r.get("rps"), ".0f"),
        ("srv us/req", 10, lambda r: r.get("server_cpu_us_per_request"), ".2f"),
        ("dials", 6, lambda r: r.get("tcp_connects"), "d"),
        ("newTLS", 6, lambda r: r.get("new_tls_connections"), "d"),
        ("p50us", 8, lambda r: latency(r, "p50"), ".1f"),
        ("p99us", 9, lambda r: latency(r, "p99"), ".1f"),
    ])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keys", type=int, default=0,
                    help="cached keys for the memory-per-key row (default 1e5, quick 2e4)")
    ap.add_argument("--rss-requests", type=int, default=0,
                    help="requests before the second RSS reading (default 1e6, quick 1e5)")
    ap.add_argument("--soak", action="store_true",
                    help="run only the soak row: mixed requests with key churn and log "
                         "subscribers, RSS and fds before/after")
    ap.add_argument("--soak-requests", type=int, default=1000000,
                    help="requests of the soak row (default 1e6)")
    ap.add_argument("--etcd", action="store_true",
                    help="run only the etcd rows: cold-cache get latency vs etcd direct "
                         "(1- and 3-member cluster), 1 vs 3 kes-cpp nodes behind HAProxy")
    ap.add_argument("--keep-tmp", action="store_true")
    ap.add_argument("--rounds-only", action="store_true",
                    help="only the throughput rounds (HTTP/1.1, HTTP/2 and Go client rows)")
    ap.add_argument("--out", help="results file (default bench/results/<date>.json)")
    args = ap.parse_args()

    started = datetime.datetime.now(datetime.timezone.utc)
    b = Bench(args)
    if args.soak:
        return soak_main(args, b, started)
    if args.etcd:
        return etcd_main(args, b, started)
    summary = {}
    kes = None
    try:
        if os.path.exists(b.kes_bin):
            try:
                kes = b.start_kes()
                b.prepare_kes(kes)
            except Exception as e:  # report what failed, still measure the ceiling
                b.notes.append(f"kes-cpp rows skipped: {e}")
                log(b.notes[-1])
                if kes is not None:
                    b.stop(kes)
                kes = None
        else:
            b.notes.append("kes-cpp rows skipped: the kes binary did not build")
        if kes is None:
            b.generate_response_size = 180
            b.bodies = {"generate": json.dumps({"context": CONTEXT})}
        size = b.generate_response_size
        fixed = '{"plaintext":"' + "A" * 43 + '=","ciphertext":"'
        fixed += "A" * max(0, size - len(fixed) - 2) + '"}'
        nginx = b.start_nginx(fixed)
        summary["ceiling_body_bytes"] = len(fixed)

        b.throughput_rounds(nginx, kes)
        if args.rounds_only:
            b.notes.append("--rounds-only: throughput rounds only (no ab, latency, connection, "
                           "memory, cold start, scaling or micro-benchmark rows)")
        else:
            b.other_rows(nginx, kes, summary)
    finally:
        b.cleanup()

    summary["ratios_to_ceiling"] = ratio_rows(b.rows)
    summary["targets"] = targets(b.rows, summary)
    print_table(b.rows)
    print_connection_table(b.rows)
    print()
    print("ratios to the nginx ceiling (median over rounds):")
    for op, v in summary["ratios_to_ceiling"].items():
        print(f"  {op:9} " + "  ".join(f"{k} {v[k]}" for k in v))
    print("targets:")
    for name, t in summary["targets"].items():
        met = {True: "MET", False: "NOT MET", None: "n/a"}[t["met"]]
        print(f"  {name:52} {str(t['value']):>14}  target {t['target']:>10}  {met}")
    for n in b.notes:
        print("note:", n)

    write_result(args, b, started, "quick" if args.quick else "full",
                 {"summary": summary, "rows": b.rows})


def write_result(args, b, started, mode, fields):
    """bench/results/<UTC date>[-soak].json (or --out): machine, commit, figures."""
    commit = subprocess.run(["git", "-C", args.source_dir, "rev-parse", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    result = {
        "date": started.isoformat(timespec="seconds"),
        "mode": mode,
        "commit": commit,
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "cpu": cpu_model(), "server_cpu": b.server_cpu, "client_cpu": b.client_cpu},
        "setup": "TLS 1.3, ECDSA P-256 certificates, client certificate, keep-alive, loopback; "
                 "server pinned to server_cpu, load generator to client_cpu",
        **fields,
        "notes": b.notes,
    }
    suffix = "-" + mode if mode in ("soak", "etcd") else ""
    out = args.out or os.path.join(args.source_dir, "bench", "results",
                                   started.strftime("%Y-%m-%dT%H-%M-%SZ") + suffix + ".json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print("results:", out)


def soak_main(args, b, started):
    try:
        soak = b.soak()
    finally:
        b.cleanup()
    print(f"soak: {soak['requests']} requests in {soak['wall_s']} s ({soak['rps']} req/s), "
          f"log stream bytes: audit {soak.get('audit_log_bytes')}, error {soak.get('error_log_bytes')}")
    print(f"{'op':9} {'requests':>9} {'req/s':>8} {'p99us':>9} {'non2xx':>7} {'errors':>6}")
    for op, o in soak["ops"].items():
        print(f"{op:9} {o['requests']:>9} {o['rps']:>8.0f} {o['p99_us'] or 0:>9.1f} "
              f"{o['non_2xx']:>7} {o['errors']:>6}")
    print(f"{'server':26} {'RSS KiB':>9} {'fds':>5} {'threads':>7}")
    for k in ("before", "after", "after_subscribers_closed"):
        f = soak[k]
        print(f"{k:26} {f['rss_kib']:>9} {f['fds']:>5} {f['threads']:>7}")
    write_result(args, b, started, "soak", {"summary": {"soak": soak}})


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def targets(rows, s):
    """The goals of issue #6, reported (never asserted)."""
    r = s.get("ratios_to_ceiling", {})
    t = {}

    def add(name, value, target, met):
        t[name] = {"value": value, "target": target, "met": met if value is not None else None}

    for op in ("generate", "decrypt"):
        v = r.get(op, {}).get("rps_ratio")
        add(f"{op} throughput vs nginx ceiling", v, ">= 0.85", v is not None and v >= 0.85)
    lat = [x for x in rows if x["row"] in ("latency@half:generate", "latency@half:decrypt")]
    p99 = max((x["latency_us"]["p99"] for x in lat), default=None)
    add("p99 at half of max rate (us)", p99, "< 1000", p99 is not None and p99 < 1000)
    sc = s.get("scaling") or {}
    v = round(sc[2] / sc[1], 3) if sc.get(1) and sc.get(2) else None
    add("req per CPU-s, 2 threads / 1 thread", v, ">= 0.9", v is not None and v >= 0.9)
    sc = s.get("scaling_ceiling") or {}
    v = round(sc[2] / sc[1], 3) if sc.get(1) and sc.get(2) else None
    add("  reference: nginx 2 workers / 1 worker", v, "-", None)
    m = s.get("memory") or {}
    v = round(m["idle_rss_kib"] / 1024, 1) if m.get("idle_rss_kib") else None
    add("RSS idle (MB)", v, "< 20", v is not None and v < 20)
    v = round(m["rss_after_kib"] / 1024, 1) if m.get("rss_after_kib") else None
    add(f"RSS after {m.get('requests', 0)} requests (MB)", v, "< 40", v is not None and v < 40)
    k = s.get("cached_keys") or {}
    v = k.get("bytes_per_key")
    add(f"bytes per cached key ({k.get('keys', 0)} keys)", v, "< 300", v is not None and v < 300)
    c = (s.get("cold_start") or {}).get("median_ms")
    add("cold start to first served request (ms)", c, "< 50", c is not None and c < 50)
    many = s.get("cold_start_many_keys") or {}
    c = many.get("median_ms")
    add(f"cold start, {many.get('stored_keys', 0)} keys in the keystore (ms)", c, "< 50",
        c is not None and c < 50)
    g = [x.get("backend_gets_per_request") for x in rows if x["row"] == "generate"]
    g = [x for x in g if x is not None]
    v = max(g) if g else None
    add("backend gets per request, warm cache", v, "0", v == 0)

    # Issue 11 §3: HTTP/2 for Go SDK clients.
    for conc in (16, 64):
        go = [x for x in rows if x["tool"] == "kes-goclient" and x["mode"] == "h2"
              and x["connections"] == conc and x["server"].startswith("kes")]
        # Connections dialled inside the window; the ones Go dials for its
        # first concurrent requests are before it.
        v = max((x["tcp_connects"] for x in go), default=None)
        add(f"Go SDK client, HTTP/2, {conc} concurrent: new conns", v, "0", v == 0)
        for op in ("generate", "decrypt"):
            v = per_round_ratio(rows, f"go:{op}:c{conc}:h2", op, "server_cpu_us_per_request")
            add(f"  {op}, {conc}: server CPU/req / HTTP/1.1 keep-alive row", v, "<= 1.15",
                v is not None and v <= 1.15)
    v = r.get("generate", {}).get("h2_rps_ratio")
    add("HTTP/2 generate (16 streams) / nginx HTTP/2", v, ">= 0.85", v is not None and v >= 0.85)
    for op in ("generate", "decrypt"):
        v = r.get(op, {}).get("rps_ratio")
        floor = round(H1_RATIO_BEFORE_H2[op] * 0.97, 3)
        add(f"HTTP/1.1 {op} / ceiling, >= 0.97 x {H1_RATIO_BEFORE_H2[op]}", v, f">= {floor}",
            v is not None and v >= floor)
    return t


if __name__ == "__main__":
    main()

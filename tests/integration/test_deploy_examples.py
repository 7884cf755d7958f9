"""The deployment examples in deploy/ work as written: the Kubernetes
manifest's config serves its probes, and HAProxy's TCP front end passes TLS
through so kes-cpp still sees each client's certificate."""
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import requests
import yaml

from kes_harness import KesServer, free_port, stop_process

SOURCE = Path(os.environ.get("KES_SOURCE_DIR", Path(__file__).resolve().parents[2]))
DEPLOY = SOURCE / "deploy"


def test_readme_links_every_example():
    readme = (SOURCE / "README.md").read_text()
    for rel in ["deploy/systemd/kes.service", "deploy/kubernetes/kes.yaml",
                "deploy/haproxy/haproxy.cfg", "deploy/grafana/kes-dashboard.json",
                "docs/upgrading.md"]:
        assert (SOURCE / rel).exists(), rel
        assert "(%s)" % rel in readme, rel


def test_kubernetes_probes_and_config(tmp_path, certs, server_cert, cert_factory):
    docs = {d["kind"]: d for d in yaml.safe_load_all((DEPLOY / "kubernetes/kes.yaml").read_text())}
    assert set(docs) >= {"ConfigMap", "Deployment", "Service"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v1/status"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    config = docs["ConfigMap"]["data"]["config.yml"]
    cfg = yaml.safe_load(config)
    for path in (cfg["tls"]["key"], cfg["tls"]["cert"], cfg["keystore"]["fs"]["path"]):
        assert any(path.startswith(m + "/") for m in mounts), path

    # The ConfigMap's config, with its mounts moved into tmp_path, serves the
    # probes without a client certificate and metrics to the Prometheus identity.
    prom = cert_factory.client("k8s-prometheus")
    for m in sorted(mounts, key=len, reverse=True):
        config = config.replace(m + "/", "%s%s/" % (tmp_path, m))
    (tmp_path / "etc/kes/tls").mkdir(parents=True)
    (tmp_path / "var/lib/kes").mkdir(parents=True)
    shutil.copy(server_cert.key, tmp_path / "etc/kes/tls/private.key")
    shutil.copy(server_cert.cert, tmp_path / "etc/kes/tls/public.crt")
    os.environ["KES_PROMETHEUS_IDENTITY"] = prom.identity
    try:
        srv = KesServer(tmp_path / "srv", config, server_cert, dict(certs, prometheus=prom)).start()
    finally:
        del os.environ["KES_PROMETHEUS_IDENTITY"]
    try:
        for path in ("/v1/ready", "/v1/status"):
            r = srv.get(path, client=None)
            assert r.status_code == 200, (path, r.text)
        assert srv.get("/v1/metrics", client="prometheus").status_code == 200
        assert srv.get("/v1/metrics", client=None).status_code == 400
    finally:
        srv.stop()


def test_haproxy_passes_tls_through(kes_server, tmp_path):
    example = DEPLOY / "haproxy/haproxy.cfg"
    r = subprocess.run(["haproxy", "-c", "-f", str(example)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    srv = kes_server(api={"/v1/ready": {"skip_auth": True}})
    front = free_port()
    cfg = example.read_text()
    cfg = cfg.replace("bind :7373", "bind 127.0.0.1:%d" % front)
    cfg = re.sub(r"^    server kes2 .*\n", "", cfg, flags=re.M)
    cfg = re.sub(r"server kes1 \S+", "server kes1 127.0.0.1:%d" % srv.port, cfg)
    cfg = cfg.replace("inter 5s", "inter 200ms")
    (tmp_path / "haproxy.cfg").write_text(cfg)
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(tmp_path / "haproxy.cfg")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        session = srv.session("admin")
        deadline = time.monotonic() + 60
        last = None
        while time.monotonic() < deadline:
            try:
                # The admin's identity reaches kes through the proxy: only the
                # admin may list identities.
                last = session.get("https://127.0.0.1:%d/v1/identity/list/*" % front, timeout=10)
                if last.status_code == 200:
                    break
            except requests.RequestException as e:  # health check not passed yet
                last = e
            time.sleep(0.2)
        assert getattr(last, "status_code", None) == 200, last
        r = srv.session("client").get("https://127.0.0.1:%d/v1/identity/list/*" % front, timeout=10)
        assert r.status_code == 403  # a policy client stays itself, too
    finally:
        stop_process(proc)

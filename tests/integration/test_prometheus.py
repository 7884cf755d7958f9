"""/v1/metrics with the real Prometheus tools from Debian's `prometheus`
package: `promtool check metrics` on the live exposition, a Prometheus server
on loopback scraping kes-cpp over TLS with a client certificate, the series
read back through Prometheus' HTTP query API, and every query of the Grafana
dashboard in deploy/grafana/ evaluated there.
"""
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from kes_harness import KesServer, base_config, free_port, spec_dir, stop_process

SOURCE = Path(os.environ.get("KES_SOURCE_DIR", Path(__file__).resolve().parents[2]))
DASHBOARD = SOURCE / "deploy/grafana/kes-dashboard.json"
DEADLINE = 90  # seconds for Prometheus to start and scrape; a scrape is every second


def upstream_families():
    """name -> type of upstream's metric families (api.md §3.4.4)."""
    text = (spec_dir() / "api.md").read_text()
    section = text[text.index("#### 3.4.4"):text.index("### 3.5")]
    return dict(re.findall(r"^\| `(kes_[a-z_]+)` \| (counter|gauge|histogram) \|", section, re.M))


@pytest.fixture(scope="module")
def server(tmp_path_factory, certs, server_cert, cert_factory):
    """A server with traffic of every kind: 2xx, 4xx, 5xx, cached keys."""
    prom = cert_factory.client("prometheus")
    workdir = tmp_path_factory.mktemp("promsrv")
    policy = {"metrics": {"allow": ["/v1/metrics"], "identities": [prom.identity]}}
    # Keys stay cached for the whole test (the default evicts unused ones after 30 s).
    cfg = base_config(certs, server_cert, workdir / "keys", policy,
                      cache={"expiry": {"any": "10m", "unused": "10m"}})
    srv = KesServer(workdir, cfg, server_cert,
                    dict(certs, prometheus=prom))
    srv.start()
    srv.prometheus_identity = prom
    try:
        assert srv.post("/v1/key/create/metrics-key").status_code == 200
        for _ in range(20):
            r = srv.post("/v1/key/generate/metrics-key", json={})
            assert r.status_code == 200
        assert srv.get("/v1/key/describe/missing-key").status_code == 404
        # A keystore that vanished answers uncached keys with 5xx (a failure).
        moved = workdir / "keys.away"
        (workdir / "keys").rename(moved)
        try:
            assert srv.get("/v1/key/describe/other-key").status_code >= 500
        finally:
            moved.rename(workdir / "keys")
        yield srv
    finally:
        srv.stop()


def exposition(srv):
    r = srv.get("/v1/metrics", client="prometheus")
    assert r.status_code == 200, r.text
    return r.text


def test_promtool_accepts_the_exposition(server, tmp_path):
    text = exposition(server)
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=60)
    # Exit 1 is a parse error; 3 means lint problems, listed one per line.
    assert r.returncode in (0, 3), r.stdout + r.stderr
    problems = set(l for l in (r.stdout + r.stderr).splitlines() if l.strip())
    # Upstream's counters lack _total; their names must stay as upstream has
    # them (dashboards, the SDK). Nothing else may be reported.
    allowed = {'%s counter metrics should have "_total" suffix' % name
               for name, kind in upstream_families().items() if kind == "counter"}
    assert problems <= allowed, sorted(problems - allowed)
    families = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    for name, kind in upstream_families().items():
        assert families.get(name) == kind, name  # every upstream family, unrenamed
    own = {n: k for n, k in families.items() if n.startswith("kes_cpp_")}
    assert own == {"kes_cpp_keystore_backend_gets_total": "counter",
                   "kes_cpp_keystore_cache_keys": "gauge", "kes_cpp_keystore_offline": "gauge"}


@pytest.fixture(scope="module")
def prometheus(server, server_cert, tmp_path_factory):
    """Debian's Prometheus on loopback, scraping the server every second with
    the `prometheus` client certificate (policy: /v1/metrics only)."""
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus package is missing (scripts/setup.sh installs it)"
    d = tmp_path_factory.mktemp("prometheus")
    ident = server.prometheus_identity
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{
            "job_name": "kes",
            "scheme": "https",
            "metrics_path": "/v1/metrics",
            "tls_config": {"ca_file": server_cert.ca, "cert_file": ident.cert, "key_file": ident.key},
            "static_configs": [{"targets": ["127.0.0.1:%d" % server.port]}],
        }],
    }
    (d / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(d / "prometheus.log", "w")
    proc = subprocess.Popen([binary, "--config.file=%s" % (d / "prometheus.yml"),
                             "--storage.tsdb.path=%s" % (d / "data"),
                             "--web.listen-address=127.0.0.1:%d" % port], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=d)
    api = "http://127.0.0.1:%d/api/v1/" % port
    session = requests.Session()
    session.trust_env = False  # loopback only, never a proxy
    try:
        yield api, session, d / "prometheus.log"
    finally:
        stop_process(proc)
        log.close()


def query_until(prometheus, expr, accept, deadline):
    """Polls an instant query until accept(result) or the deadline."""
    api, session, log = prometheus
    last = None
    while time.monotonic() < deadline:
        try:
            r = session.get(api + "query", params={"query": expr}, timeout=10)
            last = r.json()
            if last.get("status") == "success" and accept(last["data"]["result"]):
                return last["data"]["result"]
        except requests.ConnectionError as e:  # still starting
            last = str(e)
        time.sleep(0.5)
    raise AssertionError("%s: %s\n%s" % (expr, last, Path(log).read_text()[-3000:]))


def value(result):
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_kes_with_a_client_certificate(prometheus):
    deadline = time.monotonic() + DEADLINE
    up = query_until(prometheus, 'up{job="kes"}', lambda r: value(r) == 1, deadline)
    assert up[0]["metric"]["instance"].startswith("127.0.0.1:")
    ok = query_until(prometheus, 'kes_http_request_success{job="kes",code="200"}',
                     lambda r: value(r) is not None and value(r) >= 21, deadline)
    assert value(ok) >= 21  # create + 20 generate
    query_until(prometheus, 'kes_http_request_error{job="kes",code="404"}',
                lambda r: value(r) is not None and value(r) >= 1, deadline)
    query_until(prometheus, 'sum(kes_http_request_failure{job="kes"})',
                lambda r: value(r) is not None and value(r) >= 1, deadline)
    # The latency histogram: every request in some bucket, quantiles computable.
    query_until(prometheus, 'kes_http_response_time_bucket{job="kes",le="+Inf"}',
                lambda r: value(r) is not None and value(r) >= 23, deadline)
    median = query_until(prometheus,
                         'histogram_quantile(0.5, sum by (le) (kes_http_response_time_bucket{job="kes"}))',
                         lambda r: value(r) is not None, deadline)
    assert 0 < value(median) <= 10
    # kes-cpp's keystore and cache families.
    query_until(prometheus, 'kes_cpp_keystore_cache_keys{job="kes"}',
                lambda r: value(r) is not None and value(r) >= 1, deadline)
    query_until(prometheus, 'kes_cpp_keystore_backend_gets_total{job="kes"}',
                lambda r: value(r) is not None and value(r) >= 1, deadline)
    query_until(prometheus, 'kes_cpp_keystore_offline{job="kes"}',
                lambda r: value(r) in (0, 1), deadline)


def dashboard_queries():
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])] + \
        [v["query"]["query"] for v in dash["templating"]["list"]]


def test_dashboard_metrics_exist_in_the_exposition(server):
    text = exposition(server)
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    samples = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.M))
    used = set()
    for expr in dashboard_queries():
        used |= set(re.findall(r"\b(kes_[a-z0-9_]+)", expr))
    assert used, "the dashboard queries no kes metric"
    missing = sorted(m for m in used if m not in families and m not in samples)
    assert not missing, missing
    # The dashboard builds on upstream's names where upstream has one.
    assert set(upstream_families()) - {"kes_http_response_time"} <= used
    assert "kes_http_response_time_bucket" in used


def test_dashboard_queries_return_data_from_prometheus(prometheus):
    deadline = time.monotonic() + DEADLINE
    for expr in dashboard_queries():
        if expr.startswith("label_values("):
            metric = re.match(r"label_values\((\w+), (\w+)\)", expr)
            query_until(prometheus, '%s{%s="kes"}' % metric.groups(), bool, deadline)
            continue
        # Grafana's variables and macros as Grafana would fill them in.
        expr = expr.replace("$job", "kes").replace("$__rate_interval", "30s")
        query_until(prometheus, expr, bool, deadline)

"""`kes status`, `kes metric`, `kes log`, `kes ls`, `kes policy` against a
real server (cli.md §3.6-3.10)."""
import json
import re
import signal
import subprocess
import time

import pytest

from cli_helpers import err, kes, out, server_env
from kes_harness import kes_bin


@pytest.fixture
def srv(kes_server):
    return kes_server()


def test_status_human_and_short(srv):
    p = kes(["status"], server_env(srv))
    assert p.returncode == 0, err(p)
    lines = out(p).split("\n")
    assert lines[0] == "● 127.0.0.1:%d" % srv.port
    assert re.fullmatch(r"  Version  \S+", lines[1])
    assert re.fullmatch(r"  Uptime   \d+ (seconds|minutes)", lines[2])
    assert re.fullmatch(r"  Latency  \d+(ms|s|\.\d+s)", lines[3]) or lines[3] == "  Latency  0s"
    assert lines[4] == "  OS       linux"
    assert re.fullmatch(r"  CPUs     \d+ \w+", lines[5])
    assert lines[6] == "  Memory  "
    assert re.fullmatch(r"  · Heap   [\d.]+[KMG]?B", lines[7])
    p = kes(["status", "--short"], server_env(srv))
    assert out(p) == "● 127.0.0.1:%d\n" % srv.port


def test_status_json_and_api(srv):
    p = kes(["status", "--json"], server_env(srv))
    s = json.loads(out(p))
    assert s["os"] == "linux" and s["num_cpu"] >= 1 and "version" in s
    assert "\n" not in out(p).rstrip("\n")  # compact when not a terminal
    p = kes(["status", "--api", "--json"], server_env(srv))
    routes = json.loads(out(p))
    assert {"method": "GET", "path": "/v1/status", "timeout": 15} in routes
    p = kes(["status", "--api"], server_env(srv))
    assert "  Method  API                          Timeout\n" in out(p)
    assert re.search(r"\n  GET     /v1/log/audit                Inf\n", out(p))
    p = kes(["status", "extra"], server_env(srv))
    assert p.returncode == 1
    assert err(p) == "Error: too many arguments. See 'kes status --help'\n"


def test_metric_streams_json_until_sigint(srv):
    env = server_env(srv)
    proc = subprocess.Popen([kes_bin(), "metric", "--rate", "100ms"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = proc.stdout.readline()
        second = proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=30)
    m = json.loads(first)
    json.loads(second)
    for k in ["kes_http_request_success", "kes_http_request_error", "kes_http_request_failure",
              "kes_http_request_active", "kes_log_audit_events", "kes_log_error_events",
              "kes_http_response_time", "kes_system_up_time", "kes_system_num_cpu",
              "kes_system_num_cpu_used", "kes_system_num_threads", "kes_system_mem_heap_used",
              "kes_system_mem_heap_objects", "kes_system_mem_stack_used"]:
        assert k in m, k
    assert m["kes_system_num_cpu"] >= 1
    assert rc == 0
    assert proc.stderr.read() == b""


def test_metric_rejects_bad_rate(srv):
    p = kes(["metric", "--rate", "abc"], server_env(srv))
    assert p.returncode == 1
    assert err(p).startswith('Error: invalid argument "abc" for "--rate" flag: ')


def test_audit_log_json_stream(srv):
    env = server_env(srv)
    proc = subprocess.Popen([kes_bin(), "log", "--json"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        # The subscription is live once the server answered; retry the
        # create until an event arrives (events before subscribing are lost).
        line = b""
        for i in range(100):
            assert kes(["key", "create", "audit-%d" % i], env).returncode == 0
            import select
            r, _, _ = select.select([proc.stdout], [], [], 0.3)
            if r:
                line = proc.stdout.readline()
                break
        event = json.loads(line)
        assert event["request"]["path"].startswith("/v1/key/create/audit-")
        assert event["response"]["code"] == 200
        assert event["request"]["identity"] == srv.identities["admin"].identity
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 1
    assert proc.stderr.read().decode() == "Error: context canceled\n"


def test_log_flag_errors(srv):
    p = kes(["log", "--audit", "--error"], server_env(srv))
    assert p.returncode == 1
    assert err(p) == "Error: cannot display audit and error logs at the same time\n"
    p = kes(["log", "--audit=false"], server_env(srv))
    assert p.returncode == 2


def test_ls_keys_identities_policies(srv):
    env = server_env(srv)
    assert kes(["key", "create", "b-key", "a-key"], env).returncode == 0
    assert out(kes(["ls"], env)) == "Key\na-key\nb-key\n"
    assert out(kes(["ls", "--json", "b"], env)) == '["b-key"]\n'
    assert out(kes(["ls", "-p"], env)) == "Policy\nmy-app\n"
    ids = json.loads(out(kes(["ls", "-i", "--json"], env)))
    assert srv.identities["admin"].identity in ids
    p = kes(["ls", "-i", "-p"], env)
    assert p.returncode == 1
    assert err(p) == "Error: '-p / --policy' and '-i / --identity' must not be used at the same time\n"
    p = kes(["ls", "--nope"], env)
    assert err(p) == "Error: unknown flag: --nope\n"
    # -s overrides the environment's endpoint.
    p = kes(["ls", "-s", "127.0.0.1:%d" % srv.port], dict(env, KES_SERVER="127.0.0.1:1"))
    assert p.returncode == 0, err(p)


def test_policy_commands(srv):
    env = server_env(srv)
    p = kes(["policy", "ls"], env)
    assert out(p) == "Key\nmy-app\n"  # header "Key" (sic, upstream)
    assert out(kes(["policy", "ls", "--json"], env)) == '["my-app"]\n'  # JSON only
    p = kes(["policy", "show", "my-app"], env)
    pol = json.loads(out(p))
    assert "/v1/key/create/my-app*" in pol["allow"]
    assert pol["allow"]["/v1/key/create/my-app*"] == {}
    assert "/v1/key/generate/my-app-internal*" in pol["deny"]
    p = kes(["policy", "info", "my-app", "--json"], env)
    assert json.loads(out(p))["name"] == "my-app"
    p = kes(["policy", "info", "my-app"], env)
    assert out(p).startswith("Name        my-app\n")
    p = kes(["policy", "show", "nope"], env)
    assert p.returncode == 1
    assert err(p) == "Error: failed to show policy 'nope': policy does not exist\n"
    p = kes(["policy", "info"], env)
    assert err(p) == "Error: no policy name specified. See 'kes policy show --help'\n"
    p = kes(["policy", "bogus"], env)
    assert err(p) == "Error: \"bogus\" is not a policy command. See 'kes policy --help'\n"

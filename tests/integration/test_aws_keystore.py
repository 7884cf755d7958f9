"""The AWS Secrets Manager keystore end to end: the real `kes` binary with a
`keystore: aws: secretsmanager:` config, pointed at the loopback AWS test
endpoint (tools/aws-test-endpoint), which verifies every SigV4 signature with
botocore. Each credential source of the chain, retries, outages and AWS-side
states are driven through the endpoint's admin API; awscli (Debian's v2)
inspects what KES stored.

Nothing here reaches AWS: every client has a loopback endpoint and dummy keys.
"""
import base64
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from kes_harness import LEGACY_VALUE, UPSTREAM_VALUE, KesServer, base_config, tool_module, use_key

AwsTestEndpoint = tool_module("aws-test-endpoint").AwsTestEndpoint

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
AWS_BIN = "/usr/bin/aws"



@pytest.fixture(autouse=True)
def isolated_aws_env(tmp_path, monkeypatch):
    """No AWS setting of the machine leaks in; nothing probes real IMDS."""
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k)
    # requests lets these override a session's own `verify` (the server cert).
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    (tmp_path / "aws-config").write_text("")
    (tmp_path / "aws-credentials").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def endpoint(tmp_path):
    ep = AwsTestEndpoint(tmp_path / "endpoint")
    yield ep
    ep.stop()


def aws_config(certs, server_cert, endpoint, policies=None, kmskey=None, credentials=True,
               accesskey=AKID, secretkey=SECRET):
    cfg = base_config(certs, server_cert, Path("/nonexistent"), policies or {})
    sm = {"endpoint": endpoint.url, "region": REGION}
    if kmskey:
        sm["kmskey"] = kmskey
    if credentials:
        sm["credentials"] = {"accesskey": accesskey, "secretkey": secretkey}
    cfg["keystore"] = {"aws": {"secretsmanager": sm}}
    return cfg


@pytest.fixture
def start_kes(tmp_path, certs, server_cert):
    started = []

    def start(endpoint, **kw):
        srv = KesServer(tmp_path / ("kes%d" % len(started)),
                        aws_config(certs, server_cert, endpoint, **kw), server_cert, certs)
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()


def awscli(endpoint, *args, check=True):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET,
               AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION, AWS_PAGER="",
               AWS_MAX_ATTEMPTS="1", AWS_EC2_METADATA_DISABLED="true")
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    p = subprocess.run([AWS_BIN, *args, "--endpoint-url", endpoint.url, "--output", "json"],
                       env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout) if p.stdout.strip() else {}
    return p


def sm_calls(endpoint, operation=None):
    return [r for r in endpoint.requests_log()
            if r.get("service") == "secretsmanager" and (operation is None or r.get("operation") == operation)]


def roundtrip(srv, name):
    """create + generate + decrypt through the KES API; returns the DEK."""
    r = srv.put("/v1/key/create/" + name)
    assert r.status_code == 200, r.text
    return use_key(srv, name)



def test_roundtrip_kms_key_awscli_restart_and_delete(endpoint, start_kes):
    srv = start_kes(endpoint, kmskey="alias/test-key")
    assert "AWS SecretsManager: " + endpoint.url in srv.stdout_text()
    dek = roundtrip(srv, "my-key")

    # awscli sees one secret named after the key, protected by the KMS key,
    # holding the stored key text (base64 protobuf KeyVersion).
    desc = awscli(endpoint, "secretsmanager", "describe-secret", "--secret-id", "my-key")
    assert desc["Name"] == "my-key"
    assert desc.get("KmsKeyId"), desc
    value = awscli(endpoint, "secretsmanager", "get-secret-value", "--secret-id", "my-key")
    raw = base64.b64decode(value["SecretString"], validate=True)
    assert raw[:2] == b"\x0a\x24"  # field 1 (SecretKey), 36 bytes: the upstream encoding
    create = sm_calls(endpoint, "CreateSecret")
    assert len(create) == 1 and create[0]["status"] == 200

    # A new process (cold cache) still decrypts the old ciphertext.
    srv.stop()
    srv2 = start_kes(endpoint, kmskey="alias/test-key")
    r = srv2.put("/v1/key/decrypt/my-key", json={"ciphertext": dek["ciphertext"],
                                                  "context": base64.b64encode(b"ctx").decode()})
    assert r.status_code == 200, r.text
    assert r.json()["plaintext"] == dek["plaintext"]
    assert sm_calls(endpoint, "GetSecretValue")

    # Creating it again is "key already exists" (ResourceExistsException).
    r = srv2.put("/v1/key/create/my-key")
    assert r.status_code == 400 and r.json()["message"] == "key already exists"

    # key rm deletes the secret for good (forced, no recovery window).
    r = srv2.delete("/v1/key/delete/my-key")
    assert r.status_code == 200, r.text
    p = awscli(endpoint, "secretsmanager", "describe-secret", "--secret-id", "my-key", check=False)
    assert p.returncode != 0 and "ResourceNotFoundException" in p.stderr
    deletes = sm_calls(endpoint, "DeleteSecret")
    assert len(deletes) == 1 and deletes[0]["status"] == 200
    r = srv2.get("/v1/key/describe/my-key")
    assert r.status_code == 404 and r.json()["message"] == "key does not exist"


def test_reads_values_written_by_upstream(endpoint, start_kes):
    awscli(endpoint, "secretsmanager", "create-secret", "--name", "upstream-key",
           "--secret-string", UPSTREAM_VALUE)
    awscli(endpoint, "secretsmanager", "create-secret", "--name", "legacy-key",
           "--secret-string", LEGACY_VALUE)
    srv = start_kes(endpoint)
    r = srv.get("/v1/key/describe/upstream-key")
    assert r.status_code == 200, r.text
    assert r.json()["created_at"].startswith("2024-01-01T00:00:00")
    use_key(srv, "upstream-key")
    use_key(srv, "legacy-key")


def test_list_pages_and_prefix_filter(endpoint, start_kes):
    srv = start_kes(endpoint)
    for i in range(7):
        assert srv.put("/v1/key/create/pg-%d" % i).status_code == 200
    assert srv.put("/v1/key/create/other").status_code == 200
    # The next ListSecrets answers are empty pages that still carry a token.
    endpoint.admin("POST", "/__admin/settings", {"empty_list_pages": 2})
    r = srv.get("/v1/key/list/pg-*")
    assert r.status_code == 200, r.text
    assert r.json()["names"] == ["pg-%d" % i for i in range(7)]
    lists = sm_calls(endpoint, "ListSecrets")
    assert len(lists) >= 3  # the two empty pages were followed, not taken as the end
    # Without a prefix: every secret.
    r = srv.get("/v1/key/list/*")
    assert r.json()["names"] == sorted(["other"] + ["pg-%d" % i for i in range(7)])


def test_throttling_and_server_faults_are_retried(endpoint, start_kes):
    srv = start_kes(endpoint)
    endpoint.admin("POST", "/__faults", {"kind": "throttle", "count": 2, "service": "secretsmanager",
                                        "operation": "CreateSecret"})
    r = srv.put("/v1/key/create/throttled")
    assert r.status_code == 200, r.text
    creates = sm_calls(endpoint, "CreateSecret")
    assert [c.get("fault") for c in creates][:2] == ["throttle"] * 2
    assert creates[-1]["status"] == 200 and len(creates) == 3
    # Server faults too, and the key works afterwards.
    endpoint.admin("POST", "/__faults", {"kind": "error", "count": 1, "service": "secretsmanager"})
    assert srv.get("/v1/key/describe/throttled").status_code == 200


def test_endpoint_down_cached_keys_keep_serving(endpoint, start_kes):
    srv = start_kes(endpoint)
    roundtrip(srv, "cached")
    # A key KES has never seen.
    awscli(endpoint, "secretsmanager", "create-secret", "--name", "uncached",
           "--secret-string", UPSTREAM_VALUE)
    endpoint.admin("DELETE", "/__admin/requests")
    endpoint.admin("POST", "/__faults", {"kind": "drop", "count": 1000})
    use_key(srv, "cached")
    r = srv.put("/v1/key/generate/uncached", json={})
    assert r.status_code >= 500, r.text
    assert r.status_code != 404
    assert srv.wait_for_output("AWS endpoint unreachable", stream="stderr", timeout=10) or \
        srv.wait_for_output("AWS endpoint unreachable", timeout=1)
    endpoint.admin("DELETE", "/__faults")
    # Nothing was (re-)created behind our back while the endpoint was down.
    assert not [c for c in sm_calls(endpoint, "CreateSecret") if c.get("status") == 200]
    use_key(srv, "uncached")


def test_bad_credentials_give_a_clear_error(endpoint, start_kes):
    srv = start_kes(endpoint, secretkey="wrong" + SECRET[5:])
    r = srv.put("/v1/key/create/nope")
    assert r.status_code == 502, r.text
    assert r.json()["message"] == "failed to create key"
    assert srv.wait_for_output("AWS rejected the credentials", stream="stderr", timeout=10) or \
        srv.wait_for_output("AWS rejected the credentials", timeout=1)
    # The secret key never appears in any log.
    assert SECRET[5:] not in srv.stdout_text() + srv.stderr_text()


def test_secret_scheduled_for_deletion_is_not_not_found(endpoint, start_kes):
    awscli(endpoint, "secretsmanager", "create-secret", "--name", "doomed", "--secret-string", UPSTREAM_VALUE)
    awscli(endpoint, "secretsmanager", "delete-secret", "--secret-id", "doomed",
           "--recovery-window-in-days", "7")
    srv = start_kes(endpoint)
    r = srv.get("/v1/key/describe/doomed")
    assert r.status_code == 502, r.text
    assert srv.wait_for_output("scheduled for deletion", stream="stderr", timeout=10) or \
        srv.wait_for_output("scheduled for deletion", timeout=1)
    r = srv.put("/v1/key/create/doomed")
    assert r.status_code == 502, r.text


def test_disabled_kms_key_is_named(endpoint, start_kes):
    srv = start_kes(endpoint, kmskey="alias/disabled-key")
    r = srv.put("/v1/key/create/kms-off")
    assert r.status_code == 502, r.text
    assert srv.wait_for_output("KMS key cannot be used", stream="stderr", timeout=10) or \
        srv.wait_for_output("KMS key cannot be used", timeout=1)


# ---- the credential chain (all three config values empty) ----------------------------

def keep_working_until_refreshed(srv, endpoint, prefix):
    """Creates keys (each one an AWS call) until requests were signed with a
    second, refreshed credential set; every call must succeed."""
    i = 0
    deadline = time.monotonic() + 120
    while len(access_keys_used(endpoint)) < 2:
        assert time.monotonic() < deadline, "credentials were never refreshed"
        roundtrip(srv, "%s-%d" % (prefix, i))
        i += 1
        time.sleep(0.5)
    # A cache fill also probes the key's version entries (rotation.md §4.4),
    # which are absent here: those are the only non-200 answers.
    assert not [c for c in sm_calls(endpoint) if c.get("status") != 200 and not (
        c.get("operation") == "GetSecretValue" and c.get("code") == "ResourceNotFoundException")]


def access_keys_used(endpoint):
    return {r.get("access_key_id") for r in sm_calls(endpoint)} - {None}


def test_credentials_from_environment(endpoint, start_kes, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AKID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    srv = start_kes(endpoint, credentials=False)
    roundtrip(srv, "env-key")


def test_credentials_from_shared_file_and_profile(endpoint, start_kes, monkeypatch, tmp_path):
    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = nope\n\n"
                     "[kes]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % (AKID, SECRET))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_PROFILE", "kes")
    srv = start_kes(endpoint, credentials=False)
    roundtrip(srv, "file-key")


def test_credentials_from_web_identity_with_refresh(endpoint, start_kes, monkeypatch, tmp_path):
    token = tmp_path / "token"
    token.write_text("eyJ.test.jwt\n")
    endpoint.admin("POST", "/__admin/settings", {"temp_credentials_ttl": 8})
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/kes")
    monkeypatch.setenv("AWS_ROLE_SESSION_NAME", "kes-test")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", endpoint.url)
    srv = start_kes(endpoint, credentials=False)
    roundtrip(srv, "wi-0")
    sts = [r for r in endpoint.requests_log() if r.get("service") == "sts"]
    assert sts, "no STS call"
    # Keep working across several credential lifetimes; the cache refreshes
    # before expiry, so no call fails.
    i = 1
    deadline = time.monotonic() + 120
    while len([r for r in endpoint.requests_log() if r.get("service") == "sts"]) < 3:
        assert time.monotonic() < deadline, "credentials were never refreshed"
        roundtrip(srv, "wi-%d" % i)
        i += 1
        time.sleep(0.5)
    assert len(access_keys_used(endpoint)) >= 2
    assert not [c for c in sm_calls(endpoint) if c.get("code") == "ExpiredTokenException"]


def test_credentials_from_container_endpoint(endpoint, start_kes, monkeypatch, tmp_path):
    endpoint.admin("POST", "/__admin/settings", {"ecs_auth_token": "Bearer test-token",
                                                 "temp_credentials_ttl": 8})
    (tmp_path / "ecs-token").write_text("Bearer test-token")
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url + "/v2/credentials/task")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(tmp_path / "ecs-token"))
    srv = start_kes(endpoint, credentials=False)
    roundtrip(srv, "ecs-key")
    keep_working_until_refreshed(srv, endpoint, "ecs")
    ecs = [r for r in endpoint.requests_log() if r.get("service") == "ecs"]
    assert ecs and all(r.get("authorization") == "Bearer test-token" for r in ecs)


def test_credentials_from_imdsv2(endpoint, start_kes, monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "false")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint.url)
    endpoint.admin("POST", "/__admin/settings", {"temp_credentials_ttl": 8})
    srv = start_kes(endpoint, credentials=False)
    roundtrip(srv, "imds-key")
    keep_working_until_refreshed(srv, endpoint, "imds")
    imds = [r for r in endpoint.requests_log() if r.get("service") == "imds"]
    assert any(r.get("method") == "PUT" for r in imds), imds  # IMDSv2 session token first


def test_no_credentials_anywhere(endpoint, start_kes):
    srv = start_kes(endpoint, credentials=False)
    r = srv.put("/v1/key/create/none")
    assert r.status_code == 502, r.text
    assert srv.wait_for_output("no AWS credentials", stream="stderr", timeout=10) or \
        srv.wait_for_output("no AWS credentials", timeout=1)


def test_https_endpoint_is_verified_against_the_ca_bundle(tmp_path, cert_factory, start_kes, monkeypatch):
    tls = cert_factory.server(name="aws-endpoint-tls")
    ep = AwsTestEndpoint(tmp_path / "tls-endpoint", "--https-port", "0",
                         "--tls-cert", tls.cert, "--tls-key", tls.key)
    try:
        # "localhost" (a SAN of the certificate): the harness reads the KES port
        # from the first "https://127.0.0.1:" in the banner.
        https = type("E", (), {"url": "https://localhost:%d" % ep.ports["https_port"]})()
        # Trusted through AWS_CA_BUNDLE: works.
        monkeypatch.setenv("AWS_CA_BUNDLE", tls.cert)
        srv = start_kes(https)
        roundtrip(srv, "tls-key")
        srv.stop()
        # Not trusted (system store only): the TLS handshake fails, nothing is sent.
        monkeypatch.delenv("AWS_CA_BUNDLE")
        before = len([r for r in ep.requests_log() if r.get("service") == "secretsmanager"])
        assert before > 0
        srv = start_kes(https)
        r = srv.put("/v1/key/create/untrusted")
        assert r.status_code >= 500, r.text
        after = len([r for r in ep.requests_log() if r.get("service") == "secretsmanager"])
        assert after == before
    finally:
        ep.stop()


def test_slow_backend_is_waited_for_past_the_header_timeout(endpoint, start_kes):
    """A keystore that answers after 6.5 s (longer than the 5 s header timeout,
    shorter than the 15 s route timeout) still gets its answer to the client:
    the header timeout covers reading the request, not the handler."""
    srv = start_kes(endpoint)
    awscli(endpoint, "secretsmanager", "create-secret", "--name", "slow",
           "--secret-string", UPSTREAM_VALUE)
    endpoint.admin("POST", "/__faults", {"kind": "latency", "delay_ms": 6500, "count": 1,
                                        "service": "secretsmanager",
                                        "operation": "GetSecretValue"})
    started = time.monotonic()
    r = srv.get("/v1/key/describe/slow")
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "slow"
    assert time.monotonic() - started >= 6.0  # the fault was really in the path


def test_plain_http_endpoint_on_a_non_loopback_name_works_with_one_warning(endpoint, start_kes):
    """Like upstream, an explicit http:// endpoint is accepted whatever the
    host (LocalStack in a container), with one start-up warning. The name
    kes.localhost is not loopback by the server's check (which knows
    localhost and loopback addresses only), yet curl resolves it to
    127.0.0.1: the test never leaves loopback."""
    assert endpoint.url.startswith("http://127.0.0.1:")

    class Renamed:
        url = endpoint.url.replace("127.0.0.1", "kes.localhost")

    srv = start_kes(Renamed)
    out = srv.stdout_text() + srv.stderr_text()
    assert out.count("is plain http") == 1, out
    assert "http://kes.localhost:" in out
    roundtrip(srv, "plain-http-key")
    assert sm_calls(endpoint, "CreateSecret")

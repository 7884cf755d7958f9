"""Proves tools/aws-test-endpoint faithful to AWS Secrets Manager, KMS, STS,
IMDSv2 and the ECS credentials endpoint, using real AWS clients: Debian's
awscli v2 (the spec's conformance_cli.sh), Debian's botocore (the spec's
conformance_raw.py, botocore clients, botocore's own credential providers)
and the recorded SigV4 vectors and captured requests.

Nothing here reaches the network: every client is pointed at the loopback
endpoint with dummy credentials, and the AWS config files are empty temp files.
"""
import base64
import calendar
import datetime
import email.utils
import glob
import http.client
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from unittest import mock

import pytest

SOURCE_DIR = Path(os.environ.get("KES_SOURCE_DIR", Path(__file__).resolve().parents[2]))
SPEC_DIR = Path(os.environ.get("KES_SPEC_DIR", SOURCE_DIR / "spec"))
ENDPOINT_DIR = SOURCE_DIR / "tools" / "aws-test-endpoint"
SERVER = ENDPOINT_DIR / "server.py"
DEBIAN_PYTHON = "/usr/bin/python3"
DEBIAN_AWS = "/usr/bin/aws"
AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"

botocore = pytest.importorskip("botocore")  # Debian's python3-botocore
import botocore.auth  # noqa: E402
import botocore.config  # noqa: E402
import botocore.credentials  # noqa: E402
import botocore.exceptions  # noqa: E402
import botocore.session  # noqa: E402
import botocore.utils  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402

from kes_harness import tool_module  # noqa: E402

# The endpoint's own modules import each other by plain name (its directory
# first on sys.path); the launcher by file, as every endpoint has one.
sys.path.insert(0, str(ENDPOINT_DIR))
import envelope  # noqa: E402
import sigv4_verify  # noqa: E402
from errors import AwsError  # noqa: E402

AwsTestEndpoint = tool_module("aws-test-endpoint").AwsTestEndpoint


# ---- the endpoint process ---------------------------------------------------------
def Endpoint(tmp_path, *args):
    return AwsTestEndpoint(tmp_path, *args)


@pytest.fixture(scope="module")
def aws_env(tmp_path_factory):
    """Isolates botocore from the machine: empty config files, no IMDS."""
    d = tmp_path_factory.mktemp("awsconfig")
    (d / "config").write_text("")
    (d / "credentials").write_text("")
    env = {"AWS_CONFIG_FILE": str(d / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(d / "credentials"),
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "",
           "AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET,
           "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_MAX_ATTEMPTS": "1"}
    with pytest.MonkeyPatch.context() as mp:
        for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                  "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
                  "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CA_BUNDLE"):
            mp.delenv(k, raising=False)
        for k, v in env.items():
            mp.setenv(k, v)
        yield env


@pytest.fixture(scope="module")
def ep(tmp_path_factory, aws_env):
    e = Endpoint(tmp_path_factory.mktemp("ep"), "--imds-port", "0", "--ecs-port", "0",
                 "--sts-port", "0", "--ecs-auth-token", "ecs-secret-token")
    yield e
    e.stop()


@pytest.fixture
def fresh(tmp_path, aws_env):
    """A private endpoint for tests that shift its clock or its credentials."""
    started = []

    def start(*args):
        e = Endpoint(tmp_path, *args)
        started.append(e)
        return e
    yield start
    for e in started:
        e.stop()


def client(ep_or_url, service, creds=(AKID, SECRET, None), attempts=1, **config):
    url = ep_or_url if isinstance(ep_or_url, str) else ep_or_url.url
    session = botocore.session.Session()
    return session.create_client(
        service, region_name=REGION, endpoint_url=url, aws_access_key_id=creds[0],
        aws_secret_access_key=creds[1], aws_session_token=creds[2],
        config=botocore.config.Config(retries={"mode": "standard",
                                               "total_max_attempts": attempts},
                                      **config))


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def unique(prefix):
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


def signed_request(url, target, payload, creds=(AKID, SECRET, None), extra=None,
                   when=None):
    """(headers, body) signed by botocore, as conformance_raw.py does."""
    service = "kms" if target.startswith("TrentService.") else "secretsmanager"
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    req = AWSRequest(method="POST", url=url + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target,
        **(extra or {})})
    signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials(*creds), service, REGION)
    if when is None:
        signer.add_auth(req)
    else:
        with mock.patch.object(botocore.auth.datetime, "datetime",
                               mock.Mock(wraps=datetime.datetime)) as dt:
            dt.utcnow.return_value = when
            dt.now.return_value = when
            signer.add_auth(req)
    return dict(req.headers.items()), body


def raw_post(port, headers, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, dict(resp.getheaders()), data
    finally:
        conn.close()


# ---- the spec's conformance scripts ------------------------------------------------
def test_awscli_is_debians_v2():
    out = subprocess.run([DEBIAN_AWS, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("aws-cli/2."), out.stdout


def test_conformance_suites_pass_through_the_ci_runner(aws_env, tmp_path):
    """run-conformance.sh starts its own endpoint and runs the spec's
    conformance_cli.sh (awscli v2) and conformance_raw.py (botocore)."""
    env = dict(os.environ, HOME=str(tmp_path))
    out = subprocess.run(["bash", str(ENDPOINT_DIR / "run-conformance.sh"), str(SPEC_DIR)],
                         env=env, capture_output=True, text=True, timeout=800)
    summaries = re.findall(r"^(\d+) passed, (\d+) failed$", out.stdout, re.M)
    assert out.returncode == 0, out.stdout + out.stderr
    assert [int(p) >= want and f == "0" for (p, f), want in zip(summaries, (27, 13))] == \
        [True, True], out.stdout


# ---- SigV4 verification against recorded vectors and captures -----------------------
VECTORS = SPEC_DIR / "vectors" / "sigv4"
VECTOR_TIME = calendar.timegm((2015, 8, 30, 12, 36, 0))


def parse_raw_request(raw):
    head, _, body = raw.partition(b"\n\n")
    lines = head.decode("utf-8").split("\n")
    method = lines[0].split(" ", 1)[0]
    target = lines[0][len(method) + 1:lines[0].rindex(" ")]
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # obsolete line folding
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip())
        else:
            name, _, value = line.partition(":")
            headers.append((name, value))
    return method, target, headers, body


class _Cred:
    def __init__(self, token):
        self.secret_access_key = SECRET
        self.session_token = token
        self.expiration = None


def verify_vector(method, target, headers, body):
    tokens = [v.strip() for n, v in headers if n.lower() == "x-amz-security-token"]
    cred = _Cred(tokens[0] if tokens else None)
    return sigv4_verify.verify(method, target, headers, body, VECTOR_TIME,
                               lambda k: cred if k == AKID else None, REGION, "service")


def classic_cases():
    cases = []
    for sreq in sorted(glob.glob(str(VECTORS / "aws4_testsuite" / "**" / "*.sreq"),
                                 recursive=True)):
        method, target, headers, body = parse_raw_request(Path(sreq).read_bytes())
        # The .authz file is the suite's reference answer (one .sreq carries a
        # signature that does not belong to its request).
        authz = Path(sreq[:-5] + ".authz").read_text().strip()
        headers = [(n, v) for n, v in headers if n.lower() != "authorization"]
        headers.append(("Authorization", authz))
        cases.append((Path(sreq).stem, (method, target, headers, body)))
    return cases


def c_auth_cases():
    cases = []
    for d in sorted(glob.glob(str(VECTORS / "aws-signing-test-suite" / "v4" / "*"))):
        ctx = json.loads((Path(d) / "context.json").read_text())
        if not ctx.get("normalize", True):
            continue  # S3-style unnormalised paths: not what a JSON service verifies
        raw = (Path(d) / "header-signed-request.txt").read_bytes()
        cases.append((Path(d).name, parse_raw_request(raw)))
    return cases


def test_vector_counts_are_complete():
    assert len(classic_cases()) == 34
    assert len(c_auth_cases()) == 38 - 7  # the seven normalize=false cases are skipped


@pytest.mark.parametrize("name,request_parts", classic_cases() + c_auth_cases(),
                         ids=[c[0] for c in classic_cases() + c_auth_cases()])
def test_verifier_accepts_vector_and_rejects_tampering(name, request_parts):
    method, target, headers, body = request_parts
    if name == "post-sts-header-after":
        # The token is added after signing; this endpoint deliberately refuses it.
        with pytest.raises(AwsError) as e:
            verify_vector(method, target, headers, body)
        assert e.value.code == "IncompleteSignatureException"
        return
    verify_vector(method, target, headers, body)
    with pytest.raises(AwsError) as e:
        verify_vector(method, target, headers, body + b"x")
    assert e.value.code == "InvalidSignatureException"
    tampered = [(n, v.replace("Signature=", "Signature=0", 1)[:-1] if n.lower() ==
                 "authorization" else v) for n, v in headers]
    with pytest.raises(AwsError) as e:
        verify_vector(method, target, tampered, body)
    assert e.value.code == "InvalidSignatureException"


def test_captured_awscli_and_js_sdk_requests_verify(fresh):
    captured = json.loads((VECTORS / "observed" / "observed-requests.json").read_text())
    assert len(captured["requests"]) == 14
    e = fresh()
    for r in captured["requests"]:
        amz_date = next(v for n, v in r["headers"] if n.lower() == "x-amz-date")
        signed_at = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
        e.admin("POST", "/__admin/clock", {"offset_seconds": signed_at + 30 - time.time()})
        e.admin("POST", "/__admin/credentials", {"access_key_id": AKID,
                                                 "secret_access_key": SECRET,
                                                 "session_token": r.get("session_token")})
        headers = dict(r["headers"])
        status, _, data = raw_post(e.port, headers, r["body"].encode())
        code = json.loads(data or b"{}").get("__type", "")
        assert code not in ("InvalidSignatureException", "IncompleteSignatureException",
                            "UnrecognizedClientException"), (r["command"], data)
        tampered = r["body"][:-1].encode() + b" "  # same length, last byte changed
        status, _, data = raw_post(e.port, headers, tampered)
        assert status == 400 and json.loads(data)["__type"] == "InvalidSignatureException"


# ---- wire format ---------------------------------------------------------------------
def test_success_and_error_wire_shapes(ep):
    h, b = signed_request(ep.url, "secretsmanager.ListSecrets", {"MaxResults": 1})
    status, headers, data = raw_post(ep.port, h, b)
    assert status == 200
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert uuid.UUID(headers["x-amzn-RequestId"])
    assert int(headers["Content-Length"]) == len(data)
    server_date = email.utils.parsedate_to_datetime(headers["Date"]).timestamp()
    assert abs(server_date - time.time()) < 120
    assert "SecretList" in json.loads(data)

    for payload in (b"not json", b"[1, 2]", b""):
        h, b = signed_request(ep.url, "secretsmanager.ListSecrets", payload)
        status, _, data = raw_post(ep.port, h, b)
        assert status == 400
        assert json.loads(data)["__type"].split("#")[-1] == "SerializationException"

    h, b = signed_request(ep.url, "TrentService.Decrypt",
                          {"CiphertextBlob": base64.b64encode(b"\x01garbage").decode()})
    status, _, data = raw_post(ep.port, h, b)
    assert status == 400 and json.loads(data) == {"__type": "InvalidCiphertextException"}


def test_signature_header_rules(ep):
    # host must be signed
    h, b = signed_request(ep.url, "secretsmanager.ListSecrets", {})
    h["Authorization"] = h["Authorization"].replace("content-type;host;", "content-type;")
    status, _, data = raw_post(ep.port, h, b)
    assert json.loads(data)["__type"] == "IncompleteSignatureException"
    # malformed Authorization
    h, b = signed_request(ep.url, "secretsmanager.ListSecrets", {})
    h["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/x"
    status, _, data = raw_post(ep.port, h, b)
    assert status == 400 and json.loads(data)["__type"] == "IncompleteSignatureException"
    # scope naming the other service
    h, b = signed_request(ep.url, "TrentService.ListKeys", {})
    h["X-Amz-Target"] = "secretsmanager.ListSecrets"
    status, _, data = raw_post(ep.port, h, b)
    doc = json.loads(data)
    assert doc["__type"] == "InvalidSignatureException"
    assert "correct service: 'secretsmanager'" in doc["message"]
    # a wrong x-amz-content-sha256 is refused even when the signature covers it
    h, b = signed_request(ep.url, "secretsmanager.ListSecrets", {},
                          extra={"X-Amz-Content-SHA256": "0" * 64})
    status, _, data = raw_post(ep.port, h, b)
    assert json.loads(data)["__type"] == "InvalidSignatureException"


def test_temporary_credentials_token_and_expiry(ep):
    cred = ep.admin("POST", "/__admin/credentials", {"expires_in": 3600})
    assert cred["AccessKeyId"].startswith("ASIA")
    good = (cred["AccessKeyId"], cred["SecretAccessKey"], cred["SessionToken"])
    sm = client(ep, "secretsmanager", good)
    sm.list_secrets(MaxResults=1)
    for creds in ((good[0], good[1], None), (good[0], good[1], good[2][:-4] + "AAAA")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client(ep, "secretsmanager", creds).list_secrets(MaxResults=1)
        assert error_code(e) == "UnrecognizedClientException"
    # an unsigned session token is refused (deliberately stricter than AWS)
    h, b = signed_request(ep.url, "secretsmanager.ListSecrets", {}, creds=(good[0], good[1]))
    h["X-Amz-Security-Token"] = good[2]
    status, _, data = raw_post(ep.port, h, b)
    assert json.loads(data)["__type"] == "IncompleteSignatureException"
    ep.admin("POST", "/__admin/credentials/expire", {"access_key_id": good[0]})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.list_secrets(MaxResults=1)
    assert error_code(e) == "ExpiredTokenException"
    assert "expired" in e.value.response["Error"]["Message"]


def test_clock_shift_moves_date_header_and_skew_window(fresh):
    e = fresh()
    e.admin("POST", "/__admin/clock", {"offset_seconds": 600})
    h, b = signed_request(e.url, "secretsmanager.ListSecrets", {})
    status, headers, data = raw_post(e.port, h, b)
    doc = json.loads(data)
    assert status == 400 and doc["__type"] == "InvalidSignatureException"
    assert doc["message"].startswith("Signature expired:")
    server_date = email.utils.parsedate_to_datetime(headers["Date"]).timestamp()
    assert 480 < server_date - time.time() < 720
    # a client that corrects its clock from Date is accepted
    corrected = datetime.datetime.utcfromtimestamp(server_date)
    h, b = signed_request(e.url, "secretsmanager.ListSecrets", {}, when=corrected)
    assert raw_post(e.port, h, b)[0] == 200
    e.admin("POST", "/__admin/clock", {"offset_seconds": -600})
    h, b = signed_request(e.url, "secretsmanager.ListSecrets", {})
    assert json.loads(raw_post(e.port, h, b)[2])["message"].startswith(
        "Signature not yet current:")


# ---- Secrets Manager semantics --------------------------------------------------------
def test_list_secrets_paginates_through_empty_pages(ep):
    sm = client(ep, "secretsmanager")
    prefix = unique("page")
    names = [f"{prefix}/{i}" for i in range(7)]
    for n in names:
        sm.create_secret(Name=n, SecretString="v")
    pages = list(sm.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "name", "Values": [prefix + "/"]}], PaginationConfig={"PageSize": 2}))
    assert [s["Name"] for p in pages for s in p["SecretList"]] == names
    assert [len(p["SecretList"]) for p in pages] == [2, 2, 2, 1]
    ep.admin("POST", "/__admin/settings", {"empty_list_pages": 2})
    pages = list(sm.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "name", "Values": [prefix + "/"]}], PaginationConfig={"PageSize": 3}))
    assert [len(p["SecretList"]) for p in pages] == [0, 0, 3, 3, 1]
    assert all("NextToken" in p for p in pages[:-1]) and "NextToken" not in pages[-1]
    # a token is bound to its query
    first = sm.list_secrets(Filters=[{"Key": "name", "Values": [prefix + "/"]}], MaxResults=2)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.list_secrets(Filters=[{"Key": "name", "Values": ["other/"]}], MaxResults=2,
                        NextToken=first["NextToken"])
    assert error_code(e) == "InvalidNextTokenException"
    for bad in (0, 101):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            h, b = signed_request(ep.url, "secretsmanager.ListSecrets", {"MaxResults": bad})
            status, _, data = raw_post(ep.port, h, b)
            assert status == 400 and json.loads(data)["__type"] == "ValidationException"
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": json.loads(data)["__type"]}}, "ListSecrets")
        assert error_code(e) == "ValidationException"


def test_list_secrets_filters(ep):
    sm = client(ep, "secretsmanager")
    p = unique("filt")
    sm.create_secret(Name=f"{p}/a", SecretString="v", Description="a secret",
                     Tags=[{"Key": "env", "Value": "prod"}])
    sm.create_secret(Name=f"{p}/b", SecretString="v", Description="an secret",
                     Tags=[{"Key": "team", "Value": "kes"}])
    sm.create_secret(Name=f"{p}/c", SecretString="v", Description="asecret")

    def names(*filters):
        flt = [{"Key": "name", "Values": [p + "/"]}] + list(filters)
        return sorted(s["Name"].rsplit("/", 1)[1]
                      for s in sm.list_secrets(Filters=flt)["SecretList"])
    assert names() == ["a", "b", "c"]
    assert names({"Key": "description", "Values": ["a secret"]}) == ["a", "b"]
    assert names({"Key": "tag-key", "Values": ["env", "team"]}) == ["a", "b"]
    assert names({"Key": "tag-value", "Values": ["pro"]}) == ["a"]
    assert names({"Key": "name", "Values": ["!" + p + "/a"]}) == ["b", "c"]
    assert names({"Key": "tag-key", "Values": ["!env"]}) == ["b", "c"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.list_secrets(Filters=[{"Key": "name", "Values": ["bad*value"]}])
    assert error_code(e) == "ValidationException"


def test_deletion_state_machine(ep):
    sm = client(ep, "secretsmanager")
    name = unique("del")
    arn = sm.create_secret(Name=name, SecretString="v1")["ARN"]
    out = sm.delete_secret(SecretId=name)
    assert abs(out["DeletionDate"].timestamp() - (time.time() + 30 * 86400)) < 3600
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    assert error_code(e) == "InvalidRequestException"
    for window in (6, 31):
        name2 = unique("del")
        sm.create_secret(Name=name2, SecretString="x")
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sm.delete_secret(SecretId=name2, RecoveryWindowInDays=window)
        assert error_code(e) == "InvalidParameterException"
        sm.delete_secret(SecretId=name2, ForceDeleteWithoutRecovery=True)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.get_secret_value(SecretId=arn)
    assert error_code(e) == "InvalidRequestException"
    assert "marked for deletion" in e.value.response["Error"]["Message"]
    assert sm.restore_secret(SecretId=name)["ARN"] == arn
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v1"
    assert "DeletedDate" not in sm.describe_secret(SecretId=name)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.delete_secret(SecretId=unique("never"))
    assert error_code(e) == "ResourceNotFoundException"

    # Asynchronous forced deletion, emulated by a lag: the name stays blocked.
    ep.admin("POST", "/__admin/settings", {"force_delete_lag_seconds": 3600})
    try:
        sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sm.create_secret(Name=name, SecretString="v2")
        assert error_code(e) == "InvalidRequestException"
        assert "scheduled for deletion" in e.value.response["Error"]["Message"]
    finally:
        ep.admin("POST", "/__admin/settings", {"force_delete_lag_seconds": 0})
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    arn2 = sm.create_secret(Name=name, SecretString="v2")["ARN"]
    assert arn2 != arn and arn2[:-6] == arn[:-6]


def test_recovery_window_end_purges_the_secret(fresh):
    e = fresh()
    sm = client(e, "secretsmanager")
    name = unique("purge")
    sm.create_secret(Name=name, SecretString="v")
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    later = 8 * 86400
    e.admin("POST", "/__admin/clock", {"offset_seconds": later})
    future = datetime.datetime.utcnow() + datetime.timedelta(seconds=later)
    h, b = signed_request(e.url, "secretsmanager.DescribeSecret", {"SecretId": name},
                          when=future)
    status, _, data = raw_post(e.port, h, b)
    assert status == 400 and json.loads(data)["__type"] == "ResourceNotFoundException"


def test_versions_idempotency_and_values(ep):
    sm = client(ep, "secretsmanager")
    name = unique("ver")
    token = str(uuid.uuid4())
    first = sm.create_secret(Name=name, SecretString="one", ClientRequestToken=token)
    assert first["VersionId"] == token
    assert sm.create_secret(Name=name, SecretString="one",
                            ClientRequestToken=token)["ARN"] == first["ARN"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.create_secret(Name=name, SecretString="two", ClientRequestToken=token)
    assert error_code(e) == "ResourceExistsException"
    second = sm.put_secret_value(SecretId=name, SecretBinary=b"\x00\xff two")
    assert second["VersionStages"] == ["AWSCURRENT"]
    cur = sm.get_secret_value(SecretId=name)
    assert cur["SecretBinary"] == b"\x00\xff two" and "SecretString" not in cur
    prev = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert prev["SecretString"] == "one" and prev["VersionId"] == token
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.get_secret_value(SecretId=name, VersionId=token, VersionStage="AWSCURRENT")
    assert error_code(e) == "InvalidRequestException"
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages == {token: ["AWSPREVIOUS"], second["VersionId"]: ["AWSCURRENT"]}

    empty = unique("novalue")
    out = sm.create_secret(Name=empty)
    assert "VersionId" not in out
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.get_secret_value(SecretId=empty)
    assert error_code(e) == "ResourceNotFoundException"
    assert "staging label: AWSCURRENT" in e.value.response["Error"]["Message"]


def test_names_and_size_limits(ep):
    sm = client(ep, "secretsmanager")
    long_name = "n/" + "x" * 510
    sm.create_secret(Name=long_name, SecretString="v")
    sm.delete_secret(SecretId=long_name, ForceDeleteWithoutRecovery=True)
    for bad in ("n/" + "x" * 511, "has space", "star*", "ümlaut"):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sm.create_secret(Name=bad, SecretString="v")
        assert error_code(e) == "ValidationException", bad
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.get_secret_value(SecretId="bad name")
    assert error_code(e) == "ValidationException"
    big = unique("big")
    sm.create_secret(Name=big, SecretString="é" * 32768)  # 65,536 UTF-8 bytes
    assert sm.get_secret_value(SecretId=big)["SecretString"] == "é" * 32768
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.create_secret(Name=unique("big"), SecretString="é" * 32768 + "x")
    assert error_code(e) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.create_secret(Name=unique("both"), SecretString="x", SecretBinary=b"y")
    assert error_code(e) == "InvalidParameterException"


def test_access_denied_rules(ep):
    sm = client(ep, "secretsmanager")
    name = unique("deny")
    sm.create_secret(Name=name, SecretString="v")
    ep.admin("POST", "/__admin/deny", {"action": "secretsmanager:GetSecretValue",
                                       "resource": name})
    try:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sm.get_secret_value(SecretId=name)
        assert error_code(e) == "AccessDeniedException"
        assert "not authorized to perform: secretsmanager:GetSecretValue" in \
            e.value.response["Error"]["Message"]
        sm.describe_secret(SecretId=name)
    finally:
        ep.admin("DELETE", "/__admin/deny")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"


# ---- KMS ---------------------------------------------------------------------------
def test_kms_key_forms_aliases_and_states(ep):
    kms = client(ep, "kms")
    md = kms.create_key(Description="forms")["KeyMetadata"]
    alias = "alias/" + uuid.uuid4().hex[:12]
    kms.create_alias(AliasName=alias, TargetKeyId=md["KeyId"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.create_alias(AliasName=alias, TargetKeyId=md["KeyId"])
    assert error_code(e) == "AlreadyExistsException"
    alias_arn = f"arn:aws:kms:{REGION}:123456789012:{alias}"
    for form in (md["KeyId"], md["Arn"], alias, alias_arn):
        assert kms.describe_key(KeyId=form)["KeyMetadata"]["Arn"] == md["Arn"]
        assert kms.encrypt(KeyId=form, Plaintext=b"x")["KeyId"] == md["Arn"]
    for missing in ("alias/none-" + uuid.uuid4().hex[:6], str(uuid.uuid4()), "not-a-key",
                    f"arn:aws:kms:{REGION}:123456789012:key/{uuid.uuid4()}"):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            kms.describe_key(KeyId=missing)
        assert error_code(e) == "NotFoundException"

    blob = kms.encrypt(KeyId=alias, Plaintext=b"hunter2",
                       EncryptionContext={"app": "t"})["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "t"})["Plaintext"] == \
        b"hunter2"
    other = kms.describe_key(KeyId="alias/test-key")["KeyMetadata"]["Arn"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "t"}, KeyId=other)
    assert error_code(e) == "IncorrectKeyException"
    for ctx in ({}, {"app": "T"}, {"app": "t", "x": "y"}):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)
        assert error_code(e) == "InvalidCiphertextException"
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.decrypt(CiphertextBlob=bytes(tampered), EncryptionContext={"app": "t"})
    assert error_code(e) == "InvalidCiphertextException"

    kms.disable_key(KeyId=md["KeyId"])
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyState"] == "Disabled"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "t"})
    assert error_code(e) == "DisabledException"
    kms.enable_key(KeyId=md["KeyId"])
    kms.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "t"})
    kms.schedule_key_deletion(KeyId=md["KeyId"], PendingWindowInDays=7)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.encrypt(KeyId=alias, Plaintext=b"x")
    assert error_code(e) == "KMSInvalidStateException"
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_kms_data_keys_and_limits(ep):
    kms = client(ep, "kms")
    for args, size in (({"KeySpec": "AES_128"}, 16), ({"NumberOfBytes": 1024}, 1024),
                       ({"NumberOfBytes": 1}, 1)):
        out = kms.generate_data_key(KeyId="alias/test-key", **args)
        assert len(out["Plaintext"]) == size
        assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"] == \
            out["Plaintext"]
    for args in ({}, {"KeySpec": "AES_256", "NumberOfBytes": 32}):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            kms.generate_data_key(KeyId="alias/test-key", **args)
        assert error_code(e) == "ValidationException"
    h, b = signed_request(ep.url, "TrentService.GenerateDataKey",
                          {"KeyId": "alias/test-key", "NumberOfBytes": 1025})
    status, _, data = raw_post(ep.port, h, b)
    assert status == 400 and json.loads(data)["__type"] == "ValidationException"
    assert "numberOfBytes" in json.loads(data)["message"]
    kms.encrypt(KeyId="alias/test-key", Plaintext=b"x" * 4096)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.encrypt(KeyId="alias/test-key", Plaintext=b"x" * 4097)
    assert error_code(e) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.encrypt(KeyId="alias/pending-deletion-key", Plaintext=b"x")
    assert error_code(e) == "KMSInvalidStateException"
    h, b = signed_request(ep.url, "TrentService.Encrypt",  # DryRun is newer than botocore 1.29
                          {"KeyId": "alias/test-key", "Plaintext": "eA==", "DryRun": True})
    status, _, data = raw_post(ep.port, h, b)
    assert status == 400 and json.loads(data)["__type"] == "DryRunOperationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.encrypt(KeyId="alias/test-key", Plaintext=b"x",
                    EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert error_code(e) == "InvalidKeyUsageException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.generate_data_key(KeyId="alias/disabled-key", KeySpec="AES_256")
    assert error_code(e) == "DisabledException"


def test_secrets_are_sealed_under_their_kms_key(ep):
    sm, kms = client(ep, "secretsmanager"), client(ep, "kms")
    md = kms.create_key(Description="secret key")["KeyMetadata"]
    alias = "alias/" + uuid.uuid4().hex[:12]
    kms.create_alias(AliasName=alias, TargetKeyId=md["KeyId"])
    name = unique("sealed")
    sm.create_secret(Name=name, SecretString="kv", KmsKeyId=alias)
    assert sm.describe_secret(SecretId=name)["KmsKeyId"] == alias
    plain = unique("plain")
    sm.create_secret(Name=plain, SecretString="kv")
    assert "KmsKeyId" not in sm.describe_secret(SecretId=plain)
    assert kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"][
        "KeyManager"] == "AWS"

    kms.disable_key(KeyId=md["KeyId"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.get_secret_value(SecretId=name)
    assert error_code(e) == "DecryptionFailure"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.create_secret(Name=unique("sealed"), SecretString="x", KmsKeyId=alias)
    assert error_code(e) == "EncryptionFailure"
    kms.enable_key(KeyId=md["KeyId"])
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "kv"

    ep.admin("POST", "/__admin/deny", {"action": "kms:Decrypt"})
    try:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sm.get_secret_value(SecretId=name)
        assert error_code(e) == "AccessDeniedException"
        assert e.value.response["Error"]["Message"] == "Access to KMS is not allowed"
        assert sm.get_secret_value(SecretId=plain)["SecretString"] == "kv"
    finally:
        ep.admin("DELETE", "/__admin/deny")


# ---- fault injection -------------------------------------------------------------------
def test_throttling_is_retried_by_botocore(ep):
    sm = client(ep, "secretsmanager", attempts=3)
    name = unique("retry")
    sm.create_secret(Name=name, SecretString="v")
    ep.admin("DELETE", "/__admin/requests")
    ep.admin("POST", "/__faults", {"kind": "throttle", "count": 2,
                                   "operation": "DescribeSecret"})
    sm.list_secrets(MaxResults=1)  # another operation is not affected
    assert sm.describe_secret(SecretId=name)["Name"] == name
    log = [r for r in ep.requests_log() if r.get("operation") == "DescribeSecret"]
    assert [r.get("fault") for r in log] == ["throttle", "throttle", None]
    assert [r["status"] for r in log] == [400, 400, 200]
    assert [r.get("code") for r in log] == ["ThrottlingException"] * 2 + [None]
    assert [re.search(r"attempt=(\d+)", r["amz-sdk-request"]).group(1) for r in log] == \
        ["1", "2", "3"]


def test_server_errors_with_and_without_body(ep):
    ep.admin("POST", "/__faults", {"rules": [
        {"kind": "error", "service": "kms"},
        {"kind": "unavailable", "body": False, "service": "secretsmanager"}]})
    h, b = signed_request(ep.url, "TrentService.DescribeKey", {"KeyId": "alias/test-key"})
    status, _, data = raw_post(ep.port, h, b)
    assert status == 500 and json.loads(data)["__type"] == "KMSInternalException"
    h, b = signed_request(ep.url, "secretsmanager.ListSecrets", {})
    status, headers, data = raw_post(ep.port, h, b)
    assert status == 503 and data == b""
    assert raw_post(ep.port, h, b)[0] == 200
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ep.admin("POST", "/__faults", {"kind": "error"})
        client(ep, "secretsmanager").list_secrets()
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert error_code(e) == "InternalServiceError"


def test_dropped_connection_and_latency(ep):
    ep.admin("POST", "/__faults", {"kind": "drop", "operation": "ListSecrets"})
    h, b = signed_request(ep.url, "secretsmanager.ListSecrets", {})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError,
                        BrokenPipeError)):
        raw_post(ep.port, h, b)
    assert raw_post(ep.port, h, b)[0] == 200
    ep.admin("POST", "/__faults", {"kind": "latency", "delay_ms": 3000,
                                   "operation": "ListSecrets"})
    slow = client(ep, "secretsmanager", read_timeout=0.5, connect_timeout=5)
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        slow.list_secrets()
    assert ep.admin("GET", "/__faults")["rules"] == []


def test_fault_rules_are_validated(ep):
    for bad in ({"kind": "explode"}, {"kind": "throttle", "count": 0},
                {"kind": "latency"}, {"kind": "error", "service": "s3"}):
        with pytest.raises(urllib.error.HTTPError) as e:
            ep.admin("POST", "/__faults", bad)
        assert e.value.code == 400


# ---- credential services -------------------------------------------------------------
def test_sts_assume_role_with_web_identity(ep, tmp_path):
    sts_url = f"http://127.0.0.1:{ep.ports['sts_port']}"
    sts = botocore.session.Session().create_client(
        "sts", region_name=REGION, endpoint_url=sts_url,
        config=botocore.config.Config(signature_version=botocore.UNSIGNED,
                                      retries={"total_max_attempts": 1, "mode": "standard"}))
    out = sts.assume_role_with_web_identity(
        RoleArn="arn:aws:iam::123456789012:role/kes", RoleSessionName="kes-test",
        WebIdentityToken="jwt-1", DurationSeconds=900)
    c = out["Credentials"]
    assert c["AccessKeyId"].startswith("ASIA")
    assert out["AssumedRoleUser"]["Arn"] == \
        "arn:aws:sts::123456789012:assumed-role/kes/kes-test"
    assert 0 < c["Expiration"].timestamp() - time.time() <= 900 + 60
    client(ep, "secretsmanager", (c["AccessKeyId"], c["SecretAccessKey"],
                                  c["SessionToken"])).list_secrets(MaxResults=1)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role_with_web_identity(RoleArn="arn:aws:iam::12:role/kes",
                                          RoleSessionName="kes-test", WebIdentityToken="jwt-1")
    assert error_code(e) == "ValidationError"

    ep.admin("POST", "/__admin/settings", {"web_identity_tokens": ["jwt-good"],
                                           "temp_credentials_ttl": 60})
    try:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sts.assume_role_with_web_identity(
                RoleArn="arn:aws:iam::123456789012:role/kes", RoleSessionName="kes-test",
                WebIdentityToken="jwt-bad")
        assert error_code(e) == "InvalidIdentityToken"
        # botocore's own web-identity provider, token file re-read on refresh
        token_file = tmp_path / "token"
        token_file.write_text("jwt-good")
        provider = botocore.credentials.AssumeRoleWithWebIdentityProvider(
            load_config=lambda: {"profiles": {"default": {
                "web_identity_token_file": str(token_file),
                "role_arn": "arn:aws:iam::123456789012:role/kes"}}},
            client_creator=lambda *a, **kw: botocore.session.Session().create_client(
                *a, **dict(kw, endpoint_url=sts_url)),
            profile_name="default")
        creds = provider.load()
        frozen = creds.get_frozen_credentials()
        client(ep, "secretsmanager", (frozen.access_key, frozen.secret_key,
                                      frozen.token)).list_secrets(MaxResults=1)
        ep.admin("POST", "/__admin/settings", {"web_identity_tokens": ["jwt-good", "jwt-2"]})
        token_file.write_text("jwt-2")
        # 60 s credentials sit inside botocore's mandatory refresh window: the
        # next access refreshes, reading the token file again.
        refreshed = creds.get_frozen_credentials()
        assert refreshed.access_key != frozen.access_key
        sts_calls = [r for r in ep.requests_log() if r.get("service") == "sts"]
        assert sts_calls[-1]["web_identity_token"] == "jwt-2"
    finally:
        ep.admin("POST", "/__admin/settings", {"web_identity_tokens": None,
                                               "temp_credentials_ttl": None})


def test_imds_v2_with_botocore_fetcher(ep):
    base = f"http://127.0.0.1:{ep.ports['imds_port']}/"
    fetcher = botocore.utils.InstanceMetadataFetcher(timeout=5, num_attempts=1,
                                                     base_url=base, env={})
    creds = fetcher.retrieve_iam_role_credentials()
    assert creds["role_name"] == "kes-test-role"
    assert creds["access_key"].startswith("ASIA")
    client(ep, "secretsmanager", (creds["access_key"], creds["secret_key"],
                                  creds["token"])).list_secrets(MaxResults=1)
    def status(method, path, **headers):
        conn = http.client.HTTPConnection("127.0.0.1", ep.ports["imds_port"], timeout=10)
        try:
            conn.request(method, path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()
    listing = "/latest/meta-data/iam/security-credentials/"
    assert status("GET", listing) == 401  # IMDSv1 is off
    assert status("GET", listing, **{"X-aws-ec2-metadata-token": "forged"}) == 401
    assert status("PUT", "/latest/api/token") == 400  # TTL header required
    for ttl in ("0", "21601", "x"):
        assert status("PUT", "/latest/api/token",
                      **{"X-aws-ec2-metadata-token-ttl-seconds": ttl}) == 400
    assert status("PUT", "/latest/api/token", **{"X-aws-ec2-metadata-token-ttl-seconds": "60",
                                                 "X-Forwarded-For": "10.0.0.1"}) == 403
    ep.admin("POST", "/__admin/settings", {"imds_v1_allowed": True})
    try:
        assert status("GET", listing) == 200
    finally:
        ep.admin("POST", "/__admin/settings", {"imds_v1_allowed": False})
    # the IMDS-only listener does not serve Secrets Manager
    h, b = signed_request(base.rstrip("/"), "secretsmanager.ListSecrets", {})
    assert raw_post(ep.ports["imds_port"], h, b)[0] == 404


def test_ecs_container_credentials_with_botocore_provider(ep, tmp_path):
    url = f"http://127.0.0.1:{ep.ports['ecs_port']}/v2/credentials/task-1"
    provider = botocore.credentials.ContainerProvider(environ={
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": url,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "ecs-secret-token"})
    frozen = provider.load().get_frozen_credentials()
    client(ep, "secretsmanager", (frozen.access_key, frozen.secret_key,
                                  frozen.token)).list_secrets(MaxResults=1)
    # The last ECS call, not the log's second to last entry: more entries
    # (e.g. a retried ListSecrets) may follow it on a loaded machine.
    ecs = [r for r in ep.requests_log() if r.get("service") == "ecs"]
    assert ecs[-1]["authorization"] == "ecs-secret-token"
    wrong = botocore.credentials.ContainerProvider(environ={
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": url,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "wrong"})
    with pytest.raises(botocore.exceptions.CredentialRetrievalError):
        wrong.load()


# ---- TLS and start-up rules ------------------------------------------------------------
def test_https_listener_with_ca_file(fresh, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    e = fresh("--https-port", "0", "--tls-cert", str(cert), "--tls-key", str(key))
    url = f"https://127.0.0.1:{e.ports['https_port']}"
    session = botocore.session.Session()
    sm = session.create_client("secretsmanager", region_name=REGION, endpoint_url=url,
                               aws_access_key_id=AKID, aws_secret_access_key=SECRET,
                               verify=str(cert),
                               config=botocore.config.Config(retries={"total_max_attempts": 1}))
    name = unique("tls")
    sm.create_secret(Name=name, SecretString="over tls")
    assert client(e, "secretsmanager").get_secret_value(SecretId=name)["SecretString"] == \
        "over tls"  # same state on the plain-HTTP listener
    untrusted = session.create_client("secretsmanager", region_name=REGION,
                                      endpoint_url=url, aws_access_key_id=AKID,
                                      aws_secret_access_key=SECRET,
                                      config=botocore.config.Config(
                                          retries={"total_max_attempts": 1}))
    with pytest.raises(botocore.exceptions.SSLError):
        untrusted.list_secrets()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "example.com"])
def test_refuses_non_loopback_host(host):
    out = subprocess.run([DEBIAN_PYTHON, str(SERVER), "--host", host, "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "loopback" in out.stderr


def test_extra_credentials_and_default_off(fresh, tmp_path):
    creds_file = tmp_path / "creds.json"
    creds_file.write_text(json.dumps([{"access_key_id": "AKIDFILE",
                                       "secret_access_key": "file-secret"}]))
    e = fresh("--no-default-credentials", "--access-key", "AKIDFLAG:flag-secret",
              "--credentials-file", str(creds_file))
    client(e, "secretsmanager", ("AKIDFLAG", "flag-secret", None)).list_secrets()
    client(e, "secretsmanager", ("AKIDFILE", "file-secret", None)).list_secrets()
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client(e, "secretsmanager").list_secrets()
    assert error_code(err) == "UnrecognizedClientException"


def test_keep_alive_and_status_probe(ep):
    conn = http.client.HTTPConnection("127.0.0.1", ep.port, timeout=30)
    try:
        for _ in range(3):  # one TCP connection, several calls
            h, b = signed_request(ep.url, "secretsmanager.ListSecrets", {"MaxResults": 1})
            conn.request("POST", "/", body=b, headers=h)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200 and resp.getheader("Connection") != "close"
        conn.request("GET", "/")  # KES's unsigned health probe: any answer will do
        resp = conn.getresponse()
        assert resp.status == 404 and json.loads(resp.read())["__type"] == \
            "UnknownOperationException"
    finally:
        conn.close()


def test_sts_errors_are_query_protocol_xml(ep):
    def post(form):
        conn = http.client.HTTPConnection("127.0.0.1", ep.ports["sts_port"], timeout=30)
        try:
            conn.request("POST", "/", body=form, headers={
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type"), resp.read().decode()
        finally:
            conn.close()
    status, ctype, body = post("Action=AssumeRoleWithWebIdentity&Version=2011-06-15"
                               "&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fkes"
                               "&RoleSessionName=kes")
    assert status == 400 and ctype == "text/xml"
    assert re.search(r"<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
                     r"\s*<Error>\s*<Type>Sender</Type>\s*<Code>ValidationError</Code>", body)
    assert "webIdentityToken" in body and "<RequestId>" in body
    status, _, body = post("Action=GetCallerIdentity&Version=2011-06-15")
    assert status == 400 and "<Code>InvalidAction</Code>" in body
    ep.admin("POST", "/__faults", {"kind": "unavailable", "service": "sts"})
    status, ctype, body = post("Action=AssumeRoleWithWebIdentity&Version=2011-06-15")
    assert status == 503 and "<Type>Receiver</Type>" in body


def test_ecs_requires_its_authorization_token(ep):
    conn = http.client.HTTPConnection("127.0.0.1", ep.ports["ecs_port"], timeout=30)
    try:
        conn.request("GET", "/v2/credentials/task-1")
        resp = conn.getresponse()
        assert resp.status == 401 and json.loads(resp.read())["code"] == "AccessDenied"
        conn.request("GET", "/v2/credentials/task-1",
                     headers={"Authorization": "ecs-secret-token"})
        resp = conn.getresponse()
        doc = json.loads(resp.read())
        assert resp.status == 200
        assert set(doc) >= {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}
    finally:
        conn.close()


@pytest.mark.parametrize("use_aes_gcm", [True, False])
def test_envelope_detects_tampering(monkeypatch, use_aes_gcm):
    if not use_aes_gcm:
        monkeypatch.setattr(envelope, "AESGCM", None)  # the standard-library fallback
    elif envelope.AESGCM is None:
        pytest.skip("python3-cryptography is not installed")
    key = os.urandom(32)
    sealed = envelope.seal(key, b"secret value", b"aad")
    assert envelope.open_sealed(key, sealed, b"aad") == b"secret value"
    assert envelope.seal(key, b"secret value", b"aad") != sealed  # fresh nonce
    for k, blob, aad in ((os.urandom(32), sealed, b"aad"), (key, sealed, b"aaD"),
                         (key, sealed[:-1] + bytes([sealed[-1] ^ 1]), b"aad"),
                         (key, sealed[:12] + bytes([sealed[12] ^ 1]) + sealed[13:], b"aad"),
                         (key, sealed[:20], b"aad")):
        with pytest.raises(envelope.OpenError):
            envelope.open_sealed(k, blob, aad)


def test_client_request_token_length_limits(ep):
    sm = client(ep, "secretsmanager")
    for token, want in (("t" * 31, "ValidationException"), ("t" * 65, "ValidationException")):
        h, b = signed_request(ep.url, "secretsmanager.CreateSecret",
                              {"Name": unique("tok"), "SecretString": "v",
                               "ClientRequestToken": token})
        status, _, data = raw_post(ep.port, h, b)
        assert status == 400 and json.loads(data)["__type"] == want
    assert sm.create_secret(Name=unique("tok"), SecretString="v",
                            ClientRequestToken="t" * 64)["VersionId"] == "t" * 64


def test_imds_session_token_expires(fresh):
    e = fresh("--imds-port", "0")

    def call(method, path, **headers):
        conn = http.client.HTTPConnection("127.0.0.1", e.ports["imds_port"], timeout=10)
        try:
            conn.request(method, path, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()
    status, token = call("PUT", "/latest/api/token",
                         **{"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    assert status == 200 and token
    listing = "/latest/meta-data/iam/security-credentials/"
    assert call("GET", listing, **{"X-aws-ec2-metadata-token": token}) == \
        (200, "kes-test-role")
    e.admin("POST", "/__admin/clock", {"offset_seconds": 61})
    assert call("GET", listing, **{"X-aws-ec2-metadata-token": token})[0] == 401
    status, doc = call("GET", listing + "kes-test-role", **{
        "X-aws-ec2-metadata-token": call("PUT", "/latest/api/token", **{
            "X-aws-ec2-metadata-token-ttl-seconds": "60"})[1]})
    creds = json.loads(doc)
    assert status == 200 and creds["Code"] == "Success" and creds["Type"] == "AWS-HMAC"
    assert call("GET", listing + "other-role", **{
        "X-aws-ec2-metadata-token": call("PUT", "/latest/api/token", **{
            "X-aws-ec2-metadata-token-ttl-seconds": "60"})[1]})[0] == 404

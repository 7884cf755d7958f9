"""Runtime fault injection (admin API: POST /__faults), on the AWS endpoint's
rule board and rule checks.

A rule applies to the next `count` matching requests (default 1). Kinds:
  error    answer `status` (default 500) with {"errors": errors} (default
           ["internal error"]); "body": false sends an empty body, as a proxy
           would; "retry_after": S adds a Retry-After header, "headers" any
           others (e.g. a 307 with a Location, as a standby node answers)
  latency  wait delay_ms, then answer normally
  drop     close the connection (RST) without answering
Filters: path (prefix of the API path after /v1/, e.g. "secret/data/" or
"sys/health"), method (GET, PUT, LIST, ...), namespace (X-Vault-Namespace).
"""
from aws_endpoint import load

_aws = load("faults")
FaultError = _aws.FaultError


class Rule(_aws.Rule):
    KINDS = ("error", "latency", "drop")

    def __init__(self, doc):  # pylint: disable=super-init-not-called (other fields)
        self.parse_common(doc)
        self.path = doc.get("path")
        self.method = doc.get("method")
        self.namespace = doc.get("namespace")
        self.status = doc.get("status", 500)
        if not isinstance(self.status, int) or not 100 <= self.status <= 599:
            raise FaultError("status must be an HTTP status code")
        self.errors = doc.get("errors", ["internal error"])
        self.retry_after = doc.get("retry_after")
        self.headers = doc.get("headers") or {}
        if not isinstance(self.headers, dict):
            raise FaultError("headers must be an object")

    def matches(self, method, api_path, namespace):
        if self.method is not None and self.method.upper() != method:
            return False
        if self.namespace is not None and self.namespace.strip("/") != namespace.strip("/"):
            return False
        return self.path is None or api_path.startswith(self.path.lstrip("/"))


def FaultBoard():  # noqa: N802 - stands for the class
    return _aws.FaultBoard(Rule)

"""Runtime fault injection (admin API: POST /__faults).

A rule applies to the next `count` matching requests (default 1). Kinds:
  error    answer `status` (default 500) with {"errors": errors} (default
           ["internal error"]); "body": false sends an empty body, as a proxy
           would; "retry_after": S adds a Retry-After header
  latency  wait delay_ms, then answer normally
  drop     close the connection (RST) without answering
Filters: path (prefix of the API path after /v1/, e.g. "secret/data/" or
"sys/health"), method (GET, PUT, LIST, ...), namespace (X-Vault-Namespace).
"""
from aws_endpoint import load

KINDS = ("error", "latency", "drop")


class FaultError(ValueError):
    pass


class Rule:
    def __init__(self, doc):
        if not isinstance(doc, dict):
            raise FaultError("a fault rule must be a JSON object")
        self.kind = doc.get("kind")
        if self.kind not in KINDS:
            raise FaultError(f"kind must be one of {', '.join(KINDS)}")
        self.count = doc.get("count", 1)
        if not isinstance(self.count, int) or self.count < 1:
            raise FaultError("count must be a positive integer")
        self.path = doc.get("path")
        self.method = doc.get("method")
        self.namespace = doc.get("namespace")
        self.status = doc.get("status", 500)
        if not isinstance(self.status, int) or not 100 <= self.status <= 599:
            raise FaultError("status must be an HTTP status code")
        self.errors = doc.get("errors", ["internal error"])
        self.body = doc.get("body", True)
        self.retry_after = doc.get("retry_after")
        self.delay_ms = doc.get("delay_ms", 0)
        if not isinstance(self.delay_ms, (int, float)) or self.delay_ms < 0:
            raise FaultError("delay_ms must be a non-negative number")
        if self.kind == "latency" and self.delay_ms == 0:
            raise FaultError("latency needs delay_ms")

    def matches(self, method, api_path, namespace):
        if self.method is not None and self.method.upper() != method:
            return False
        if self.namespace is not None and self.namespace.strip("/") != namespace.strip("/"):
            return False
        return self.path is None or api_path.startswith(self.path.lstrip("/"))

    def to_json(self):
        return {k: v for k, v in vars(self).items() if v is not None}


def FaultBoard():  # noqa: N802 - stands for the class
    """The AWS endpoint's rule board, holding Vault rules."""
    return load("faults").FaultBoard(Rule)

"""Runtime fault injection (admin API: POST /__faults).

A rule applies to the next `count` matching requests. Kinds:
  throttle  400 ThrottlingException "Rate exceeded" (code/status overridable)
  error     500 InternalServiceError (SM) / KMSInternalException (KMS) / custom
  unavailable 503 ServiceUnavailable
  latency   sleep delay_ms, then answer normally
  drop      close the connection without answering
Optional filters: service ("secretsmanager", "kms", "sts", "imds", "ecs") and
operation (e.g. "GetSecretValue"). "body": false sends the status with an
empty body (what a proxy or load balancer would do).
"""
import threading

KINDS = ("throttle", "error", "unavailable", "latency", "drop")
SERVICES = ("secretsmanager", "kms", "sts", "imds", "ecs")


class FaultError(ValueError):
    pass


class Rule:
    KINDS = KINDS

    def __init__(self, doc):
        self.parse_common(doc)
        self.service = doc.get("service")
        if self.service is not None and self.service not in SERVICES:
            raise FaultError(f"service must be one of {', '.join(SERVICES)}")
        self.operation = doc.get("operation")
        self.status = doc.get("status")
        self.code = doc.get("code")
        self.message = doc.get("message")

    def parse_common(self, doc):
        """kind, count, body and delay_ms: the part the Vault endpoint's rules share."""
        if not isinstance(doc, dict):
            raise FaultError("a fault rule must be a JSON object")
        self.kind = doc.get("kind")
        if self.kind not in self.KINDS:
            raise FaultError(f"kind must be one of {', '.join(self.KINDS)}")
        self.count = doc.get("count", 1)
        if not isinstance(self.count, int) or self.count < 1:
            raise FaultError("count must be a positive integer")
        self.body = doc.get("body", True)
        self.delay_ms = doc.get("delay_ms", 0)
        if not isinstance(self.delay_ms, (int, float)) or self.delay_ms < 0:
            raise FaultError("delay_ms must be a non-negative number")
        if self.kind == "latency" and self.delay_ms == 0:
            raise FaultError("latency needs delay_ms")

    def matches(self, service, operation):
        if self.service is not None and self.service != service:
            return False
        return self.operation is None or self.operation == operation

    def to_json(self):
        return {k: v for k, v in vars(self).items() if v is not None}


class FaultBoard:
    """The pending rules. The Vault test endpoint reuses it with its own rule
    class; `take` passes the request's description on to `rule.matches`."""

    def __init__(self, rule_class=Rule):
        self._rule_class = rule_class
        self._lock = threading.Lock()
        self._rules = []

    def add(self, doc):
        rule = self._rule_class(doc)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self):
        with self._lock:
            self._rules.clear()

    def list(self):
        with self._lock:
            return [r.to_json() for r in self._rules]

    def take(self, *request):
        """The first rule matching this request, with one use consumed."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(*request):
                    rule.count -= 1
                    if rule.count == 0:
                        self._rules.remove(rule)
                    return rule
        return None

"""AWS error values and their wire forms (JSON 1.1 bodies and query-protocol XML).

Every handler raises AwsError; the HTTP layer renders it. Which member carries
the message text is part of the contract (aws-protocol.md 2.4): Secrets
Manager's modelled errors use "Message", KMS and framework-level errors
(signature, throttling, validation, unknown operation) use "message".
"""
import json


class AwsError(Exception):
    """An error answer: HTTP status, cleaned code and message member."""

    def __init__(self, code, message=None, status=400, message_key="message"):
        super().__init__(code if message is None else f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.message_key = message_key

    def json_body(self):
        doc = {"__type": self.code}
        if self.message is not None:
            doc[self.message_key] = self.message
        return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def framework(code, message=None, status=400):
    """An error raised by the service framework (lower-case message)."""
    return AwsError(code, message, status, "message")


def sm(code, message=None, status=400):
    """A modelled Secrets Manager error (capital Message)."""
    return AwsError(code, message, status, "Message")


def kms(code, message=None, status=400):
    """A KMS error (lower-case message)."""
    return AwsError(code, message, status, "message")


def validation(value, member, constraint):
    """The Coral-style ValidationException text recorded from AWS."""
    shown = "" if value is None else f" '{value}'"
    return framework(
        "ValidationException",
        f"1 validation error detected: Value{shown} at '{member}' failed to "
        f"satisfy constraint: {constraint}")


def xml_escape(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;"))


def query_error_xml(code, message, request_id, kind="Sender"):
    """AWS query-protocol (STS) error document."""
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n'
        f"  <Error>\n    <Type>{kind}</Type>\n    <Code>{xml_escape(code)}</Code>\n"
        f"    <Message>{xml_escape(message)}</Message>\n  </Error>\n"
        f"  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n"
    ).encode("utf-8")

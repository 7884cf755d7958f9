"""Vault durations: parsing request values and printing Go durations."""
import re
import time

from errors import bad_request

_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d))+")


def parse(value, name="ttl"):
    """Seconds (int) from an int, a digit string or a Go-style duration ("1h30m", "3s")."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise bad_request(f"invalid {name}: {value!r}")
    if isinstance(value, (int, float)):
        seconds = value
    elif isinstance(value, str) and value.strip().isdigit():
        seconds = int(value.strip())
    elif isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        seconds = sum(float(n) * _UNIT[u] for n, u in _PART.findall(value.strip()))
    else:
        raise bad_request(f'time: invalid duration "{value}"')
    if seconds < 0:
        raise bad_request(f"{name} must be non-negative")
    return int(seconds)


def go(seconds):
    """Go's time.Duration.String() for whole seconds: 768h0m0s, 1m30s, 3s."""
    seconds = int(seconds)
    if seconds == 0:
        return "0s"
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m}m{s}s"
    if m:
        return f"{m}m{s}s"
    return f"{s}s"


def rfc3339(epoch):
    """Go's RFC 3339 with nanoseconds (what Vault puts in created_time)."""
    whole = int(epoch)
    nanos = int(round((epoch - whole) * 1e9))
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, 0
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{text}.{nanos:09d}Z" if nanos else f"{text}Z"

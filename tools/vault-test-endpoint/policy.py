"""ACL policies: parsing (JSON syntax and the HCL `path` blocks) and checks.

A policy is a list of (pattern, capabilities). Patterns follow Vault's glob
rules: a trailing `*` is a prefix match, `+` matches one path segment. When
several patterns match, the most specific wins (exact beats glob, then the
longer pattern), and a `deny` there denies. Patterns of the same text in
different policies of a token are merged, as Vault does.
"""
import json
import re

from errors import bad_request

CAPABILITIES = ("create", "read", "update", "delete", "list", "patch", "sudo", "deny")
ROOT = "root"
DEFAULT = "default"
RESPONSE_WRAPPING = "response-wrapping"
# The parts of Vault's built-in default policy a token needs for itself.
DEFAULT_RULES = [
    ("auth/token/lookup-self", {"read"}),
    ("auth/token/renew-self", {"update"}),
    ("auth/token/revoke-self", {"update"}),
    ("sys/capabilities-self", {"update"}),
    ("cubbyhole/*", {"create", "read", "update", "delete", "list"}),
]
BUILTIN_RULES = {DEFAULT: DEFAULT_RULES,
                 RESPONSE_WRAPPING: [("sys/wrapping/unwrap", {"update"})]}
_HCL_BLOCK = re.compile(
    r'path\s+"([^"]*)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}', re.S)


def parse(text):
    """[(pattern, {capabilities})] from a policy document (JSON or HCL)."""
    if not isinstance(text, str) or not text.strip():
        raise bad_request("'policy' parameter not supplied or empty")
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        paths = doc.get("path", {})
        if not isinstance(paths, dict):
            raise bad_request("failed to parse policy: path must be an object")
        rules = [(p, (v or {}).get("capabilities", [])) for p, v in paths.items()]
    else:
        body = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
        rules = [(m.group(1), re.findall(r'"([^"]*)"', m.group(2)))
                 for m in _HCL_BLOCK.finditer(body)]
        if not rules or _HCL_BLOCK.sub("", body).strip():
            raise bad_request("failed to parse policy: only `path \"...\" { capabilities = "
                              "[...] }` blocks are understood by this endpoint")
    out = []
    for pattern, caps in rules:
        if not isinstance(caps, list) or any(c not in CAPABILITIES for c in caps):
            raise bad_request(f'failed to parse policy: invalid capabilities for "{pattern}"')
        out.append((pattern.lstrip("/"), set(caps)))
    return out


def _matches(pattern, path):
    glob = pattern.endswith("*")
    body = pattern[:-1] if glob else pattern
    regex = "".join("[^/]+" if ch == "+" else re.escape(ch) for ch in body)
    return re.fullmatch(regex + (".*" if glob else ""), path) is not None


def _specificity(pattern):
    glob = pattern.endswith("*")
    return (not glob, pattern.count("+") == 0, len(pattern))


def allowed(rule_sets, path, capability):
    """True when the merged rules of a token's policies grant `capability` on path."""
    merged = {}
    for rules in rule_sets:
        for pattern, caps in rules:
            if _matches(pattern, path):
                merged.setdefault(pattern, set()).update(caps)
    if not merged:
        return False
    best = max(merged, key=_specificity)
    caps = merged[best]
    return "deny" not in caps and capability in caps

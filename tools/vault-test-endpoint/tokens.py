"""Service tokens: issue, look up, renew, revoke, expire (the token store).

Times come from the endpoint clock so tests can make tokens expire by
moving the clock (admin API) instead of sleeping. An expired token is
revoked on its next use, as Vault's expiration manager would have done.
"""
import secrets
import string
import threading

import durations
from errors import bad_request, invalid_token

SYSTEM_MAX_TTL = 768 * 3600  # Vault's default max_lease_ttl and default_lease_ttl
_ALPHABET = string.ascii_letters + string.digits


def _random(n):
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


class Token:
    def __init__(self, token_id, accessor, namespace, policies, now, ttl, explicit_max_ttl,
                 period, renewable, num_uses, path, meta, display_name, parent, orphan,
                 max_ttl):
        self.id = token_id
        self.accessor = accessor
        self.namespace = namespace
        self.policies = policies
        self.issue_time = now
        self.creation_ttl = ttl
        self.explicit_max_ttl = explicit_max_ttl
        self.period = period
        self.renewable = renewable
        self.num_uses = num_uses
        self.path = path
        self.meta = meta
        self.display_name = display_name
        self.parent = parent
        self.orphan = orphan
        # None: never expires (root tokens, ttl 0 from a root parent).
        self.expire_at = now + ttl if ttl else None
        max_ttl = explicit_max_ttl or max_ttl or (SYSTEM_MAX_TTL if ttl else 0)
        self.max_at = now + max_ttl if max_ttl else None

    def ttl(self, now):
        return 0 if self.expire_at is None else max(0, int(round(self.expire_at - now)))

    def auth_block(self, now, metadata=None):
        """The `auth` member of a login / create / renew answer."""
        return {"client_token": self.id, "accessor": self.accessor,
                "policies": list(self.policies), "token_policies": list(self.policies),
                "identity_policies": None, "metadata": metadata if metadata is not None else
                (self.meta or None), "lease_duration": self.ttl(now),
                "renewable": self.renewable and self.expire_at is not None,
                "entity_id": "", "token_type": "service", "orphan": self.orphan,
                "mfa_requirement": None, "num_uses": self.num_uses}

    def lookup_data(self, now):
        data = {"accessor": self.accessor, "creation_time": int(self.issue_time),
                "creation_ttl": self.creation_ttl, "display_name": self.display_name,
                "entity_id": "", "expire_time": None if self.expire_at is None
                else durations.rfc3339(self.expire_at),
                "explicit_max_ttl": self.explicit_max_ttl, "id": self.id,
                "issue_time": durations.rfc3339(self.issue_time), "meta": self.meta or None,
                "num_uses": self.num_uses, "orphan": self.orphan, "path": self.path,
                "policies": list(self.policies), "renewable": self.renewable,
                "ttl": self.ttl(now), "type": "service"}
        if self.period:
            data["period"] = self.period
        if self.namespace.path:
            data["namespace_path"] = self.namespace.path
        return data


class TokenStore:
    def __init__(self, clock):
        self.clock = clock
        self.lock = threading.RLock()
        self._by_id = {}
        self._by_accessor = {}

    def issue(self, namespace, policies, ttl=0, explicit_max_ttl=0, period=0, renewable=True,
              num_uses=0, path="auth/token/create", meta=None, display_name="token",
              parent=None, orphan=False, token_id=None, max_ttl=0):
        suffix = "" if not namespace.path else "." + namespace.id
        with self.lock:
            if token_id is None:
                token_id = "hvs." + _random(24) + suffix
            elif token_id in self._by_id:
                raise bad_request("cannot create a token with a duplicate ID")
            if period:
                ttl = period
            cap = explicit_max_ttl or max_ttl
            if cap and (not ttl or ttl > cap):
                ttl = cap
            token = Token(token_id, _random(24) + suffix, namespace,
                          sorted(set(policies)), self.clock(), ttl, explicit_max_ttl, period,
                          renewable, num_uses, path, meta, display_name,
                          None if orphan else parent, orphan, max_ttl)
            self._by_id[token.id] = token
            self._by_accessor[token.accessor] = token
            return token

    def find(self, token_id=None, accessor=None):
        """The live token, or None (an expired one is revoked on the way)."""
        with self.lock:
            token = self._by_id.get(token_id) if token_id else self._by_accessor.get(accessor)
            if token is not None and token.expire_at is not None and \
                    token.expire_at <= self.clock():
                self.revoke(token)
                return None
            return token

    def use(self, token):
        """Counts one use of a limited-use token; the last use revokes it."""
        with self.lock:
            if token.num_uses > 0:
                token.num_uses -= 1
                if token.num_uses == 0:
                    self.revoke(token)

    def revoke(self, token, orphan_children=False):
        with self.lock:
            self._by_id.pop(token.id, None)
            self._by_accessor.pop(token.accessor, None)
            for child in [t for t in self._by_id.values() if t.parent is token]:
                if orphan_children:
                    child.parent, child.orphan = None, True
                else:
                    self.revoke(child)

    def revoke_namespace(self, namespace):
        with self.lock:
            for token in [t for t in self._by_id.values() if t.namespace is namespace]:
                self.revoke(token)

    def renew(self, token, increment):
        """Extends a token; returns the capped-TTL warning, if any."""
        now = self.clock()
        with self.lock:
            if not token.renewable or token.expire_at is None:
                raise bad_request("lease is not renewable")
            ttl = token.period or increment or token.creation_ttl
            warning = None
            if token.max_at is not None and now + ttl > token.max_at:
                capped = max(0, int(round(token.max_at - now)))
                warning = (f'TTL of "{durations.go(ttl)}" exceeded the effective max_ttl of '
                           f'"{durations.go(capped)}"; TTL value is capped accordingly')
                ttl = capped
            if ttl == 0:
                self.revoke(token)
                raise invalid_token()
            token.expire_at = now + ttl
            return warning

    def set_ttl(self, token, ttl, max_ttl=None):
        """Admin: the token now has `ttl` seconds left (and optionally a new max)."""
        now = self.clock()
        with self.lock:
            token.expire_at = now + ttl
            if max_ttl is not None:
                token.max_at = now + max_ttl if max_ttl else None
                token.explicit_max_ttl = max_ttl
            if token.max_at is not None and token.expire_at > token.max_at:
                token.expire_at = token.max_at

    def count(self):
        with self.lock:
            return len(self._by_id)

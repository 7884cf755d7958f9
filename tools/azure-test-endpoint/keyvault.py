"""The Key Vault secrets API (keystores-cloud.md §1.4, §1.5): versions,
paging with absolute nextLinks, soft delete with a "being deleted" phase,
purge, recover and the error bodies real vaults send."""
import re
import secrets
import threading
import time

NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
API_VERSIONS = ("7.0", "7.1", "7.2", "7.3", "7.4", "7.5")
RETENTION_DAYS = 90


class KvError(Exception):
    def __init__(self, status, code, message, inner=None):
        super().__init__(message)
        self.status, self.code, self.message, self.inner = status, code, message, inner

    def body(self):
        err = {"code": self.code, "message": self.message}
        if self.inner:
            err["innererror"] = {"code": self.inner}
        return {"error": err}


def not_found(name):
    return KvError(404, "SecretNotFound",
                   f"A secret with (name/id) {name} was not found in this key vault. If you "
                   "recently deleted this secret you may be able to recover it using the correct "
                   "recovery command. For help resolving this issue, please see "
                   "https://go.microsoft.com/fwlink/?linkid=2125182")


class KeyVault:
    """Secrets by name: a list of versions (oldest first) or a deleted entry."""

    def __init__(self):
        self.lock = threading.RLock()
        self.secrets = {}   # name -> [version dict]
        self.deleted = {}   # name -> {"versions", "deleted", "ready_at"}
        self.deleting_seconds = 0.0   # how long a soft delete stays "in progress"
        self.purge_protection = False
        self.soft_delete = True
        self.page_size = 25

    # ---- helpers -----------------------------------------------------------
    @staticmethod
    def check_name(name):
        if not NAME.match(name):
            raise KvError(400, "BadParameter", f"The request URI contains an invalid name: {name}")

    def _being_deleted(self, name):
        d = self.deleted.get(name)
        return d is not None and time.monotonic() < d["ready_at"]

    def _conflict(self, name):
        if self._being_deleted(name):
            return KvError(409, "Conflict", f"Secret {name} is currently being deleted.",
                           "ObjectIsBeingDeleted")
        return KvError(409, "Conflict",
                       f"Secret {name} is currently in a deleted but recoverable state, and its "
                       "name cannot be reused; in this state, the secret can only be recovered "
                       "or purged.", "ObjectIsDeletedButRecoverable")

    @staticmethod
    def attributes(v):
        attrs = {"enabled": v["enabled"], "created": v["created"], "updated": v["updated"],
                 "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": RETENTION_DAYS}
        for k in ("nbf", "exp"):
            if v.get(k) is not None:
                attrs[k] = v[k]
        return attrs

    def bundle(self, base, name, v, with_value=True):
        out = {"id": f"{base}/secrets/{name}/{v['version']}", "attributes": self.attributes(v)}
        if with_value:
            out["value"] = v["value"]
        if v.get("contentType") is not None:
            out["contentType"] = v["contentType"]
        if v.get("tags"):
            out["tags"] = v["tags"]
        return out

    def deleted_bundle(self, base, name, d):
        out = self.bundle(base, name, d["versions"][-1], with_value=False)
        out.update({"recoveryId": f"{base}/deletedsecrets/{name}",
                    "deletedDate": d["deleted"],
                    "scheduledPurgeDate": d["deleted"] + RETENTION_DAYS * 86400})
        return out

    def add_version(self, name, value, created=None, enabled=True, nbf=None, exp=None,
                    content_type=None, tags=None):
        now = int(time.time())
        v = {"version": secrets.token_hex(16), "value": value,
             "created": now if created is None else int(created), "updated": now,
             "enabled": enabled, "nbf": nbf, "exp": exp, "contentType": content_type,
             "tags": tags or None}
        self.secrets.setdefault(name, []).append(v)
        return v

    def _find_version(self, name, version):
        versions = self.secrets.get(name)
        if not versions:
            raise not_found(name)
        if not version:
            return versions[-1]
        for v in versions:
            if v["version"] == version:
                return v
        raise KvError(404, "SecretNotFound",
                      f"A secret with (name/id) {name}/{version} was not found in this key vault.")

    def _page(self, items, query, base, path, api_version):
        size = self.page_size
        if "maxresults" in query:
            try:
                size = max(1, min(25, int(query["maxresults"])))
            except ValueError:
                raise KvError(400, "BadParameter", "maxresults must be a number") from None
        try:
            start = int(query.get("$skiptoken", "0"))
        except ValueError:
            raise KvError(400, "BadParameter", "invalid $skiptoken") from None
        chunk = items[start:start + size]
        nxt = None
        if start + size < len(items):
            nxt = (f"{base}{path}?api-version={api_version}&$skiptoken={start + size}"
                   f"&maxresults={size}")
        return {"value": chunk, "nextLink": nxt}

    # ---- operations --------------------------------------------------------
    def handle(self, method, parts, query, doc, base, api_version):
        """parts: the path split on '/', without the leading empty part."""
        with self.lock:
            return self._route(method, parts, query, doc, base, api_version)

    def _route(self, method, parts, query, doc, base, api_version):
        head = parts[0]
        if head == "secrets":
            if len(parts) == 1 and method == "GET":
                items = [{"id": f"{base}/secrets/{n}",
                          "attributes": self.attributes(vs[-1])}
                         for n, vs in sorted(self.secrets.items()) if vs]
                return 200, self._page(items, query, base, "/secrets", api_version)
            name = parts[1]
            self.check_name(name)
            rest = parts[2:]
            if method == "PUT" and not rest:
                return 200, self._set(name, doc, base)
            if method == "DELETE" and not rest:
                return 200, self._delete(name, base)
            if method == "GET" and rest == ["versions"]:
                items = [self.bundle(base, name, v, with_value=False)
                         for v in self.secrets.get(name, [])]
                return 200, self._page(items, query, base, f"/secrets/{name}/versions",
                                       api_version)
            if method in ("GET", "PATCH") and len(rest) <= 1:
                v = self._find_version(name, rest[0] if rest else "")
                if method == "PATCH":
                    self._update(v, doc)
                    return 200, self.bundle(base, name, v, with_value=False)
                if not v["enabled"]:
                    raise KvError(403, "Forbidden", "Operation get is not allowed on a disabled "
                                  "secret.", "SecretDisabled")
                return 200, self.bundle(base, name, v)
        elif head == "deletedsecrets":
            if len(parts) == 1 and method == "GET":
                items = [self.deleted_bundle(base, n, d) for n, d in sorted(self.deleted.items())
                         if not self._being_deleted(n)]
                return 200, self._page(items, query, base, "/deletedsecrets", api_version)
            name = parts[1]
            self.check_name(name)
            d = self.deleted.get(name)
            if d is None or (method == "GET" and self._being_deleted(name)):
                raise KvError(404, "SecretNotFound", f"Deleted Secret not found: {name}")
            if method == "GET" and len(parts) == 2:
                return 200, self.deleted_bundle(base, name, d)
            if method == "DELETE" and len(parts) == 2:
                if self._being_deleted(name):
                    raise self._conflict(name)
                if self.purge_protection:
                    raise KvError(403, "Forbidden", 'Operation "purge" is not allowed because '
                                  "purge protection is enabled for this vault. Key Vault "
                                  "service will automatically purge it after the retention "
                                  "period has passed.")
                del self.deleted[name]
                return 204, None
            if method == "POST" and parts[2:] == ["recover"]:
                if self._being_deleted(name):
                    raise self._conflict(name)
                if name in self.secrets:
                    raise KvError(409, "Conflict", f"Secret {name} already exists.")
                self.secrets[name] = self.deleted.pop(name)["versions"]
                return 200, self.bundle(base, name, self.secrets[name][-1], with_value=False)
        raise KvError(404, "NotFound", "The requested resource was not found.")

    def _set(self, name, doc, base):
        if not isinstance(doc, dict) or not isinstance(doc.get("value"), str):
            raise KvError(400, "BadParameter", "Property value is required.")
        if name in self.deleted:
            raise self._conflict(name)
        attrs = doc.get("attributes") or {}
        v = self.add_version(name, doc["value"], enabled=attrs.get("enabled", True),
                             nbf=attrs.get("nbf"), exp=attrs.get("exp"),
                             content_type=doc.get("contentType"), tags=doc.get("tags"))
        return self.bundle(base, name, v)

    @staticmethod
    def _update(v, doc):
        if not isinstance(doc, dict):
            raise KvError(400, "BadParameter", "The request body is not valid JSON.")
        attrs = doc.get("attributes") or {}
        for k in ("enabled", "nbf", "exp"):
            if k in attrs:
                v[k] = attrs[k]
        if "contentType" in doc:
            v["contentType"] = doc["contentType"]
        if "tags" in doc:
            v["tags"] = doc["tags"]
        v["updated"] = int(time.time())

    def _delete(self, name, base):
        versions = self.secrets.pop(name, None)
        if not versions:
            raise not_found(name)
        if not self.soft_delete:
            return self.bundle(base, name, versions[-1], with_value=False)
        d = {"versions": versions, "deleted": int(time.time()),
             "ready_at": time.monotonic() + self.deleting_seconds}
        self.deleted[name] = d
        return self.deleted_bundle(base, name, d)

    def describe(self, with_values=False):
        with self.lock:
            return {"secrets": {n: [dict(v, value=v["value"] if with_values else None)
                                    for v in vs] for n, vs in self.secrets.items()},
                    "deleted": sorted(self.deleted),
                    "deleting_seconds": self.deleting_seconds,
                    "purge_protection": self.purge_protection,
                    "soft_delete": self.soft_delete, "page_size": self.page_size}

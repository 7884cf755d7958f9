"""The KV secrets engine, version 1 and version 2 (behaviour of the KV plugin).

Answers follow keystores-vault.md sections 6, 7 and 10: a missing read or an
empty listing is 404 {"errors":[]}, v1 writes/deletes 204, v2 writes 200
with the version metadata, check-and-set through options.cas, soft delete
that keeps current_version, metadata delete that resets it.
"""
import threading

import durations
from backend import NO_CONTENT, Backend, Response
from errors import VaultError, bad_request, not_found, unsupported_operation

V1_LEASE = 768 * 3600  # the mount's default lease, advisory (lease_duration on reads)
CAS_MISMATCH = "check-and-set parameter did not match the current version"
V2_WRONG_PATH = ("Invalid path for a versioned K/V secrets engine. See the API docs for the "
                 "appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' "
                 "for this operation.")


def _list_children(keys, prefix):
    """Immediate children of a folder; sub-folders end with '/'."""
    prefix = prefix.strip("/")
    prefix = prefix + "/" if prefix else ""
    out = set()
    for key in keys:
        if key.startswith(prefix) and len(key) > len(prefix):
            rest = key[len(prefix):]
            head, sep, _ = rest.partition("/")
            out.add(head + sep)
    if not out:
        raise not_found()
    return Response(data={"keys": sorted(out)})


def _key(path):
    key = path.strip("/")
    if not key:
        raise bad_request("missing path")
    return key


class KvV1(Backend):
    type = "kv"

    def __init__(self):
        self.options = {"version": "1"}
        self.lock = threading.Lock()
        self.entries = {}

    def exists(self, req):
        return req.path.strip("/") in self.entries

    def handle(self, req):
        with self.lock:
            if req.op == "list":
                return _list_children(self.entries, req.path)
            key = _key(req.path)
            if req.op == "read":
                if key not in self.entries:
                    raise not_found()
                data = self.entries[key]
                lease = V1_LEASE
                if "ttl" in data:
                    lease = durations.parse(data["ttl"])
                return Response(data=dict(data), lease_duration=lease)
            if req.op == "write":
                self.entries[key] = dict(req.data)
                return NO_CONTENT
            if req.op == "delete":
                self.entries.pop(key, None)
                return NO_CONTENT
        raise unsupported_operation()


class _Secret:
    """One KV v2 key: its versions and metadata."""

    def __init__(self, now):
        self.versions = {}  # n -> {"data", "created", "deletion", "destroyed"}
        self.current = 0
        self.oldest = 0
        self.created = now
        self.updated = now
        self.max_versions = 0
        self.cas_required = False
        self.custom_metadata = None
        self.delete_version_after = 0

    def version_metadata(self, n):
        v = self.versions[n]
        return {"created_time": durations.rfc3339(v["created"]),
                "custom_metadata": self.custom_metadata,
                "deletion_time": durations.rfc3339(v["deletion"]) if v["deletion"] else "",
                "destroyed": v["destroyed"], "version": n}

    def metadata(self):
        return {"cas_required": self.cas_required, "created_time": durations.rfc3339(self.created),
                "current_version": self.current, "custom_metadata": self.custom_metadata,
                "delete_version_after": durations.go(self.delete_version_after),
                "max_versions": self.max_versions, "oldest_version": self.oldest,
                "updated_time": durations.rfc3339(self.updated),
                "versions": {str(n): {k: v for k, v in self.version_metadata(n).items()
                                      if k in ("created_time", "deletion_time", "destroyed")}
                             for n in sorted(self.versions)}}


def _versions(data):
    versions = data.get("versions")
    if not isinstance(versions, list) or not versions or \
            not all(isinstance(v, int) or (isinstance(v, str) and v.isdigit()) for v in versions):
        raise bad_request("no version number provided")
    return [int(v) for v in versions]


class KvV2(Backend):
    type = "kv"

    def __init__(self):
        self.options = {"version": "2"}
        self.lock = threading.Lock()
        self.secrets = {}
        self.config = {"max_versions": 0, "cas_required": False, "delete_version_after": 0}

    def exists(self, req):
        kind, _, rest = req.path.partition("/")
        if kind == "config":
            return True
        return kind in ("data", "metadata") and rest.strip("/") in self.secrets

    def handle(self, req):
        kind, _, rest = req.path.partition("/")
        with self.lock:
            if kind == "config" and not rest:
                return self._config(req)
            handler = {"data": self._data, "metadata": self._metadata, "delete": self._delete,
                       "undelete": self._undelete, "destroy": self._destroy}.get(kind)
            if handler is None:
                # A v1-style path on a v2 mount: 404 with only a warning (no errors).
                raise VaultError(404, body={"data": None, "warnings": [V2_WRONG_PATH]})
            return handler(req, rest)

    # ---- data/ -------------------------------------------------------------
    def _data(self, req, path):
        if req.op == "list":
            raise unsupported_operation()
        key = _key(path)
        now = req.clock()
        if req.op == "read":
            return self._read(key, req.data.get("version"))
        if req.op == "delete":
            secret = self.secrets.get(key)
            if secret is not None and secret.current in secret.versions:
                v = secret.versions[secret.current]
                if not v["deletion"]:
                    v["deletion"] = now
            return NO_CONTENT
        if req.op in ("write", "patch"):
            return self._write(req, key, now)
        raise unsupported_operation()

    def _read(self, key, version):
        secret = self.secrets.get(key)
        if secret is None:
            raise not_found()
        try:
            n = int(version or 0) or secret.current
        except (TypeError, ValueError):
            raise bad_request("error parsing version parameter")
        if n not in secret.versions:
            raise not_found()
        v = secret.versions[n]
        doc = {"data": None, "metadata": secret.version_metadata(n)}
        if v["deletion"] or v["destroyed"]:
            raise VaultError(404, body={"data": doc})
        doc["data"] = dict(v["data"])
        return Response(data=doc)

    def _write(self, req, key, now):
        data = req.data.get("data")
        if req.op == "patch":
            current = self.secrets.get(key)
            if current is None or current.current not in current.versions or \
                    current.versions[current.current]["deletion"]:
                raise not_found()
            if not isinstance(data, dict):
                raise bad_request("no data provided")
            merged = dict(current.versions[current.current]["data"])
            merged.update(data)
            data = {k: v for k, v in merged.items() if v is not None}
        if data is None:
            raise bad_request("no data provided")
        if not isinstance(data, dict):
            raise bad_request("data must be an object")
        options = req.data.get("options") or {}
        if not isinstance(options, dict):
            raise bad_request("error parsing options")
        secret = self.secrets.get(key)
        cas_required = self.config["cas_required"] or (secret is not None and secret.cas_required)
        if "cas" in options:
            try:
                cas = int(options["cas"])
            except (TypeError, ValueError):
                raise bad_request("error parsing check-and-set parameter")
            if cas != (secret.current if secret is not None else 0):
                raise bad_request(CAS_MISMATCH)
        elif cas_required:
            raise bad_request("check-and-set parameter required for this call")
        if secret is None:
            secret = self.secrets[key] = _Secret(now)
        secret.current += 1
        secret.updated = now
        secret.versions[secret.current] = {"data": dict(data), "created": now, "deletion": 0,
                                           "destroyed": False}
        if not secret.oldest:
            secret.oldest = secret.current
        self._prune(secret)
        return Response(data=secret.version_metadata(secret.current))

    def _prune(self, secret):
        limit = secret.max_versions or self.config["max_versions"] or 10
        while len(secret.versions) > limit:
            del secret.versions[min(secret.versions)]
        secret.oldest = min(secret.versions) if secret.versions else 0

    # ---- metadata/ -----------------------------------------------------------
    def _metadata(self, req, path):
        if req.op == "list":
            return _list_children(self.secrets, path)
        key = _key(path)
        if req.op == "read":
            secret = self.secrets.get(key)
            if secret is None:
                raise not_found()
            return Response(data=secret.metadata())
        if req.op == "delete":
            self.secrets.pop(key, None)
            return NO_CONTENT
        if req.op in ("write", "patch"):
            secret = self.secrets.get(key)
            if secret is None:
                secret = self.secrets[key] = _Secret(req.clock())
            d = req.data
            if "max_versions" in d:
                secret.max_versions = int(d["max_versions"])
            if "cas_required" in d:
                secret.cas_required = bool(d["cas_required"])
            if "custom_metadata" in d:
                secret.custom_metadata = d["custom_metadata"] or None
            if "delete_version_after" in d:
                secret.delete_version_after = durations.parse(d["delete_version_after"])
            secret.updated = req.clock()
            self._prune(secret)
            return NO_CONTENT
        raise unsupported_operation()

    # ---- delete/, undelete/, destroy/ ------------------------------------------
    def _each_version(self, req, path, change):
        if req.op != "write":
            raise unsupported_operation()
        secret = self.secrets.get(_key(path))
        for n in _versions(req.data):
            if secret is not None and n in secret.versions:
                change(secret.versions[n])
        return NO_CONTENT

    def _delete(self, req, path):
        now = req.clock()
        return self._each_version(
            req, path, lambda v: v.update(deletion=v["deletion"] or now))

    def _undelete(self, req, path):
        return self._each_version(
            req, path, lambda v: v.update(deletion=0) if not v["destroyed"] else None)

    def _destroy(self, req, path):
        return self._each_version(req, path, lambda v: v.update(destroyed=True, data=None))

    def _config(self, req):
        if req.op == "read":
            return Response(data={"cas_required": self.config["cas_required"],
                                  "delete_version_after": durations.go(
                                      self.config["delete_version_after"]),
                                  "max_versions": self.config["max_versions"]})
        if req.op == "write":
            d = req.data
            if "max_versions" in d:
                self.config["max_versions"] = int(d["max_versions"])
            if "cas_required" in d:
                self.config["cas_required"] = bool(d["cas_required"])
            if "delete_version_after" in d:
                self.config["delete_version_after"] = durations.parse(d["delete_version_after"])
            return NO_CONTENT
        raise unsupported_operation()

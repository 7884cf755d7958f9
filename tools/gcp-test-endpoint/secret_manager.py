"""The Secret Manager v1 REST resources the KES keystore and Google's client
libraries use: secrets (create, get, delete, list with paging) and versions
(add, access, disable), with Google's error bodies and codes."""
import base64
import re
import threading
import time

SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
MAX_PAYLOAD = 64 * 1024  # Secret Manager's payload limit


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


class ApiError(Exception):
    """A Google API error: HTTP status, canonical status name, message."""

    def __init__(self, code, status, message):
        super().__init__(message)
        self.code, self.status, self.message = code, status, message

    def body(self):
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def not_found(message):
    return ApiError(404, "NOT_FOUND", message)


def invalid(message):
    return ApiError(400, "INVALID_ARGUMENT", message)


def _timestamp(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int(t % 1 * 1e6)


class Project:
    def __init__(self, project_id, number):
        self.id, self.number = project_id, number
        self.secrets = {}  # name -> {"created": t, "versions": [{"data", "state", "created"}]}

    def resource(self, secret=None):
        base = f"projects/{self.number}"
        return base if secret is None else f"{base}/secrets/{secret}"


class SecretManager:
    def __init__(self, projects, page_size):
        self.lock = threading.Lock()
        self.projects = {}
        for p in projects:
            self.projects[p.id] = p
            self.projects[str(p.number)] = p
        self.page_size = page_size

    def project(self, key, permission):
        p = self.projects.get(key)
        if p is None:
            raise ApiError(403, "PERMISSION_DENIED",
                           f"Permission '{permission}' denied for resource 'projects/{key}' "
                           "(or it may not exist).")
        return p

    def _secret(self, project, name):
        s = project.secrets.get(name)
        if s is None:
            raise not_found(f"Secret [{project.resource(name)}] not found.")
        return s

    def _secret_json(self, project, name, s):
        return {"name": project.resource(name), "replication": {"automatic": {}},
                "createTime": _timestamp(s["created"]), "etag": '"%x"' % int(s["created"] * 1e6)}

    def _version_json(self, project, name, number, v):
        out = {"name": f"{project.resource(name)}/versions/{number}",
               "createTime": _timestamp(v["created"]), "state": v["state"],
               "replicationStatus": {"automatic": {}}, "etag": '"%x"' % int(v["created"] * 1e6)}
        if v["state"] == "DESTROYED":
            out["destroyTime"] = out["createTime"]
        return out

    # ---- operations ----------------------------------------------------
    def create_secret(self, project_key, secret_id, doc):
        with self.lock:
            p = self.project(project_key, "secretmanager.secrets.create")
            if not SECRET_ID.match(secret_id or ""):
                raise invalid("Secret ID [%s] must be 1-255 characters of letters, numbers, "
                              "hyphens and underscores." % secret_id)
            if not isinstance(doc, dict) or not isinstance(doc.get("replication"), dict) or \
                    not doc["replication"]:
                raise invalid("Secret.replication is required.")
            if secret_id in p.secrets:
                raise ApiError(409, "ALREADY_EXISTS",
                               f"Secret [{p.resource(secret_id)}] already exists.")
            s = {"created": time.time(), "versions": []}
            p.secrets[secret_id] = s
            return self._secret_json(p, secret_id, s)

    def put(self, project_key, name, data):
        """Admin: a secret with one version holding `data` (bytes)."""
        with self.lock:
            p = self.project(project_key, "secretmanager.secrets.create")
            p.secrets[name] = {"created": time.time(), "versions": [
                {"data": data, "state": "ENABLED", "created": time.time()}]}

    def get_secret(self, project_key, name):
        with self.lock:
            p = self.project(project_key, "secretmanager.secrets.get")
            return self._secret_json(p, name, self._secret(p, name))

    def delete_secret(self, project_key, name):
        with self.lock:
            p = self.project(project_key, "secretmanager.secrets.delete")
            self._secret(p, name)
            del p.secrets[name]
            return {}

    def list_secrets(self, project_key, page_size, page_token):
        with self.lock:
            p = self.project(project_key, "secretmanager.secrets.list")
            names = sorted(p.secrets)
            size = page_size or self.page_size
            if size < 0 or size > 25000:
                raise invalid("Page size must be between 0 and 25000.")
            start = 0
            if page_token:
                try:
                    start = int(base64.urlsafe_b64decode(page_token.encode()).decode())
                except ValueError as e:
                    raise invalid("Invalid page token.") from e
            page = names[start:start + size]
            out = {"secrets": [self._secret_json(p, n, p.secrets[n]) for n in page],
                   "totalSize": len(names)}
            if start + size < len(names):
                out["nextPageToken"] = base64.urlsafe_b64encode(
                    str(start + size).encode()).decode()
            if not page:
                del out["secrets"]
            return out

    def add_version(self, project_key, name, doc):
        with self.lock:
            p = self.project(project_key, "secretmanager.versions.add")
            s = self._secret(p, name)
            payload = doc.get("payload") if isinstance(doc, dict) else None
            if not isinstance(payload, dict) or not isinstance(payload.get("data", ""), str):
                raise invalid("Payload is required.")
            try:
                data = base64.b64decode(payload.get("data", ""), validate=True)
            except ValueError as e:
                raise invalid("Invalid value at 'payload.data' (TYPE_BYTES), Base64 decoding "
                              "failed") from e
            if len(data) > MAX_PAYLOAD:
                raise invalid("Secret Payload cannot be larger than 64KiB.")
            if "dataCrc32c" in payload and int(payload["dataCrc32c"]) != crc32c(data):
                raise invalid("Checksum mismatch.")
            s["versions"].append({"data": data, "state": "ENABLED", "created": time.time()})
            n = len(s["versions"])
            return self._version_json(p, name, n, s["versions"][-1])

    def _version(self, p, name, version):
        s = p.secrets.get(name)
        if s is None or not s["versions"]:
            raise not_found(f"Secret [{p.resource(name)}] not found or has no versions.")
        if version == "latest":
            live = [i for i, v in enumerate(s["versions"]) if v["state"] == "ENABLED"]
            if not live:
                raise not_found(f"Secret [{p.resource(name)}] not found or has no versions.")
            number = live[-1] + 1
        else:
            if not version.isdigit() or not 1 <= int(version) <= len(s["versions"]):
                raise not_found(f"Secret Version [{p.resource(name)}/versions/{version}] "
                                "not found.")
            number = int(version)
        return number, s["versions"][number - 1]

    def access_version(self, project_key, name, version):
        with self.lock:
            p = self.project(project_key, "secretmanager.versions.access")
            number, v = self._version(p, name, version)
            if v["state"] != "ENABLED":
                raise ApiError(400, "FAILED_PRECONDITION",
                               f"Secret Version [{p.resource(name)}/versions/{number}] is in "
                               f"{v['state']} state.")
            return {"name": f"{p.resource(name)}/versions/{number}",
                    "payload": {"data": base64.b64encode(v["data"]).decode(),
                                "dataCrc32c": str(crc32c(v["data"]))}}

    def disable_version(self, project_key, name, version):
        with self.lock:
            p = self.project(project_key, "secretmanager.versions.disable")
            number, v = self._version(p, name, version)
            v["state"] = "DISABLED"
            return self._version_json(p, name, number, v)

    def snapshot(self):
        """Admin: every project's secrets and their versions' states."""
        with self.lock:
            seen, out = set(), {}
            for p in self.projects.values():
                if p.id in seen:
                    continue
                seen.add(p.id)
                out[p.id] = {n: {"versions": [
                    {"state": v["state"], "data": base64.b64encode(v["data"]).decode()}
                    for v in s["versions"]]} for n, s in p.secrets.items()}
            return out

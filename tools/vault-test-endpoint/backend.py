"""What a mounted engine sees and answers (shared by kv, transit, auth methods)."""


class Request:
    """One logical request, routed to a mount.

    op: read, list, write, delete or patch (PUT and POST are both write).
    path: the part after the mount path, without leading slash.
    data: the JSON body (write/patch) or the query parameters (read/list).
    """

    def __init__(self, op, path, data, namespace, token, vault):
        self.op = op
        self.path = path
        self.data = data
        self.namespace = namespace
        self.token = token
        self.vault = vault  # core.Vault: clock, token store, namespaces
        self.clock = vault.clock


class Response:
    """A 2xx (or data-carrying 404) answer; rendered in Vault's envelope."""

    def __init__(self, status=200, data=None, auth=None, warnings=None, lease_duration=0,
                 raw=None, wrap_info=None):
        self.status = status
        self.data = data
        self.auth = auth
        self.warnings = warnings
        self.lease_duration = lease_duration
        self.raw = raw  # a document sent as it is (sys/health, sys/mounts)
        self.wrap_info = wrap_info


NO_CONTENT = Response(204)


class Backend:
    type = "?"
    options = None

    def exists(self, req):
        """For writes: False makes the needed capability `create`, else `update`."""
        return True

    def handle(self, req):
        raise NotImplementedError

"""Vault error answers: an HTTP status and the `errors` array.

Every handler raises VaultError; core.py renders it as
`{"errors":[...]}` with Content-Type exactly application/json (hvac parses
errors only for that value) and Cache-Control: no-store, as Vault does.
The texts are the ones real servers send (keystores-vault.md section 10).
"""


class VaultError(Exception):
    def __init__(self, status, errors=(), body=None):
        super().__init__(f"{status}: {list(errors)}")
        self.status = status
        self.errors = list(errors)
        self.body = body  # a full response document instead of {"errors": [...]}


def multierror(text):
    """Go's hashicorp/go-multierror text for one wrapped error."""
    return f"1 error occurred:\n\t* {text}\n\n"


def not_found():
    """A missing KV path or an empty listing: 404 {"errors":[]}."""
    return VaultError(404)


def no_token():
    return VaultError(403, ["permission denied"])


def invalid_token():
    # Vault >= 1.17 adds "invalid token" for unknown, expired and revoked tokens.
    return VaultError(403, ["permission denied", "invalid token"])


def policy_denied():
    return VaultError(403, [multierror("permission denied")])


def sealed():
    return VaultError(503, ["Vault is sealed"])


def bad_request(text):
    return VaultError(400, [text])


def no_route(path):
    return VaultError(404, [f'no handler for route "{path}". route entry not found.'])


def unsupported_operation():
    return VaultError(405, [multierror("unsupported operation")])


def unsupported_path():
    return VaultError(404, ["unsupported path"])

"""Access keys the endpoint accepts: long-term ones from the command line or a
JSON file, and temporary ones minted by its STS, IMDS and ECS handlers.

A temporary key is valid only with its own session token and only until its
expiration; a long-term key is valid only without a token.
"""
import base64
import datetime
import hmac
import json
import secrets
import string
import threading

DEFAULT_ACCESS_KEY = "AKIDEXAMPLE"
DEFAULT_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


class Credential:
    def __init__(self, access_key_id, secret_access_key, session_token=None,
                 expiration=None, principal_arn=None):
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.expiration = expiration  # epoch seconds or None
        self.principal_arn = principal_arn

    @property
    def temporary(self):
        return self.session_token is not None

    def to_json(self):
        doc = {"AccessKeyId": self.access_key_id,
               "SecretAccessKey": self.secret_access_key}
        if self.session_token is not None:
            doc["SessionToken"] = self.session_token
        if self.expiration is not None:
            doc["Expiration"] = iso8601(self.expiration)
        return doc


def iso8601(epoch):
    return datetime.datetime.fromtimestamp(
        int(epoch), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _random_upper(n):
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


class CredentialStore:
    def __init__(self, account):
        self._lock = threading.Lock()
        self._by_key = {}
        self.account = account

    def add(self, cred):
        with self._lock:
            self._by_key[cred.access_key_id] = cred
        return cred

    def add_long_term(self, access_key_id, secret_access_key, principal_arn=None):
        return self.add(Credential(
            access_key_id, secret_access_key, None, None,
            principal_arn or f"arn:aws:iam::{self.account}:user/{access_key_id}"))

    def load_json_file(self, path):
        """[{"access_key_id": .., "secret_access_key": .., "session_token"?: ..,
        "expiration"?: epoch seconds}, ...]"""
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
        for e in entries:
            self.add(Credential(e["access_key_id"], e["secret_access_key"],
                                e.get("session_token"), e.get("expiration"),
                                e.get("principal_arn")))

    def mint(self, expiration, principal_arn):
        """New temporary credentials (ASIA key, random secret and token)."""
        token = base64.b64encode(secrets.token_bytes(96)).decode("ascii")
        cred = Credential("ASIA" + _random_upper(16),
                          base64.b64encode(secrets.token_bytes(30)).decode("ascii"),
                          token, expiration, principal_arn)
        return self.add(cred)

    def lookup(self, access_key_id):
        with self._lock:
            return self._by_key.get(access_key_id)

    def expire(self, access_key_id, now):
        with self._lock:
            cred = self._by_key.get(access_key_id)
            if cred is None or not cred.temporary:
                return False
            cred.expiration = now - 1
            return True

    def token_matches(self, cred, token):
        if cred.session_token is None or token is None:
            return cred.session_token is None and token is None
        return hmac.compare_digest(cred.session_token.encode(), token.encode())

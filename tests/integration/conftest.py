"""Shared pytest fixtures for kes-cpp integration tests.

Fixtures:
  certs        (session) server certificate and client identities:
               "admin" (the admin), "client" (ECDSA, bound to policy my-app),
               "apikey" (Ed25519 from a kes:v1: API key, bound to my-app),
               "unknown" (ECDSA, no policy), "rsa" (RSA, no policy),
               "ca" (a CA:TRUE certificate), "chain" (leaf + CA in one file).
  server_cert  (session) the server certificate (SAN 127.0.0.1, localhost).
  kes_server   factory: kes_server(policies=None, config=None, **extra)
               starts a server with an fs keystore in a fresh directory and
               stops it after the test. `config` replaces the generated
               config entirely; `extra` keys are merged into it.
  my_app_policy  the default policy dict used by the API tests.
  keystore_kes factory: keystore_kes(keystore, **extra) starts a server whose
               `keystore:` section is `keystore` (e.g. {"vault": {...}}) and
               stops it after the test.
"""
import os
from pathlib import Path

import pytest

from kes_harness import CertFactory, KesServer, base_config


MY_APP_POLICY = {
    "my-app": {
        "allow": [
            "/v1/key/create/my-app*",
            "/v1/key/generate/my-app*",
            "/v1/key/decrypt/my-app*",
            "/v1/key/encrypt/my-app*",
            "/v1/key/hmac/my-app*",
            "/v1/key/describe/my-app*",
            "/v1/key/list/*",
            "/v1/status",
        ],
        "deny": ["/v1/key/generate/my-app-internal*"],
        "identities": [],  # filled with the client identities
    }
}


@pytest.fixture(scope="session")
def cert_factory(tmp_path_factory):
    return CertFactory(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def server_cert(cert_factory):
    return cert_factory.server()


@pytest.fixture(scope="session")
def certs(cert_factory):
    return {
        "admin": cert_factory.client("admin"),
        "client": cert_factory.client("client"),
        "apikey": cert_factory.api_key_client("apikey"),
        "unknown": cert_factory.client("unknown"),
        "rsa": cert_factory.client("rsa", kind="rsa"),
        "ca": cert_factory.client("ca", ca=True),
        "chain": cert_factory.chain_client("chain"),
    }


@pytest.fixture
def my_app_policy(certs):
    import copy
    p = copy.deepcopy(MY_APP_POLICY)
    p["my-app"]["identities"] = [certs["client"].identity, certs["apikey"].identity]
    return p


@pytest.fixture
def kes_server(tmp_path, certs, server_cert, my_app_policy):
    started = []
    counter = [0]

    def start(policies=None, config=None, args=None, dev=False, **extra):
        counter[0] += 1
        workdir = tmp_path / ("srv%d" % counter[0])
        keystore_dir = workdir / "keys"
        if config is None and not dev:
            config = base_config(certs, server_cert, keystore_dir,
                                 policies if policies is not None else my_app_policy, **extra)
        srv = KesServer(workdir, config, server_cert, certs, args=args, dev=dev)
        srv.keystore_dir = keystore_dir
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture(scope="module")
def module_server(tmp_path_factory, certs, server_cert):
    """One server shared by a whole test module (default my-app policy)."""
    import copy
    policy = copy.deepcopy(MY_APP_POLICY)
    policy["my-app"]["identities"] = [certs["client"].identity, certs["apikey"].identity]
    workdir = tmp_path_factory.mktemp("modsrv")
    cfg = base_config(certs, server_cert, workdir / "keys", policy)
    srv = KesServer(workdir, cfg, server_cert, certs)
    srv.keystore_dir = workdir / "keys"
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def keystore_kes(tmp_path, certs, server_cert):
    started = []

    def start(keystore, **extra):
        cfg = base_config(certs, server_cert, Path("/nonexistent"), **extra)
        cfg["keystore"] = keystore
        srv = KesServer(tmp_path / ("kes%d" % len(started)), cfg, server_cert, certs)
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()

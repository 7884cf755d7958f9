"""The identity of a TLS client is its leaf certificate's, and only the leaf's
(api.md §2.1): TLS proves possession of the leaf's private key and of nothing
else the client sends.

Upstream KES dropped every CA certificate from the peer chain and hashed the
one non-CA certificate left, so a client could send its own self-signed
CA:TRUE certificate as the leaf followed by the admin's (public) certificate,
or any certificate carrying the admin's public key, and be served as the
admin. Each attack shape below is tried against the real server with
`tls.auth` off (the default, and what API-key clients use) and on."""
import datetime

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kes_harness import Identity, KesServer, error_body, identity_of_public_key

NO_IDENTITY = error_body("tls: client certificate is required")
TOO_MANY = error_body("tls: received more than one client certificate")


def _cert(subject, public_key, signer_key, issuer=None, ca=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder()
               .subject_name(name)
               .issuer_name(issuer or name)
               .public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=1))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(signer_key, hashes.SHA256())


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


class Credentials:
    """Writes a client credential whose certificate file holds `chain` in
    order (the first one is the TLS leaf, proven with `key`)."""

    def __init__(self, directory):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)

    def write(self, name, key, chain):
        cert_path = self.dir / (name + ".crt")
        key_path = self.dir / (name + ".key")
        cert_path.write_bytes(b"".join(c if isinstance(c, bytes) else _pem(c) for c in chain))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return Identity(name, str(cert_path), str(key_path),
                        identity_of_public_key(key.public_key()))


@pytest.fixture(scope="module")
def shapes(tmp_path_factory, certs):
    """Every certificate-chain shape a client may send, keyed by name."""
    out = Credentials(tmp_path_factory.mktemp("chains"))
    admin_cert_pem = open(certs["admin"].cert, "rb").read()
    admin_cert = x509.load_pem_x509_certificate(admin_cert_pem)
    attacker = ec.generate_private_key(ec.SECP256R1())
    attacker_ca = _cert("attacker", attacker.public_key(), attacker, ca=True)
    forged = _cert("forged admin", admin_cert.public_key(), attacker, issuer=attacker_ca.subject)

    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _cert("root", root_key.public_key(), root_key, ca=True)
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = _cert("intermediate", inter_key.public_key(), root_key, issuer=root.subject, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert("leaf", leaf_key.public_key(), inter_key, issuer=inter.subject)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _cert("other", other_key.public_key(), inter_key, issuer=inter.subject)
    root_path = out.dir / "root.crt"
    root_path.write_bytes(_pem(root))

    return {
        # The attack of api.md §2.1: own CA leaf, then the victim's certificate.
        "ca_leaf_then_admin": out.write("ca_leaf_then_admin", attacker, [attacker_ca, admin_cert_pem]),
        # The same with a certificate that merely carries the victim's key.
        "ca_leaf_then_forged": out.write("ca_leaf_then_forged", attacker, [attacker_ca, forged]),
        # A legitimate leaf followed by a second non-CA certificate.
        "leaf_then_other": out.write("leaf_then_other", leaf_key, [leaf, other, inter, root]),
        # A legitimate leaf with its intermediate and root CAs.
        "leaf_with_cas": out.write("leaf_with_cas", leaf_key, [leaf, inter, root]),
        "root": root_path,
    }


def _server(tmp_path, certs, server_cert, shapes, auth):
    policies = {
        "chained": {"allow": ["/v1/key/create/chained-*", "/v1/identity/self/describe"],
                    "identities": [shapes["leaf_with_cas"].identity, certs["apikey"].identity]},
    }
    tls = {"key": server_cert.key, "cert": server_cert.cert}
    if auth == "on":
        tls.update(auth="on", ca=str(shapes["root"]))
    cfg = {
        "version": "v1",
        "address": "127.0.0.1:0",
        "admin": {"identity": certs["admin"].identity},
        "tls": tls,
        "policy": policies,
        "keystore": {"fs": {"path": str(tmp_path / "keys")}},
    }
    identities = dict(certs)
    identities.update({k: v for k, v in shapes.items() if isinstance(v, Identity)})
    return KesServer(tmp_path / "srv", cfg, server_cert, identities).start()


@pytest.fixture(params=["off", "on"])
def server(request, tmp_path, certs, server_cert, shapes):
    srv = _server(tmp_path, certs, server_cert, shapes, request.param)
    srv.auth = request.param
    yield srv
    srv.stop()


def _try_as(srv, client):
    """The answers of self-describe and of an admin-only create, or None
    when the TLS handshake itself is refused (tls.auth: on)."""
    try:
        me = srv.get("/v1/identity/self/describe", client=client)
        create = srv.post("/v1/key/create/stolen-%s" % client, client=client)
    except requests.exceptions.ConnectionError:
        return None
    return me, create


@pytest.mark.parametrize("shape", ["ca_leaf_then_admin", "ca_leaf_then_forged"])
def test_ca_leaf_never_borrows_the_identity_behind_it(server, shape):
    answers = _try_as(server, shape)
    if server.auth == "on" and answers is None:
        return  # an untrusted CA leaf does not even finish the handshake
    me, create = answers
    # Self-describe only identifies (api.md §2.3): no identity, so no entry.
    assert (me.status_code, me.content) == (404, error_body("identity does not exist"))
    assert (create.status_code, create.content) == (400, NO_IDENTITY)
    # Nothing was created as the admin.
    assert server.get("/v1/key/describe/stolen-%s" % shape).status_code == 404


def test_second_non_ca_certificate_is_refused(server):
    me, create = _try_as(server, "leaf_then_other")
    assert (me.status_code, me.content) == (404, error_body("identity does not exist"))
    assert (create.status_code, create.content) == (400, TOO_MANY)


def test_leaf_with_intermediate_and_root_is_the_leaf(server, shapes):
    me = server.get("/v1/identity/self/describe", client="leaf_with_cas")
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["identity"] == shapes["leaf_with_cas"].identity
    assert body.get("admin", False) is False
    assert server.post("/v1/key/create/chained-1", client="leaf_with_cas").status_code == 200
    assert server.post("/v1/key/create/other-1", client="leaf_with_cas").status_code == 403


def test_admin_and_api_key_clients_are_unaffected(server, certs):
    if server.auth == "on":
        # Self-signed admin and API-key certificates do not chain to tls.ca.
        assert _try_as(server, "admin") is None
        return
    me = server.get("/v1/identity/self/describe", client="admin")
    assert me.status_code == 200 and me.json()["admin"] is True
    me = server.get("/v1/identity/self/describe", client="apikey")
    assert me.status_code == 200 and me.json()["identity"] == certs["apikey"].identity

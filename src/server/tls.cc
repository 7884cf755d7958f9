#include "server/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "identity/certificate.h"
#include "identity/identity.h"
#include "identity/pem.h"

namespace kes::server {
namespace {

// Server preference, as upstream (Go's net/http): h2, then http/1.1.
constexpr unsigned char kAlpnProtocols[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// Chooses h2 if the client offers it, else http/1.1; no ALPN extension in
// the answer when the client offers neither.
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  unsigned char* sel = nullptr;
  unsigned char sellen = 0;
  if (SSL_select_next_proto(&sel, &sellen, kAlpnProtocols, sizeof kAlpnProtocols, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = sel;
    *outlen = sellen;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

// Default mode: any client certificate is accepted without path validation
// (TLS still proves possession of its private key).
int AcceptAnyCertificate(int, X509_STORE_CTX*) { return 1; }

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

Result<SslCtxPtr> NewBaseContext() {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return Status::Internal("tls: " + OpenSslError());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION);
  SSL_CTX_set_options(
      ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  // Offer Ed25519 (API-key clients) next to ECDSA and RSA for client
  // CertificateVerify in TLS 1.2 and 1.3.
  SSL_CTX_set1_sigalgs_list(ctx.get(),
                            "ed25519:ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512:"
                            "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:"
                            "rsa_pss_pss_sha256:rsa_pss_pss_sha384:rsa_pss_pss_sha512:"
                            "RSA+SHA256:RSA+SHA384:RSA+SHA512:ECDSA+SHA1:RSA+SHA1");
  SSL_CTX_set_alpn_select_cb(ctx.get(), SelectAlpn, nullptr);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_SERVER);
  static const unsigned char kSid[] = "kes-cpp";
  SSL_CTX_set_session_id_context(ctx.get(), kSid, sizeof kSid - 1);
  return ctx;
}

bool HasIpOrDnsSan(X509* cert) {
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return false;
  bool found = false;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_DNS || n->type == GEN_IPADD) found = true;
  }
  GENERAL_NAMES_free(names);
  return found;
}

}  // namespace

Result<SslCtxPtr> MakeServerTlsContext(const config::TlsConfig& tls, bool any_skip_auth) {
  KES_ASSIGN_OR_RETURN(SslCtxPtr ctx, NewBaseContext());

  auto certs = identity::LoadCertificateFile(tls.cert_file);
  if (!certs.ok()) return certs.status().WithContext("failed to read TLS certificate");
  auto key = identity::LoadPrivateKeyFile(tls.key_file, tls.password);
  if (!key.ok()) return key.status().WithContext("failed to read TLS certificate");
  auto& chain = *certs;
  if (chain.empty())
    return Status::Invalid("failed to read TLS certificate: https: no valid PEM data");
  if (Status s = identity::CheckKeyMatchesCertificate(key->get(), chain[0].get()); !s.ok()) {
    return s.WithContext("failed to read TLS certificate");
  }
  if (!HasIpOrDnsSan(chain[0].get())) {
    return Status::Invalid(
        "invalid TLS certificate: certificate does not contain any DNS or IP address as SAN");
  }
  if (SSL_CTX_use_certificate(ctx.get(), chain[0].get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx.get(), key->get()) != 1) {
    return Status::Invalid("failed to read TLS certificate: " + OpenSslError());
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    // add1: the context takes its own reference.
    SSL_CTX_add1_chain_cert(ctx.get(), chain[i].get());
  }

  if (tls.auth == config::TlsAuth::kOn) {
    // Verify against the system roots plus tls.ca; client-auth purpose.
    X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
    X509_STORE_set_default_paths(store);
    if (!tls.ca_path.empty()) {
      auto cas = identity::LoadCertificateAuthorities(tls.ca_path);
      if (!cas.ok()) return cas.status().WithContext("failed to read TLS CA certificates");
      for (auto& ca : *cas) X509_STORE_add_cert(store, ca.get());
    }
    SSL_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
    SSL_CTX_set_verify(
        ctx.get(),
        any_skip_auth ? SSL_VERIFY_PEER : SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
        nullptr);
  } else {
    if (!tls.ca_path.empty()) {
      // Loaded for validation only, as upstream does.
      auto cas = identity::LoadCertificateAuthorities(tls.ca_path);
      if (!cas.ok()) return cas.status().WithContext("failed to read TLS CA certificates");
    }
    SSL_CTX_set_verify(
        ctx.get(),
        any_skip_auth ? SSL_VERIFY_PEER : SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
        AcceptAnyCertificate);
  }
  return ctx;
}

Result<SslCtxPtr> MakeDevTlsContext(const std::vector<std::string>& ips) {
  KES_ASSIGN_OR_RETURN(SslCtxPtr ctx, NewBaseContext());

  // ECDSA P-256, CN localhost, serverAuth, the listener's IPs as SANs, 90
  // days (api.md §2.6.5): identity/ makes every certificate kes creates.
  KES_ASSIGN_OR_RETURN(identity::PrivateKeyPtr key, identity::GenerateEcdsaP256Key());
  identity::CertificateOptions opts;
  opts.common_name = "localhost";
  opts.ip_addresses = ips;
  opts.client_auth = false;
  opts.server_auth = true;
  auto cert = identity::CreateSelfSignedCertificate(key.get(), opts);
  if (!cert.ok()) return cert.status().WithContext("failed to generate TLS certificate");
  if (SSL_CTX_use_certificate(ctx.get(), cert->get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1) {
    return Status::Internal("failed to generate TLS certificate: " + OpenSslError());
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     AcceptAnyCertificate);
  return ctx;
}

PeerIdentity PeerIdentityOf(SSL* ssl) {
  PeerIdentity out;
  // TLS proves possession of the leaf's private key and of nothing else, so
  // the identity is the leaf's only (api.md §2.1). The rest of the chain may
  // hold CA certificates; a second non-CA certificate there is refused rather
  // than ignored, as Go clients treat it. On the server side OpenSSL keeps the
  // leaf out of the peer chain.
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (leaf == nullptr || identity::IsCA(leaf)) return out;  // kNoCertificate
  if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl); chain != nullptr) {
    for (int i = 0; i < sk_X509_num(chain); ++i) {
      if (!identity::IsCA(sk_X509_value(chain, i))) {
        out.error = PeerIdentity::Error::kTooMany;
        return out;
      }
    }
  }
  auto id = identity::IdentityOf(leaf);
  if (!id.ok()) return out;  // kNoCertificate
  out.error = PeerIdentity::Error::kNone;
  out.identity = std::move(*id);
  return out;
}

}  // namespace kes::server

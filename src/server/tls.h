// The listener's TLS configuration (api.md §1.1, §2.6.1; config.md §3.4)
// and the identity of a TLS peer (api.md §2.1).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "config/config.h"

namespace kes::server {

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// A server context from the config file's tls section: TLS 1.2-1.3, ALPN
// http/1.1, client certificate mode per tls.auth, relaxed to "request"
// when `any_skip_auth`. Errors carry upstream's wording.
Result<SslCtxPtr> MakeServerTlsContext(const config::TlsConfig& tls, bool any_skip_auth);

// `--dev`: a fresh self-signed ECDSA P-256 certificate (CN localhost, 90
// days, serverAuth, IP SANs = `ips`), client certificate required but not
// verified.
Result<SslCtxPtr> MakeDevTlsContext(const std::vector<std::string>& ips);

struct PeerIdentity {
  enum class Error { kNone, kNoCertificate, kTooMany };
  Error error = Error::kNoCertificate;
  std::string identity;  // lowercase hex, empty unless error == kNone
};

// Identity of the client of an established TLS connection: the leaf
// certificate's, which must not be a CA; every other certificate the client
// sent must be a CA certificate (api.md §2.1).
PeerIdentity PeerIdentityOf(SSL* ssl);

}  // namespace kes::server

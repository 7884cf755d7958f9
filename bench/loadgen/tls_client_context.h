// The client SSL_CTX of the load generator: TLS 1.2+ (or 1.3 only), no
// server certificate verification (benchmarks use throw-away certificates),
// and a client certificate from PEM files or from a KES API key.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "loadgen/load_config.h"

namespace kes::bench {

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// nullptr and a message in `error` on failure.
SslCtxPtr MakeClientContext(const LoadConfig& config, std::string* error);

}  // namespace kes::bench

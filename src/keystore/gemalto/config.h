// `keystore.gemalto.keysecure` (config.md §3.10, keystores-cloud.md §3):
// Thales CipherTrust Manager / Gemalto KeySecure, one vault secret per key,
// logged in with a refresh token.
#pragma once

#include <string>

#include "keystore/registry.h"

namespace kes::keystore::gemalto {

struct Config : BackendConfig {
  std::string endpoint;
  std::string token;   // the refresh token
  std::string domain;  // empty: the root domain
  std::string tls_ca;  // CA file or directory; empty: system roots

  ~Config() override;
  std::string_view Kind() const override { return "gemalto.keysecure"; }
  Status Validate() override;
  Result<std::unique_ptr<KeyStore>> Connect() const override;
};

const Backend& Registration();

}  // namespace kes::keystore::gemalto

// `keystore.vault` (config.md §3.10, keystores.md §6): HashiCorp Vault or
// OpenBao K/V, with AppRole or Kubernetes login and optional transit
// encryption of the stored values.
#pragma once

#include <chrono>
#include <string>

#include "keystore/registry.h"

namespace kes::keystore::vault {

struct Config : BackendConfig {
  std::string endpoint;
  std::string engine = "kv";
  std::string engine_version = "v1";
  std::string namespace_;
  std::string prefix;
  bool has_transit = false;
  std::string transit_engine = "transit";
  std::string transit_key;
  bool has_approle = false;
  std::string approle_engine = "approle";
  std::string approle_namespace;
  std::string approle_id;
  std::string approle_secret;
  bool has_kubernetes = false;
  std::string kubernetes_engine = "kubernetes";
  std::string kubernetes_namespace;
  std::string kubernetes_role;
  std::string kubernetes_jwt;       // the token (read from the file if jwt was a path)
  std::string kubernetes_jwt_file;  // non-empty if jwt was given as a path: re-read per login
  std::string tls_key;
  std::string tls_cert;
  std::string tls_ca;
  std::chrono::nanoseconds status_ping = std::chrono::seconds(15);

  std::string_view Kind() const override { return "vault"; }
  Status Validate() override;
  Result<std::unique_ptr<KeyStore>> Connect() const override;

  // As decoded, before defaults (an empty value means "default").
  struct Raw {
    std::string engine, version, transit_engine, approle_engine, kubernetes_engine;
  } raw;
};

const Backend& Registration();

}  // namespace kes::keystore::vault

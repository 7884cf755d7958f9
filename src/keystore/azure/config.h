// `keystore.azure.keyvault` (config.md §3.10, keystores-cloud.md §1): Azure
// Key Vault secrets, with client-secret, managed-identity or default-chain
// credentials.
#pragma once

#include <string>

#include "keystore/registry.h"

namespace kes::keystore::azure {

struct Config : BackendConfig {
  std::string endpoint;
  bool has_credentials = false;
  std::string tenant_id, client_id, client_secret;
  bool has_managed_identity = false;
  std::string managed_identity_client_id;

  std::string_view Kind() const override { return "azure.keyvault"; }
  Status Validate() override;
  Result<std::unique_ptr<KeyStore>> Connect() const override;
};

const Backend& Registration();

}  // namespace kes::keystore::azure

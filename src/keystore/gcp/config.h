// `keystore.gcp.secretmanager` (config.md §3.10, keystores-cloud.md §2):
// Google Cloud Secret Manager over its REST API, one secret per key.
#pragma once

#include <string>
#include <vector>

#include "keystore/registry.h"

namespace kes::keystore::gcp {

struct Config : BackendConfig {
  std::string project_id;
  std::string endpoint;  // "host:port" (gRPC style) or a URL; empty = Google's
  std::vector<std::string> scopes;
  std::string client_email, client_id, private_key_id, private_key;

  std::string_view Kind() const override { return "gcp.secretmanager"; }
  Status Validate() override;
  Result<std::unique_ptr<KeyStore>> Connect() const override;
};

const Backend& Registration();

}  // namespace kes::keystore::gcp

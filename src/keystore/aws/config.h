// `keystore.aws.secretsmanager` (config.md §3.10, keystores.md §4).
#pragma once

#include "keystore/aws/secrets_manager.h"
#include "keystore/registry.h"

namespace kes::keystore::aws {

struct Config : BackendConfig {
  SecretsManagerOptions options;

  std::string_view Kind() const override { return "aws.secretsmanager"; }
  Status Validate() override;
  Result<std::unique_ptr<KeyStore>> Connect() const override;
};

const Backend& Registration();

}  // namespace kes::keystore::aws

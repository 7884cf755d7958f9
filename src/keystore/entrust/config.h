// `keystore.entrust.keycontrol` (config.md §3.10, keystores-cloud.md §5):
// an Entrust KeyControl vault, one secret per key in one box.
#pragma once

#include <string>

#include "keystore/registry.h"

namespace kes::keystore::entrust {

struct Config : BackendConfig {
  std::string endpoint, vault_id, box_id, username, password, tls_ca;

  std::string_view Kind() const override { return "entrust.keycontrol"; }
  Status Validate() override;
  Result<std::unique_ptr<KeyStore>> Connect() const override;
};

const Backend& Registration();

}  // namespace kes::keystore::entrust

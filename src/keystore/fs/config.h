// `keystore.fs` (config.md §3.10): a directory holding one file per key.
#pragma once

#include <string>

#include "keystore/registry.h"

namespace kes::keystore::fs {

struct Config : BackendConfig {
  std::string path;

  std::string_view Kind() const override { return "fs"; }
  Status Validate() override;
  Result<std::unique_ptr<KeyStore>> Connect() const override;
};

const Backend& Registration();

}  // namespace kes::keystore::fs

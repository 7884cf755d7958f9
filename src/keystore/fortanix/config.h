// `keystore.fortanix.sdkms` (config.md §3.10, keystores-cloud.md §4):
// Fortanix DSM (SDKMS), one opaque security object per key.
#pragma once

#include <string>

#include "keystore/registry.h"

namespace kes::keystore::fortanix {

struct Config : BackendConfig {
  std::string endpoint;
  std::string group_id;  // empty: the application's default group
  std::string api_key;   // base64("<app uuid>:<secret>"), sent verbatim
  std::string tls_ca;    // CA file or directory; empty: system roots

  ~Config() override;
  std::string_view Kind() const override { return "fortanix.sdkms"; }
  Status Validate() override;
  Result<std::unique_ptr<KeyStore>> Connect() const override;
};

const Backend& Registration();

}  // namespace kes::keystore::fortanix

// `keystore.fortanix.sdkms` (config.md §3.10): validated so that upstream
// files load; this build cannot connect to it.
#include "keystore/registry.h"

namespace kes::keystore::fortanix {
namespace {

struct Config : BackendConfig {
  std::string endpoint, group_id, api_key, tls_ca;

  std::string_view Kind() const override { return "fortanix.sdkms"; }
  Status Validate() override {
    const std::string p = "kesconf: invalid fortanix SDKMS keystore: ";
    if (endpoint.empty()) return Status::Invalid(p + "no endpoint specified");
    if (api_key.empty()) return Status::Invalid(p + "no API key specified");
    return Status::Ok();
  }
  Result<std::unique_ptr<KeyStore>> Connect() const override { return NotBuilt(Kind()); }
};

std::unique_ptr<BackendConfig> Decode(yaml::YamlDecoder& d, const YAML::Node& node) {
  auto c = std::make_unique<Config>();
  bool present = false;
  d.Mapping(node, "keystore.fortanix", "kesconf.ymlFortanix",
            {{"sdkms", [&](const YAML::Node& n) {
                present =
                    d.Mapping(n, "keystore.fortanix.sdkms", "kesconf.ymlFortanixSDKMS",
                              {{"endpoint", d.Str(&c->endpoint)},
                               {"group_id", d.Str(&c->group_id)},
                               {"credentials", d.Section("keystore.fortanix.sdkms.credentials",
                                                         "kesconf.ymlFortanixCredentials",
                                                         {{"key", d.Str(&c->api_key)}})},
                               {"tls", d.Section("keystore.fortanix.sdkms.tls", "kesconf.tls",
                                                 {{"ca", d.Str(&c->tls_ca)}})}});
              }}});
  return present ? std::move(c) : nullptr;
}

}  // namespace

const Backend& Registration() {
  static const Backend backend{"fortanix", "fortanix.sdkms", false, &Decode};
  return backend;
}

}  // namespace kes::keystore::fortanix

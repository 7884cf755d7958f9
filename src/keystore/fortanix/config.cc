#include "keystore/fortanix/config.h"

#include "crypto/secret_bytes.h"
#include "keystore/fortanix/fortanix_keystore.h"

namespace kes::keystore::fortanix {
namespace {

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

Config::~Config() { crypto::Zeroize(api_key.data(), api_key.size()); }

Status Config::Validate() {
  const std::string p = "kesconf: invalid fortanix SDKMS keystore: ";
  if (endpoint.empty()) return Status::Invalid(p + "no endpoint specified");
  if (api_key.empty()) return Status::Invalid(p + "no API key specified");
  return Status::Ok();
}

Result<std::unique_ptr<KeyStore>> Config::Connect() const { return Open(*this); }

const Backend& Registration() {
  static const Backend backend{"fortanix", "fortanix.sdkms", &Decode};
  return backend;
}

}  // namespace kes::keystore::fortanix

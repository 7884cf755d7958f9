// Decoding and validation of `keystore.azure.keyvault` (config.md §3.10),
// with upstream's messages.
#include "keystore/azure/config.h"

#include "keystore/azure/azure_keystore.h"

namespace kes::keystore::azure {
namespace {

std::unique_ptr<BackendConfig> Decode(yaml::YamlDecoder& d, const YAML::Node& node) {
  auto c = std::make_unique<Config>();
  bool present = false;
  d.Mapping(node, "keystore.azure", "kesconf.ymlAzure",
            {{"keyvault", [&](const YAML::Node& n) {
                present = d.Mapping(
                    n, "keystore.azure.keyvault", "kesconf.ymlAzureKeyVault",
                    {{"endpoint", d.Str(&c->endpoint)},
                     {"credentials",
                      [&](const YAML::Node& m) {
                        c->has_credentials = d.Mapping(
                            m, "keystore.azure.keyvault.credentials", "kesconf.ymlAzureCredentials",
                            {{"tenant_id", d.Str(&c->tenant_id)},
                             {"client_id", d.Str(&c->client_id)},
                             {"client_secret", d.Str(&c->client_secret)}});
                      }},
                     {"managed_identity", [&](const YAML::Node& m) {
                        c->has_managed_identity =
                            d.Mapping(m, "keystore.azure.keyvault.managed_identity",
                                      "kesconf.ymlAzureManagedIdentity",
                                      {{"client_id", d.Str(&c->managed_identity_client_id)}});
                      }}});
              }}});
  return present ? std::move(c) : nullptr;
}

}  // namespace

Status Config::Validate() {
  const std::string p = "kesconf: invalid Azure keyvault keystore: ";
  if (endpoint.empty()) return Status::Invalid(p + "no endpoint specified");
  if (has_credentials && has_managed_identity) {
    return Status::Invalid(p + "more than one authentication method specified");
  }
  if (has_credentials) {
    if (tenant_id.empty()) return Status::Invalid(p + "no tenant ID specified");
    if (client_id.empty()) return Status::Invalid(p + "no client ID specified");
    if (client_secret.empty()) return Status::Invalid(p + "no client secret specified");
  }
  if (has_managed_identity && managed_identity_client_id.empty()) {
    return Status::Invalid(p + "no client ID specified");
  }
  return Status::Ok();
}

Result<std::unique_ptr<KeyStore>> Config::Connect() const { return Open(*this); }

const Backend& Registration() {
  static const Backend backend{"azure", "azure.keyvault", &Decode};
  return backend;
}

}  // namespace kes::keystore::azure

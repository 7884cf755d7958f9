#include "keystore/gcp/config.h"

#include "keystore/gcp/secret_manager.h"

namespace kes::keystore::gcp {
namespace {

std::unique_ptr<BackendConfig> Decode(yaml::YamlDecoder& d, const YAML::Node& node) {
  auto c = std::make_unique<Config>();
  bool present = false;
  d.Mapping(node, "keystore.gcp", "kesconf.ymlGCP",
            {{"secretmanager", [&](const YAML::Node& n) {
                present = d.Mapping(
                    n, "keystore.gcp.secretmanager", "kesconf.ymlGCPSecretManager",
                    {{"project_id", d.Str(&c->project_id)},
                     {"endpoint", d.Str(&c->endpoint)},
                     {"scopes", [&](const YAML::Node& s) { d.StringList(s, &c->scopes); }},
                     {"credentials", d.Section("keystore.gcp.secretmanager.credentials",
                                               "kesconf.ymlGCPCredentials",
                                               {{"client_email", d.Str(&c->client_email)},
                                                {"client_id", d.Str(&c->client_id)},
                                                {"private_key_id", d.Str(&c->private_key_id)},
                                                {"private_key", d.Str(&c->private_key)}})}});
              }}});
  return present ? std::move(c) : nullptr;
}

}  // namespace

Status Config::Validate() {
  if (project_id.empty()) {
    return Status::Invalid("kesconf: invalid GCP secretmanager keystore: no project ID specified");
  }
  return Status::Ok();
}

Result<std::unique_ptr<KeyStore>> Config::Connect() const { return Open(*this); }

const Backend& Registration() {
  static const Backend backend{"gcp", "gcp.secretmanager", &Decode};
  return backend;
}

}  // namespace kes::keystore::gcp

#include "keystore/aws/config.h"

namespace kes::keystore::aws {

Status Config::Validate() {
  const std::string p = "kesconf: invalid AWS secretsmanager keystore: ";
  if (options.endpoint.empty()) return Status::Invalid(p + "no endpoint specified");
  if (options.region.empty()) return Status::Invalid(p + "no region specified");
  return Status::Ok();
}

Result<std::unique_ptr<KeyStore>> Config::Connect() const { return NewSecretsManager(options); }

namespace {

std::unique_ptr<BackendConfig> Decode(yaml::YamlDecoder& d, const YAML::Node& node) {
  auto c = std::make_unique<Config>();
  SecretsManagerOptions& o = c->options;
  bool present = false;
  d.Mapping(node, "keystore.aws", "kesconf.ymlAWS",
            {{"secretsmanager", [&](const YAML::Node& n) {
                present =
                    d.Mapping(n, "keystore.aws.secretsmanager", "kesconf.ymlAWSSecretsManager",
                              {{"endpoint", d.Str(&o.endpoint)},
                               {"region", d.Str(&o.region)},
                               {"kmskey", d.Str(&o.kms_key)},
                               {"credentials", d.Section("keystore.aws.secretsmanager.credentials",
                                                         "kesconf.ymlAWSCredentials",
                                                         {{"accesskey", d.Str(&o.access_key)},
                                                          {"secretkey", d.Str(&o.secret_key)},
                                                          {"token", d.Str(&o.session_token)}})}});
              }}});
  return present ? std::move(c) : nullptr;
}

}  // namespace

const Backend& Registration() {
  static const Backend backend{"aws", "aws.secretsmanager", &Decode};
  return backend;
}

}  // namespace kes::keystore::aws

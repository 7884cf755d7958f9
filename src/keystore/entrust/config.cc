#include "keystore/entrust/config.h"

#include "keystore/entrust/keycontrol_keystore.h"

namespace kes::keystore::entrust {

Status Config::Validate() {
  const std::string p = "kesconf: invalid Entrust KeyControl keystore: ";
  if (endpoint.empty()) return Status::Invalid(p + "no endpoint specified");
  if (vault_id.empty()) return Status::Invalid(p + "no vault ID specified");
  if (box_id.empty()) return Status::Invalid(p + "no box ID specified");
  // Upstream dereferences a missing credentials block; report it instead.
  if (username.empty()) return Status::Invalid(p + "no username specified");
  if (password.empty()) return Status::Invalid(p + "no password specified");
  return Status::Ok();
}

Result<std::unique_ptr<KeyStore>> Config::Connect() const { return Open(*this); }

namespace {

std::unique_ptr<BackendConfig> Decode(yaml::YamlDecoder& d, const YAML::Node& node) {
  auto c = std::make_unique<Config>();
  bool present = false;
  d.Mapping(node, "keystore.entrust", "kesconf.ymlEntrust",
            {{"keycontrol", [&](const YAML::Node& n) {
                present =
                    d.Mapping(n, "keystore.entrust.keycontrol", "kesconf.ymlEntrustKeyControl",
                              {{"endpoint", d.Str(&c->endpoint)},
                               {"vault_id", d.Str(&c->vault_id)},
                               {"box_id", d.Str(&c->box_id)},
                               {"credentials", d.Section("keystore.entrust.keycontrol.credentials",
                                                         "kesconf.ymlEntrustCredentials",
                                                         {{"username", d.Str(&c->username)},
                                                          {"password", d.Str(&c->password)}})},
                               {"tls", d.Section("keystore.entrust.keycontrol.tls", "kesconf.tls",
                                                 {{"ca", d.Str(&c->tls_ca)}})}});
              }}});
  return present ? std::move(c) : nullptr;
}

}  // namespace

const Backend& Registration() {
  static const Backend backend{"entrust", "entrust.keycontrol", &Decode};
  return backend;
}

}  // namespace kes::keystore::entrust

#include "keystore/gemalto/config.h"

#include "crypto/secret_bytes.h"
#include "keystore/gemalto/gemalto_keystore.h"

namespace kes::keystore::gemalto {
namespace {

std::unique_ptr<BackendConfig> Decode(yaml::YamlDecoder& d, const YAML::Node& node) {
  auto c = std::make_unique<Config>();
  bool present = false;
  d.Mapping(node, "keystore.gemalto", "kesconf.ymlGemalto",
            {{"keysecure", [&](const YAML::Node& n) {
                present =
                    d.Mapping(n, "keystore.gemalto.keysecure", "kesconf.ymlKeySecure",
                              {{"endpoint", d.Str(&c->endpoint)},
                               {"credentials", d.Section("keystore.gemalto.keysecure.credentials",
                                                         "kesconf.ymlKeySecureCredentials",
                                                         {{"token", d.Str(&c->token)},
                                                          {"domain", d.Str(&c->domain)},
                                                          // Documented but never parsed upstream.
                                                          {"retry", [](const YAML::Node&) {}}})},
                               {"tls", d.Section("keystore.gemalto.keysecure.tls", "kesconf.tls",
                                                 {{"ca", d.Str(&c->tls_ca)}})}});
              }}});
  return present ? std::move(c) : nullptr;
}

}  // namespace

Config::~Config() { crypto::Zeroize(token.data(), token.size()); }

Status Config::Validate() {
  const std::string p = "kesconf: invalid gemalto keysecure keystore: ";
  if (endpoint.empty()) return Status::Invalid(p + "no endpoint specified");
  if (token.empty()) return Status::Invalid(p + "no token specified");
  return Status::Ok();
}

Result<std::unique_ptr<KeyStore>> Config::Connect() const { return Open(*this); }

const Backend& Registration() {
  static const Backend backend{"gemalto", "gemalto.keysecure", &Decode};
  return backend;
}

}  // namespace kes::keystore::gemalto

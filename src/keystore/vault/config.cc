#include "keystore/vault/config.h"

#include "common/os.h"
#include "keystore/vault/vault_keystore.h"

namespace kes::keystore::vault {
namespace {

std::unique_ptr<BackendConfig> Decode(yaml::YamlDecoder& d, const YAML::Node& node) {
  auto c = std::make_unique<Config>();
  Config::Raw& r = c->raw;
  const auto ignored = [](const YAML::Node&) {};
  std::vector<yaml::YamlDecoder::Field> fields = {
      {"endpoint", d.Str(&c->endpoint)},
      {"engine", d.Str(&r.engine)},
      {"version", d.Str(&r.version)},
      {"namespace", d.Str(&c->namespace_)},
      {"prefix", d.Str(&c->prefix)},
      {"transit",
       [&](const YAML::Node& t) {
         c->has_transit =
             d.Mapping(t, "keystore.vault.transit", "kesconf.ymlVaultTransit",
                       {{"engine", d.Str(&r.transit_engine)}, {"key", d.Str(&c->transit_key)}});
       }},
      {"approle",
       [&](const YAML::Node& t) {
         c->has_approle = d.Mapping(t, "keystore.vault.approle", "kesconf.ymlVaultAppRole",
                                    {{"engine", d.Str(&r.approle_engine)},
                                     {"namespace", d.Str(&c->approle_namespace)},
                                     {"id", d.Str(&c->approle_id)},
                                     {"secret", d.Str(&c->approle_secret)},
                                     // Old configs had a retry interval here; not parsed.
                                     {"retry", ignored}});
       }},
      {"kubernetes",
       [&](const YAML::Node& t) {
         c->has_kubernetes = d.Mapping(t, "keystore.vault.kubernetes", "kesconf.ymlVaultKubernetes",
                                       {{"engine", d.Str(&r.kubernetes_engine)},
                                        {"namespace", d.Str(&c->kubernetes_namespace)},
                                        {"role", d.Str(&c->kubernetes_role)},
                                        {"jwt", d.Str(&c->kubernetes_jwt)},
                                        {"retry", ignored}});
       }},
      {"tls", d.Section("keystore.vault.tls", "kesconf.ymlVaultTLS",
                        {{"key", d.Str(&c->tls_key)},
                         {"cert", d.Str(&c->tls_cert)},
                         {"ca", d.Str(&c->tls_ca)}})},
      {"status", d.Section("keystore.vault.status", "kesconf.ymlVaultStatus",
                           {{"ping",
                             [&](const YAML::Node& p) {
                               Duration ping{0};
                               d.Duration(p, &ping);
                               if (ping.count() != 0) c->status_ping = ping;
                             }}})},
  };
  if (!d.Mapping(node, "keystore.vault", "kesconf.ymlVault", fields)) return nullptr;
  return c;
}

}  // namespace

Status Config::Validate() {
  const std::string p = "kesconf: invalid vault keystore: ";
  if (endpoint.empty()) return Status::Invalid(p + "no endpoint specified");
  if (!has_approle && !has_kubernetes) {
    return Status::Invalid(p + "no authentication method specified");
  }
  if (has_approle && has_kubernetes) {
    return Status::Invalid(p + "more than one authentication method specified");
  }
  if (has_approle) {
    if (approle_id.empty())
      return Status::Invalid(p + "invalid approle config: no approle ID specified");
    if (approle_secret.empty()) {
      return Status::Invalid(p + "invalid approle config: no approle secret specified");
    }
  }
  if (has_kubernetes) {
    if (kubernetes_jwt.empty()) {
      return Status::Invalid(p + "invalid kubernetes config: no JWT specified");
    }
    // A value with a path separator is a file holding the token; it must be
    // readable now and is read again at every login (projected tokens rotate).
    if (kubernetes_jwt.find('/') != std::string::npos) {
      auto jwt = ReadWholeFile(kubernetes_jwt);
      if (!jwt.ok()) {
        return Status::Invalid("kesconf: failed to read vault kubernetes JWT from '" +
                               kubernetes_jwt + "': " + jwt.status().message());
      }
      kubernetes_jwt_file = kubernetes_jwt;
      kubernetes_jwt = *jwt;
    }
  }
  if (has_transit && transit_key.empty()) {
    return Status::Invalid(p + "invalid transit config: no key name specified");
  }
  if (!tls_key.empty() && tls_cert.empty()) {
    return Status::Invalid(p + "invalid tls config: no TLS certificate provided");
  }
  if (tls_key.empty() && !tls_cert.empty()) {
    return Status::Invalid(p + "invalid tls config: no TLS private key provided");
  }
  if (!raw.engine.empty()) engine = raw.engine;
  if (!raw.version.empty()) engine_version = raw.version;
  if (!raw.transit_engine.empty()) transit_engine = raw.transit_engine;
  if (!raw.approle_engine.empty()) approle_engine = raw.approle_engine;
  if (!raw.kubernetes_engine.empty()) kubernetes_engine = raw.kubernetes_engine;
  return Status::Ok();
}

Result<std::unique_ptr<KeyStore>> Config::Connect() const { return Open(*this); }

const Backend& Registration() {
  static const Backend backend{"vault", "vault", &Decode};
  return backend;
}

}  // namespace kes::keystore::vault

#include "keystore/etcd/config.h"

#include "net/url.h"

namespace kes::keystore::etcd {
namespace {

std::unique_ptr<BackendConfig> Decode(yaml::YamlDecoder& d, const YAML::Node& node) {
  auto c = std::make_unique<Config>();
  EtcdOptions& o = c->options;
  std::vector<yaml::YamlDecoder::Field> fields = {
      {"endpoints", [&](const YAML::Node& v) { d.StringList(v, &o.endpoints); }},
      {"prefix", d.Str(&o.prefix)},
      {"username", d.Str(&o.username)},
      {"password", d.Str(&o.password)},
      {"tls",
       d.Section(
           "keystore.etcd.tls", "kesconf.ymlEtcdTLS",
           {{"key", d.Str(&o.tls_key)}, {"cert", d.Str(&o.tls_cert)}, {"ca", d.Str(&o.tls_ca)}})},
  };
  if (!d.Mapping(node, "keystore.etcd", "kesconf.ymlEtcd", fields)) return nullptr;
  return c;
}

}  // namespace

Status Config::Validate() {
  const std::string p = "kesconf: invalid etcd keystore: ";
  if (options.endpoints.empty()) return Status::Invalid(p + "no endpoints specified");
  for (const std::string& e : options.endpoints) {
    auto url = net::Url::Parse(e);
    if (!url.ok())
      return Status::Invalid(p + "invalid endpoint '" + e + "': " + url.status().message());
    if (url->path != "/" || !url->query.empty()) {
      return Status::Invalid(p + "invalid endpoint '" + e + "': must not have a path");
    }
  }
  if (options.username.empty() != options.password.empty()) {
    return Status::Invalid(p + "username and password must be given together");
  }
  if (options.tls_key.empty() != options.tls_cert.empty()) {
    return Status::Invalid(p + "invalid tls config: key and cert must be given together");
  }
  return Status::Ok();
}

Result<std::unique_ptr<KeyStore>> Config::Connect() const { return NewEtcdKeyStore(options); }

const Backend& Registration() {
  static const Backend backend{"etcd", "etcd", &Decode};
  return backend;
}

}  // namespace kes::keystore::etcd

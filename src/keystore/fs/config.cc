#include "keystore/fs/config.h"

#include "keystore/fs/fs_keystore.h"

namespace kes::keystore::fs {

Status Config::Validate() {
  if (path.empty()) return Status::Invalid("kesconf: invalid fs keystore: no path specified");
  return Status::Ok();
}

Result<std::unique_ptr<KeyStore>> Config::Connect() const { return Open(path); }

const Backend& Registration() {
  static const Backend backend{
      "fs", "fs", [](yaml::YamlDecoder& d, const YAML::Node& n) {
        auto c = std::make_unique<Config>();
        const bool present =
            d.Mapping(n, "keystore.fs", "kesconf.ymlFS",
                      {{"path", [&](const YAML::Node& v) { d.String(v, &c->path); }}});
        return present ? std::unique_ptr<BackendConfig>(std::move(c)) : nullptr;
      }};
  return backend;
}

}  // namespace kes::keystore::fs

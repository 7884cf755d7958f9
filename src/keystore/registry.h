// The keystore registry: every backend selectable in a config file's
// `keystore:` section, in upstream's detection order (config.md §3.10).
//
// A backend lives in one folder, src/keystore/<name>/, holding everything
// about it: the decoding and validation of its config section, its
// connection (the KeyStore), its display name. It becomes known by one line
// in keystore/backends.inc; CMake compiles every keystore sub-folder. The
// config loader and the server know only this interface, never a backend's
// type.
#pragma once

#include <yaml-cpp/yaml.h>

#include <memory>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "keystore/keystore.h"
#include "yaml/decoder.h"

namespace kes::keystore {

// A backend's config section, decoded; Validate() then resolves defaults.
class BackendConfig {
 public:
  virtual ~BackendConfig() = default;

  // "fs", "vault", "aws.secretsmanager", ...
  virtual std::string_view Kind() const = 0;
  // Checks the section with upstream's messages ("kesconf: invalid vault
  // keystore: no endpoint specified") and fills in defaults. Called once,
  // after the whole file decoded.
  virtual Status Validate() = 0;
  // Builds the running backend. Disk and network I/O happen here.
  virtual Result<std::unique_ptr<KeyStore>> Connect() const = 0;
};

struct Backend {
  // The key below `keystore:` ("fs", "vault", "aws").
  std::string_view key;
  // What Kind() names ("aws.secretsmanager").
  std::string_view kind;
  // Decodes the value of `keystore.<key>`. Returns nullptr when the value
  // does not configure the backend (null, or a null inner section such as
  // `aws:` without `secretsmanager:`).
  std::unique_ptr<BackendConfig> (*decode)(yaml::YamlDecoder& d, const YAML::Node& node);
};

// Every registered backend, in upstream's detection order.
const std::vector<const Backend*>& Backends();

}  // namespace kes::keystore

// ServerConfig: the validated content of a KES server config file (spec
// config.md). LoadConfigFile parses the YAML, expands ${VAR} references,
// checks every field in upstream's order with upstream's messages and
// resolves defaults; the keystore section's backend is decoded, validated
// and connected by the backend (keystore/registry.h). Loading touches no TLS
// file and no network.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/duration.h"
#include "common/status.h"
#include "keystore/cache.h"
#include "keystore/keystore.h"
#include "keystore/registry.h"

namespace kes::config {

using kes::Duration;
using kes::FormatDuration;
using kes::ParseDuration;

// --- tls -------------------------------------------------------------------

enum class TlsAuth {
  kOff,  // "" or "off": a client certificate is required but not verified
  kOn,   // "on": required and verified against the system roots + ca
};

struct TlsConfig {
  std::string key_file;   // PEM private key (required)
  std::string cert_file;  // PEM certificate chain (required)
  std::string password;   // for a legacy-encrypted PEM key; may be empty
  TlsAuth auth = TlsAuth::kOff;
  std::string ca_path;  // file or directory of CA certificates; may be empty
  // Parsed and validated only: upstream's server never uses them.
  std::vector<std::string> proxy_identities;
  std::string proxy_header_cert;
};

// --- policy, api, log, keys --------------------------------------------------

struct PolicyConfig {
  std::vector<std::string> allow;
  std::vector<std::string> deny;
  std::vector<std::string> identities;  // not validated here (server start)
};

struct ApiConfig {
  bool skip_auth = false;
  Duration timeout{0};  // 0: keep the route's default
};

// Log levels use Go log/slog numbering: DEBUG -4, INFO 0, WARN 4, ERROR 8;
// "off" is ERROR+1 = 9.
inline constexpr int kLevelDebug = -4;
inline constexpr int kLevelInfo = 0;
inline constexpr int kLevelWarn = 4;
inline constexpr int kLevelError = 8;
inline constexpr int kLevelOff = 9;

struct LogConfig {
  int error = kLevelInfo;  // minimum level written to stderr
  int audit = kLevelInfo;  // audit events go to stdout iff audit <= INFO
  bool audit_enabled() const { return audit <= kLevelInfo; }
};

// Parses a level ("info", "ERROR+1", "off", "-4", ...; config.md §3.8).
Result<int> ParseLogLevel(std::string_view text);
// slog's level text: "DEBUG", "INFO+2", "ERROR+1", "DEBUG-2".
std::string LogLevelName(int level);

// Effective cache timing after defaults (config.md §3.6). kes-cpp resolves
// the documented defaults (any 5m, unused 30s) instead of upstream's
// overwrite bug; see docs/compatibility.md "Deviations".
struct CacheConfig {
  Duration any = std::chrono::minutes(5);
  Duration unused = std::chrono::seconds(30);
  Duration offline{0};  // 0: no offline caching

  keystore::CacheOptions ToCacheOptions() const;
};

// --- keystore -------------------------------------------------------------------

// The `keystore:` section: one backend's config, decoded and validated by
// the backend itself (keystore/registry.h). ->Kind() names it ("fs",
// "vault", "aws.secretsmanager"); ->Connect() builds the running backend.
using KeyStoreConfig = std::shared_ptr<const keystore::BackendConfig>;

// --- the whole file ------------------------------------------------------------

struct ServerConfig {
  std::string address;  // as written; empty if absent (server default 0.0.0.0:7373)
  std::string admin_identity;
  TlsConfig tls;
  std::map<std::string, PolicyConfig> policies;  // policy name -> policy
  CacheConfig cache;
  std::map<std::string, ApiConfig> api;  // route path (e.g. "/v1/status") -> override
  LogConfig log;
  std::vector<std::string> keys;  // declarative keys, file order, not validated
  KeyStoreConfig keystore;

  // "line N: unknown config key 'x.y'" etc.: harmless oddities the server
  // should log as warnings at start-up.
  std::vector<std::string> warnings;

  // True if any api override sets skip_auth (relaxes the TLS handshake).
  bool any_skip_auth() const;
};

// Reads, parses and validates the file (config.md §1-4). Error messages are
// upstream's, e.g. "kesconf: invalid admin identity: no admin identity".
Result<ServerConfig> LoadConfigFile(const std::string& path);
// Same, for YAML text already in memory.
Result<ServerConfig> LoadConfigText(std::string_view yaml);

}  // namespace kes::config

// ServerConfig: the validated content of a KES server config file (spec
// config.md). LoadConfigFile parses the YAML, expands ${VAR} references,
// checks every field in upstream's order with upstream's messages and
// resolves defaults; ConnectKeyStore turns the keystore section into a
// running backend. Nothing here touches TLS files or the network except
// ConnectKeyStore.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"
#include "keystore/aws/secrets_manager.h"
#include "keystore/cache.h"
#include "keystore/keystore.h"

namespace kes::config {

using Duration = std::chrono::nanoseconds;

// Go's time.ParseDuration: "300ms", "-1.5h", "2h45m", "0". Units ns, us,
// µs (U+00B5 or U+03BC), ms, s, m, h. A number without unit is an error
// except "0".
Result<Duration> ParseDuration(std::string_view text);
// Go's Duration.String(): "5m0s", "-1.5s", "300ms", "0s".
std::string FormatDuration(Duration d);

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

// --- keystore sections ---------------------------------------------------------

struct MemoryKeyStoreConfig {};  // `kes server --dev`

struct FsKeyStoreConfig {
  std::string path;
};

using AwsSecretsManagerConfig = keystore::aws::SecretsManagerOptions;

// The remaining backends are parsed and validated so that upstream files
// load, but this build cannot connect to them (ConnectKeyStore fails).
struct VaultKeyStoreConfig {
  std::string endpoint;
  std::string engine = "kv";
  std::string engine_version = "v1";
  std::string namespace_;
  std::string prefix;
  bool has_transit = false;
  std::string transit_engine = "transit";
  std::string transit_key;
  bool has_approle = false;
  std::string approle_engine = "approle";
  std::string approle_namespace;
  std::string approle_id;
  std::string approle_secret;
  bool has_kubernetes = false;
  std::string kubernetes_engine = "kubernetes";
  std::string kubernetes_namespace;
  std::string kubernetes_role;
  std::string kubernetes_jwt;       // the token (read from the file if jwt was a path)
  std::string kubernetes_jwt_file;  // non-empty if jwt was given as a path
  std::string tls_key;
  std::string tls_cert;
  std::string tls_ca;
  Duration status_ping = std::chrono::seconds(15);
};

struct FortanixKeyStoreConfig {
  std::string endpoint;
  std::string group_id;
  std::string api_key;
  std::string tls_ca;
};

struct GemaltoKeyStoreConfig {
  std::string endpoint;
  std::string token;
  std::string domain;
  std::string tls_ca;
};

struct GcpKeyStoreConfig {
  std::string project_id;
  std::string endpoint;
  std::vector<std::string> scopes;
  std::string client_email;
  std::string client_id;
  std::string private_key_id;
  std::string private_key;
};

struct AzureKeyStoreConfig {
  std::string endpoint;
  bool has_credentials = false;
  std::string tenant_id;
  std::string client_id;
  std::string client_secret;
  bool has_managed_identity = false;
  std::string managed_identity_client_id;
};

struct EntrustKeyStoreConfig {
  std::string endpoint;
  std::string vault_id;
  std::string box_id;
  std::string username;
  std::string password;
  std::string tls_ca;
};

using KeyStoreConfig =
    std::variant<MemoryKeyStoreConfig, FsKeyStoreConfig, AwsSecretsManagerConfig,
                 VaultKeyStoreConfig, FortanixKeyStoreConfig, GemaltoKeyStoreConfig,
                 GcpKeyStoreConfig, AzureKeyStoreConfig, EntrustKeyStoreConfig>;

// "memory", "fs", "aws.secretsmanager", "vault", "fortanix.sdkms",
// "gemalto.keysecure", "gcp.secretmanager", "azure.keyvault",
// "entrust.keycontrol".
std::string KeyStoreKind(const KeyStoreConfig& config);

// Builds the backend. Fails with one line naming the backend for backends
// this build does not include. Network/disk I/O happens here.
Result<std::unique_ptr<keystore::KeyStore>> ConnectKeyStore(const KeyStoreConfig& config);

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

// Client: a C++ client for the KES HTTP API that behaves like the Go SDK
// (minio/kms-go kes v0.3.1; spec api.md §5, cli.md §1.4):
//
//  - TLS >= 1.2 with a client certificate (from an API key or a PEM pair);
//    the server certificate is verified unless `insecure` is set;
//  - several endpoints: a local one (127.0.0.1, ::1, localhost) first, else a
//    random one; a transport error or a 5xx other than 501 parks an endpoint
//    for 30 s and the request moves on to the next endpoint;
//  - every request is retried up to 2 more times (200-999 ms apart) on a
//    network error or HTTP 503;
//  - HTTP/1.1 keep-alive: one connection per endpoint is reused.
//
// Errors: a server error is a Status whose http_status() and message() equal
// what the server sent (with the SDK's legacy aliases mapped, api.md §5.3).
// A transport failure is a Status with code kUnreachable, http_status() 0 and
// the message `<METHOD> "<url>": <reason>`.
//
// A Client is not thread-safe: use one per thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/metrics.h"
#include "common/status.h"
#include "crypto/secret_bytes.h"
#include "identity/api_key.h"

namespace kes::client {

struct Config {
  // "https://host:port" each; see NormalizeEndpoints.
  std::vector<std::string> endpoints;
  // The client certificate and its private key (must match).
  identity::CertificatePtr certificate;
  identity::PrivateKeyPtr private_key;
  // Skips verification of the server certificate.
  bool insecure = false;
  // PEM bundle of trusted roots instead of the system roots (empty: system
  // roots, or $SSL_CERT_FILE / $SSL_CERT_DIR when set, as Go does).
  std::string ca_file;
  std::chrono::milliseconds connect_timeout{30'000};
  // Whole-request limit; 0 means none (the SDK has none).
  std::chrono::milliseconds request_timeout{0};
  // When set and true, the request in flight is aborted as soon as possible
  // and returns Status kInternal "context canceled".
  const std::atomic<bool>* cancel = nullptr;
};

// Splits a comma-separated endpoint list the way the CLI does: trim, drop a
// leading "http://", add "https://" unless present.
std::vector<std::string> NormalizeEndpoints(std::string_view list);

struct KeyInfo {
  std::string name;
  std::string algorithm;   // "AES256", "ChaCha20" or empty
  std::string created_at;  // RFC 3339 as sent
  std::string created_by;
  // kes-cpp key versions (rotation.md §6.2): empty unless the key is rotated.
  std::string version;
  std::string min_decryption_version;
};

// kes-cpp key versions (rotation.md §6.4-§6.8).
struct KeyVersionInfo {
  std::string version;
  std::string algorithm;
  std::string created_at;
  std::string created_by;
  bool enabled = true;
};
struct KeyVersions {
  std::string name;
  std::string latest_version;
  std::string min_decryption_version;
  std::vector<KeyVersionInfo> versions;
};
struct RotatedKey {
  std::string name;
  KeyVersionInfo latest;
};
// A ciphertext and the key version that made it (empty: the server did not
// say, as for keys with one version).
struct Ciphertext {
  std::vector<uint8_t> ciphertext;
  std::string version;
};

struct DEK {
  crypto::SecretBytes plaintext;
  std::vector<uint8_t> ciphertext;
  std::string version;  // as Ciphertext::version
};

struct PolicyInfo {
  std::string name;
  std::string created_at;
  std::string created_by;
};

struct Policy {
  std::vector<std::string> allow;  // sorted
  std::vector<std::string> deny;   // sorted
  std::string created_at;
  std::string created_by;
};

struct IdentityInfo {
  std::string identity;
  std::string policy;
  bool is_admin = false;
  std::string created_at;
  std::string created_by;
};

// GET /v1/identity/self/describe: the caller's identity and, if any, policy.
struct SelfInfo {
  IdentityInfo info;
  std::optional<Policy> policy;
};

struct ServerStatus {
  std::string version;
  std::string os;
  std::string arch;
  double uptime_seconds = 0;
  int64_t num_cpu = 0;
  int64_t num_cpu_used = 0;
  int64_t mem_heap_used = 0;
  int64_t mem_stack_used = 0;
  int64_t keystore_latency = 0;  // as sent (upstream: milliseconds)
  bool keystore_unreachable = false;
  bool keystore_unavailable = false;
  std::chrono::nanoseconds latency{0};  // measured round trip
};

struct APIRoute {
  std::string method;
  std::string path;
  int64_t max_body = 0;
  int64_t timeout_seconds = 0;
};

// One line of a log stream; return false to stop reading.
using LineCallback = std::function<bool(std::string_view line)>;

class Client {
 public:
  static Result<std::unique_ptr<Client>> New(Config config);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const std::vector<std::string>& endpoints() const;

  Result<std::string> Version();
  Status Ready();
  Result<ServerStatus> GetStatus();
  Result<std::vector<APIRoute>> APIs();
  Result<Metrics> GetMetrics();

  Status CreateKey(std::string_view name);
  Status ImportKey(std::string_view name, std::span<const uint8_t> key, std::string_view cipher);
  Result<KeyInfo> DescribeKey(std::string_view name);
  Status DeleteKey(std::string_view name);
  // All names starting with `prefix` (sorted); follows continue_at pages.
  Result<std::vector<std::string>> ListKeys(std::string_view prefix);
  // `version` empty: the latest; else the key version to use (rotation.md
  // §6.3), sent as the request's "version".
  Result<DEK> GenerateKey(std::string_view name, std::span<const uint8_t> context,
                          std::string_view version = {});
  Result<Ciphertext> Encrypt(std::string_view name, std::span<const uint8_t> plaintext,
                             std::span<const uint8_t> context, std::string_view version = {});
  Result<crypto::SecretBytes> Decrypt(std::string_view name, std::span<const uint8_t> ciphertext,
                                      std::span<const uint8_t> context);
  Result<RotatedKey> RotateKey(std::string_view name);
  Result<KeyVersions> ListKeyVersions(std::string_view name);
  // Sets the minimum decryption version; the answer has no `versions`.
  Result<KeyVersions> ConfigureKey(std::string_view name, std::string_view min_decryption_version);
  // `version` empty: the latest.
  Result<Ciphertext> Rewrap(std::string_view name, std::span<const uint8_t> ciphertext,
                            std::span<const uint8_t> context, std::string_view version);
  Result<std::vector<uint8_t>> HMAC(std::string_view name, std::span<const uint8_t> message);

  Result<PolicyInfo> DescribePolicy(std::string_view name);
  Result<Policy> GetPolicy(std::string_view name);
  Result<std::vector<std::string>> ListPolicies(std::string_view prefix);

  Result<IdentityInfo> DescribeIdentity(std::string_view identity);
  Result<SelfInfo> DescribeSelf();
  Result<std::vector<std::string>> ListIdentities(std::string_view prefix);

  // Streams newline-delimited JSON events until the callback returns false,
  // the server closes the stream or `cancel` is set.
  Status AuditLog(const LineCallback& on_line);
  Status ErrorLog(const LineCallback& on_line);

  class Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Decodes an HTTP error response the way the SDK does (api.md §5.3).
Status DecodeError(int http_status, std::string_view content_type, std::string_view body);

// True if `s` is a transport error caused by a failed server certificate
// verification (the case where the user must trust the server or use -k).
bool IsCertificateVerifyError(const Status& s);

}  // namespace kes::client

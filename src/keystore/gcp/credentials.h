// Google credentials for the Secret Manager keystore (keystores-cloud.md
// §2.2): a service-account key signing its own access tokens (RS256 JWTs
// with a `scope` claim, Google AIP-4111, what upstream's gRPC client sends),
// the GCE/GKE metadata server, and Application Default Credentials choosing
// between them. Tokens are cached and renewed before they expire.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/deadline.h"
#include "common/status.h"
#include "identity/api_key.h"  // PrivateKeyPtr
#include "net/http_client.h"

namespace kes::keystore::gcp {

using Env = std::function<std::string(const char*)>;

inline constexpr const char* kDefaultScope = "https://www.googleapis.com/auth/cloud-platform";

struct AccessToken {
  std::string value;  // the bearer token
  std::chrono::seconds lifetime{0};
};

// Where access tokens come from. Fetch() always makes a new one.
class TokenSource {
 public:
  virtual ~TokenSource() = default;
  virtual Result<AccessToken> Fetch(Deadline deadline) = 0;
};

struct ServiceAccountKey {
  std::string client_email;
  std::string client_id;
  std::string private_key_id;
  identity::PrivateKeyPtr key;  // RSA
};

// The four credential fields of the config (or of a key file). The PEM may
// carry literal two-character "\n" sequences for newlines. Errors read like
// upstream's ("gcp: no client email provided").
Result<ServiceAccountKey> ParseServiceAccountKey(std::string client_email, std::string client_id,
                                                 std::string private_key_id,
                                                 std::string private_key_pem);

// A self-signed JWT: header {"alg":"RS256","typ":"JWT","kid":<key id>},
// claims {"iss","sub":<email>,"scope":<scopes joined by ' '>,"iat","exp":iat+3600}.
Result<std::string> SignSelfSignedJwt(const ServiceAccountKey& key,
                                      const std::vector<std::string>& scopes, int64_t iat);

std::unique_ptr<TokenSource> NewSelfSignedJwtSource(ServiceAccountKey key,
                                                    std::vector<std::string> scopes);

// GET <origin>/computeMetadata/v1/instance/service-accounts/default/token.
std::unique_ptr<TokenSource> NewMetadataSource(net::Url origin, std::vector<std::string> scopes);

// Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS, the
// gcloud file below $HOME, then the metadata server (GCE_METADATA_HOST, or
// 169.254.169.254 when it answers like Google's). Only service-account key
// files are accepted (authorized_user and external_account are refused).
Result<std::unique_ptr<TokenSource>> FindDefaultCredentials(const Env& env,
                                                            std::vector<std::string> scopes);

// Shares one token among callers: renewed once three quarters of its
// lifetime have passed, at most one fetch at a time; a failed renewal keeps
// serving the old token while it is still valid.
class CachedToken {
 public:
  explicit CachedToken(std::unique_ptr<TokenSource> source) : source_(std::move(source)) {}
  ~CachedToken();

  Result<std::string> Get(Deadline deadline);
  // The server rejected `token` (401): the next Get fetches a new one.
  void Invalidate(const std::string& token);

 private:
  using Clock = std::chrono::steady_clock;
  std::unique_ptr<TokenSource> source_;
  std::mutex fetch_mu_;  // held while fetching
  std::mutex mu_;        // guards the fields below
  std::string token_;
  Clock::time_point renew_at_{}, expires_at_{};
};

}  // namespace kes::keystore::gcp

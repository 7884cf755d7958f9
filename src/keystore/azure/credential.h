// Azure credentials (keystores-cloud.md §1.1, §1.3): client secret against
// the Azure AD token endpoint, managed identity through IMDS, and the
// default chain (environment → workload identity → managed identity) for a
// config without either. Tokens are cached and fetched again when less than
// five minutes of life remain, as the Azure SDK does.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/deadline.h"
#include "common/status.h"
#include "keystore/azure/config.h"
#include "keystore/azure/response.h"
#include "net/http_client.h"

namespace kes::keystore::azure {

using Env = std::function<std::string(const char*)>;

struct IdentityOptions {
  // Azure AD authority host with a trailing slash (AZURE_AUTHORITY_HOST).
  std::string authority = "https://login.microsoftonline.com/";
  // IMDS base URL. Test-only override: AZURE_POD_IDENTITY_AUTHORITY_HOST
  // (honoured by the Python SDK, not by upstream's Go SDK).
  std::string imds = "http://169.254.169.254";
  // IMDS retry back-off unit: try n waits unit × 2^(n-1) (SDK: 2 s).
  std::chrono::milliseconds imds_retry_unit{2000};
};

// One way to obtain a token for a scope.
struct TokenSource {
  std::string name;  // "ClientSecretCredential", ...
  std::function<Result<TokenAnswer>(const std::string& scope, Deadline deadline)> fetch;
};

class Credential {
 public:
  // `sources` are tried in order until one yields a token; that one is then
  // used alone (the SDK's chain behaviour). `chain` names the errors.
  Credential(std::vector<TokenSource> sources, bool chain)
      : sources_(std::move(sources)), chain_(chain) {}
  ~Credential();

  // A valid bearer token for `scope`; `refresh` ignores the cached one (the
  // vault rejected it).
  Result<std::string> Token(const std::string& scope, Deadline deadline, bool refresh);

 private:
  Result<TokenAnswer> Fetch(const std::string& scope, Deadline deadline);

  const std::vector<TokenSource> sources_;
  const bool chain_;
  std::mutex mu_;
  int chosen_ = -1;  // index of the source that worked, -1 before
  std::string scope_, token_;
  std::chrono::steady_clock::time_point expires_{};
};

// Builds the credential the config selects. `http` is the identity client
// (it may talk plain HTTP to IMDS) and outlives the credential.
Result<std::unique_ptr<Credential>> NewCredential(const Config& config, const Env& env,
                                                  const IdentityOptions& options,
                                                  net::HttpClient* http);

}  // namespace kes::keystore::azure

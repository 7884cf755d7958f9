#include "keystore/azure/credential.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <thread>

#include "aws/sigv4.h"
#include "common/os.h"
#include "crypto/secret_bytes.h"

namespace kes::keystore::azure {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// The SDK refreshes a token this long before it expires.
constexpr auto kRefreshMargin = std::chrono::minutes(5);

std::string FormEncode(std::string_view s) { return aws::UriEncode(s, /*keep_slash=*/false); }

// azidentity's check: the tenant becomes a URL path segment.
bool ValidTenant(std::string_view t) {
  if (t.empty()) return false;
  for (unsigned char c : t) {
    if (!std::isalnum(c) && c != '-' && c != '.') return false;
  }
  return true;
}

Status CreateError(const std::string& why) {
  return Status::Invalid("azure: failed to create default Azure credential: " + why);
}

// POST <authority><tenant>/oauth2/v2.0/token with the client-credentials
// grant. `secret_form` is "client_secret=…" or the client assertion pair.
// Discovery (openid-configuration, instance discovery) is skipped: the
// token endpoint of a public-cloud authority has this fixed shape.
Result<TokenAnswer> PostTokenRequest(net::HttpClient* http, const std::string& name,
                                     const std::string& url, const std::string& client_id,
                                     std::string secret_form, const std::string& scope,
                                     Deadline deadline) {
  auto parsed = net::Url::Parse(url);
  if (!parsed.ok()) return parsed.status().WithContext(name);
  net::HttpRequest req;
  req.method = "POST";
  req.url = *parsed;
  req.deadline = deadline;
  req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  req.body = "client_id=" + FormEncode(client_id) + "&" + secret_form +
             "&grant_type=client_credentials&scope=" + FormEncode(scope);
  crypto::Zeroize(secret_form.data(), secret_form.size());
  auto resp = http->Do(req);
  crypto::Zeroize(req.body.data(), req.body.size());
  if (!resp.ok()) {
    return Status(resp.status().code(), 502,
                  name + " authentication failed: POST " + url + ": " + resp.status().message());
  }
  if (resp->status != 200) {
    std::string why = ParseAadError(resp->body);
    return Status::Unavailable(name + " authentication failed: POST " + url + ": status " +
                               std::to_string(resp->status) + (why.empty() ? "" : ": " + why));
  }
  auto token = ParseToken(resp->body);
  crypto::Zeroize(resp->body.data(), resp->body.size());
  if (!token.ok()) return token.status().WithContext(name);
  return token;
}

TokenSource ClientSecret(net::HttpClient* http, const std::string& authority,
                         const std::string& tenant, const std::string& client_id,
                         const std::string& secret, std::string name) {
  const std::string url = authority + tenant + "/oauth2/v2.0/token";
  return {name, [=](const std::string& scope, Deadline deadline) {
            return PostTokenRequest(http, name, url, client_id,
                                    "client_secret=" + FormEncode(secret), scope, deadline);
          }};
}

// Workload identity: the federated token file is read at every request (the
// kubelet rotates it).
TokenSource WorkloadIdentity(net::HttpClient* http, const std::string& authority,
                             const std::string& tenant, const std::string& client_id,
                             const std::string& token_file) {
  const std::string url = authority + tenant + "/oauth2/v2.0/token";
  const std::string name = "WorkloadIdentityCredential";
  return {name, [=](const std::string& scope, Deadline deadline) -> Result<TokenAnswer> {
            auto jwt = ReadWholeFile(token_file);
            if (!jwt.ok()) return jwt.status().WithContext(name);
            while (!jwt->empty() && std::isspace(static_cast<unsigned char>(jwt->back()))) {
              jwt->pop_back();
            }
            std::string form =
                "client_assertion=" + FormEncode(*jwt) +
                "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-"
                "bearer";
            crypto::Zeroize(jwt->data(), jwt->size());
            return PostTokenRequest(http, name, url, client_id, std::move(form), scope, deadline);
          }};
}

// IMDS (keystores-cloud.md §1.3): GET with `Metadata: true`, retried on
// 404, 410, 429 and 5xx with exponential back-off, never past the deadline.
// In the default chain the first call is a 1 s probe: no answer means "no
// managed identity here" and the chain moves on.
TokenSource ManagedIdentity(net::HttpClient* http, const IdentityOptions& options,
                            const std::string& client_id, bool probe) {
  const std::string name = "ManagedIdentityCredential";
  auto probed = std::make_shared<bool>(!probe);
  return {name, [=](const std::string& scope, Deadline deadline) -> Result<TokenAnswer> {
            std::string resource = scope;
            if (resource.ends_with("/.default")) resource.resize(resource.size() - 9);
            std::string url = options.imds +
                              "/metadata/identity/oauth2/token?api-version=2018-02-01" +
                              "&resource=" + FormEncode(resource);
            if (!client_id.empty()) url += "&client_id=" + FormEncode(client_id);
            auto parsed = net::Url::Parse(url);
            if (!parsed.ok()) return parsed.status().WithContext(name);
            net::HttpRequest req;
            req.url = *parsed;
            req.deadline = deadline;
            req.headers.emplace_back("Metadata", "true");
            if (!*probed) req.timeout = seconds(1);
            Result<net::HttpResponse> resp = Status::Internal("no attempt");
            for (int attempt = 0;; ++attempt) {
              resp = http->Do(req);
              if (!resp.ok() && !*probed) {
                return Status::Unreachable(
                    name + ": no managed identity endpoint available: " + resp.status().message());
              }
              *probed = true;
              req.timeout = milliseconds(0);
              const int s = resp.ok() ? resp->status : 0;
              const bool retry = s == 404 || s == 410 || s == 429 || s >= 500;
              if (!retry || attempt >= 5) break;
              const milliseconds wait = options.imds_retry_unit * (1 << attempt);
              if (TimeLeft(deadline, wait) < wait) break;
              std::this_thread::sleep_for(wait);
            }
            if (!resp.ok()) {
              return Status(resp.status().code(), 502,
                            name + " authentication failed: " + resp.status().message());
            }
            if (resp->status != 200) {
              std::string why = ParseAadError(resp->body);
              return Status::Unavailable(name + " authentication failed: GET " + options.imds +
                                         "/metadata/identity/oauth2/token: status " +
                                         std::to_string(resp->status) +
                                         (why.empty() ? "" : ": " + why));
            }
            auto token = ParseToken(resp->body);
            crypto::Zeroize(resp->body.data(), resp->body.size());
            if (!token.ok()) return token.status().WithContext(name);
            return token;
          }};
}

}  // namespace

Credential::~Credential() { crypto::Zeroize(token_.data(), token_.size()); }

Result<std::string> Credential::Token(const std::string& scope, Deadline deadline, bool refresh) {
  std::lock_guard lock(mu_);  // one fetch at a time: concurrent callers share it
  const auto now = std::chrono::steady_clock::now();
  if (!refresh && !token_.empty() && scope == scope_ && expires_ - now > kRefreshMargin) {
    return token_;
  }
  auto fresh = Fetch(scope, deadline);
  if (!fresh.ok()) return fresh.status();
  crypto::Zeroize(token_.data(), token_.size());
  token_ = std::move(fresh->access_token);
  scope_ = scope;
  expires_ = now + seconds(std::max<int64_t>(fresh->expires_in, 0));
  return token_;
}

Result<TokenAnswer> Credential::Fetch(const std::string& scope, Deadline deadline) {
  if (chosen_ >= 0) return sources_[chosen_].fetch(scope, deadline);
  std::string errors;
  for (size_t i = 0; i < sources_.size(); ++i) {
    auto token = sources_[i].fetch(scope, deadline);
    if (token.ok()) {
      chosen_ = static_cast<int>(i);
      return token;
    }
    if (!chain_) return token.status();
    errors += (errors.empty() ? "" : "; ") + token.status().message();
    // An authentication failure ends the chain; only "not available here"
    // (no answer) moves on, as in the SDK.
    if (token.status().code() != Code::kUnreachable) break;
  }
  if (sources_.empty()) errors = "no credential is configured in the environment";
  return Status::Unavailable("DefaultAzureCredential: failed to acquire a token: " + errors);
}

Result<std::unique_ptr<Credential>> NewCredential(const Config& config, const Env& env,
                                                  const IdentityOptions& options,
                                                  net::HttpClient* http) {
  std::vector<TokenSource> sources;
  if (config.has_credentials) {
    if (!ValidTenant(config.tenant_id)) return CreateError("invalid tenantID");
    sources.push_back(ClientSecret(http, options.authority, config.tenant_id, config.client_id,
                                   config.client_secret, "ClientSecretCredential"));
    return std::make_unique<Credential>(std::move(sources), false);
  }
  if (config.has_managed_identity) {
    sources.push_back(ManagedIdentity(http, options, config.managed_identity_client_id, false));
    return std::make_unique<Credential>(std::move(sources), false);
  }
  // The default chain; the Azure CLI and Developer CLI are not run.
  const std::string tenant = env("AZURE_TENANT_ID"), client = env("AZURE_CLIENT_ID");
  const std::string secret = env("AZURE_CLIENT_SECRET");
  if (!tenant.empty() && !ValidTenant(tenant)) return CreateError("invalid tenantID");
  if (!tenant.empty() && !client.empty() && !secret.empty()) {
    sources.push_back(
        ClientSecret(http, options.authority, tenant, client, secret, "EnvironmentCredential"));
  } else if (!env("AZURE_CLIENT_CERTIFICATE_PATH").empty() || !env("AZURE_USERNAME").empty()) {
    spdlog::warn(
        "azure: certificate and username/password environment credentials are not supported by "
        "kes-cpp; skipping them");
  }
  if (const std::string file = env("AZURE_FEDERATED_TOKEN_FILE");
      !file.empty() && !tenant.empty() && !client.empty()) {
    sources.push_back(WorkloadIdentity(http, options.authority, tenant, client, file));
  }
  sources.push_back(ManagedIdentity(http, options, client, true));
  return std::make_unique<Credential>(std::move(sources), true);
}

}  // namespace kes::keystore::azure

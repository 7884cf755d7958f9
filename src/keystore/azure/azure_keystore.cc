#include "keystore/azure/azure_keystore.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>

#include "common/os.h"
#include "common/stop_signal.h"
#include "crypto/secret_bytes.h"
#include "keystore/azure/response.h"
#include "keystore/list.h"
#include "keystore/status_probe.h"
#include "net/http_client.h"

namespace kes::keystore::azure {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kApiVersion = "api-version=7.5";

// Key Vault secret names: ^[0-9a-zA-Z-]{1,127}$. Checked before a name
// becomes part of a URL path.
bool ValidSecretName(std::string_view name) {
  if (name.empty() || name.size() > 127) return false;
  for (unsigned char c : name) {
    if (!std::isalnum(c) && c != '-') return false;
  }
  return true;
}

// "<message> (<inner code>)", upstream's rendering of an Azure error.
std::string Describe(const net::HttpResponse& resp) {
  ErrorBody e = ParseError(resp.body);
  std::string msg = e.message.empty() ? "status " + std::to_string(resp.status) : e.message;
  return e.inner.empty() ? msg : msg + " (" + e.inner + ")";
}

std::string InnerCode(const net::HttpResponse& resp) { return ParseError(resp.body).inner; }

bool IsBeingDeleted(const net::HttpResponse& resp) {
  return resp.status == 409 && InnerCode(resp) == "ObjectIsBeingDeleted";
}

// Keeps the cause's "unreachable" nature (the cache serves offline keys then).
Status Failed(const Status& cause, const std::string& message) {
  if (cause.code() == Code::kUnreachable) return Status::Unreachable(message);
  return Status::Unavailable(message);
}

bool Retryable(int status) {
  return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
         status == 504;
}

// Retry-After in seconds, or retry-after-ms / x-ms-retry-after-ms; negative
// when absent.
milliseconds RetryAfter(const net::HttpResponse& resp) {
  auto parse = [](const std::string& v, int64_t* out) {
    auto [end, err] = std::from_chars(v.data(), v.data() + v.size(), *out);
    return !v.empty() && err == std::errc() && end == v.data() + v.size() && *out >= 0;
  };
  int64_t n = 0;
  for (const char* h : {"retry-after-ms", "x-ms-retry-after-ms"}) {
    if (parse(resp.Header(h), &n)) return milliseconds(n);
  }
  if (parse(resp.Header("retry-after"), &n)) return seconds(n);
  return milliseconds(-1);
}

class AzureKeyStore : public KeyStore {
 public:
  AzureKeyStore(const Config& config, net::Url endpoint, net::HttpClientOptions http_options,
                net::HttpClientOptions identity_options, const Timing& timing)
      : config_(config),
        endpoint_(std::move(endpoint)),
        http_(std::move(http_options)),
        identity_http_(std::move(identity_options)),
        timing_(timing) {
    while (endpoint_.path.ends_with('/')) endpoint_.path.pop_back();
  }
  ~AzureKeyStore() override { Close(); }

  // The client the credential talks to Azure AD / IMDS with.
  net::HttpClient* identity_http() { return &identity_http_; }
  void SetCredential(std::unique_ptr<Credential> credential) {
    credential_ = std::move(credential);
  }

  std::string DisplayName() const override { return "Azure KeyVault: " + config_.endpoint; }

  // Like upstream: an unauthenticated GET of the endpoint; any HTTP answer
  // means reachable. Bounded by 10 s (upstream: no timeout).
  Result<KeyStoreState> Status(Deadline deadline) override {
    net::HttpRequest req;
    req.url = endpoint_;
    if (req.url.path.empty()) req.url.path = "/";
    req.deadline = deadline;
    req.timeout = seconds(10);
    const auto start = Clock::now();
    return ProbeState(http_.Do(req), start, deadline);
  }

  kes::Status Create(std::string_view name, std::string_view value, Deadline deadline) override {
    const std::string n(name);
    const std::string prefix = "azure: failed to create '" + n + "': ";
    if (!ValidSecretName(name)) {
      // Key Vault would answer 400 BadParameter (upstream: 502).
      return kes::Status::Invalid(prefix +
                                  "Key Vault secret names consist of 1 to 127 characters "
                                  "0-9, a-z, A-Z and '-'");
    }
    auto existing = Call("GET", SecretUrl(n, "/"), "", deadline);
    if (!existing.ok()) {
      return Failed(existing.status(), prefix + "failed to check whether '" + n +
                                           "' already exists: " + existing.status().message());
    }
    if (existing->status == 200) {
      crypto::Zeroize(existing->body.data(), existing->body.size());
      return kes::Status::KeyExists();
    }
    if (existing->status != 404) {
      if (existing->status == 403 && InnerCode(*existing) == "ForbiddenByPolicy") {
        return kes::Status::Unavailable(prefix + "insufficient permissions to check whether '" + n +
                                        "' already exists: " + Describe(*existing));
      }
      return kes::Status::Unavailable(prefix + "failed to check whether '" + n +
                                      "' already exists: " + Describe(*existing));
    }

    std::string body = nlohmann::json{{"value", value}}.dump();
    auto resp = Call("PUT", SecretUrl(n, ""), body, deadline);
    if (resp.ok() && resp->status == 409) {
      const std::string inner = InnerCode(*resp);
      if (inner == "ObjectIsDeletedButRecoverable" || inner == "ObjectIsBeingDeleted") {
        // A soft-deleted secret of this name: purge it, then write again
        // while Key Vault still reports the deletion in progress.
        if (kes::Status s = Purge(n, 25, deadline); !s.ok()) {
          crypto::Zeroize(body.data(), body.size());
          return Failed(s, prefix + "failed to purge deleted secret: " + s.message());
        }
        for (int i = 0; i < 7; ++i) {
          resp = Call("PUT", SecretUrl(n, ""), body, deadline);
          if (!resp.ok() || !IsBeingDeleted(*resp) || !WaitForDeletion(deadline)) break;
        }
      }
    }
    crypto::Zeroize(body.data(), body.size());
    if (!resp.ok()) return Failed(resp.status(), prefix + resp.status().message());
    crypto::Zeroize(resp->body.data(), resp->body.size());
    if (resp->status == 200) return kes::Status::Ok();
    const std::string inner = InnerCode(*resp);
    if (resp->status == 409 && inner == "ObjectIsDeletedButRecoverable") {
      return kes::Status::Unavailable(prefix +
                                      "key already exists but is currently marked as deleted. "
                                      "Either restore or purge '" +
                                      n + "'");
    }
    if (resp->status == 403 && inner == "ForbiddenByPolicy") {
      return kes::Status::Unavailable(
          prefix + "insufficient permissions: " + ParseError(resp->body).message);
    }
    return kes::Status::Unavailable(prefix + Describe(*resp));
  }

  Result<std::string> Get(std::string_view name, Deadline deadline) override {
    const std::string n(name);
    if (!ValidSecretName(name)) return kes::Status::KeyNotFound();  // Key Vault cannot hold it
    const std::string prefix = "azure: failed to get '" + n + "': ";
    auto list = Call("GET", SecretUrl(n, "/versions"), "", deadline);
    if (!list.ok()) {
      return Failed(list.status(), prefix + "failed to list versions: " + list.status().message());
    }
    // Key Vault lists no versions for an unknown name; a 404 SecretNotFound
    // means the same (upstream: 502).
    if (list->status == 404) return kes::Status::KeyNotFound();
    if (list->status != 200) {
      return kes::Status::Unavailable(prefix + "failed to list versions: " + Describe(*list));
    }
    auto page = ParseVersions(list->body);
    if (!page.ok()) return kes::Status::Unavailable(prefix + page.status().message());
    if (page->versions.empty()) return kes::Status::KeyNotFound();
    if (!page->next_link.empty()) {
      return kes::Status::Unavailable(
          prefix + "failed to list versions: more versions than one page (TooManyObjectVersions)");
    }
    // The oldest version: concurrent creates add versions, the first wins.
    const std::string version = OldestVersion(page->versions);
    auto resp = Call("GET", SecretUrl(n, "/" + version), "", deadline);
    if (!resp.ok()) return Failed(resp.status(), prefix + resp.status().message());
    if (resp->status == 404) return kes::Status::KeyNotFound();  // deleted in between
    if (resp->status != 200) return kes::Status::Unavailable(prefix + Describe(*resp));
    auto secret = ParseSecret(resp->body);
    crypto::Zeroize(resp->body.data(), resp->body.size());
    if (!secret.ok()) return kes::Status::Unavailable(prefix + secret.status().message());
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    std::string refused;
    if (!secret->enabled) {
      refused = "secret is disabled (ObjectIsDisabled)";
    } else if (secret->not_before && *secret->not_before > now) {
      refused = "secret must not be used before its nbf time (ObjectMustNotBeUsed)";
    } else if (secret->expires && *secret->expires < now) {
      refused = "secret has expired (ObjectIsExpired)";
    }
    if (!refused.empty()) {
      crypto::Zeroize(secret->value.data(), secret->value.size());
      return kes::Status::Unavailable(prefix + refused);
    }
    return std::move(secret->value);
  }

  kes::Status Delete(std::string_view name, Deadline deadline) override {
    const std::string n(name);
    if (!ValidSecretName(name)) return kes::Status::Ok();  // like a missing name
    const std::string prefix = "azure: failed to delete '" + n + "': ";
    auto resp = Call("DELETE", SecretUrl(n, ""), "", deadline);
    if (!resp.ok()) return Failed(resp.status(), prefix + resp.status().message());
    if (resp->status != 200 && resp->status != 404) {
      return kes::Status::Unavailable(prefix + Describe(*resp));
    }
    if (kes::Status s = Purge(n, 10, deadline); !s.ok()) {
      // The secret is soft-deleted already (no purge permission, or purge
      // protection): reported like upstream.
      return Failed(s, prefix + "failed to purge deleted secret: " + s.message());
    }
    return kes::Status::Ok();
  }

  Result<ListPage> List(std::string_view prefix, int limit, Deadline deadline) override {
    std::vector<std::string> names;
    net::Url url = endpoint_;
    url.path = endpoint_.path + "/secrets";
    url.query = kApiVersion;
    for (;;) {
      auto resp = Call("GET", url, "", deadline);
      if (!resp.ok()) {
        return Failed(resp.status(), "azure: failed to list keys: " + resp.status().message());
      }
      if (resp->status != 200) {
        ErrorBody e = ParseError(resp->body);
        return kes::Status::Unavailable(
            "azure: failed to list keys: " + e.inner + " (" +
            (e.message.empty() ? "status " + std::to_string(resp->status) : e.message) + ")");
      }
      auto page = ParseSecretList(resp->body);
      if (!page.ok())
        return kes::Status::Unavailable("azure: failed to list keys: " + page.status().message());
      for (std::string& n : page->names) names.push_back(std::move(n));
      if (page->next_link.empty()) break;
      // The bearer token goes only to the vault itself.
      auto next = net::Url::Parse(page->next_link);
      if (!next.ok() || next->Origin() != endpoint_.Origin()) {
        return kes::Status::Unavailable("azure: failed to list keys: nextLink '" + page->next_link +
                                        "' leaves the vault");
      }
      url = *std::move(next);
    }
    return ListAll(std::move(names), prefix, limit);
  }

  void Close() override { stop_.Stop(); }

 private:
  net::Url SecretUrl(const std::string& name, const std::string& suffix) const {
    net::Url url = endpoint_;
    url.path = endpoint_.path + "/secrets/" + name + suffix;
    url.query = kApiVersion;
    return url;
  }

  // DELETE /deletedsecrets/<name> up to `tries` times while Key Vault still
  // finishes the soft delete. 204 and 404 are success; so is a last 409.
  kes::Status Purge(const std::string& name, int tries, Deadline deadline) {
    net::Url url = endpoint_;
    url.path = endpoint_.path + "/deletedsecrets/" + name;
    url.query = kApiVersion;
    for (int i = 0; i < tries; ++i) {
      auto resp = Call("DELETE", url, "", deadline);
      if (!resp.ok()) return resp.status();
      if (resp->status == 200 || resp->status == 204 || resp->status == 404) {
        return kes::Status::Ok();
      }
      if (!IsBeingDeleted(*resp)) return kes::Status::Unavailable(Describe(*resp));
      if (i + 1 < tries && !WaitForDeletion(deadline)) return DeadlineExceeded();
    }
    return kes::Status::Ok();
  }

  // Sleeps 200-1000 ms (a soft delete in progress); false when the deadline
  // or Close() comes first.
  bool WaitForDeletion(Deadline deadline) {
    thread_local std::mt19937 rng{std::random_device{}()};
    std::uniform_int_distribution<int64_t> pick(timing_.purge_wait_min.count(),
                                                timing_.purge_wait_max.count());
    const milliseconds wait(pick(rng));
    if (TimeLeft(deadline, wait) < wait) return false;
    return !stop_.Wait(wait);
  }

  std::string Scope() {
    std::lock_guard lock(scope_mu_);
    return scope_;
  }

  // Takes the scope from a 401's bearer challenge (§1.2): `scope`, else
  // `resource` + "/.default"; the vault's host must end with "." + the
  // scope's host, so that a token is never requested for another service.
  Result<std::string> AcceptChallenge(const net::HttpResponse& resp) {
    auto challenge = ParseChallenge(resp.Header("www-authenticate"));
    if (!challenge) {
      return kes::Status::Unavailable("401 without a bearer challenge: " + Describe(resp));
    }
    std::string scope = challenge->scope;
    if (scope.empty()) scope = challenge->resource + "/.default";
    auto url = net::Url::Parse(scope);
    const std::string vault_host = endpoint_.HostHeader();
    if (!url.ok() || !vault_host.ends_with("." + url->HostHeader())) {
      return kes::Status::Unavailable("challenge resource \"" +
                                      (challenge->scope.empty() ? challenge->resource : scope) +
                                      "\" doesn't match the requested domain");
    }
    std::lock_guard lock(scope_mu_);
    scope_ = scope;
    return scope;
  }

  // An authenticated Key Vault call (§1.2). The first call goes out without
  // token and body to learn the scope from the challenge; a 401 later (token
  // revoked) fetches a fresh token and retries once.
  Result<net::HttpResponse> Call(const std::string& method, const net::Url& url,
                                 const std::string& body, Deadline deadline) {
    std::string scope = Scope();
    if (scope.empty()) {
      auto first = Send(method, url, "", "", deadline);
      if (!first.ok() || first->status != 401) return first;
      KES_ASSIGN_OR_RETURN(scope, AcceptChallenge(*first));
    }
    KES_ASSIGN_OR_RETURN(std::string token, credential_->Token(scope, deadline, false));
    auto resp = Send(method, url, body, token, deadline);
    if (resp.ok() && resp->status == 401 && !resp->Header("www-authenticate").empty()) {
      auto fresh_scope = AcceptChallenge(*resp);
      if (!fresh_scope.ok()) {
        crypto::Zeroize(token.data(), token.size());
        return fresh_scope.status();
      }
      crypto::Zeroize(token.data(), token.size());
      KES_ASSIGN_OR_RETURN(token, credential_->Token(*fresh_scope, deadline, true));
      resp = Send(method, url, body, token, deadline);
    }
    crypto::Zeroize(token.data(), token.size());
    return resp;
  }

  // One request with azcore's retry policy (§1.6): transport errors and
  // 408/429/500/502/503/504 are retried up to 7 times, waiting
  // (2^n - 1) × 200 ms × [0.8, 1.3) capped at 800 ms, or what Retry-After
  // asks; never past the deadline.
  Result<net::HttpResponse> Send(const std::string& method, const net::Url& url,
                                 const std::string& body, const std::string& token,
                                 Deadline deadline) {
    net::HttpRequest req;
    req.method = method;
    req.url = url;
    req.deadline = deadline;
    req.body = body;
    req.headers.emplace_back("Accept", "application/json");
    if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
    if (!token.empty()) req.headers.emplace_back("Authorization", "Bearer " + token);
    Result<net::HttpResponse> resp = kes::Status::Internal("azure: no attempt");
    for (int attempt = 1;; ++attempt) {
      resp = http_.Do(req);
      const bool retry =
          resp.ok() ? Retryable(resp->status) : resp.status().code() == Code::kUnreachable;
      if (!retry || attempt > timing_.max_retries) break;
      milliseconds wait = resp.ok() ? RetryAfter(*resp) : milliseconds(-1);
      if (wait.count() < 0) wait = Backoff(attempt);
      if (TimeLeft(deadline, wait) < wait || stop_.Wait(wait)) break;
    }
    crypto::Zeroize(req.body.data(), req.body.size());
    for (auto& [k, v] : req.headers) crypto::Zeroize(v.data(), v.size());
    return resp;
  }

  milliseconds Backoff(int attempt) const {
    thread_local std::mt19937 rng{std::random_device{}()};
    std::uniform_real_distribution<double> jitter(0.8, 1.3);
    const double d = static_cast<double>((int64_t{1} << std::min(attempt, 20)) - 1) *
                     static_cast<double>(timing_.retry_unit.count()) * jitter(rng);
    return std::min(milliseconds(static_cast<int64_t>(d)), timing_.retry_cap);
  }

  const Config config_;
  net::Url endpoint_;
  net::HttpClient http_;
  net::HttpClient identity_http_;  // outlives credential_ (declared before it)
  const Timing timing_;
  std::unique_ptr<Credential> credential_;

  std::mutex scope_mu_;
  std::string scope_;  // learnt from the first challenge

  StopSignal stop_;  // Close() ends the retry and purge waits
};

}  // namespace

Result<std::unique_ptr<KeyStore>> Open(const Config& config, const Env& env, const Timing& timing) {
  auto endpoint = net::Url::Parse(config.endpoint);
  if (!endpoint.ok()) return endpoint.status().WithContext("azure: invalid endpoint");
  // The SDK refuses bearer tokens over plain HTTP on every call; refuse once.
  if (endpoint->scheme != "https") {
    return Status::Invalid("azure: invalid endpoint '" + config.endpoint +
                           "': Key Vault is only reached over https");
  }
  net::HttpClientOptions http;
  http.connect_timeout = seconds(10);
  http.request_timeout = seconds(30);
  // Go's system roots honour SSL_CERT_FILE; so does kes-cpp.
  http.ca_file = env("SSL_CERT_FILE");

  IdentityOptions identity;
  identity.imds_retry_unit = timing.imds_retry_unit;
  if (std::string host = env("AZURE_AUTHORITY_HOST"); !host.empty()) {
    auto url = net::Url::Parse(host);
    if (!url.ok() || url->scheme != "https") {
      return Status::Invalid(
          "azure: failed to create default Azure credential: "
          "AZURE_AUTHORITY_HOST must be an https URL");
    }
    identity.authority = host.ends_with('/') ? host : host + "/";
  }
  if (std::string imds = env("AZURE_POD_IDENTITY_AUTHORITY_HOST"); !imds.empty()) {
    // Test-only knob (docs/compatibility.md): IMDS elsewhere than
    // 169.254.169.254.
    while (imds.ends_with('/')) imds.pop_back();
    if (!net::Url::Parse(imds).ok()) {
      return Status::Invalid("azure: invalid AZURE_POD_IDENTITY_AUTHORITY_HOST");
    }
    spdlog::warn(
        "azure: managed identity tokens are requested from {} "
        "(AZURE_POD_IDENTITY_AUTHORITY_HOST)",
        imds);
    identity.imds = std::move(imds);
  }
  net::HttpClientOptions identity_http = http;
  identity_http.allow_metadata_http = true;  // IMDS speaks plain HTTP on 169.254.169.254

  auto store =
      std::make_unique<AzureKeyStore>(config, *endpoint, http, std::move(identity_http), timing);
  auto credential = NewCredential(config, env, identity, store->identity_http());
  if (!credential.ok()) return credential.status();
  store->SetCredential(std::move(*credential));
  return std::unique_ptr<KeyStore>(std::move(store));
}

Result<std::unique_ptr<KeyStore>> Open(const Config& config) { return Open(config, GetEnv); }

}  // namespace kes::keystore::azure

#include "keystore/gcp/secret_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

#include "aws/sigv4.h"  // UriEncode
#include "common/json_members.h"
#include "common/stop_signal.h"
#include "crypto/encoding.h"
#include "crypto/secret_bytes.h"
#include "keystore/list.h"

namespace kes::keystore::gcp {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// "<STATUS>: <message>" from a REST error body
// {"error":{"code":404,"message":"…","status":"NOT_FOUND"}}.
std::string ErrorText(const net::HttpResponse& resp) {
  auto doc = nlohmann::json::parse(resp.body, nullptr, false);
  const auto& err = ObjectMember(doc, "error");
  std::string status = StringMember(err, "status"), message = StringMember(err, "message");
  if (status.empty() && message.empty()) {
    return "HTTP " + std::to_string(resp.status) + ": " + resp.body.substr(0, 256);
  }
  return (status.empty() ? "HTTP " + std::to_string(resp.status) : status) + ": " + message;
}

// The part of a resource name after its last '/'.
std::string LastElement(std::string_view name) {
  const size_t slash = name.rfind('/');
  return std::string(slash == std::string_view::npos ? name : name.substr(slash + 1));
}

class SecretManagerKeyStore : public KeyStore {
 public:
  SecretManagerKeyStore(const Config& config, net::Url origin, net::HttpClientOptions http,
                        std::unique_ptr<TokenSource> credentials, const Timing& timing)
      : project_(config.project_id),
        origin_(std::move(origin)),
        http_(std::move(http)),
        token_(std::move(credentials)),
        timing_(timing) {}

  ~SecretManagerKeyStore() override { Close(); }

  std::string DisplayName() const override { return "GCP SecretManager: Project=" + project_; }

  // Like upstream: an unauthenticated GET of the endpoint; any HTTP answer
  // means reachable.
  Result<KeyStoreState> Status(Deadline deadline) override {
    net::HttpRequest req;
    req.url = origin_;
    req.url.path = "/";
    req.timeout = timing_.probe_timeout;
    req.deadline = deadline;
    const auto start = Clock::now();
    auto resp = http_.Do(req);
    if (!resp.ok()) return kes::Status::Unreachable("gcp: " + resp.status().message());
    return KeyStoreState{Clock::now() - start};
  }

  kes::Status Create(std::string_view name, std::string_view value, Deadline deadline) override {
    deadline = CallDeadline(deadline);
    auto failed = [&](const std::string& why) {
      return kes::Status::Unavailable("gcp: failed to create '" + std::string(name) + "': " + why);
    };
    auto created = Call("POST", SecretPath(""), "secretId=" + aws::UriEncode(name, false),
                        R"({"replication":{"automatic":{}}})", deadline);
    if (!created.ok())
      return created.status().WithContext("gcp: failed to create '" + std::string(name) + "'");
    if (created->status == 409) return kes::Status::KeyExists();
    if (created->status != 200) return failed(ErrorText(*created));
    // The answer names the secret by project number; use it if it is the
    // secret just created, else the project id form.
    std::string secret = StringMember(nlohmann::json::parse(created->body, nullptr, false), "name");
    if (!IsSecretName(secret, name)) secret = SecretName(name);

    std::string body;
    body.reserve(value.size() * 4 / 3 + 32);
    body += R"({"payload":{"data":")";
    crypto::Base64Append(body,
                         std::span(reinterpret_cast<const uint8_t*>(value.data()), value.size()));
    body += R"("}})";
    auto added = Call("POST", "/v1/" + secret + ":addVersion", "", body, deadline);
    crypto::Zeroize(body.data(), body.size());
    if (added.ok() && added->status == 200) return kes::Status::Ok();
    const std::string why = added.ok() ? ErrorText(*added) : added.status().message();
    // Upstream leaves the version-less secret behind, so that the name then
    // reads as existing to Create and as missing to Get. Remove it.
    auto undo = Call("DELETE", "/v1/" + secret, "", "", deadline);
    if (!undo.ok() || (undo->status != 200 && undo->status != 404)) {
      spdlog::error("gcp: failed to remove the empty secret '{}' after a failed create: {}", name,
                    undo.ok() ? ErrorText(*undo) : undo.status().message());
    }
    if (!added.ok() && added.status().code() == Code::kUnreachable) {
      return added.status().WithContext("gcp: failed to create '" + std::string(name) + "'");
    }
    return failed(why);
  }

  Result<std::string> Get(std::string_view name, Deadline deadline) override {
    deadline = CallDeadline(deadline);
    const std::string path = "/v1/" + SecretName(name) + "/versions/1:access";
    milliseconds wait = timing_.retry_initial;
    Result<net::HttpResponse> resp = kes::Status::Internal("gcp: no attempt");
    while (true) {
      resp = Call("GET", path, "", "", deadline);
      // Upstream retries AccessSecretVersion on UNAVAILABLE and
      // RESOURCE_EXHAUSTED with exponential back-off, within the deadline.
      const bool retry = resp.ok() ? resp->status == 503 || resp->status == 429
                                   : resp.status().code() == Code::kUnreachable;
      if (!retry) break;
      thread_local std::mt19937 rng{std::random_device{}()};
      const milliseconds pause(
          static_cast<int64_t>(std::uniform_real_distribution<double>(0.5, 1.0)(rng) *
                               static_cast<double>(wait.count())));
      if (TimeLeft(deadline, pause) < pause || stop_.Wait(pause)) break;
      wait = std::min(timing_.retry_max, milliseconds(wait.count() * 2));
    }
    const std::string context = "gcp: failed to read '" + std::string(name) + "'";
    if (!resp.ok()) return resp.status().WithContext(context);
    if (resp->status == 404) return kes::Status::KeyNotFound();
    if (resp->status != 200) return kes::Status::Unavailable(context + ": " + ErrorText(*resp));
    auto doc = nlohmann::json::parse(resp->body, nullptr, false);
    crypto::Zeroize(resp->body.data(), resp->body.size());
    std::string b64 = StringMember(ObjectMember(doc, "payload"), "data");
    if (auto it = doc.is_object() ? doc.find("payload") : doc.end();
        it != doc.end() && it->is_object() && it->contains("data") && (*it)["data"].is_string()) {
      auto& s = (*it)["data"].get_ref<std::string&>();
      crypto::Zeroize(s.data(), s.size());
    }
    auto bytes = crypto::Base64Decode(b64);
    crypto::Zeroize(b64.data(), b64.size());
    if (!bytes) return kes::Status::Unavailable(context + ": invalid payload in the response");
    std::string value(bytes->begin(), bytes->end());
    crypto::Zeroize(bytes->data(), bytes->size());
    return value;
  }

  kes::Status Delete(std::string_view name, Deadline deadline) override {
    auto resp = Call("DELETE", "/v1/" + SecretName(name), "", "", CallDeadline(deadline));
    const std::string context = "gcp: failed to delete '" + std::string(name) + "'";
    if (!resp.ok()) return resp.status().WithContext(context);
    if (resp->status == 404) return kes::Status::KeyNotFound();
    if (resp->status != 200) return kes::Status::Unavailable(context + ": " + ErrorText(*resp));
    return kes::Status::Ok();
  }

  Result<ListPage> List(std::string_view prefix, int limit, Deadline deadline) override {
    deadline = CallDeadline(deadline);
    std::vector<std::string> names;
    std::string page_token;
    do {
      const std::string query =
          page_token.empty() ? "" : "pageToken=" + aws::UriEncode(page_token, false);
      auto resp = Call("GET", SecretPath(""), query, "", deadline);
      if (!resp.ok()) return resp.status().WithContext("gcp: failed to list keys");
      if (resp->status != 200) {
        return kes::Status::Unavailable("gcp: failed to list keys: " + ErrorText(*resp));
      }
      auto doc = nlohmann::json::parse(resp->body, nullptr, false);
      if (!doc.is_object()) {
        return kes::Status::Unavailable("gcp: failed to list keys: invalid response");
      }
      if (auto it = doc.find("secrets"); it != doc.end() && it->is_array()) {
        for (const auto& s : *it) {
          const std::string full = StringMember(s, "name");
          if (!full.empty()) names.push_back(LastElement(full));
        }
      }
      std::string next = StringMember(doc, "nextPageToken");
      if (!next.empty() && next == page_token) {
        return kes::Status::Unavailable(
            "gcp: failed to list keys: the server repeated a page token");
      }
      page_token = std::move(next);
    } while (!page_token.empty());
    return ListAll(std::move(names), prefix, limit);
  }

  void Close() override { stop_.Stop(); }

 private:
  // The caller's deadline, but never more than upstream's 60 s per call.
  Deadline CallDeadline(Deadline deadline) const {
    return std::min(deadline, DeadlineIn(timing_.call_timeout));
  }

  std::string SecretName(std::string_view name) const {
    return "projects/" + aws::UriEncode(project_, false) + "/secrets/" +
           aws::UriEncode(name, false);
  }

  // /v1/projects/<p>/secrets[/<name>]
  std::string SecretPath(std::string_view name) const {
    if (name.empty()) return "/v1/projects/" + aws::UriEncode(project_, false) + "/secrets";
    return "/v1/" + SecretName(name);
  }

  // "projects/<id or number>/secrets/<name>", nothing else.
  static bool IsSecretName(std::string_view s, std::string_view name) {
    if (!s.starts_with("projects/")) return false;
    s.remove_prefix(9);
    const size_t slash = s.find('/');
    if (slash == 0 || slash == std::string_view::npos) return false;
    const std::string_view project = s.substr(0, slash);
    if (!std::all_of(project.begin(), project.end(), [](unsigned char c) {
          return std::isalnum(c) || c == '-' || c == '.' || c == ':';
        })) {
      return false;
    }
    return s.substr(slash) == "/secrets/" + aws::UriEncode(name, false);
  }

  // One authenticated request; a 401 (token expired or revoked) fetches a
  // new token and sends once more.
  Result<net::HttpResponse> Call(const std::string& method, const std::string& path,
                                 const std::string& query, const std::string& body,
                                 Deadline deadline) {
    Result<net::HttpResponse> resp = kes::Status::Internal("gcp: no attempt");
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto token = token_.Get(deadline);
      if (!token.ok()) return token.status().WithContext("gcp: no access token");
      net::HttpRequest req;
      req.method = method;
      req.url = origin_;
      req.url.path = path;
      req.url.query = query;
      req.body = body;
      req.deadline = deadline;
      req.headers.emplace_back("Authorization", "Bearer " + *token);
      if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
      resp = http_.Do(req);
      crypto::Zeroize(req.body.data(), req.body.size());
      crypto::Zeroize(req.headers[0].second.data(), req.headers[0].second.size());
      const bool rejected = resp.ok() && resp->status == 401;
      if (rejected) token_.Invalidate(*token);
      crypto::Zeroize(token->data(), token->size());
      if (!rejected) break;
    }
    return resp;
  }

  const std::string project_;
  const net::Url origin_;
  net::HttpClient http_;
  CachedToken token_;
  const Timing timing_;
  StopSignal stop_;  // Close() ends the retry waits
};

}  // namespace

Result<net::Url> ApiOrigin(const std::string& endpoint) {
  if (endpoint.empty()) return net::Url::Parse("https://secretmanager.googleapis.com");
  auto url = net::Url::Parse(endpoint, "https");
  if (!url.ok()) return url.status().WithContext("gcp: invalid endpoint '" + endpoint + "'");
  url->path = "/";
  url->query.clear();
  return url;
}

Result<std::unique_ptr<KeyStore>> Open(const Config& config, const Env& env, const Timing& timing) {
  KES_ASSIGN_OR_RETURN(net::Url origin, ApiOrigin(config.endpoint));
  std::vector<std::string> scopes = config.scopes;
  if (scopes.empty()) scopes.emplace_back(kDefaultScope);

  std::unique_ptr<TokenSource> credentials;
  if (config.client_email.empty() && config.client_id.empty() && config.private_key_id.empty() &&
      config.private_key.empty()) {
    KES_ASSIGN_OR_RETURN(credentials, FindDefaultCredentials(env, scopes));
  } else {
    KES_ASSIGN_OR_RETURN(ServiceAccountKey key,
                         ParseServiceAccountKey(config.client_email, config.client_id,
                                                config.private_key_id, config.private_key));
    credentials = NewSelfSignedJwtSource(std::move(key), scopes);
  }

  net::HttpClientOptions http;
  http.connect_timeout = milliseconds(10000);
  http.request_timeout = timing.call_timeout;
  http.max_response_bytes = 64 << 20;  // a list page of 25 000 secrets
  http.ca_file = env("SSL_CERT_FILE");
  auto store = std::make_unique<SecretManagerKeyStore>(config, std::move(origin), std::move(http),
                                                       std::move(credentials), timing);
  // Upstream probes once at start-up; a failure aborts it.
  auto state = store->Status(DeadlineIn(timing.probe_timeout));
  if (!state.ok()) return state.status();
  return std::unique_ptr<KeyStore>(std::move(store));
}

Result<std::unique_ptr<KeyStore>> Open(const Config& config) {
  return Open(config, [](const char* name) {
    const char* v = std::getenv(name);
    return v == nullptr ? std::string() : std::string(v);
  });
}

}  // namespace kes::keystore::gcp

#include "keystore/entrust/keycontrol_keystore.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "aws/sigv4.h"
#include "common/stop_signal.h"
#include "crypto/encoding.h"
#include "crypto/secret_bytes.h"
#include "keystore/entrust/response.h"
#include "keystore/list.h"
#include "net/ca_bundle.h"
#include "net/http_client.h"
#include "net/retry.h"

namespace kes::keystore::entrust {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Bounds upstream did not have (it had dial 30 s, TLS 10 s and no overall
// limit); every call is also bounded by its Deadline.
constexpr milliseconds kConnectTimeout = seconds(30);
constexpr milliseconds kRequestTimeout = seconds(30);
constexpr milliseconds kStatusTimeout = seconds(10);
constexpr milliseconds kLoginTimeout = seconds(60);
// What upstream reads of an answer: a secret (1 MB), a listing page (10 MB).
constexpr size_t kMaxSecretAnswer = 1 << 20;
constexpr size_t kMaxAnswer = 10 << 20;
constexpr int kListPageSize = 256;

// The error KeyControl answers, and what it means.
struct Answer {
  int status = 0;
  std::string error;
};

Answer ReadAnswer(const net::HttpResponse& resp) {
  return {resp.status, ErrorText(resp.status, resp.Header("content-type"), resp.body)};
}

class KeyControlKeyStore : public KeyStore {
 public:
  KeyControlKeyStore(const Config& config, net::Url endpoint, net::HttpClientOptions http,
                     const Timing& timing)
      : config_(config), endpoint_(std::move(endpoint)), http_(std::move(http)), timing_(timing) {
    while (endpoint_.path.size() > 1 && endpoint_.path.back() == '/') endpoint_.path.pop_back();
    if (endpoint_.path == "/") endpoint_.path.clear();
  }

  ~KeyControlKeyStore() override { Close(); }

  std::string DisplayName() const override { return "Entrust KeyControl: " + config_.endpoint; }

  // Connect (§5.1): login, GetBox must answer 200, then the token loop.
  kes::Status Start() {
    auto refresh = Login(DeadlineIn(kLoginTimeout));
    if (!refresh.ok()) return refresh.status();
    auto state = Status(DeadlineIn(kLoginTimeout));
    if (!state.ok()) return state.status();
    token_loop_ = std::thread([this, first = *refresh] { TokenLoop(first); });
    return kes::Status::Ok();
  }

  Result<KeyStoreState> Status(Deadline deadline) override {
    const auto start = Clock::now();
    auto resp = Call("GetBox", BoxBody(), deadline, kStatusTimeout);
    if (!resp.ok()) {
      return kes::Status::Unreachable("keycontrol: failed to fetch status: " +
                                      resp.status().message());
    }
    if (resp->status != 200)
      return kes::Status::Unavailable("keycontrol: " + ReadAnswer(*resp).error);
    return KeyStoreState{Clock::now() - start};
  }

  kes::Status Create(std::string_view name, std::string_view value, Deadline deadline) override {
    nlohmann::json body = {{"box_id", config_.box_id},
                           {"name", std::string(name)},
                           {"secret_data", crypto::Base64Encode(value)}};
    std::string text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    auto& sent = body["secret_data"].get_ref<std::string&>();
    crypto::Zeroize(sent.data(), sent.size());
    auto resp = Call("CreateSecret", text, deadline);
    crypto::Zeroize(text.data(), text.size());
    if (!resp.ok()) return resp.status().WithContext("keycontrol: failed to create key");
    if (resp->status == 200) return kes::Status::Ok();
    const Answer a = ReadAnswer(*resp);
    if (a.status == 409 && a.error == "Secret already exists") return kes::Status::KeyExists();
    return kes::Status::Unavailable("keycontrol: " + a.error);
  }

  Result<std::string> Get(std::string_view name, Deadline deadline) override {
    auto resp = Call("CheckoutSecret", SecretBody(name), deadline);
    if (!resp.ok()) return resp.status().WithContext("keycontrol: failed to fetch key");
    if (resp->status != 200) return NotFoundOr(*resp);
    if (resp->body.size() > kMaxSecretAnswer) {
      crypto::Zeroize(resp->body.data(), resp->body.size());
      return kes::Status::Unavailable("keycontrol: failed to fetch key: answer larger than 1 MB");
    }
    auto value = ParseSecretData(resp->body);
    crypto::Zeroize(resp->body.data(), resp->body.size());
    return value;
  }

  kes::Status Delete(std::string_view name, Deadline deadline) override {
    auto resp = Call("DeleteSecret", SecretBody(name), deadline);
    if (!resp.ok()) return resp.status().WithContext("keycontrol: failed to delete key");
    if (resp->status != 200) return NotFoundOr(*resp);
    return kes::Status::Ok();
  }

  // Every page of the box (the server pages by 256), then the KES listing
  // semantics locally: upstream turned a prefix into a continuation token
  // and returned empty names (§5.4).
  Result<ListPage> List(std::string_view prefix, int limit, Deadline deadline) override {
    std::vector<std::string> names;
    std::string next;
    do {
      nlohmann::json body = {{"box_id", config_.box_id}, {"max_items", kListPageSize}};
      if (!next.empty()) body["next_token"] = next;
      auto resp =
          Call("ListSecretIds", body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
               deadline);
      if (!resp.ok()) return resp.status().WithContext("keycontrol: failed to list keys");
      if (resp->status != 200) {
        return kes::Status::Unavailable("keycontrol: " + ReadAnswer(*resp).error);
      }
      auto page = ParseSecretPage(resp->body);
      if (!page.ok()) return page.status();
      if (!page->next_token.empty() && page->next_token == next) {
        return kes::Status::Unavailable(
            "keycontrol: failed to list keys: the server repeats its next_token");
      }
      for (std::string& n : page->names) names.push_back(std::move(n));
      next = std::move(page->next_token);
    } while (!next.empty());
    return ListAll(std::move(names), prefix, limit);
  }

  void Close() override {
    cancel_.store(true);  // ends a renewal or login under way
    if (!stop_.Stop()) return;
    if (token_loop_.joinable()) token_loop_.join();
    std::lock_guard lock(token_mu_);
    crypto::Zeroize(token_.data(), token_.size());
  }

 private:
  std::string BoxBody() const { return nlohmann::json({{"box_id", config_.box_id}}).dump(); }

  std::string SecretBody(std::string_view name) const {
    return nlohmann::json({{"box_id", config_.box_id}, {"secret_id", std::string(name)}})
        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  kes::Status NotFoundOr(const net::HttpResponse& resp) const {
    const Answer a = ReadAnswer(resp);
    if (a.status == 404 && a.error == "Secret not found") return kes::Status::KeyNotFound();
    return kes::Status::Unavailable("keycontrol: " + a.error);
  }

  // <endpoint>/vault/1.0/<op>/ (url.JoinPath keeps the trailing slash).
  net::HttpRequest Request(std::string_view op, std::string body, Deadline deadline) const {
    net::HttpRequest req;
    req.method = "POST";
    req.url = endpoint_;
    req.url.query.clear();
    req.url.path = endpoint_.path + "/vault/1.0/" + std::string(op) + "/";
    req.body = std::move(body);
    req.deadline = deadline;
    req.timeout = kRequestTimeout;
    return req;
  }

  // Sends one request through the retry client (§0) and zeroizes what it
  // held.
  Result<net::HttpResponse> Send(net::HttpRequest& req) {
    auto resp = net::DoWithRetry(http_, req, timing_.retry);
    crypto::Zeroize(req.body.data(), req.body.size());
    for (auto& [k, v] : req.headers) crypto::Zeroize(v.data(), v.size());
    return resp;
  }

  // An operation with the session token. A token the server no longer
  // accepts (401/403) makes one fresh login and one more try, instead of
  // failing until the next renewal (upstream).
  Result<net::HttpResponse> Call(std::string_view op, const std::string& body, Deadline deadline,
                                 milliseconds timeout = kRequestTimeout) {
    uint64_t generation;
    Result<net::HttpResponse> resp = kes::Status::Internal("keycontrol: no attempt");
    for (int attempt = 0; attempt < 2; ++attempt) {
      net::HttpRequest req = Request(op, body, deadline);
      req.timeout = timeout;
      {
        std::lock_guard lock(token_mu_);
        generation = generation_;
        req.headers.emplace_back("X-Vault-Auth", token_);
      }
      resp = Send(req);
      if (!resp.ok() || (resp->status != 401 && resp->status != 403)) break;
      if (attempt == 0 && !Relogin(generation, deadline).ok()) break;
    }
    return resp;
  }

  kes::Status Relogin(uint64_t generation, Deadline deadline) {
    std::lock_guard login(login_mu_);
    {
      std::lock_guard lock(token_mu_);
      if (generation_ != generation) return kes::Status::Ok();  // someone else did
    }
    auto refresh = Login(deadline);
    if (!refresh.ok()) {
      spdlog::error("keycontrol: login after a rejected token failed: {}",
                    refresh.status().message());
      return refresh.status();
    }
    return kes::Status::Ok();
  }

  // Login (§5.1); installs the token and answers when to refresh it.
  // `cancel`: the token loop's logins end when Close() is called.
  Result<milliseconds> Login(Deadline deadline, const std::atomic<bool>* cancel = nullptr) {
    std::string text =
        nlohmann::json({{"username", config_.username}, {"password", config_.password}})
            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    net::HttpRequest req =
        Request("Login/" + aws::UriEncode(config_.vault_id, /*keep_slash=*/false), std::move(text),
                deadline);
    req.headers.emplace_back("Content-Type", "application/json");
    req.cancel = cancel;
    return Authenticate(req, "keycontrol: login failed");
  }

  // Renew (§5.1): no body, the current token.
  Result<milliseconds> Renew() {
    net::HttpRequest req = Request("Renew", "", DeadlineIn(kLoginTimeout));
    req.headers.emplace_back("X-Vault-Auth", Token());
    req.cancel = &cancel_;
    return Authenticate(req, "keycontrol: failed to renew auth token");
  }

  Result<milliseconds> Authenticate(net::HttpRequest& req, const std::string& what) {
    auto resp = Send(req);
    if (!resp.ok()) return resp.status().WithContext(what);
    if (resp->status != 200) return kes::Status::Unavailable(what + ": " + ReadAnswer(*resp).error);
    auto auth = ParseAuthToken(resp->body);
    crypto::Zeroize(resp->body.data(), resp->body.size());
    if (!auth.ok()) return auth.status();
    const auto now = std::chrono::system_clock::now();
    const auto expires = auth->expires_at.value_or(now + timing_.unknown_lifetime);
    auto refresh = std::chrono::duration_cast<milliseconds>(expires - now) / 2;
    if (refresh <= milliseconds(0)) refresh = timing_.expired_refresh;
    std::lock_guard lock(token_mu_);
    crypto::Zeroize(token_.data(), token_.size());
    token_ = std::move(auth->token);
    ++generation_;
    return refresh;
  }

  std::string Token() const {
    std::lock_guard lock(token_mu_);
    return token_;
  }

  // Refreshes the token at half its lifetime: renew, else log in, else
  // log in again every relogin_retry until it works (upstream stopped).
  void TokenLoop(milliseconds wait) {
    while (!stop_.Wait(wait)) {
      auto renewed = Renew();
      if (renewed.ok()) {
        wait = *renewed;
        continue;
      }
      if (cancel_.load()) return;
      spdlog::warn("{}", renewed.status().message());
      for (;;) {
        auto login = Login(DeadlineIn(kLoginTimeout), &cancel_);
        if (login.ok()) {
          wait = *login;
          break;
        }
        if (cancel_.load()) return;
        spdlog::error("{}", login.status().message());
        if (stop_.Wait(timing_.relogin_retry)) return;
      }
    }
  }

  const Config config_;
  net::Url endpoint_;
  net::HttpClient http_;
  const Timing timing_;

  mutable std::mutex token_mu_;
  std::string token_;
  uint64_t generation_ = 0;
  std::mutex login_mu_;

  StopSignal stop_;
  std::atomic<bool> cancel_{false};
  std::thread token_loop_;
};

}  // namespace

Result<std::unique_ptr<KeyStore>> Open(const Config& config, const Timing& timing) {
  auto endpoint = net::Url::Parse(config.endpoint);
  if (!endpoint.ok()) return endpoint.status().WithContext("keycontrol: invalid endpoint");
  net::HttpClientOptions http;
  http.connect_timeout = kConnectTimeout;
  http.request_timeout = kRequestTimeout;
  http.max_response_bytes = kMaxAnswer;
  if (!config.tls_ca.empty()) {
    auto bundle = net::ReadCaBundle(config.tls_ca, /*with_system_roots=*/true);
    if (!bundle.ok()) return bundle.status();
    http.ca_pem = *std::move(bundle);
  }
  auto store =
      std::make_unique<KeyControlKeyStore>(config, *std::move(endpoint), std::move(http), timing);
  KES_TRY(store->Start());
  return std::unique_ptr<KeyStore>(std::move(store));
}

}  // namespace kes::keystore::entrust

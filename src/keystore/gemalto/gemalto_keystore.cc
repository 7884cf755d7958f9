#include "keystore/gemalto/gemalto_keystore.h"

#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "aws/sigv4.h"
#include "common/stop_signal.h"
#include "crypto/secret_bytes.h"
#include "keystore/gemalto/response.h"
#include "keystore/list.h"
#include "keystore/status_probe.h"
#include "net/ca_bundle.h"
#include "net/http_client.h"
#include "net/retry.h"

namespace kes::keystore::gemalto {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kMaxExportBytes = 2 << 20;  // upstream reads at most 2 MiB of an export
constexpr int kListPageSize = 200;

// `"<codeDesc>" (<code>)`: how upstream quotes a server error.
std::string Quoted(const ApiError& e) {
  return "\"" + e.desc + "\" (" + std::to_string(e.code) + ")";
}

void ZeroizeRequest(net::HttpRequest& req) {
  crypto::Zeroize(req.body.data(), req.body.size());
  for (auto& [name, value] : req.headers) crypto::Zeroize(value.data(), value.size());
}

class GemaltoKeyStore : public KeyStore {
 public:
  GemaltoKeyStore(const Config& config, net::Url endpoint, net::HttpClientOptions http,
                  const Timing& timing)
      : endpoint_text_(config.endpoint),
        endpoint_(std::move(endpoint)),
        refresh_token_(config.token),
        domain_(config.domain),
        http_(std::move(http)),
        timing_(timing) {}

  ~GemaltoKeyStore() override {
    Close();
    crypto::Zeroize(refresh_token_.data(), refresh_token_.size());
  }

  std::string DisplayName() const override { return "Gemalto KeySecure: " + endpoint_text_; }

  // The login at connect, then the renewal loop.
  kes::Status Start() {
    auto login = LogIn(DeadlineIn(timing_.login_deadline));
    if (!login.ok()) return login.status();
    const auto renew_in = login->duration / 2;
    SetJwt(std::move(login->jwt));
    renew_ = std::thread([this, renew_in] { RenewLoop(renew_in); });
    return kes::Status::Ok();
  }

  // Any HTTP answer to `GET <endpoint>` means up (§0).
  Result<KeyStoreState> Status(Deadline deadline) override {
    const auto start = Clock::now();
    net::HttpRequest req = Request("GET", "", "", deadline);
    req.url.path = endpoint_.path;
    req.timeout = timing_.status_timeout;
    return ProbeState(net::DoWithRetry(http_, req), start, deadline);
  }

  kes::Status Create(std::string_view name, std::string_view value, Deadline deadline) override {
    nlohmann::json doc = {
        {"dataType", "seed"}, {"material", std::string(value)}, {"name", std::string(name)}};
    std::string body = doc.dump();
    auto& sent = doc["material"].get_ref<std::string&>();
    crypto::Zeroize(sent.data(), sent.size());
    auto resp = Call("POST", "/api/v1/vault/secrets", body, deadline);
    crypto::Zeroize(body.data(), body.size());
    const std::string what = "gemalto: failed to create key '" + std::string(name) + "'";
    if (!resp.ok()) return resp.status().WithContext(what);
    if (resp->status == 201) return kes::Status::Ok();
    if (resp->status == 409) return kes::Status::KeyExists();
    return kes::Status::Unavailable(what + ": " + Quoted(ParseError(*resp)));
  }

  Result<std::string> Get(std::string_view name, Deadline deadline) override {
    auto resp = Call("POST", SecretPath(name) + "/export?type=name", "", deadline);
    const std::string what = "gemalto: failed to access key \"" + std::string(name) + "\"";
    if (!resp.ok()) return resp.status().WithContext(what);
    if (resp->status == 404) return kes::Status::KeyNotFound();
    if (resp->status != 200) {
      return kes::Status::Unavailable(what + ": " + Quoted(ParseError(*resp)));
    }
    if (resp->body.size() > kMaxExportBytes) {
      crypto::Zeroize(resp->body.data(), resp->body.size());
      return kes::Status::Unavailable(what + ": response is larger than 2 MiB");
    }
    auto material = ParseMaterial(resp->body);
    crypto::Zeroize(resp->body.data(), resp->body.size());
    if (!material.ok()) return material.status().WithContext(what);
    return material;
  }

  kes::Status Delete(std::string_view name, Deadline deadline) override {
    auto resp = Call("DELETE", SecretPath(name) + "?type=name", "", deadline);
    const std::string what = "gemalto: failed to delete key \"" + std::string(name) + "\"";
    if (!resp.ok()) return resp.status().WithContext(what);
    // 404 is success: the server also answers 404 when access is denied, so
    // a missing key cannot be told apart (upstream's documented behaviour).
    if (resp->status == 204 || resp->status == 404) return kes::Status::Ok();
    const ApiError e = ParseError(*resp);
    return kes::Status::Unavailable(what + ": " + e.desc + " (" + std::to_string(e.code) + ")");
  }

  Result<ListPage> List(std::string_view prefix, int limit, Deadline deadline) override {
    std::vector<std::string> names;
    for (int64_t skip = 0;;) {
      auto resp = Call("GET",
                       "/api/v1/vault/secrets?limit=" + std::to_string(kListPageSize) +
                           "&skip=" + std::to_string(skip),
                       "", deadline);
      const std::string what = "gemalto: failed to list keys";
      if (!resp.ok()) return resp.status().WithContext(what);
      if (resp->status != 200) {
        return kes::Status::Unavailable(what + ": " + Quoted(ParseError(*resp)));
      }
      auto page = ParsePage(resp->body);
      if (!page.ok()) return page.status().WithContext(what);
      if (page->skip != skip) {
        return kes::Status::Unavailable(what + ": pagination is out-of-sync: tried to skip " +
                                        std::to_string(skip) + " but skipped " +
                                        std::to_string(page->skip));
      }
      skip += static_cast<int64_t>(page->names.size());
      const bool empty = page->names.empty();
      for (std::string& n : page->names) names.push_back(std::move(n));
      // Upstream stops only once the answer's skip reaches the total, and so
      // loops forever on an empty page below it; an empty page ends the walk.
      if (page->skip >= page->total || empty) break;
    }
    return ListAll(std::move(names), prefix, limit);
  }

  void Close() override {
    if (!stop_.Stop()) return;
    if (renew_.joinable()) renew_.join();
    std::lock_guard lock(jwt_mu_);
    crypto::Zeroize(jwt_.data(), jwt_.size());
    jwt_.clear();
  }

 private:
  std::string SecretPath(std::string_view name) const {
    return "/api/v1/vault/secrets/" + aws::UriEncode(name, /*keep_slash=*/false);
  }

  // `<endpoint><path_and_query>`: the endpoint is used verbatim (§3).
  net::HttpRequest Request(const std::string& method, const std::string& path_and_query,
                           std::string body, Deadline deadline) const {
    net::HttpRequest req;
    req.method = method;
    req.url = endpoint_;
    const size_t q = path_and_query.find('?');
    const std::string base =
        endpoint_text_.ends_with('/') || endpoint_.path != "/" ? endpoint_.path : std::string();
    req.url.path = base + path_and_query.substr(0, q);
    req.url.query = q == std::string::npos ? "" : path_and_query.substr(q + 1);
    if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
    req.body = std::move(body);
    req.deadline = deadline;
    req.timeout = timing_.request_timeout;
    return req;
  }

  // An API call with the current JWT, through the retry client. A 401 (the
  // JWT expired or was revoked before the loop renewed it) logs in again at
  // once and sends the call once more; twice, since the JWT that replaced
  // the rejected one meanwhile may have been revoked too.
  Result<net::HttpResponse> Call(const std::string& method, const std::string& path_and_query,
                                 const std::string& body, Deadline deadline) {
    uint64_t generation = 0;
    auto resp = CallWithJwt(method, path_and_query, body, deadline, &generation);
    for (int i = 0; i < 2 && resp.ok() && resp->status == 401; ++i) {
      if (!Relogin(generation, deadline).ok()) break;
      resp = CallWithJwt(method, path_and_query, body, deadline, &generation);
    }
    return resp;
  }

  Result<net::HttpResponse> CallWithJwt(const std::string& method,
                                        const std::string& path_and_query, const std::string& body,
                                        Deadline deadline, uint64_t* generation) {
    net::HttpRequest req = Request(method, path_and_query, body, deadline);
    {
      std::lock_guard lock(jwt_mu_);
      *generation = jwt_generation_;
      req.headers.emplace_back("Authorization", "Bearer " + jwt_);
    }
    auto resp = net::DoWithRetry(http_, req);
    ZeroizeRequest(req);
    return resp;
  }

  Result<gemalto::Login> LogIn(Deadline deadline) {
    nlohmann::json doc = {
        {"grant_type", "refresh_token"}, {"refresh_token", refresh_token_}, {"domain", domain_}};
    net::HttpRequest req = Request("POST", "/api/v1/auth/tokens", doc.dump(), deadline);
    auto& sent = doc["refresh_token"].get_ref<std::string&>();
    crypto::Zeroize(sent.data(), sent.size());
    auto resp = net::DoWithRetry(http_, req);
    ZeroizeRequest(req);
    if (!resp.ok()) return resp.status();
    auto login = ParseLogin(*resp);
    crypto::Zeroize(resp->body.data(), resp->body.size());
    return login;
  }

  // Logs in again unless another caller already replaced the JWT seen as
  // `generation`.
  kes::Status Relogin(uint64_t generation, Deadline deadline) {
    std::lock_guard login_lock(login_mu_);
    {
      std::lock_guard lock(jwt_mu_);
      if (jwt_generation_ != generation) return kes::Status::Ok();
    }
    auto login = LogIn(deadline);
    if (!login.ok()) return login.status();
    SetJwt(std::move(login->jwt));
    return kes::Status::Ok();
  }

  void SetJwt(std::string jwt) {
    std::lock_guard lock(jwt_mu_);
    crypto::Zeroize(jwt_.data(), jwt_.size());
    jwt_ = std::move(jwt);
    ++jwt_generation_;
  }

  // §3.1: log in again at half the JWT's lifetime; after a failure every 5 s.
  // Failures are not logged (as upstream): the API calls report them.
  void RenewLoop(milliseconds wait) {
    while (!stop_.Wait(wait)) {
      std::lock_guard login_lock(login_mu_);
      auto login = LogIn(DeadlineIn(timing_.login_deadline));
      if (!login.ok()) {
        wait = timing_.relogin_wait;
        continue;
      }
      wait = std::chrono::duration_cast<milliseconds>(login->duration / 2);
      SetJwt(std::move(login->jwt));
    }
  }

  const std::string endpoint_text_;
  const net::Url endpoint_;
  std::string refresh_token_;
  const std::string domain_;
  net::HttpClient http_;
  const Timing timing_;

  std::mutex jwt_mu_;
  std::string jwt_;
  uint64_t jwt_generation_ = 0;
  std::mutex login_mu_;  // one login at a time

  StopSignal stop_;
  std::thread renew_;
};

}  // namespace

Result<std::unique_ptr<KeyStore>> Open(const Config& config, const Timing& timing) {
  auto endpoint = net::Url::Parse(config.endpoint);
  if (!endpoint.ok()) return endpoint.status().WithContext("gemalto: invalid endpoint");
  net::HttpClientOptions http;
  http.connect_timeout = timing.connect_timeout;
  http.request_timeout = timing.request_timeout;
  http.max_response_bytes = 32 << 20;  // a list page: upstream reads up to 32 MiB
  if (!config.tls_ca.empty()) {
    auto pem = net::ReadCaBundle(config.tls_ca);
    if (!pem.ok()) return pem.status();
    http.ca_pem = *std::move(pem);
  }
  auto store = std::make_unique<GemaltoKeyStore>(config, *endpoint, std::move(http), timing);
  KES_TRY(store->Start());
  return std::unique_ptr<KeyStore>(std::move(store));
}

}  // namespace kes::keystore::gemalto

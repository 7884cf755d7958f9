#include "keystore/fortanix/fortanix_keystore.h"

#include <nlohmann/json.hpp>
#include <set>

#include "aws/sigv4.h"
#include "crypto/encoding.h"
#include "crypto/secret_bytes.h"
#include "keystore/fortanix/response.h"
#include "keystore/list.h"
#include "keystore/status_probe.h"
#include "net/ca_bundle.h"
#include "net/http_client.h"
#include "net/retry.h"

namespace kes::keystore::fortanix {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Timeouts (upstream has none but the dial's): connecting and the TLS
// handshake, one request, and the status probe.
constexpr milliseconds kConnectTimeout = seconds(30);
constexpr milliseconds kRequestTimeout = seconds(60);
constexpr milliseconds kProbeTimeout = seconds(10);
// An answer is one object of at most 1 MB (base64 in JSON) or one page.
constexpr size_t kMaxResponse = 4 << 20;
// A listing that keeps growing past this is refused instead of exhausting memory.
constexpr size_t kMaxListed = 1'000'000;

const std::string kNotFound = "sobject does not exist";
const std::string kExists = "sobject already exists";

// The endpoint with surrounding spaces and one trailing '/' removed.
std::string TrimEndpoint(std::string_view e) {
  while (!e.empty() && e.front() == ' ') e.remove_prefix(1);
  while (!e.empty() && e.back() == ' ') e.remove_suffix(1);
  if (!e.empty() && e.back() == '/') e.remove_suffix(1);
  return std::string(e);
}

// A request body; names are not necessarily UTF-8, and dump() must not throw.
std::string Dump(const nlohmann::json& doc) {
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// "<message>", or the status code when the answer carries none.
std::string Why(const net::HttpResponse& resp) {
  std::string msg = ErrorMessage(resp);
  return msg.empty() ? "HTTP status " + std::to_string(resp.status) : msg;
}

class FortanixKeyStore : public KeyStore {
 public:
  FortanixKeyStore(const Config& config, std::string endpoint, net::Url base,
                   net::HttpClientOptions http)
      : display_("Fortanix SDKMS: " + config.endpoint),
        endpoint_(std::move(endpoint)),
        base_(std::move(base)),
        group_id_(config.group_id),
        basic_("Basic " + config.api_key),
        http_(std::move(http)) {}

  ~FortanixKeyStore() override { crypto::Zeroize(basic_.data(), basic_.size()); }

  std::string DisplayName() const override { return display_; }

  // keystores-cloud.md §4.1: health, then a session login and logout that
  // only prove the API key.
  kes::Status Connect(Deadline deadline) {
    auto health = Send("GET", "/sys/v1/health", "", "", deadline, "");
    if (!health.ok()) return health.status().WithContext(ConnectFailed());
    if (health->status != 204)
      return kes::Status::Unavailable(ConnectFailed() + ": " + Why(*health));

    auto auth = Send("POST", "/sys/v1/session/auth", "", "", deadline, basic_);
    const std::string auth_failed = "fortanix: failed to authenticate to '" + endpoint_ + "'";
    if (!auth.ok()) return auth.status().WithContext(auth_failed);
    if (auth->status != 200) return kes::Status::Unavailable(auth_failed + ": " + Why(*auth));
    auto token = ParseSessionToken(auth->body);
    crypto::Zeroize(auth->body.data(), auth->body.size());
    if (!token.ok()) return token.status().WithContext(auth_failed);

    std::string bearer = "Bearer " + *token;
    crypto::Zeroize(token->data(), token->size());
    auto bye = Send("POST", "/sys/v1/session/terminate", "", "", deadline, bearer);
    crypto::Zeroize(bearer.data(), bearer.size());
    if (!bye.ok()) return bye.status().WithContext(auth_failed);
    if (bye->status != 204) return kes::Status::Unavailable(auth_failed + ": " + Why(*bye));
    return kes::Status::Ok();
  }

  // Any answer of the endpoint itself means DSM is up (§0).
  Result<KeyStoreState> Status(Deadline deadline) override {
    const auto start = Clock::now();
    net::HttpRequest req;
    req.url = base_;
    req.timeout = kProbeTimeout;
    req.deadline = deadline;
    return ProbeState(net::DoWithRetry(http_, req), start, deadline);
  }

  kes::Status Create(std::string_view name, std::string_view value, Deadline deadline) override {
    nlohmann::json doc = {{"obj_type", "OPAQUE"},
                          {"name", name},
                          {"key_ops", {"EXPORT", "APPMANAGEABLE"}},
                          {"value", crypto::Base64Encode(value)},
                          {"enabled", true}};
    if (!group_id_.empty()) doc["group_id"] = group_id_;
    std::string body = Dump(doc);
    std::string& encoded = doc["value"].get_ref<std::string&>();
    crypto::Zeroize(encoded.data(), encoded.size());
    auto resp = Send("PUT", "/crypto/v1/keys", "", body, deadline, basic_);
    crypto::Zeroize(body.data(), body.size());
    const std::string failed = "fortanix: failed to create key '" + std::string(name) + "'";
    if (!resp.ok()) return resp.status().WithContext(failed);
    if (resp->status == 201) return kes::Status::Ok();
    const std::string msg = ErrorMessage(*resp);
    // Only the exact text: a name in a group the app cannot see may give
    // another error (§4.3).
    if (resp->status == 409 && msg == kExists) return kes::Status::KeyExists();
    return kes::Status::Unavailable(failed + ": " + Why(*resp));
  }

  Result<std::string> Get(std::string_view name, Deadline deadline) override {
    const std::string failed = "fortanix: failed to fetch '" + std::string(name) + "'";
    auto obj = Export(name, deadline, failed);
    if (!obj.ok()) return obj.status();
    if (!obj->enabled) {
      crypto::Zeroize(obj->value.data(), obj->value.size());
      return kes::Status::Unavailable(
          failed + ": key has been disabled and cannot be used until enabled again");
    }
    auto bytes = crypto::Base64Decode(obj->value);
    crypto::Zeroize(obj->value.data(), obj->value.size());
    if (!bytes) return kes::Status::Unavailable(failed + ": invalid base64 value");
    std::string out(bytes->begin(), bytes->end());
    crypto::Zeroize(bytes->data(), bytes->size());
    return out;
  }

  kes::Status Delete(std::string_view name, Deadline deadline) override {
    const std::string failed = "fortanix: failed to delete '" + std::string(name) + "'";
    auto obj = Export(name, deadline, failed);
    if (!obj.ok()) return obj.status();
    crypto::Zeroize(obj->value.data(), obj->value.size());
    auto resp = Send("DELETE", "/crypto/v1/keys/" + aws::UriEncode(obj->kid, false), "", "",
                     deadline, basic_);
    if (!resp.ok()) return resp.status().WithContext(failed);
    if (resp->status == 204) return kes::Status::Ok();
    if (resp->status == 404 && ErrorMessage(*resp) == kNotFound) return kes::Status::KeyNotFound();
    return kes::Status::Unavailable(failed + ": " + Why(*resp));
  }

  // Pages with sort=name:asc&limit&start=<last name of the page before>,
  // dropping the repeated first name, until a short page (upstream never
  // advanced `start` and looped forever, §4.3.1).
  Result<ListPage> List(std::string_view prefix, int limit, Deadline deadline) override {
    const std::string failed = "fortanix: failed to list keys";
    std::vector<std::string> names;
    std::set<std::string> seen;
    std::string start;
    for (;;) {
      std::string query = "sort=name%3Aasc&limit=" + std::to_string(kListPage);
      if (!start.empty()) query += "&start=" + aws::UriEncode(start, false);
      auto resp = Send("GET", "/crypto/v1/keys", query, "", deadline, basic_);
      if (!resp.ok()) return resp.status().WithContext(failed);
      if (resp->status != 200) return kes::Status::Unavailable(failed + ": " + Why(*resp));
      auto page = ParseNames(resp->body);
      if (!page.ok()) return page.status();
      if (page->size() == static_cast<size_t>(kListPage)) start = page->back();
      bool advanced = false;
      for (std::string& n : *page) {
        if (!seen.insert(n).second) continue;  // `start` is served again
        names.push_back(std::move(n));
        advanced = true;
      }
      if (page->size() < static_cast<size_t>(kListPage)) break;
      if (!advanced) return kes::Status::Unavailable(failed + ": the listing does not advance");
      if (names.size() > kMaxListed) return kes::Status::Unavailable(failed + ": too many keys");
    }
    return ListAll(std::move(names), prefix, limit);
  }

 private:
  std::string ConnectFailed() const { return "fortanix: failed to connect to '" + endpoint_ + "'"; }

  // POST /crypto/v1/keys/export {"name"}: 404 "sobject does not exist" is
  // KeyNotFound, any other failure is reported under `failed`.
  Result<Sobject> Export(std::string_view name, Deadline deadline, const std::string& failed) {
    const std::string body = Dump({{"name", name}});
    auto resp = Send("POST", "/crypto/v1/keys/export", "", body, deadline, basic_);
    if (!resp.ok()) return resp.status().WithContext(failed);
    if (resp->status != 200) {
      if (resp->status == 404 && ErrorMessage(*resp) == kNotFound)
        return kes::Status::KeyNotFound();
      return kes::Status::Unavailable(failed + ": " + Why(*resp));
    }
    auto obj = ParseSobject(resp->body);
    crypto::Zeroize(resp->body.data(), resp->body.size());
    if (!obj.ok()) return obj.status().WithContext(failed);
    return obj;
  }

  // One DSM call through the retry client (§0), bounded by `deadline`.
  Result<net::HttpResponse> Send(const std::string& method, const std::string& path,
                                 const std::string& query, const std::string& body,
                                 Deadline deadline, const std::string& authorization) {
    net::HttpRequest req;
    req.method = method;
    req.url = base_;
    req.url.path = (base_.path == "/" ? "" : base_.path) + path;
    req.url.query = query;
    req.deadline = deadline;
    if (!authorization.empty()) req.headers.emplace_back("Authorization", authorization);
    if (!body.empty()) {
      req.headers.emplace_back("Content-Type", "application/json");
      req.body = body;
    }
    auto resp = net::DoWithRetry(http_, req);
    crypto::Zeroize(req.body.data(), req.body.size());
    for (auto& [k, v] : req.headers) crypto::Zeroize(v.data(), v.size());
    return resp;
  }

  const std::string display_;
  const std::string endpoint_;  // <E>: trimmed, for messages
  const net::Url base_;
  const std::string group_id_;
  std::string basic_;  // "Basic <API key>", zeroized on destruction
  net::HttpClient http_;
};

}  // namespace

Result<std::unique_ptr<KeyStore>> Open(const Config& config) {
  const std::string endpoint = TrimEndpoint(config.endpoint);
  auto base = net::Url::Parse(endpoint);
  if (!base.ok()) return base.status().WithContext("fortanix: invalid endpoint");
  net::HttpClientOptions http;
  http.connect_timeout = kConnectTimeout;
  http.request_timeout = kRequestTimeout;
  http.max_response_bytes = kMaxResponse;
  if (!config.tls_ca.empty()) {
    // Only the given CAs (no system roots), every file PEM (§0).
    auto pem = net::ReadCaBundle(config.tls_ca);
    if (!pem.ok()) return pem.status();
    http.ca_pem = *std::move(pem);
  }
  auto store = std::make_unique<FortanixKeyStore>(config, endpoint, *base, std::move(http));
  KES_TRY(store->Connect(DeadlineIn(seconds(90))));
  return std::unique_ptr<KeyStore>(std::move(store));
}

}  // namespace kes::keystore::fortanix

#include "keystore/etcd/etcd_keystore.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/os.h"
#include "crypto/encoding.h"
#include "crypto/secret_bytes.h"
#include "net/http_client.h"
#include "net/url.h"

namespace kes::keystore::etcd {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

// gRPC status codes the gateway forwards in {"code": N}.
constexpr int kGrpcDeadlineExceeded = 4;
constexpr int kGrpcUnavailable = 14;
constexpr int kGrpcUnauthenticated = 16;

// Rounds over all endpoints before a call gives up (within its deadline);
// a leader election takes about one election timeout (1 s by default).
constexpr int kRounds = 3;
constexpr auto kRoundPause = 300ms;

std::string B64(std::string_view s) { return crypto::Base64Encode(s); }

// The gateway writes (u)int64 fields as strings and omits zero values.
uint64_t Uint(const Json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end()) return 0;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (!it->is_string()) return 0;
  const auto& s = it->get_ref<const std::string&>();
  uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}
// Revisions and counts (int64 in etcd's protocol, never negative here).
int64_t Int(const Json& j, const char* field) { return static_cast<int64_t>(Uint(j, field)); }

// A base64 field of the gateway's answer as bytes; nullopt if malformed.
std::optional<std::string> Bytes(const Json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end()) return std::string();
  if (!it->is_string()) return std::nullopt;
  auto raw = crypto::Base64Decode(it->get_ref<const std::string&>());
  if (!raw) return std::nullopt;
  std::string out(raw->begin(), raw->end());
  crypto::Zeroize(raw->data(), raw->size());
  return out;
}

// The end of the key range holding every key that starts with `prefix`
// (etcd's "prefix" range end): the prefix with its last byte below 0xff
// incremented; "\0" (= to the end) when there is no such byte.
std::string RangeEnd(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last < 0xff) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

// An etcd answer that another member may not give: no leader, timeouts,
// a member shutting down. Transport failures are retryable too.
bool Retryable(int http_status, int grpc_code) {
  return http_status == 503 || grpc_code == kGrpcUnavailable || grpc_code == kGrpcDeadlineExceeded;
}

class EtcdKeyStore final : public KeyStore {
 public:
  EtcdKeyStore(EtcdOptions options, std::vector<net::Url> endpoints, net::HttpClientOptions http)
      : options_(std::move(options)), endpoints_(std::move(endpoints)), http_(std::move(http)) {}

  ~EtcdKeyStore() override { Close(); }

  std::string DisplayName() const override {
    std::string out = "etcd:";
    for (const net::Url& u : endpoints_) out += " " + u.Origin();
    return out;
  }

  Result<KeyStoreState> Status(Deadline deadline) override {
    const auto start = std::chrono::steady_clock::now();
    auto r = Call("/v3/maintenance/status", Json::object(), deadline);
    if (!r.ok()) return r.status();
    // A member without a leader answers, but the cluster cannot write.
    if (Uint(*r, "leader") == 0) return Status::Unavailable("etcd: cluster has no leader");
    return KeyStoreState{std::chrono::steady_clock::now() - start};
  }

  kes::Status Create(std::string_view name, std::string_view value, Deadline deadline) override {
    return CreateWithRevision(name, value, deadline).status();
  }

  // The revision of the write: the transaction's, or, for a resent create
  // finding its own earlier write, that write's mod_revision.
  Result<int64_t> CreateWithRevision(std::string_view name, std::string_view value,
                                     Deadline deadline) override {
    const std::string key = B64(StoredKey(name));
    Json txn = {
        {"compare", Json::array({{{"key", key}, {"target", "CREATE"}, {"create_revision", "0"}}})},
        {"success", Json::array({{{"request_put", {{"key", key}, {"value", B64(value)}}}}})},
        {"failure", Json::array({{{"request_range", {{"key", key}}}}})},
    };
    auto r = Call("/v3/kv/txn", txn, deadline);
    if (!r.ok()) return r.status();
    if (r->value("succeeded", false)) return Int(r->value("header", Json::object()), "revision");
    // Lost the race, or a resent request finds its own earlier write: the
    // stored value (random key material) tells which.
    const Json& responses = r->value("responses", Json::array());
    if (responses.empty()) return kes::Status::Unavailable("etcd: txn: malformed answer");
    const Json& range = responses[0].value("response_range", Json::object());
    const Json& kvs = range.value("kvs", Json::array());
    if (kvs.empty()) return kes::Status::Unavailable("etcd: txn failed without a stored value");
    auto stored = Bytes(kvs[0], "value");
    if (!stored) return kes::Status::Unavailable("etcd: txn: malformed value");
    const bool ours = crypto::ConstantTimeEqual(*stored, value);
    crypto::Zeroize(stored->data(), stored->size());
    if (!ours) return kes::Status::KeyExists();
    return Int(kvs[0], "mod_revision");
  }

  Result<std::string> Get(std::string_view name, Deadline deadline) override {
    auto r = GetWithRevision(name, deadline);
    if (!r.ok()) return r.status();
    return std::move(r->value);
  }

  Result<StoredValue> GetWithRevision(std::string_view name, Deadline deadline) override {
    auto r = Call("/v3/kv/range", {{"key", B64(StoredKey(name))}}, deadline);
    if (!r.ok()) return r.status();
    const Json& kvs = r->value("kvs", Json::array());
    if (kvs.empty()) return kes::Status::KeyNotFound();
    auto value = Bytes(kvs[0], "value");
    if (!value) return kes::Status::Unavailable("etcd: range: malformed value");
    return StoredValue{std::move(*value), Int(kvs[0], "mod_revision")};
  }

  kes::Status Delete(std::string_view name, Deadline deadline) override {
    bool resent = false;
    auto r = Call("/v3/kv/deleterange", {{"key", B64(StoredKey(name))}}, deadline, &resent);
    if (!r.ok()) return r.status();
    // A resent delete finding nothing most likely found its own work done.
    if (Int(*r, "deleted") == 0 && !resent) return kes::Status::KeyNotFound();
    return kes::Status::Ok();
  }

  Result<ListPage> List(std::string_view prefix, int limit, Deadline deadline) override {
    constexpr int64_t kPage = 500;
    ListPage page;
    std::string from = StoredKey(prefix);
    const std::string end = RangeEnd(StoredKey(prefix));
    for (;;) {
      // One more than asked for tells whether there is a next page.
      const int64_t want = limit > 0 ? limit + 1 - static_cast<int64_t>(page.names.size()) : kPage;
      Json req = {{"key", B64(from)},       {"range_end", B64(end)}, {"limit", want},
                  {"sort_order", "ASCEND"}, {"sort_target", "KEY"},  {"keys_only", true}};
      auto r = Call("/v3/kv/range", req, deadline);
      if (!r.ok()) return r.status();
      const Json& kvs = r->value("kvs", Json::array());
      for (const Json& kv : kvs) {
        auto key = Bytes(kv, "key");
        if (!key || !key->starts_with(options_.prefix)) {
          return kes::Status::Unavailable("etcd: range: malformed key");
        }
        page.names.push_back(key->substr(options_.prefix.size()));
        from = *key + '\0';
      }
      if (limit > 0 && static_cast<int64_t>(page.names.size()) > limit) {
        page.continue_at = page.names.back();
        page.names.pop_back();
        return page;
      }
      if (!r->value("more", false) || kvs.empty()) return page;
    }
  }

  void Subscribe(ChangeListener* listener) override {
    std::lock_guard lock(watch_mu_);
    if (listener == nullptr || watch_thread_.joinable() || stop_.load()) return;
    listener_ = listener;
    watch_thread_ = std::thread([this] { WatchLoop(); });
  }

  void Close() override {
    {
      std::lock_guard lock(watch_mu_);
      stop_.store(true);
    }
    watch_cv_.notify_all();
    if (watch_thread_.joinable() && watch_thread_.get_id() != std::this_thread::get_id()) {
      watch_thread_.join();
    }
  }

 private:
  std::string StoredKey(std::string_view name) const {
    std::string key = options_.prefix;
    key += name;
    return key;
  }

  // One request to endpoint `i`. An error is kUnreachable when another
  // endpoint may answer (transport failure, no leader), else kUnavailable.
  Result<Json> Post(size_t i, const std::string& path, const std::string& body, Deadline deadline,
                    bool may_login) {
    net::HttpRequest req;
    req.method = "POST";
    req.url = endpoints_[i];
    req.url.path = path;
    req.body = body;
    req.deadline = deadline;
    req.headers = {{"Content-Type", "application/json"}};
    if (!options_.username.empty()) {
      std::string token = Token();
      if (token.empty()) {
        KES_TRY(Login(i, deadline));
        token = Token();
      }
      req.headers.emplace_back("Authorization", token);
    }
    auto resp = http_.Do(req);
    if (!resp.ok()) {
      if (resp.status().code() == Code::kUnreachable) {
        return kes::Status::Unreachable("etcd: " + endpoints_[i].Origin() + path + ": " +
                                        resp.status().message());
      }
      return resp.status();
    }
    Json j = Json::parse(resp->body, nullptr, false);
    if (resp->status == 200 && j.is_object()) return j;
    const std::string message =
        j.is_object() ? j.value("message", j.value("error", std::string())) : std::string();
    const int code = j.is_object() ? static_cast<int>(Int(j, "code")) : 0;
    if (code == kGrpcUnauthenticated && may_login && !options_.username.empty()) {
      // The token expired or the member restarted: log in again, once.
      KES_TRY(Login(i, deadline));
      return Post(i, path, body, deadline, false);
    }
    std::string text = "etcd: " + endpoints_[i].Origin() + path + ": " +
                       (message.empty() ? "HTTP " + std::to_string(resp->status) : message);
    if (Retryable(resp->status, code)) return kes::Status::Unreachable(std::move(text));
    return kes::Status::Unavailable(std::move(text));
  }

  // Sends to the endpoint that answered last, failing over to the others.
  // `resent` tells whether the request may have reached etcd before the
  // attempt that answered.
  Result<Json> Call(const std::string& path, const Json& body, Deadline deadline,
                    bool* resent = nullptr) {
    const std::string text = body.dump();
    const size_t n = endpoints_.size();
    kes::Status last = kes::Status::Unreachable("etcd: no endpoint");
    for (int round = 0; round < kRounds; ++round) {
      if (round > 0) {
        if (TimeLeft(deadline, 1h) <= kRoundPause) break;
        std::this_thread::sleep_for(kRoundPause);
      }
      const size_t first = current_.load();
      for (size_t k = 0; k < n; ++k) {
        const size_t i = (first + k) % n;
        auto r = Post(i, path, text, deadline, true);
        if (r.ok()) {
          current_.store(i);
          return r;
        }
        if (r.status().code() != Code::kUnreachable) return r.status();
        if (resent != nullptr) *resent = true;
        last = r.status();
        // Out of time: the last member's answer says why (no leader, ...).
        if (Expired(deadline)) return last;
      }
    }
    return last;
  }

  std::string Token() {
    std::lock_guard lock(token_mu_);
    return token_;
  }

  kes::Status Login(size_t i, Deadline deadline) {
    net::HttpRequest req;
    req.method = "POST";
    req.url = endpoints_[i];
    req.url.path = "/v3/auth/authenticate";
    req.deadline = deadline;
    req.headers = {{"Content-Type", "application/json"}};
    req.body = Json{{"name", options_.username}, {"password", options_.password}}.dump();
    auto resp = http_.Do(req);
    crypto::Zeroize(req.body.data(), req.body.size());
    if (!resp.ok())
      return kes::Status::Unreachable("etcd: authenticate: " + resp.status().message());
    Json j = Json::parse(resp->body, nullptr, false);
    if (resp->status != 200 || !j.is_object() || !j.contains("token")) {
      const std::string message = j.is_object() ? j.value("message", std::string()) : "";
      return kes::Status::Unavailable(
          "etcd: authenticate as '" + options_.username +
          "': " + (message.empty() ? "HTTP " + std::to_string(resp->status) : message));
    }
    std::lock_guard lock(token_mu_);
    token_ = j.value("token", std::string());
    return kes::Status::Ok();
  }

  // --- watch: cache coherence ----------------------------------------------

  void WatchLoop() {
    listener_->Watching(false);
    size_t i = current_.load();
    int64_t next_revision = 0;  // 0: from now
    bool outage_logged = false;
    while (!stop_.load()) {
      bool up = false;
      std::string error;
      WatchOnce(i, next_revision, &up, &error);
      if (stop_.load()) break;
      listener_->Watching(false);
      if (up) outage_logged = false;  // a new outage begins
      if (!outage_logged) {
        // Logged once per outage, not per retry.
        spdlog::warn(
            "etcd: watch of prefix '{}' down ({}); until it resumes, other servers' "
            "changes reach this cache only through its expiry",
            options_.prefix, error);
        outage_logged = true;
      }
      i = (i + 1) % endpoints_.size();
      std::unique_lock lock(watch_mu_);
      watch_cv_.wait_for(lock, 500ms, [&] { return stop_.load(); });
    }
  }

  // Runs one watch stream until it ends; `up` tells whether it was established.
  void WatchOnce(size_t i, int64_t& next_revision, bool* up, std::string* error) {
    Json create = {{"key", B64(options_.prefix.empty() ? std::string(1, '\0') : options_.prefix)},
                   {"range_end", B64(RangeEnd(options_.prefix))},
                   {"progress_notify", true}};
    if (next_revision > 0) create["start_revision"] = std::to_string(next_revision);
    net::HttpRequest req;
    req.method = "POST";
    req.url = endpoints_[i];
    req.url.path = "/v3/watch";
    req.body = Json{{"create_request", create}}.dump();
    req.headers = {{"Content-Type", "application/json"}};
    if (!options_.username.empty()) {
      if (Token().empty() && !Login(i, DeadlineIn(5s)).ok()) {
        *error = "cannot authenticate";
        return;
      }
      req.headers.emplace_back("Authorization", Token());
    }
    req.cancel = &stop_;
    std::string pending;
    req.on_body = [&](std::string_view chunk) {
      pending.append(chunk);
      size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        const std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        if (!OnWatchLine(line, next_revision, up, error)) return false;
      }
      return pending.size() < (64 << 20);
    };
    auto resp = http_.Do(req);
    if (!resp.ok()) {
      *error = resp.status().message();
    } else if (error->empty()) {
      *error = resp->status == 200 ? "stream closed" : "HTTP " + std::to_string(resp->status);
    }
  }

  // Handles one JSON line of the watch stream; false ends the stream.
  bool OnWatchLine(const std::string& line, int64_t& next_revision, bool* up, std::string* error) {
    Json j = Json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("result")) {
      *error = j.is_object() && j.contains("error") ? j["error"].dump() : "malformed watch answer";
      // An expired token is the usual cause when auth is on.
      std::lock_guard lock(token_mu_);
      token_.clear();
      return false;
    }
    const Json& result = j["result"];
    const int64_t header_revision = Int(result.value("header", Json::object()), "revision");
    if (result.value("created", false)) {
      *up = true;
      if (next_revision == 0) next_revision = header_revision + 1;
      spdlog::info("etcd: watching prefix '{}' from revision {}", options_.prefix, next_revision);
      listener_->Watching(true);
    }
    if (Int(result, "compact_revision") > 0) {
      // The history we would resume from is gone: changes may be missed.
      listener_->ChangedAll();
      next_revision = Int(result, "compact_revision");
      *error = "history compacted";
      return false;
    }
    if (result.value("canceled", false)) {
      *error = "watch canceled: " + result.value("cancel_reason", std::string());
      return false;
    }
    for (const Json& ev : result.value("events", Json::array())) {
      const Json& kv = ev.value("kv", Json::object());
      auto key = Bytes(kv, "key");
      // A delete event's kv carries the revision of the delete as its
      // mod_revision, so every event is ordered against cached values.
      const int64_t revision = Int(kv, "mod_revision");
      if (key && key->starts_with(options_.prefix)) {
        listener_->Changed(std::string_view(*key).substr(options_.prefix.size()), revision);
      }
      next_revision = std::max(next_revision, revision + 1);
    }
    // A progress notification: nothing below the header's revision is left.
    if (result.value("events", Json::array()).empty() && !result.value("created", false)) {
      next_revision = std::max(next_revision, header_revision + 1);
    }
    return !stop_.load();
  }

  const EtcdOptions options_;
  const std::vector<net::Url> endpoints_;
  net::HttpClient http_;
  std::atomic<size_t> current_{0};

  std::mutex token_mu_;
  std::string token_;  // guarded by token_mu_

  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  std::atomic<bool> stop_{false};
  ChangeListener* listener_ = nullptr;
  std::thread watch_thread_;
};

// The HTTP client for the members; the client certificate and key are read
// once here (net::HttpClient presents them from memory).
Result<net::HttpClientOptions> HttpOptions(const EtcdOptions& o) {
  net::HttpClientOptions h;
  // A dead member must not hold a call long: the next one is tried.
  h.connect_timeout = std::chrono::milliseconds(1000);
  h.request_timeout = std::chrono::milliseconds(10000);
  h.ca_file = o.tls_ca;
  if (!o.tls_cert.empty()) {
    auto cert = ReadWholeFile(o.tls_cert);
    if (!cert.ok()) return cert.status().WithContext("etcd: client certificate");
    auto key = ReadWholeFile(o.tls_key);
    if (!key.ok()) return key.status().WithContext("etcd: client key");
    h.client_cert_pem = std::move(*cert);
    h.client_key_pem = std::move(*key);
  }
  h.max_response_bytes = 64 << 20;  // a page of 500 names, or a 1 MiB value
  return h;
}

}  // namespace

Result<std::unique_ptr<KeyStore>> NewEtcdKeyStore(const EtcdOptions& options) {
  std::vector<net::Url> endpoints;
  for (const std::string& e : options.endpoints) {
    auto url = net::Url::Parse(e);
    if (!url.ok()) return kes::Status::Invalid("etcd: invalid endpoint '" + e + "'");
    endpoints.push_back(std::move(*url));
  }
  if (endpoints.empty()) return kes::Status::Invalid("etcd: no endpoints");
  KES_ASSIGN_OR_RETURN(net::HttpClientOptions http, HttpOptions(options));
  auto store = std::make_unique<EtcdKeyStore>(options, std::move(endpoints), std::move(http));
  auto state = store->Status(DeadlineIn(std::chrono::seconds(5)));
  if (!state.ok()) {
    spdlog::warn("etcd: cluster not reachable at start-up: {}", state.status().message());
  }
  return std::unique_ptr<KeyStore>(std::move(store));
}

}  // namespace kes::keystore::etcd

#include "keystore/vault/vault_keystore.h"

#include <dirent.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "common/duration.h"
#include "common/os.h"
#include "common/stop_signal.h"
#include "crypto/encoding.h"
#include "crypto/secret_bytes.h"
#include "keystore/list.h"
#include "keystore/status_probe.h"
#include "keystore/vault/response.h"
#include "net/http_client.h"
#include "net/srv_lookup.h"

namespace kes::keystore::vault {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Go's path.Join: empty and "." segments dropped, ".." removes one.
std::string JoinPath(std::initializer_list<std::string_view> parts) {
  std::vector<std::string_view> segs;
  for (std::string_view p : parts) {
    while (!p.empty()) {
      const size_t slash = p.find('/');
      std::string_view seg = p.substr(0, slash);
      p = slash == std::string_view::npos ? std::string_view() : p.substr(slash + 1);
      if (seg.empty() || seg == ".") continue;
      if (seg == "..") {
        if (!segs.empty()) segs.pop_back();
        continue;
      }
      segs.push_back(seg);
    }
  }
  std::string out;
  for (std::string_view s : segs) {
    if (!out.empty()) out += '/';
    out += s;
  }
  return out;
}

// Percent-encodes a path for the URL; '/' separates segments.
std::string EscapePath(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Go's strconv.ParseBool.
std::optional<bool> ParseGoBool(std::string_view s) {
  if (s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "true" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "false" || s == "False")
    return false;
  return std::nullopt;
}

// True when the endpoint text names a port ("host:8200", "[::1]:8200"): the
// SDK's url.Port() != "", which turns VAULT_SRV_LOOKUP off.
bool HasExplicitPort(std::string_view endpoint) {
  if (size_t scheme = endpoint.find("://"); scheme != std::string_view::npos) {
    endpoint.remove_prefix(scheme + 3);
  }
  std::string_view authority = endpoint.substr(0, endpoint.find_first_of("/?#"));
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  if (size_t bracket = authority.rfind(']'); bracket != std::string_view::npos) {
    authority.remove_prefix(bracket + 1);
  }
  const size_t colon = authority.rfind(':');
  return colon != std::string_view::npos && colon + 1 < authority.size();
}

// VAULT_SRV_LOOKUP, as the SDK: the SRV record _http._tcp.<host> replaces
// the host and port connected to (so TLS verifies the SRV target's name)
// while the Host header keeps the configured host. No answer: the endpoint
// is used as written. Returns that Host header, or "" when nothing changed.
std::string ApplySrvLookup(net::Url* endpoint, net::HttpClientOptions* http) {
  auto srv = net::LookupSrv("http", "tcp", endpoint->host);
  if (!srv) {
    spdlog::info("vault: no SRV record _http._tcp.{}: using the endpoint as written",
                 endpoint->host);
    return "";
  }
  spdlog::info("vault: SRV record _http._tcp.{} points to {}:{}", endpoint->host, srv->host,
               srv->port);
  std::string host_header = endpoint->HostHeader();
  endpoint->host = std::move(srv->host);
  endpoint->port = srv->port;
  if (endpoint->scheme == "http" && !net::IsLoopbackHost(endpoint->host)) {
    http->plain_http_host = endpoint->host;
  }
  return host_header;
}

// "vault:v<digits>:..." (any transit key version; upstream knew only v1).
bool IsTransitCiphertext(std::string_view v) {
  if (!v.starts_with("vault:v")) return false;
  size_t i = 7;
  while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i]))) ++i;
  return i > 7 && i < v.size() && v[i] == ':';
}

// The SDK's error text for a non-2xx answer, shortened to what the log needs.
std::string ResponseError(const net::HttpRequest& req, const net::HttpResponse& resp) {
  std::string msg = "Error making API request. URL: " + req.method + " " + req.url.ToString() +
                    " Code: " + std::to_string(resp.status) + ". Errors: ";
  const auto errors = ParseErrors(resp.body);
  if (errors.empty()) {
    msg += resp.body.empty() ? "<none>" : "Raw Message: " + resp.body.substr(0, 256);
  }
  for (size_t i = 0; i < errors.size(); ++i) msg += (i ? "; " : "") + errors[i];
  return msg;
}

// Reads a CA file, or every regular file below a directory, as one PEM bundle.
Status ReadCaBundle(const std::string& path, std::string* out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::Invalid("vault: failed to open '" + path +
                           "': " + GoPathError("stat", path, errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    KES_ASSIGN_OR_RETURN(std::string pem, ReadWholeFile(path));
    *out += pem;
    *out += '\n';
    return Status::Ok();
  }
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return Status::Invalid("vault: " + GoPathError("open", path, errno));
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& n : names) KES_TRY(ReadCaBundle(path + "/" + n, out));
  return Status::Ok();
}

// VAULT_RATE_LIMIT's client-side limiter (Go's rate.Limiter): `rate`
// requests a second on average, bursts of up to `burst`.
class RateLimiter {
 public:
  RateLimiter(double rate, int burst) : rate_(rate), burst_(burst), tokens_(burst) {}

  // Takes a token, waiting for one no later than `deadline` (the SDK
  // ignores a limiter error and sends anyway; so does this).
  void Wait(Deadline deadline) {
    milliseconds wait{0};
    {
      std::lock_guard lock(mu_);
      const auto now = Clock::now();
      const double elapsed = std::chrono::duration<double>(now - last_).count();
      tokens_ = std::min<double>(burst_, tokens_ + elapsed * rate_);
      last_ = now;
      tokens_ -= 1;  // reserved, paid back by the time it is due
      if (tokens_ < 0) wait = milliseconds(static_cast<int64_t>(-tokens_ / rate_ * 1000.0) + 1);
    }
    if (wait.count() > 0) std::this_thread::sleep_for(TimeLeft(deadline, wait));
  }

 private:
  const double rate_;
  const int burst_;
  std::mutex mu_;
  double tokens_;
  Clock::time_point last_ = Clock::now();
};

// "rate[:burst]" as the SDK reads it; burst defaults to the rate (at least 1).
bool ParseRateLimit(const std::string& text, std::unique_ptr<RateLimiter>* out) {
  const size_t colon = text.find(':');
  const std::string rate_text = text.substr(0, colon);
  double rate = 0;
  auto [end, err] = std::from_chars(rate_text.data(), rate_text.data() + rate_text.size(), rate);
  if (err != std::errc() || end != rate_text.data() + rate_text.size() || !(rate > 0)) {
    return false;
  }
  int burst = static_cast<int>(std::min(rate, 1e6));
  if (colon != std::string::npos) {
    const std::string b = text.substr(colon + 1);
    auto [bend, berr] = std::from_chars(b.data(), b.data() + b.size(), burst);
    if (berr != std::errc() || bend != b.data() + b.size() || burst < 0) return false;
  }
  *out = std::make_unique<RateLimiter>(rate, std::max(burst, 1));
  return true;
}

class VaultKeyStore : public KeyStore {
 public:
  VaultKeyStore(const Config& config, net::Url endpoint, std::string host_header, std::string ns,
                net::HttpClientOptions http_options, int max_retries,
                std::unique_ptr<RateLimiter> limiter, const Timing& timing)
      : config_(config),
        endpoint_(std::move(endpoint)),
        host_header_(std::move(host_header)),
        namespace_(std::move(ns)),
        http_(std::move(http_options)),
        max_retries_(max_retries),
        limiter_(std::move(limiter)),
        timing_(timing),
        v2_(config.engine_version == "v2") {}

  ~VaultKeyStore() override { Close(); }

  std::string DisplayName() const override { return "Hashicorp Vault: " + config_.endpoint; }

  // Logs in and starts the health poll and the renewal loop.
  kes::Status Start() {
    auto auth = Login(DeadlineIn(seconds(60)));
    if (!auth.ok()) return auth.status();
    SetToken(auth->token);
    poll_ = std::thread([this] { PollHealth(); });
    if (auth->ttl.count() > 0) {
      renew_ = std::thread([this, a = *std::move(auth)]() mutable { RenewLoop(std::move(a)); });
    }
    return Status::Ok();
  }

  Result<KeyStoreState> Status(Deadline deadline) override {
    const auto start = Clock::now();
    auto resp = Send("GET", HealthPath(), "", "", deadline, /*authenticated=*/false);
    if (!resp.ok()) return ProbeFailure(resp.status(), deadline);
    auto health = ParseHealth(resp->body);
    if (!health.ok()) return health.status();
    sealed_.store(health->sealed);
    if (!health->initialized) return kes::Status::Unreachable("vault: not initialized");
    if (health->sealed) return kes::Status::Unreachable("vault: key store is sealed");
    return KeyStoreState{Clock::now() - start};
  }

  kes::Status Create(std::string_view name, std::string_view value, Deadline deadline) override {
    KES_TRY(CheckSealed());
    const std::string loc = DataPath(name);
    auto failed = [&](const std::string& why) {
      return kes::Status::Unavailable("vault: failed to create '" + loc + "': " + why);
    };
    // Existence check (the only create-only guard of K/V v1).
    auto existing = SendKv("GET", loc, "", deadline);
    if (!existing.ok()) return failed(existing.status().message());
    if (existing->status == 200) {
      KvEntry e = ParseKvEntry(existing->body, name, v2_);
      crypto::Zeroize(existing->body.data(), existing->body.size());
      if (e.kind == KvEntry::Kind::kValue) {
        crypto::Zeroize(e.value.data(), e.value.size());
        return kes::Status::KeyExists();
      }
      if (!v2_ && e.kind != KvEntry::Kind::kEmpty) {
        return kes::Status::Unavailable("vault: entry exist but failed to read '" + loc +
                                        "': invalid K/V v1 format");
      }
      if (e.kind == KvEntry::Kind::kNoData) {
        return kes::Status::Unavailable("vault: entry exists but failed to read '" + loc +
                                        "': invalid K/V v2 format: missing 'data' entry");
      }
      if (e.kind == KvEntry::Kind::kBadData) {
        return kes::Status::Unavailable("vault: entry exists but failed to read '" + loc +
                                        "': invalid K/V v2 format: invalid 'data' entry");
      }
      if (e.kind == KvEntry::Kind::kNoValue || e.kind == KvEntry::Kind::kNotString) {
        return kes::Status::Unavailable("vault: failed to read '" + loc +
                                        "': entry exists but no secret key is present");
      }
    } else if (existing->status != 404) {
      return failed(ResponseError(LastRequest("GET", loc), *existing));
    }

    std::string stored(value);
    if (config_.has_transit) {
      auto ciphertext = Encrypt(value, deadline);
      if (!ciphertext.ok()) {
        crypto::Zeroize(stored.data(), stored.size());
        return failed("failed to encrypt key: " + ciphertext.status().message());
      }
      crypto::Zeroize(stored.data(), stored.size());
      stored = *std::move(ciphertext);
    }
    nlohmann::json body;
    if (v2_) {
      body = {{"data", {{std::string(name), stored}}}, {"options", {{"cas", 0}}}};
    } else {
      body = {{std::string(name), stored}};
    }
    std::string text = body.dump();
    crypto::Zeroize(stored.data(), stored.size());
    auto& sent = v2_ ? body["data"][std::string(name)].get_ref<std::string&>()
                     : body[std::string(name)].get_ref<std::string&>();
    crypto::Zeroize(sent.data(), sent.size());
    auto resp = SendKv("PUT", loc, text, deadline);
    crypto::Zeroize(text.data(), text.size());
    if (!resp.ok()) return failed(resp.status().message());
    if (resp->status == 200 || resp->status == 204) return kes::Status::Ok();
    if (v2_ && resp->status == 400) {
      // The key was created concurrently (check-and-set lost): upstream
      // reported a plain error; it is KeyExists.
      for (const std::string& e : ParseErrors(resp->body)) {
        if (e.find("check-and-set") != std::string::npos) return kes::Status::KeyExists();
      }
    }
    return failed(ResponseError(LastRequest("PUT", loc), *resp));
  }

  Result<std::string> Get(std::string_view name, Deadline deadline) override {
    KES_TRY(CheckSealed());
    const std::string where = JoinPath({config_.prefix, name});
    auto failed = [&](const std::string& why) {
      return kes::Status::Unavailable("vault: failed to read '" + where + "': " + why);
    };
    const std::string loc = DataPath(name);
    auto resp = SendKv("GET", loc + (v2_ ? "?version=1" : ""), "", deadline);
    if (!resp.ok()) return failed(resp.status().message());
    KvEntry e = ParseKvEntry(resp->body, name, v2_);
    crypto::Zeroize(resp->body.data(), resp->body.size());
    if (resp->status == 404) {
      // A soft-deleted v2 version answers 404 with its metadata.
      if (e.kind == KvEntry::Kind::kEmpty) return kes::Status::KeyNotFound();
      return failed("entry exists but no secret key is present");
    }
    if (resp->status != 200) return failed(ResponseError(LastRequest("GET", loc), *resp));
    switch (e.kind) {
      case KvEntry::Kind::kValue:
        break;
      case KvEntry::Kind::kEmpty:
        return kes::Status::KeyNotFound();
      case KvEntry::Kind::kNotString:
        return failed("invalid K/V format");
      default:
        return failed("entry exists but no secret key is present");
    }
    if (!IsTransitCiphertext(e.value)) return std::move(e.value);
    if (!config_.has_transit) return failed("key is encrypted with vault transit key");
    auto plain = Decrypt(e.value, deadline);
    if (!plain.ok()) return failed("failed to decrypt key: " + plain.status().message());
    return plain;
  }

  kes::Status Delete(std::string_view name, Deadline deadline) override {
    KES_TRY(CheckSealed());
    const std::string path =
        v2_ ? JoinPath({config_.engine, "metadata", config_.prefix, name}) : DataPath(name);
    auto resp = SendKv("DELETE", path, "", deadline);
    auto failed = [&](const std::string& why) {
      return kes::Status::Unavailable("vault: failed to delete '" +
                                      JoinPath({config_.prefix, name}) + "': " + why);
    };
    if (!resp.ok()) return failed(resp.status().message());
    // Vault answers 204 whether or not the path existed.
    if (resp->status == 200 || resp->status == 204 || resp->status == 404) {
      return kes::Status::Ok();
    }
    return failed(ResponseError(LastRequest("DELETE", path), *resp));
  }

  Result<ListPage> List(std::string_view prefix, int limit, Deadline deadline) override {
    KES_TRY(CheckSealed());
    const std::string loc = v2_ ? JoinPath({config_.engine, "metadata", config_.prefix})
                                : JoinPath({config_.engine, config_.prefix});
    auto failed = [&](const std::string& why) {
      return kes::Status::Unavailable("vault: failed to list '" + loc + "': " + why);
    };
    auto resp = SendKv("GET", loc + "?list=true", "", deadline);
    if (!resp.ok()) return failed(resp.status().message());
    std::vector<std::string> names;
    if (resp->status == 404) {
      // Nothing stored yet: `{"errors":[]}`. Upstream answered 502; any
      // other 404 (no such mount) stays an error.
      if (!ParseErrors(resp->body).empty()) {
        return failed(ResponseError(LastRequest("GET", loc), *resp));
      }
    } else if (resp->status < 200 || resp->status >= 300) {
      return failed(ResponseError(LastRequest("GET", loc), *resp));
    } else if (!resp->body.empty()) {
      auto keys = ParseKeyList(resp->body);
      if (!keys.ok()) return failed(keys.status().message());
      for (std::string& k : *keys) {
        if (!k.ends_with('/')) names.push_back(std::move(k));  // sub-folders are no keys
      }
    }
    return ListAll(std::move(names), prefix, limit);
  }

  void Close() override {
    if (!stop_.Stop()) return;
    if (poll_.joinable()) poll_.join();
    if (renew_.joinable()) renew_.join();
    std::lock_guard lock(token_mu_);
    crypto::Zeroize(token_.data(), token_.size());
  }

 private:
  std::string HealthPath() const {
    return "sys/health?drsecondarycode=299&performancestandbycode=299&sealedcode=299"
           "&standbycode=299&uninitcode=299";
  }
  std::string DataPath(std::string_view name) const {
    return v2_ ? JoinPath({config_.engine, "data", config_.prefix, name})
               : JoinPath({config_.engine, config_.prefix, name});
  }
  net::HttpRequest LastRequest(std::string method, const std::string& path) const {
    net::HttpRequest r;
    r.method = std::move(method);
    r.url = endpoint_;
    r.url.path = JoinPath({endpoint_.path, "v1"}) + "/" + path;
    r.url.path.insert(0, "/");
    return r;
  }

  kes::Status CheckSealed() const {
    if (sealed_.load()) return kes::Status::Unavailable("vault: key store is sealed");
    return kes::Status::Ok();
  }

  std::string Token() const {
    std::lock_guard lock(token_mu_);
    return token_;
  }
  void SetToken(std::string token) {
    std::lock_guard lock(token_mu_);
    crypto::Zeroize(token_.data(), token_.size());
    token_ = std::move(token);
    ++token_generation_;
  }

  // One request with Vault's retry policy (keystores-vault.md §1.1):
  // transport failures, 412, 429 and 5xx but 501 are retried with back-off,
  // never past the deadline.
  Result<net::HttpResponse> Send(const std::string& method, const std::string& path_and_query,
                                 const std::string& body, const std::string& ns, Deadline deadline,
                                 bool authenticated, const std::string* token = nullptr) {
    net::HttpRequest req;
    req.method = method;
    req.url = endpoint_;
    const size_t q = path_and_query.find('?');
    std::string path = path_and_query.substr(0, q);
    req.url.path = "/" + JoinPath({endpoint_.path, "v1"}) + "/" + EscapePath(path);
    req.url.query = q == std::string::npos ? "" : path_and_query.substr(q + 1);
    req.body = body;
    req.deadline = deadline;
    req.headers.emplace_back("X-Vault-Request", "true");
    if (!host_header_.empty()) req.headers.emplace_back("Host", host_header_);
    if (authenticated) req.headers.emplace_back("X-Vault-Token", token ? *token : Token());
    if (!ns.empty()) req.headers.emplace_back("X-Vault-Namespace", ns);
    Result<net::HttpResponse> resp = kes::Status::Internal("vault: no attempt");
    if (limiter_) limiter_->Wait(deadline);  // once per call, as the SDK
    for (int attempt = 1;; ++attempt) {
      resp = http_.Do(req);
      const bool retry = resp.ok() ? (resp->status == 412 || resp->status == 429 ||
                                      (resp->status >= 500 && resp->status != 501))
                                   : resp.status().code() == Code::kUnreachable;
      if (!retry || attempt > max_retries_) break;
      milliseconds wait = Backoff(attempt, resp.ok() ? &*resp : nullptr);
      if (TimeLeft(deadline, wait) < wait || stop_.Wait(wait)) break;
    }
    crypto::Zeroize(req.body.data(), req.body.size());
    for (auto& [k, v] : req.headers) crypto::Zeroize(v.data(), v.size());
    return resp;
  }

  milliseconds Backoff(int attempt, const net::HttpResponse* resp) const {
    if (resp != nullptr && (resp->status == 429 || resp->status == 503)) {
      const std::string ra = resp->Header("retry-after");
      int secs = 0;
      auto [end, err] = std::from_chars(ra.data(), ra.data() + ra.size(), secs);
      if (!ra.empty() && err == std::errc() && end == ra.data() + ra.size() && secs >= 0) {
        return seconds(secs);
      }
    }
    thread_local std::mt19937 rng{std::random_device{}()};
    std::uniform_real_distribution<double> jitter(1.0, 1.5);
    return milliseconds(static_cast<int64_t>(attempt * jitter(rng) *
                                             static_cast<double>(timing_.retry_unit.count())));
  }

  // A K/V or transit call with the keystore namespace. A 403 (token
  // expired or revoked) logs in again at once and retries once, instead of
  // failing until the renewal timer notices.
  Result<net::HttpResponse> SendKv(const std::string& method, const std::string& path,
                                   const std::string& body, Deadline deadline) {
    uint64_t generation;
    std::string token;
    {
      std::lock_guard lock(token_mu_);
      generation = token_generation_;
      token = token_;
    }
    auto resp = Send(method, path, body, namespace_, deadline, true, &token);
    if (resp.ok() && resp->status == 403) {
      if (Relogin(generation, deadline).ok()) {
        token = Token();
        resp = Send(method, path, body, namespace_, deadline, true, &token);
      }
    }
    crypto::Zeroize(token.data(), token.size());
    return resp;
  }

  // Logs in again unless another caller already replaced the token seen as
  // `generation`.
  kes::Status Relogin(uint64_t generation, Deadline deadline) {
    std::lock_guard login(login_mu_);
    {
      std::lock_guard lock(token_mu_);
      if (token_generation_ != generation) return kes::Status::Ok();
    }
    auto auth = Login(deadline);
    if (!auth.ok()) {
      spdlog::error("vault: login after a rejected token failed: {}", auth.status().message());
      return auth.status();
    }
    SetToken(std::move(auth->token));
    return kes::Status::Ok();
  }

  std::string LoginNamespace(const std::string& configured) const {
    if (configured == "/") return "";
    return configured.empty() ? namespace_ : configured;
  }

  Result<Auth> Login(Deadline deadline) {
    std::string path, ns;
    nlohmann::json body;
    if (config_.has_approle) {
      path = JoinPath({"auth", config_.approle_engine, "login"});
      ns = LoginNamespace(config_.approle_namespace);
      body = {{"role_id", config_.approle_id}, {"secret_id", config_.approle_secret}};
    } else {
      path = JoinPath({"auth", config_.kubernetes_engine, "login"});
      ns = LoginNamespace(config_.kubernetes_namespace);
      std::string jwt = config_.kubernetes_jwt;
      if (!config_.kubernetes_jwt_file.empty()) {
        // Projected service-account tokens rotate: read at every login.
        auto fresh = ReadWholeFile(config_.kubernetes_jwt_file);
        if (!fresh.ok()) return kes::Status::Unavailable("vault: " + fresh.status().message());
        jwt = *std::move(fresh);
        while (!jwt.empty() && (jwt.back() == '\n' || jwt.back() == '\r')) jwt.pop_back();
      }
      body = {{"jwt", jwt}, {"role", config_.kubernetes_role}};
      crypto::Zeroize(jwt.data(), jwt.size());
    }
    std::string text = body.dump();
    auto resp = Send("PUT", path, text, ns, deadline, false);
    crypto::Zeroize(text.data(), text.size());
    if (!resp.ok()) return resp.status().WithContext("vault: authentication failed");
    if (resp->status < 200 || resp->status >= 300) {
      if (resp->status != 404 || !resp->body.empty()) {
        return kes::Status::Unavailable("vault: authentication failed: " +
                                        ResponseError(LastRequest("PUT", path), *resp));
      }
    }
    auto auth = ParseAuth(resp->body);
    crypto::Zeroize(resp->body.data(), resp->body.size());
    return auth;
  }

  Result<std::string> Encrypt(std::string_view value, Deadline deadline) {
    const std::string path = JoinPath({config_.transit_engine, "encrypt", config_.transit_key});
    std::string text = nlohmann::json({{"plaintext", crypto::Base64Encode(value)}}).dump();
    auto resp = SendKv("POST", path, text, deadline);
    crypto::Zeroize(text.data(), text.size());
    if (!resp.ok()) return resp.status();
    if (resp->status != 200)
      return kes::Status::Unavailable(ResponseError(LastRequest("POST", path), *resp));
    auto ct = ParseDataString(resp->body, "ciphertext");
    if (!ct.ok()) return ct.status();
    if (ct->empty()) return kes::Status::Unavailable("no ciphertext in vault response");
    if (!IsTransitCiphertext(*ct)) return kes::Status::Unavailable("invalid vault response");
    return ct;
  }

  Result<std::string> Decrypt(const std::string& ciphertext, Deadline deadline) {
    const std::string path = JoinPath({config_.transit_engine, "decrypt", config_.transit_key});
    std::string text = nlohmann::json({{"ciphertext", ciphertext}}).dump();
    auto resp = SendKv("POST", path, text, deadline);
    if (!resp.ok()) return resp.status();
    if (resp->status != 200)
      return kes::Status::Unavailable(ResponseError(LastRequest("POST", path), *resp));
    auto b64 = ParseDataString(resp->body, "plaintext");
    crypto::Zeroize(resp->body.data(), resp->body.size());
    if (!b64.ok()) return b64.status();
    if (b64->empty()) return kes::Status::Unavailable("no plaintext in vault response");
    auto bytes = crypto::Base64Decode(*b64);
    crypto::Zeroize(b64->data(), b64->size());
    if (!bytes) return kes::Status::Unavailable("invalid vault response");
    std::string out(bytes->begin(), bytes->end());
    crypto::Zeroize(bytes->data(), bytes->size());
    return out;
  }

  // Tracks the sealed state every status.ping (no namespace: sys/health is
  // a root-only path). An error keeps the last state.
  void PollHealth() {
    const auto period = std::chrono::duration_cast<milliseconds>(config_.status_ping);
    do {
      auto resp = Send("GET", HealthPath(), "", "", DeadlineIn(period), false);
      if (resp.ok()) {
        if (auto h = ParseHealth(resp->body); h.ok()) sealed_.store(h->sealed);
      }
    } while (!stop_.Wait(period));
  }

  // The token renewal loop of keystores-vault.md §4.
  void RenewLoop(Auth last) {
    milliseconds ttl = std::chrono::duration_cast<milliseconds>(last.ttl);
    while (true) {
      if (sealed_.load()) {
        if (stop_.Wait(timing_.sealed_wait)) return;
        continue;
      }
      if (ttl < timing_.min_ttl) {
        auto auth = Login(DeadlineIn(seconds(60)));
        if (auth.ok()) {
          ttl = std::chrono::duration_cast<milliseconds>(auth->ttl);
          last = *auth;
          SetToken(std::move(auth->token));
        } else {
          spdlog::error("{}", auth.status().message());
        }
        if (stop_.Wait(timing_.relogin_wait)) return;
        continue;
      }
      const milliseconds renew_in = ttl * 4 / 5;
      const milliseconds delay = std::min((ttl - renew_in) / 2, timing_.max_switch_delay);
      ttl = milliseconds(0);
      if (stop_.Wait(renew_in)) return;
      Result<Auth> next = kes::Status::Unavailable("vault: token not renewable");
      if (last.renewable) {
        for (int i = 0; i < 3; ++i) {
          next = Renew();
          if (next.ok() || next.status().http_status() / 100 == 4) break;
        }
      }
      if (!next.ok()) next = Login(DeadlineIn(seconds(60)));
      if (!next.ok()) {
        spdlog::error("vault: token renewal failed: {}", next.status().message());
        continue;
      }
      ttl = std::chrono::duration_cast<milliseconds>(next->ttl);
      last = *next;
      // Replication lag: a new token may not be known to every node yet.
      if (stop_.Wait(delay)) return;
      SetToken(std::move(next->token));
    }
  }

  Result<Auth> Renew() {
    std::string token = Token();
    auto resp = Send("PUT", "auth/token/renew-self", R"({"increment":0})", namespace_,
                     DeadlineIn(seconds(60)), true, &token);
    crypto::Zeroize(token.data(), token.size());
    if (!resp.ok()) return resp.status();
    if (resp->status != 200) {
      return kes::Status(Code::kUnavailable, resp->status,
                         ResponseError(LastRequest("PUT", "auth/token/renew-self"), *resp));
    }
    return ParseAuth(resp->body);
  }

  const Config config_;
  const net::Url endpoint_;
  const std::string host_header_;  // non-empty after an SRV lookup: the configured host
  const std::string namespace_;
  net::HttpClient http_;
  const int max_retries_;
  const std::unique_ptr<RateLimiter> limiter_;
  const Timing timing_;
  const bool v2_;

  mutable std::mutex token_mu_;
  std::string token_;
  uint64_t token_generation_ = 0;
  std::mutex login_mu_;
  std::atomic<bool> sealed_{false};

  StopSignal stop_;
  std::thread poll_, renew_;
};

}  // namespace

Result<std::unique_ptr<KeyStore>> Open(const Config& config,
                                       const std::function<std::string(const char*)>& env,
                                       const Timing& timing) {
  if (config.engine_version != "v1" && config.engine_version != "v2") {
    return Status::Invalid("vault: invalid engine API version '" + config.engine_version + "'");
  }
  net::HttpClientOptions http;
  http.connect_timeout = seconds(30);
  http.request_timeout = seconds(60);
  http.max_response_bytes = 32 << 20;
  http.max_redirects = 1;  // a standby's 307 to the active node, as the SDK
  // unix://<socket>: HTTP over that socket (the SDK's address form).
  const bool unix_socket = config.endpoint.starts_with("unix://");
  if (unix_socket) {
    http.unix_socket_path = config.endpoint.substr(7);
    if (http.unix_socket_path.empty()) {
      return Status::Invalid("vault: invalid endpoint '" + config.endpoint + "': no socket path");
    }
  }
  auto endpoint = net::Url::Parse(unix_socket ? "http://localhost" : config.endpoint);
  if (!endpoint.ok()) return endpoint.status().WithContext("vault: invalid endpoint");
  if (endpoint->scheme == "http" && !net::IsLoopbackHost(endpoint->host)) {
    // Upstream accepts any http:// Vault; so does kes-cpp, loudly.
    http.plain_http_host = endpoint->host;
    spdlog::warn("vault: endpoint {} is plain HTTP: tokens and keys travel unencrypted",
                 config.endpoint);
  }
  auto bad_env = [](const char* name) {
    return Status::Invalid(
        std::string("vault: error encountered setting up default configuration: could not "
                    "parse \"") +
        name + "\"");
  };
  if (std::string v = env("VAULT_DISABLE_REDIRECTS"); !v.empty()) {
    auto b = ParseGoBool(v);
    if (!b) return bad_env("VAULT_DISABLE_REDIRECTS");
    if (*b) http.max_redirects = 0;
  }
  http.tls_server_name = env("VAULT_TLS_SERVER_NAME");
  // VAULT_PROXY_ADDR wins over VAULT_HTTP_PROXY; either replaces the
  // environment's https_proxy / no_proxy for every Vault request.
  for (const char* name : {"VAULT_HTTP_PROXY", "VAULT_PROXY_ADDR"}) {
    if (std::string proxy = env(name); !proxy.empty()) {
      if (!net::Url::Parse(proxy).ok()) return bad_env(name);
      http.proxy = std::move(proxy);
    }
  }
  std::unique_ptr<RateLimiter> limiter;
  if (std::string r = env("VAULT_RATE_LIMIT"); !r.empty()) {
    if (!ParseRateLimit(r, &limiter)) return bad_env("VAULT_RATE_LIMIT");
  }
  if (std::string t = env("VAULT_CLIENT_TIMEOUT"); !t.empty()) {
    int secs = 0;
    auto [end, err] = std::from_chars(t.data(), t.data() + t.size(), secs);
    if (err == std::errc() && end == t.data() + t.size() && secs > 0) {
      http.request_timeout = seconds(secs);
    } else if (auto d = ParseDuration(t); d.ok() && d->count() > 0) {
      http.request_timeout = std::chrono::duration_cast<milliseconds>(*d);
    } else {
      return bad_env("VAULT_CLIENT_TIMEOUT");
    }
  }
  int max_retries = 2;
  if (std::string r = env("VAULT_MAX_RETRIES"); !r.empty()) {
    auto [end, err] = std::from_chars(r.data(), r.data() + r.size(), max_retries);
    if (err != std::errc() || end != r.data() + r.size() || max_retries < 0) {
      return bad_env("VAULT_MAX_RETRIES");
    }
  }
  if (std::string v = env("VAULT_SKIP_VERIFY"); !v.empty()) {
    auto b = ParseGoBool(v);
    if (!b) return bad_env("VAULT_SKIP_VERIFY");
    http.insecure_skip_verify = *b;
    if (*b) spdlog::warn("vault: VAULT_SKIP_VERIFY is set: Vault's certificate is not verified");
  }
  std::string host_header;
  if (std::string v = env("VAULT_SRV_LOOKUP"); !v.empty()) {
    auto b = ParseGoBool(v);
    if (!b) return bad_env("VAULT_SRV_LOOKUP");
    if (*b && !unix_socket && !HasExplicitPort(config.endpoint)) {
      host_header = ApplySrvLookup(&*endpoint, &http);
    }
  }
  for (const char* ignored : {"VAULT_AGENT_ADDR", "VAULT_WRAP_TTL"}) {
    if (!env(ignored).empty()) spdlog::warn("vault: {} is set and ignored by kes-cpp", ignored);
  }

  // Trust: tls.ca, else VAULT_CACERT, else VAULT_CAPATH, else system roots.
  std::string ca = config.tls_ca;
  if (ca.empty()) ca = env("VAULT_CACERT");
  if (ca.empty()) ca = env("VAULT_CAPATH");
  if (!ca.empty()) {
    KES_TRY(ReadCaBundle(ca, &http.ca_pem));
    if (http.ca_pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      return Status::Invalid("vault: no CA certificate found in '" + ca + "'");
    }
  }
  // Client certificate: tls.cert/key, else VAULT_CLIENT_CERT/KEY. Unlike
  // upstream, an unreadable file fails start-up instead of being ignored.
  std::string cert = config.tls_cert, key = config.tls_key;
  if (cert.empty() && key.empty()) {
    cert = env("VAULT_CLIENT_CERT");
    key = env("VAULT_CLIENT_KEY");
  }
  if (!cert.empty() && !key.empty()) {
    auto c = ReadWholeFile(cert);
    if (!c.ok()) return c.status().WithContext("vault: failed to read client certificate");
    auto k = ReadWholeFile(key);
    if (!k.ok()) return k.status().WithContext("vault: failed to read client private key");
    http.client_cert_pem = *std::move(c);
    http.client_key_pem = *std::move(k);
  }

  std::string ns = config.namespace_.empty() ? env("VAULT_NAMESPACE") : config.namespace_;
  auto store =
      std::make_unique<VaultKeyStore>(config, *endpoint, std::move(host_header), std::move(ns),
                                      std::move(http), max_retries, std::move(limiter), timing);
  KES_TRY(store->Start());
  return std::unique_ptr<KeyStore>(std::move(store));
}

Result<std::unique_ptr<KeyStore>> Open(const Config& config) { return Open(config, GetEnv); }

}  // namespace kes::keystore::vault

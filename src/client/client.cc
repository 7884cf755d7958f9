// Transport: net::HttpClient (libcurl): keep-alive, HTTP/2 over ALPN,
// timeouts, proxies from the environment, redirects and the in-memory client
// certificate. This file adds the SDK's endpoint choice, retries and wording.
#include "client/client.h"

#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "common/json_members.h"
#include "common/os.h"
#include "crypto/encoding.h"
#include "identity/certificate.h"
#include "net/http_client.h"

namespace kes::client {

using nlohmann::json;

std::vector<std::string> NormalizeEndpoints(std::string_view list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = list.find(',', start);
    std::string_view e = list.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!e.empty() && std::isspace(static_cast<unsigned char>(e.front()))) e.remove_prefix(1);
    while (!e.empty() && std::isspace(static_cast<unsigned char>(e.back()))) e.remove_suffix(1);
    if (e.starts_with("http://")) e.remove_prefix(7);
    std::string endpoint(e);
    if (!endpoint.starts_with("https://")) endpoint.insert(0, "https://");
    while (endpoint.size() > 8 && endpoint.back() == '/') endpoint.pop_back();
    out.push_back(std::move(endpoint));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

namespace {

std::string EnvOr(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

// Go's url.PathEscape for one path segment.
std::string PathEscape(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '$' || c == '&' ||
        c == '+' || c == '=' || c == ':' || c == '@') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// `api` + "/" + escaped arg, without a trailing slash for an empty arg
// (Go path.Join), as the SDK builds paths.
std::string Path(std::string_view api, std::string_view arg) {
  if (arg.empty()) return std::string(api);
  return std::string(api) + "/" + PathEscape(arg);
}

bool IsLocal(const std::string& endpoint) {
  std::string_view h(endpoint);
  if (h.starts_with("https://")) h.remove_prefix(8);
  return h.starts_with("127.0.0.1") || h.starts_with("[::1]") || h.starts_with("localhost");
}

struct Response {
  int status = 0;
  std::string content_type;
  std::string body;
};

std::string Base64(std::span<const uint8_t> b) { return crypto::Base64Encode(b); }

Result<std::vector<uint8_t>> FromBase64(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || !it->is_string()) return std::vector<uint8_t>{};
  auto bytes = crypto::Base64Decode(it->get<std::string>());
  if (!bytes)
    return Status::Internal(std::string("kes: invalid base64 in response field ") + field);
  return std::move(*bytes);
}

std::vector<std::string> SortedKeys(const json& j, const char* field) {
  std::vector<std::string> out;
  auto it = j.find(field);
  if (it != j.end() && it->is_object()) {
    for (auto& [k, v] : it->items()) out.push_back(k);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<json> ParseJson(const std::string& body) {
  auto j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Internal("kes: invalid JSON response from server");
  return j;
}

}  // namespace

class Client::Impl {
 public:
  Impl(Config config, std::vector<net::Url> urls, net::HttpClientOptions http)
      : config_(std::move(config)), urls_(std::move(urls)), http_(std::move(http)) {
    std::random_device rd;
    rng_.seed(rd());
    parked_until_.resize(config_.endpoints.size());
  }

  const std::vector<std::string>& endpoints() const { return config_.endpoints; }

  // One API call: endpoint selection, fail-over and retries.
  Result<Response> Do(const char* method, const std::string& path, const std::string& body,
                      const LineCallback* stream = nullptr) {
    if (config_.endpoints.empty()) return Status::Invalid("kes: no server endpoint specified");
    Result<Response> last = Status::Internal("kes: no endpoint tried");
    for (size_t endpoint : EndpointOrder()) {
      last = DoWithRetry(method, endpoint, path, body, stream);
      if (Canceled()) return Status::Internal("context canceled");
      bool failover = !last.ok() || (last->status >= 500 && last->status != 501);
      if (!failover) return last;
      // A certificate problem is the same on every endpoint: report it now.
      if (!last.ok() && IsCertificateVerifyError(last.status())) return last;
      parked_until_[endpoint] = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    }
    return last;  // the last attempt's answer or error
  }

 private:
  bool Canceled() const { return config_.cancel != nullptr && config_.cancel->load(); }

  // Local endpoints first, then a random order; parked endpoints last.
  std::vector<size_t> EndpointOrder() {
    std::vector<size_t> order(config_.endpoints.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng_);
    auto now = std::chrono::steady_clock::now();
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      bool pa = parked_until_[a] > now, pb = parked_until_[b] > now;
      if (pa != pb) return !pa;
      return IsLocal(config_.endpoints[a]) && !IsLocal(config_.endpoints[b]);
    });
    return order;
  }

  Result<Response> DoWithRetry(const char* method, size_t endpoint, const std::string& path,
                               const std::string& body, const LineCallback* stream) {
    std::uniform_int_distribution<int> delay_ms(200, 999);
    Result<Response> r = Status::Internal("unreachable");
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (attempt > 0) {
        // Sleep in small steps so an interrupt is honoured quickly.
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms(rng_));
        while (std::chrono::steady_clock::now() < until && !Canceled()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
      if (Canceled()) return Status::Internal("context canceled");
      bool stream_started = false;
      r = Once(method, endpoint, path, body, stream, &stream_started);
      if (stream_started) return r;  // never replay a stream the caller has seen
      // A certificate or TLS set-up problem fails the same way again.
      bool retry =
          !r.ok() ? r.status().code() == Code::kUnreachable && !IsCertificateVerifyError(r.status())
                  : r->status == 503;
      if (!retry) return r;
    }
    return r;
  }

  // Splits a 200 log stream into lines for `stream`.
  struct LineSplitter {
    const LineCallback* stream;
    std::string pending;  // partial line
    bool started = false;
    bool stopped = false;  // the callback asked to stop

    bool Feed(std::string_view chunk) {
      started = true;
      pending.append(chunk);
      size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        if (!(*stream)(line)) {
          stopped = true;
          return false;
        }
      }
      return true;
    }
  };

  Result<Response> Once(const char* method, size_t endpoint, const std::string& path,
                        const std::string& body, const LineCallback* stream, bool* stream_started) {
    net::HttpRequest req;
    req.method = method;
    req.url = urls_[endpoint];
    req.url.path = (req.url.path == "/" ? "" : req.url.path) + path;
    if ((req.method == "POST" || req.method == "PUT") && !body.empty()) {
      req.headers.emplace_back("Content-Type", "application/json");
    }
    req.body = body;
    req.cancel = config_.cancel;
    LineSplitter lines{stream, {}, false, false};
    if (stream != nullptr) {
      req.on_body = [&lines](std::string_view chunk) { return lines.Feed(chunk); };
    }
    net::TransportError error;
    req.error = &error;
    auto r = http_.Do(req);
    crypto::Zeroize(req.body.data(), req.body.size());
    *stream_started = lines.started;
    if (Canceled()) return Status::Internal("context canceled");
    const std::string url = config_.endpoints[endpoint] + path;
    if (!r.ok()) {
      if (r.status().code() != Code::kUnreachable) return r.status();
      return Status(Code::kUnreachable, 0,
                    std::string(method) + " \"" + url + "\": " + Reason(error, url));
    }
    if (stream != nullptr && r->status == 200 && !lines.stopped && !lines.pending.empty()) {
      (*stream)(lines.pending);
    }
    return Response{r->status, r->Header("content-type"), std::move(r->body)};
  }

  // A Go-like reason for a transport failure.
  static std::string Reason(const net::TransportError& e, const std::string& url) {
    using Kind = net::TransportError::Kind;
    std::string host = url.substr(
        8, url.find('/', 8) == std::string::npos ? std::string::npos : url.find('/', 8) - 8);
    switch (e.kind) {
      case Kind::kConnect:
        return "dial tcp " + host +
               ": connect: " + (e.os_errno != 0 ? GoErrnoText(e.os_errno) : "connection refused");
      case Kind::kResolve:
        return "dial tcp: lookup " + host + ": no such host";
      case Kind::kTimeout:
        return "dial tcp " + host + ": i/o timeout";
      case Kind::kCertificate:
        switch (e.verify_result) {
          case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
          case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
          case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
          case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
          case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
            return "tls: failed to verify certificate: x509: certificate signed by unknown "
                   "authority";
          case X509_V_ERR_CERT_HAS_EXPIRED:
          case X509_V_ERR_CERT_NOT_YET_VALID:
            return "tls: failed to verify certificate: x509: certificate has expired or is not yet "
                   "valid";
          case X509_V_OK:  // host name mismatch
            return "tls: failed to verify certificate: x509: certificate is not valid for " + host;
          default:
            return std::string("tls: failed to verify certificate: x509: ") +
                   X509_verify_cert_error_string(e.verify_result);
        }
      case Kind::kClientCertificate:
        return "tls: private key does not match public key";
      case Kind::kHandshake:
      case Kind::kSendReceive:
      case Kind::kEmptyReply:
        if (e.os_errno == ECONNRESET) return "read tcp " + host + ": connection reset by peer";
        if (e.kind == Kind::kHandshake) return "tls: handshake failure: " + e.detail;
        if (e.kind == Kind::kEmptyReply) return "EOF";
        return "unexpected EOF: " + e.detail;
      case Kind::kOther:
        break;
    }
    return e.detail;
  }

  Config config_;
  std::vector<net::Url> urls_;  // config_.endpoints, parsed
  net::HttpClient http_;
  std::mt19937_64 rng_;
  std::vector<std::chrono::steady_clock::time_point> parked_until_;
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::New(Config config) {
  if (config.endpoints.empty()) return Status::Invalid("kes: no server endpoint specified");
  std::vector<net::Url> urls;
  for (const std::string& e : config.endpoints) {
    auto url = net::Url::Parse(e);
    if (!url.ok()) return url.status().WithContext("kes: invalid server endpoint");
    urls.push_back(*std::move(url));
  }
  net::HttpClientOptions http;
  http.connect_timeout = config.connect_timeout;
  http.request_timeout = config.request_timeout;  // 0: none, as the SDK
  http.max_response_bytes = 1 << 20;              // the SDK reads at most 1 MiB
  http.max_redirects = 10;                        // as Go's http.Client
  http.insecure_skip_verify = config.insecure;
  // Like Go: $SSL_CERT_FILE / $SSL_CERT_DIR replace the system roots.
  http.ca_file = config.ca_file.empty() ? EnvOr("SSL_CERT_FILE") : config.ca_file;
  if (config.ca_file.empty()) http.ca_dir = EnvOr("SSL_CERT_DIR");
  if (config.certificate && config.private_key) {
    KES_ASSIGN_OR_RETURN(http.client_cert_pem,
                         identity::CertificateToPem(config.certificate.get()));
    KES_ASSIGN_OR_RETURN(http.client_key_pem, identity::PrivateKeyToPem(config.private_key.get()));
  }
  return std::unique_ptr<Client>(
      new Client(std::make_unique<Impl>(std::move(config), std::move(urls), std::move(http))));
}

const std::vector<std::string>& Client::endpoints() const { return impl_->endpoints(); }

namespace {

// Sends one request and turns a >= 400 answer into the decoded Status.
Result<Response> Call(Client::Impl& impl, const char* method, const std::string& path,
                      const std::string& body = {}) {
  KES_ASSIGN_OR_RETURN(Response r, impl.Do(method, path, body));
  if (r.status >= 400) return DecodeError(static_cast<int>(r.status), r.content_type, r.body);
  if (r.status < 200 || r.status > 299) {
    return Status(Code::kInternal, static_cast<int>(r.status),
                  "kes: unexpected HTTP status " + std::to_string(r.status));
  }
  return r;
}

Result<json> CallJson(Client::Impl& impl, const char* method, const std::string& path,
                      const std::string& body = {}) {
  KES_ASSIGN_OR_RETURN(Response r, Call(impl, method, path, body));
  return ParseJson(r.body);
}

Result<std::vector<std::string>> List(Client::Impl& impl, const char* api, const char* field,
                                      std::string_view prefix) {
  std::vector<std::string> names;
  std::string next(prefix);
  for (int page = 0; page < 100000; ++page) {
    KES_ASSIGN_OR_RETURN(Response r, Call(impl, "GET", Path(api, next)));
    if (r.content_type == "application/x-ndjson") {  // servers before 2023-10 (api.md §4)
      std::string_view body(r.body);
      while (!body.empty()) {
        size_t nl = body.find('\n');
        std::string_view line = body.substr(0, nl);
        body = nl == std::string_view::npos ? std::string_view{} : body.substr(nl + 1);
        if (line.empty()) continue;
        auto j = json::parse(line, nullptr, false);
        if (j.is_discarded()) return Status::Internal("kes: invalid JSON response from server");
        if (!StringMember(j, "error").empty()) return Status::Internal(StringMember(j, "error"));
        std::string n =
            StringMember(j, "name").empty() ? StringMember(j, "identity") : StringMember(j, "name");
        if (!n.empty()) names.push_back(n);
      }
      break;
    }
    KES_ASSIGN_OR_RETURN(json j, ParseJson(r.body));
    size_t before = names.size();
    if (auto it = j.find(field); it != j.end() && it->is_array()) {
      for (auto& n : *it) {
        if (n.is_string()) names.push_back(n.get<std::string>());
      }
    }
    std::string cont = StringMember(j, "continue_at");
    // Unlike the SDK, continue from `continue_at` without losing the prefix
    // filter (cli.md §3.5 paging quirk): ask again and drop what we have.
    if (cont.empty() || names.size() == before || cont == next) break;
    next = cont;
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  if (!prefix.empty()) {
    std::string_view p = prefix;
    if (p.ends_with('*')) p.remove_suffix(1);
    std::erase_if(names, [&](const std::string& n) { return !n.starts_with(p); });
  }
  return names;
}

Status StreamLog(Client::Impl& impl, const char* path, const LineCallback& on_line) {
  KES_ASSIGN_OR_RETURN(Response r, impl.Do("GET", path, {}, &on_line));
  if (r.status >= 400) return DecodeError(static_cast<int>(r.status), r.content_type, r.body);
  return Status::Ok();
}

}  // namespace

Result<std::string> Client::Version() {
  KES_ASSIGN_OR_RETURN(json j, CallJson(*impl_, "GET", "/version"));
  return StringMember(j, "version");
}

Status Client::Ready() { return Call(*impl_, "GET", "/v1/ready").status(); }

Result<ServerStatus> Client::GetStatus() {
  auto start = std::chrono::steady_clock::now();
  KES_ASSIGN_OR_RETURN(json j, CallJson(*impl_, "GET", "/v1/status"));
  ServerStatus s;
  s.latency = std::chrono::steady_clock::now() - start;
  s.version = StringMember(j, "version");
  s.os = StringMember(j, "os");
  s.arch = StringMember(j, "arch");
  s.uptime_seconds = NumberMember(j, "uptime");
  s.num_cpu = IntMember(j, "num_cpu");
  s.num_cpu_used = IntMember(j, "num_cpu_used");
  s.mem_heap_used = IntMember(j, "mem_heap_used");
  s.mem_stack_used = IntMember(j, "mem_stack_used");
  s.keystore_latency = IntMember(j, "keystore_latency");
  s.keystore_unreachable = BoolMember(j, "keystore_unreachable");
  s.keystore_unavailable = BoolMember(j, "keystore_unavailable");
  if (s.keystore_unreachable && !s.keystore_unavailable) {
    return Status::Internal("kes: keystore is unreachable but not unavailable");
  }
  return s;
}

Result<std::vector<APIRoute>> Client::APIs() {
  KES_ASSIGN_OR_RETURN(json j, CallJson(*impl_, "GET", "/v1/api"));
  std::vector<APIRoute> out;
  if (!j.is_array()) return Status::Internal("kes: invalid JSON response from server");
  for (auto& e : j) {
    out.push_back({StringMember(e, "method"), StringMember(e, "path"), IntMember(e, "max_body"),
                   IntMember(e, "timeout")});
  }
  return out;
}

Result<Metrics> Client::GetMetrics() {
  KES_ASSIGN_OR_RETURN(Response r, Call(*impl_, "GET", "/v1/metrics"));
  return ParseMetrics(r.body);
}

Status Client::CreateKey(std::string_view name) {
  return Call(*impl_, "POST", Path("/v1/key/create", name)).status();
}

Status Client::ImportKey(std::string_view name, std::span<const uint8_t> key,
                         std::string_view cipher) {
  json body = {{"key", Base64(key)}, {"cipher", std::string(cipher)}};
  // A cipher name that is not UTF-8 is sent as U+FFFD (as Go would) and
  // refused by the server, instead of throwing here.
  std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  Status s = Call(*impl_, "POST", Path("/v1/key/import", name), text).status();
  crypto::Zeroize(text.data(), text.size());
  return s;
}

Result<KeyInfo> Client::DescribeKey(std::string_view name) {
  KES_ASSIGN_OR_RETURN(json j, CallJson(*impl_, "GET", Path("/v1/key/describe", name)));
  return KeyInfo{StringMember(j, "name"),       StringMember(j, "algorithm"),
                 StringMember(j, "created_at"), StringMember(j, "created_by"),
                 StringMember(j, "version"),    StringMember(j, "min_decryption_version")};
}

namespace {
KeyVersionInfo VersionInfoOf(const json& j) {
  KeyVersionInfo v{StringMember(j, "version"), StringMember(j, "algorithm"),
                   StringMember(j, "created_at"), StringMember(j, "created_by"), true};
  if (auto it = j.find("enabled"); it != j.end() && it->is_boolean()) v.enabled = it->get<bool>();
  return v;
}
}  // namespace

Result<RotatedKey> Client::RotateKey(std::string_view name) {
  KES_ASSIGN_OR_RETURN(json j, CallJson(*impl_, "PUT", Path("/v1/key/rotate", name)));
  return RotatedKey{StringMember(j, "name"), VersionInfoOf(j)};
}

Result<KeyVersions> Client::ListKeyVersions(std::string_view name) {
  KES_ASSIGN_OR_RETURN(json j, CallJson(*impl_, "GET", Path("/v1/key/versions", name)));
  KeyVersions out{StringMember(j, "name"),
                  StringMember(j, "latest_version"),
                  StringMember(j, "min_decryption_version"),
                  {}};
  if (auto it = j.find("versions"); it != j.end() && it->is_array()) {
    for (const json& v : *it) {
      if (v.is_object()) out.versions.push_back(VersionInfoOf(v));
    }
  }
  return out;
}

Result<KeyVersions> Client::ConfigureKey(std::string_view name,
                                         std::string_view min_decryption_version) {
  const json body = {{"min_decryption_version", std::string(min_decryption_version)}};
  KES_ASSIGN_OR_RETURN(json j, CallJson(*impl_, "PUT", Path("/v1/key/config", name), body.dump()));
  return KeyVersions{StringMember(j, "name"),
                     StringMember(j, "latest_version"),
                     StringMember(j, "min_decryption_version"),
                     {}};
}

Result<Ciphertext> Client::Rewrap(std::string_view name, std::span<const uint8_t> ciphertext,
                                  std::span<const uint8_t> context, std::string_view version) {
  json body = {{"ciphertext", Base64(ciphertext)}};
  if (!context.empty()) body["context"] = Base64(context);
  if (!version.empty()) body["version"] = std::string(version);
  KES_ASSIGN_OR_RETURN(json j, CallJson(*impl_, "PUT", Path("/v1/key/rewrap", name), body.dump()));
  KES_ASSIGN_OR_RETURN(std::vector<uint8_t> ct, FromBase64(j, "ciphertext"));
  return Ciphertext{std::move(ct), StringMember(j, "version")};
}

Status Client::DeleteKey(std::string_view name) {
  return Call(*impl_, "DELETE", Path("/v1/key/delete", name)).status();
}

Result<std::vector<std::string>> Client::ListKeys(std::string_view prefix) {
  return List(*impl_, "/v1/key/list", "names", prefix);
}

Result<DEK> Client::GenerateKey(std::string_view name, std::span<const uint8_t> context,
                                std::string_view version) {
  json body = json::object();
  if (!context.empty()) body["context"] = Base64(context);
  if (!version.empty()) body["version"] = std::string(version);
  KES_ASSIGN_OR_RETURN(Response r,
                       Call(*impl_, "POST", Path("/v1/key/generate", name), body.dump()));
  KES_ASSIGN_OR_RETURN(json j, ParseJson(r.body));
  crypto::Zeroize(r.body.data(), r.body.size());
  KES_ASSIGN_OR_RETURN(std::vector<uint8_t> plaintext, FromBase64(j, "plaintext"));
  KES_ASSIGN_OR_RETURN(std::vector<uint8_t> ciphertext, FromBase64(j, "ciphertext"));
  DEK dek{crypto::SecretBytes(plaintext), std::move(ciphertext), StringMember(j, "version")};
  crypto::Zeroize(plaintext.data(), plaintext.size());
  return dek;
}

Result<Ciphertext> Client::Encrypt(std::string_view name, std::span<const uint8_t> plaintext,
                                   std::span<const uint8_t> context, std::string_view version) {
  json body = {{"plaintext", Base64(plaintext)}};
  if (!context.empty()) body["context"] = Base64(context);
  if (!version.empty()) body["version"] = std::string(version);
  std::string text = body.dump();
  auto r = CallJson(*impl_, "POST", Path("/v1/key/encrypt", name), text);
  crypto::Zeroize(text.data(), text.size());
  if (!r.ok()) return r.status();
  KES_ASSIGN_OR_RETURN(std::vector<uint8_t> ct, FromBase64(*r, "ciphertext"));
  return Ciphertext{std::move(ct), StringMember(*r, "version")};
}

Result<crypto::SecretBytes> Client::Decrypt(std::string_view name,
                                            std::span<const uint8_t> ciphertext,
                                            std::span<const uint8_t> context) {
  json body = {{"ciphertext", Base64(ciphertext)}};
  if (!context.empty()) body["context"] = Base64(context);
  KES_ASSIGN_OR_RETURN(Response r,
                       Call(*impl_, "POST", Path("/v1/key/decrypt", name), body.dump()));
  KES_ASSIGN_OR_RETURN(json j, ParseJson(r.body));
  crypto::Zeroize(r.body.data(), r.body.size());
  KES_ASSIGN_OR_RETURN(std::vector<uint8_t> plaintext, FromBase64(j, "plaintext"));
  crypto::SecretBytes out(plaintext);
  crypto::Zeroize(plaintext.data(), plaintext.size());
  return out;
}

Result<std::vector<uint8_t>> Client::HMAC(std::string_view name, std::span<const uint8_t> message) {
  json body = {{"message", Base64(message)}};
  KES_ASSIGN_OR_RETURN(json j, CallJson(*impl_, "PUT", Path("/v1/key/hmac", name), body.dump()));
  return FromBase64(j, "hmac");
}

Result<PolicyInfo> Client::DescribePolicy(std::string_view name) {
  KES_ASSIGN_OR_RETURN(json j, CallJson(*impl_, "GET", Path("/v1/policy/describe", name)));
  return PolicyInfo{StringMember(j, "name"), StringMember(j, "created_at"),
                    StringMember(j, "created_by")};
}

Result<Policy> Client::GetPolicy(std::string_view name) {
  KES_ASSIGN_OR_RETURN(json j, CallJson(*impl_, "GET", Path("/v1/policy/read", name)));
  return Policy{SortedKeys(j, "allow"), SortedKeys(j, "deny"), StringMember(j, "created_at"),
                StringMember(j, "created_by")};
}

Result<std::vector<std::string>> Client::ListPolicies(std::string_view prefix) {
  return List(*impl_, "/v1/policy/list", "names", prefix);
}

Result<IdentityInfo> Client::DescribeIdentity(std::string_view identity) {
  KES_ASSIGN_OR_RETURN(json j, CallJson(*impl_, "GET", Path("/v1/identity/describe", identity)));
  return IdentityInfo{std::string(identity), StringMember(j, "policy"), BoolMember(j, "admin"),
                      StringMember(j, "created_at"), StringMember(j, "created_by")};
}

Result<SelfInfo> Client::DescribeSelf() {
  KES_ASSIGN_OR_RETURN(json j, CallJson(*impl_, "GET", "/v1/identity/self/describe"));
  SelfInfo s;
  s.info =
      IdentityInfo{StringMember(j, "identity"), StringMember(j, "policy"), BoolMember(j, "admin"),
                   StringMember(j, "created_at"), StringMember(j, "created_by")};
  if (!s.info.policy.empty()) {
    s.policy = Policy{SortedKeys(j, "allow"), SortedKeys(j, "deny"), {}, {}};
  }
  return s;
}

Result<std::vector<std::string>> Client::ListIdentities(std::string_view prefix) {
  return List(*impl_, "/v1/identity/list", "identities", prefix);
}

Status Client::AuditLog(const LineCallback& on_line) {
  return StreamLog(*impl_, "/v1/log/audit", on_line);
}

Status Client::ErrorLog(const LineCallback& on_line) {
  return StreamLog(*impl_, "/v1/log/error", on_line);
}

}  // namespace kes::client

#include "server/handlers.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/strings.h"
#include "common/time.h"
#include "common/version.h"
#include "crypto/encoding.h"
#include "crypto/key_version.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "crypto/versioned_ciphertext.h"
#include "identity/identity.h"
#include "keystore/key_ring.h"
#include "server/json.h"
#include "server/offload.h"
#include "server/system_info.h"

namespace kes::server {
namespace asio = boost::asio;

namespace {

std::string InvalidKeyName(std::string_view name) {
  return "key name '" + std::string(name) + "' is empty, too long or contains invalid characters";
}
std::string InvalidPattern(std::string_view p) {
  return "listing pattern '" + std::string(p) + "' is empty, too long or is invalid";
}

// Keystore errors that are API errors pass through; anything else becomes
// `fallback` (502) and is written to the error log.
Response BackendError(const Status& s, std::string_view fallback, const Request& req,
                      Services& sv) {
  if (s.code() == Code::kAlreadyExists) return Response::Error(Status::KeyExists());
  if (s.code() == Code::kNotFound) return Response::Error(Status::KeyNotFound());
  sv.logs.Error(config::kLevelError, s.message(),
                {{"req.method", req.method},
                 {"req.path", req.path},
                 {"req.ip", req.remote_ip},
                 {"req.identity", req.identity.empty() ? "<unknown>" : req.identity}});
  return Response::Error(502, fallback);
}

asio::awaitable<Result<keystore::KeyRef>> LoadKey(const State& st, Services& sv,
                                                  const Request& req) {
  if (keystore::KeyRef k = st.cache->TryGet(req.resource)) co_return k;
  co_return co_await Offload(*sv.workers,
                             [&] { return st.cache->Get(req.resource, req.deadline); });
}

asio::awaitable<Result<keystore::KeyRef>> RefreshKey(const State& st, Services& sv,
                                                     const Request& req, uint32_t wanted) {
  co_return co_await Offload(*sv.workers,
                             [&] { return st.cache->Refresh(req.resource, wanted, req.deadline); });
}

// Ring errors that are client errors (4xx with their own text, e.g. 409 key
// version conflict) pass through; the rest as BackendError.
Response RingError(const Status& s, std::string_view fallback, const Request& req, Services& sv) {
  if (s.code() == Code::kInvalidArgument || s.code() == Code::kNotFound) {
    return Response::Error(s);
  }
  return BackendError(s, fallback, req, sv);
}

// The version a request pins (rotation.md §6.3), refreshing `key` once if it
// names a version above the cached latest. `enforce_minimum`: versions below
// the minimum decryption version are refused (all but HMAC).
// `ignore_if_unrotated`: a key that still has one version after the refresh
// ignores the pin (existing routes, I1).
asio::awaitable<Result<uint32_t>> PinnedVersion(const State& st, Services& sv, const Request& req,
                                                std::string_view pinned, bool enforce_minimum,
                                                bool ignore_if_unrotated,
                                                Result<keystore::KeyRef>& key) {
  const std::optional<uint32_t> v = keystore::ParseVersionNumber(pinned);
  if (!v) co_return Status::Invalid("key version '" + std::string(pinned) + "' is invalid");
  if (*v > (*key)->latest()) {
    key = co_await RefreshKey(st, sv, req, *v);
    if (!key.ok()) co_return key.status();
    if (*v > (*key)->latest()) {
      if (!ignore_if_unrotated || (*key)->rotated()) {
        co_return Status(Code::kNotFound, 404, "key version does not exist");
      }
      co_return (*key)->latest();  // still one version: ignored (I1)
    }
  }
  if (enforce_minimum && *v < (*key)->min_decryption_version) {
    co_return Status::Invalid("key version is below the minimum decryption version");
  }
  co_return *v;
}

// Responses name the version used only for rotated keys (I1).
void WriteVersion(JsonWriter& w, const keystore::KeyRing& ring, uint32_t version) {
  if (ring.rotated()) w.Key("version").String(std::to_string(version));
}

std::optional<std::vector<uint8_t>> DecodeBase64Field(const std::optional<std::string>& v) {
  if (!v) return std::vector<uint8_t>{};
  return crypto::Base64Decode(*v);
}

// The ring a key-version event reports (rotation.md §8); none for others.
struct AuditedRing {
  uint32_t version = 0;
  uint32_t min_decryption_version = 0;
};

void AuditEvent(const Request& req, Services& sv, const std::string& msg,
                std::optional<AuditedRing> ring = std::nullopt) {
  Logs::AuditEvent e;
  e.message = msg;
  e.method = req.method;
  e.path = req.path;
  e.ip = req.remote_ip;
  e.identity = req.identity;
  e.code = 200;
  e.elapsed_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::steady_clock::now() - req.received)
                     .count();
  std::string version, minimum;
  if (ring) {
    version = std::to_string(ring->version);
    minimum = std::to_string(ring->min_decryption_version);
    e.key_name = req.resource;
    e.key_version = version;
    e.key_min_decryption_version = minimum;
  }
  sv.logs.Audit(e);
}

void AuditKeyEvent(const Request& req, Services& sv, std::string_view what,
                   std::optional<AuditedRing> ring = std::nullopt) {
  AuditEvent(req, sv, "secret key '" + req.resource + "' " + std::string(what), ring);
}

// Pattern -> prefix: "" and "*" list everything; one trailing '*' is removed.
std::string_view PatternPrefix(std::string_view pattern) {
  if (!pattern.empty() && pattern.back() == '*') pattern.remove_suffix(1);
  return pattern;
}

void WriteRuleSet(JsonWriter& w, std::string_view key, const std::vector<std::string>& rules) {
  if (rules.empty()) return;
  std::vector<std::string> sorted(rules);
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  w.Key(key).BeginObject();
  for (const auto& r : sorted) w.Key(r).BeginObject().EndObject();
  w.EndObject();
}

// --- server information ---------------------------------------------------------

Response Version() {
  std::string body;
  JsonWriter(body)
      .BeginObject()
      .Key("version")
      .String(BuildVersion())
      .Key("commit")
      .String(BuildCommit())
      .EndObject();
  return Response::Json(std::move(body));
}

asio::awaitable<Response> Ready(const Request& req, const State& st, Services& sv) {
  auto s = co_await Offload(*sv.workers, [&] { return st.cache->Status(req.deadline); });
  if (s.ok()) co_return Response::Empty();
  if (s.status().code() == Code::kUnreachable) {
    co_return Response::Error(504, "key store is not reachable");
  }
  co_return Response::Error(502, "key store is unavailable");
}

asio::awaitable<Response> ServerStatus(const Request& req, const State& st, Services& sv) {
  auto s = co_await Offload(*sv.workers, [&] { return st.cache->Status(req.deadline); });
  const SystemInfo sys = ReadSystemInfo();
  const double uptime =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - sv.started).count();
  std::string body;
  JsonWriter w(body);
  w.BeginObject()
      .Key("version")
      .String(BuildVersion())
      .Key("os")
      .String(GoOs())
      .Key("arch")
      .String(GoArch())
      .Key("uptime")
      .Int(static_cast<int64_t>(std::llround(uptime)))
      .Key("num_cpu")
      .Int(sys.num_cpu)
      .Key("num_cpu_used")
      .Int(sys.num_cpu_used)
      .Key("mem_heap_used")
      .Int(static_cast<int64_t>(sys.heap_used))
      .Key("mem_stack_used")
      .Int(static_cast<int64_t>(sys.stack_used));
  if (s.ok()) {
    // Rounded to milliseconds, at least 1 when reachable.
    int64_t ms = (s->latency.count() + 500000) / 1000000;
    w.Key("keystore_latency").Int(std::max<int64_t>(ms, 1));
  } else {
    // keystore_unavailable lets the Go SDK decode the response (api.md §3.4.2).
    w.Key("keystore_unreachable").Bool(true).Key("keystore_unavailable").Bool(true);
  }
  // kes-cpp addition: whether the backend's change feed (etcd watch) is up.
  if (auto watching = st.cache->watching()) w.Key("keystore_watch").Bool(*watching);
  w.EndObject();
  co_return Response::Json(std::move(body));
}

Response Api(const State& st) {
  std::string body;
  JsonWriter w(body);
  w.BeginArray();
  for (const Route& r : Routes()) {
    if (!r.listed) continue;
    const RouteSettings& s = st.settings(r);
    w.BeginObject()
        .Key("method")
        .String(r.method)
        .Key("path")
        .String(r.path)
        .Key("max_body")
        .Int(static_cast<int64_t>(r.max_body))
        .Key("timeout")
        .Int(std::chrono::duration_cast<std::chrono::seconds>(s.timeout).count())
        .EndObject();
  }
  w.EndArray();
  return Response::Json(std::move(body));
}

Response MetricsPage(const State& st, Services& sv) {
  MetricsSnapshotInputs in;
  in.log_error_events = sv.logs.error_events();
  in.log_audit_events = sv.logs.audit_events();
  in.backend_gets = st.cache->backend_gets();
  in.cached_keys = st.cache->cached_keys();
  in.keystore_offline = st.cache->offline();
  in.keystore_watch = st.cache->watching();
  in.uptime_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - sv.started).count();
  Response r;
  r.type = Response::Type::kMetrics;
  r.body = sv.metrics.Exposition(in);
  return r;
}

// --- keys ------------------------------------------------------------------------

asio::awaitable<Response> KeyCreate(const Request& req, const State& st, Services& sv) {
  if (!identity::IsValidName(req.resource))
    co_return Response::Error(400, InvalidKeyName(req.resource));
  auto kv = crypto::NewKeyVersion(crypto::DefaultKeyType(), req.identity);
  if (!kv.ok()) co_return Response::Error(500, "failed to generate encryption key");
  Status s = co_await Offload(*sv.workers,
                              [&] { return st.cache->Create(req.resource, *kv, req.deadline); });
  if (!s.ok()) co_return BackendError(s, "failed to create key", req, sv);
  AuditKeyEvent(req, sv, "created");
  co_return Response::Empty();
}

asio::awaitable<Response> KeyImport(const Request& req, const State& st, Services& sv) {
  if (!identity::IsValidName(req.resource))
    co_return Response::Error(400, InvalidKeyName(req.resource));
  static constexpr std::string_view kFields[] = {"key", "cipher"};
  const auto bad_body = [] { return Response::Error(400, "invalid import key request body"); };
  if (req.body_too_large) co_return bad_body();
  auto fields = DecodeJsonFields(req.body, kFields);
  if (!fields) co_return bad_body();
  auto key_bytes = DecodeBase64Field(fields->values[0]);
  if (!key_bytes) co_return bad_body();
  crypto::SecretBytes secret(*key_bytes);
  crypto::Zeroize(key_bytes->data(), key_bytes->size());
  if (fields->values[0]) crypto::Zeroize(fields->values[0]->data(), fields->values[0]->size());
  const std::string cipher = fields->values[1].value_or("");
  auto type = crypto::ParseKeyType(cipher);
  if (!type) co_return Response::Error(406, "algorithm '" + cipher + "' is not supported");
  if (secret.size() != crypto::kKeySize) {
    co_return Response::Error(406, "invalid key size for '" + cipher + "'");
  }
  auto key = crypto::SecretKey::Make(*type, secret.span());
  auto hmac = crypto::HMACKey::Generate();
  if (!key.ok() || !hmac.ok()) co_return Response::Error(500, "failed to create key");
  crypto::KeyVersion kv{std::move(*key), std::move(*hmac), Timestamp::Now(),
                        std::string(req.identity)};
  Status s = co_await Offload(*sv.workers,
                              [&] { return st.cache->Create(req.resource, kv, req.deadline); });
  if (!s.ok()) co_return BackendError(s, "failed to create key", req, sv);
  AuditKeyEvent(req, sv, "created");
  co_return Response::Empty();
}

asio::awaitable<Response> KeyDescribe(const Request& req, const State& st, Services& sv) {
  if (!identity::IsValidName(req.resource))
    co_return Response::Error(400, InvalidKeyName(req.resource));
  auto key = co_await LoadKey(st, sv, req);
  if (!key.ok()) co_return BackendError(key.status(), "failed to read key", req, sv);
  // The latest version's attributes (rotation.md §6.2); a one-version ring
  // answers exactly as upstream.
  const keystore::KeyRing& ring = **key;
  const crypto::KeyVersion& kv = ring.versions.back();
  std::string body;
  JsonWriter w(body);
  w.BeginObject()
      .Key("name")
      .String(req.resource)
      .Key("algorithm")
      .String(crypto::KeyTypeName(kv.key.type()))
      .Key("created_at")
      .String(kv.created_at.ToRfc3339());
  if (!kv.created_by.empty()) w.Key("created_by").String(kv.created_by);
  if (ring.rotated()) {
    w.Key("version").String(std::to_string(ring.latest()));
    w.Key("min_decryption_version").String(std::to_string(ring.min_decryption_version));
  }
  w.EndObject();
  co_return Response::Json(std::move(body));
}

asio::awaitable<Response> KeyList(const Request& req, const State& st, Services& sv) {
  if (!identity::IsValidPattern(req.resource))
    co_return Response::Error(400, InvalidPattern(req.resource));
  const std::string prefix(PatternPrefix(req.resource));
  auto page = co_await Offload(*sv.workers, [&] { return st.cache->List(prefix, req.deadline); });
  if (!page.ok()) co_return BackendError(page.status(), "failed to list keys", req, sv);
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("names");
  if (page->names.empty()) {
    w.Null();
  } else {
    w.BeginArray();
    for (const auto& n : page->names) w.String(n);
    w.EndArray();
  }
  if (!page->continue_at.empty()) w.Key("continue_at").String(page->continue_at);
  w.EndObject();
  co_return Response::Json(std::move(body));
}

asio::awaitable<Response> KeyDelete(const Request& req, const State& st, Services& sv) {
  if (!identity::IsValidName(req.resource))
    co_return Response::Error(400, InvalidKeyName(req.resource));
  Status s =
      co_await Offload(*sv.workers, [&] { return st.cache->Delete(req.resource, req.deadline); });
  if (!s.ok()) co_return BackendError(s, "failed to delete key", req, sv);
  AuditKeyEvent(req, sv, "deleted");
  co_return Response::Empty();
}

// An answer holding key material, with room for all of it reserved up
// front: a reallocation would free a copy of a plaintext or DEK unwiped.
Response SensitiveJson(size_t capacity) {
  Response resp;
  resp.type = Response::Type::kJson;
  resp.sensitive = true;
  resp.body.reserve(capacity);
  return resp;
}

// Not authentic, or authentic under a disabled version (rotation.md §5.2):
// client errors with their own text; anything else is ours.
Response DecryptFailure(const Status& s) {
  if (s.code() == Code::kNotAuthentic || s.http_status() == 400) return Response::Error(s);
  return Response::Error(500, "failed to decrypt ciphertext");
}

// The crypto routes share: name check, body decode, key load.
asio::awaitable<Response> KeyCrypto(const Request& req, const State& st, Services& sv) {
  if (!identity::IsValidName(req.resource))
    co_return Response::Error(400, InvalidKeyName(req.resource));
  const RouteId id = req.route->id;
  // The last field is the optional key version (rotation.md §6.3), a string.
  static constexpr std::string_view kGenerate[] = {"context", "version"};
  static constexpr std::string_view kEncrypt[] = {"plaintext", "context", "version"};
  static constexpr std::string_view kDecrypt[] = {"ciphertext", "context", "version"};
  static constexpr std::string_view kHmac[] = {"message", "version"};
  std::span<const std::string_view> names;
  switch (id) {
    case RouteId::kKeyGenerate:
      names = kGenerate;
      break;
    case RouteId::kKeyEncrypt:
      names = kEncrypt;
      break;
    case RouteId::kKeyDecrypt:
      names = kDecrypt;
      break;
    default:
      names = kHmac;
      break;
  }
  const auto bad_body = [] { return Response::Error(400, "invalid request body"); };
  std::vector<std::vector<uint8_t>> values(names.size() - 1);
  std::string pinned;  // "" = not pinned
  // Generate reads its body only when there is one (api.md §3.5.6).
  const bool read_body = id != RouteId::kKeyGenerate || req.body_present;
  if (read_body) {
    if (req.body_too_large) co_return bad_body();
    auto fields = DecodeJsonFields(req.body, names);
    if (!fields) co_return bad_body();
    pinned = fields->values.back().value_or("");
    for (size_t i = 0; i < values.size(); ++i) {
      auto v = DecodeBase64Field(fields->values[i]);
      if (fields->values[i]) crypto::Zeroize(fields->values[i]->data(), fields->values[i]->size());
      if (!v) co_return bad_body();
      values[i] = std::move(*v);
    }
  }
  struct Wipe {
    std::vector<std::vector<uint8_t>>& v;
    ~Wipe() {
      for (auto& b : v) crypto::Zeroize(b.data(), b.size());
    }
  } wipe{values};

  auto key = co_await LoadKey(st, sv, req);
  if (!key.ok()) co_return BackendError(key.status(), "failed to read key", req, sv);
  uint32_t version = (*key)->latest();
  if (id == RouteId::kKeyDecrypt) {
    // The ciphertext names its version; a sent one is ignored (§5.2).
    auto header = crypto::ParseVersionHeader(values[0]);
    if (header && header->version > (*key)->latest()) {
      key = co_await RefreshKey(st, sv, req, header->version);
      if (!key.ok()) co_return BackendError(key.status(), "failed to read key", req, sv);
    }
  } else {
    // HMAC stays on version 1 unless pinned: MinIO derives credentials
    // from it (rotation.md §3).
    if (id == RouteId::kKeyHmac) version = 1;
    // A never-rotated key ignores the field, as upstream does (I1), unless
    // it names a version another server may just have added.
    const bool may_pin = (*key)->rotated() || keystore::ParseVersionNumber(pinned).value_or(0) > 1;
    if (!pinned.empty() && may_pin) {
      auto v = co_await PinnedVersion(st, sv, req, pinned, id != RouteId::kKeyHmac,
                                      /*ignore_if_unrotated=*/true, key);
      if (!v.ok()) co_return RingError(v.status(), "failed to read key", req, sv);
      version = *v;
    }
  }
  const keystore::KeyRing& ring = **key;
  const crypto::KeyVersion& kv = *ring.version(version);

  size_t largest = crypto::kKeySize;
  for (const auto& v : values) largest = std::max(largest, v.size());
  Response resp = SensitiveJson(64 + 2 * ((largest + crypto::kCiphertextOverhead + 2) / 3 * 4));
  JsonWriter w(resp.body);
  switch (id) {
    case RouteId::kKeyGenerate: {
      // One CSPRNG draw for DEK, iv and nonce (see docs/performance.md).
      auto dk = keystore::GenerateWithRing(ring, version, values[0]);
      if (!dk.ok()) co_return Response::Error(500, "failed to generate encryption key");
      w.BeginObject()
          .Key("plaintext")
          .Bytes(dk->plaintext.span())
          .Key("ciphertext")
          .Bytes(dk->ciphertext);
      WriteVersion(w, ring, version);
      w.EndObject();
      break;
    }
    case RouteId::kKeyEncrypt: {
      auto ct = keystore::EncryptWithRing(ring, version, values[0], values[1]);
      if (!ct.ok()) co_return Response::Error(500, "failed to encrypt plaintext");
      w.BeginObject().Key("ciphertext").Bytes(*ct);
      WriteVersion(w, ring, version);
      w.EndObject();
      break;
    }
    case RouteId::kKeyDecrypt: {
      auto pt = keystore::DecryptWithRing(ring, values[0], values[1]);
      if (!pt.ok()) co_return DecryptFailure(pt.status());
      w.BeginObject().Key("plaintext").Bytes(pt->plaintext.span()).EndObject();
      break;
    }
    default: {
      if (!kv.hmac) co_return Response::Error(409, "key does not support HMAC");
      auto sum = kv.hmac->Sum(values[0]);
      w.BeginObject().Key("hmac").Bytes(sum);
      WriteVersion(w, ring, version);
      w.EndObject();
      crypto::Zeroize(sum.data(), sum.size());
      break;
    }
  }
  resp.body += '\n';
  co_return resp;
}

// api.md §6: a JSON array of at most 1000 {ciphertext, context} objects,
// decrypted with one key; the answer is the array of {plaintext}. Any failure
// fails the whole request with the error of a single decrypt.
asio::awaitable<Response> KeyBulkDecrypt(const Request& req, const State& st, Services& sv) {
  if (!identity::IsValidName(req.resource))
    co_return Response::Error(400, InvalidKeyName(req.resource));
  constexpr size_t kMaxItems = 1000;
  static constexpr std::string_view kDecrypt[] = {"ciphertext", "context"};
  const auto bad_body = [] { return Response::Error(400, "invalid request body"); };
  if (req.body_too_large) co_return bad_body();
  auto items = DecodeJsonFieldsArray(req.body, kDecrypt);
  if (!items) co_return bad_body();
  struct Wipe {
    std::vector<JsonFields>& items;
    ~Wipe() {
      for (auto& f : items) WipeJsonFields(f);
    }
  } wipe{*items};
  if (items->size() > kMaxItems) co_return Response::Error(400, "too many ciphertexts");

  std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> inputs;
  inputs.reserve(items->size());
  size_t answer_size = 16;
  for (const JsonFields& f : *items) {
    auto ct = DecodeBase64Field(f.values[0]);
    auto ctx = DecodeBase64Field(f.values[1]);
    if (!ct || !ctx) co_return bad_body();
    answer_size += 20 + (ct->size() + 2) / 3 * 4;
    inputs.emplace_back(std::move(*ct), std::move(*ctx));
  }

  auto key = co_await LoadKey(st, sv, req);
  if (!key.ok()) co_return BackendError(key.status(), "failed to read key", req, sv);
  // Each ciphertext names its version; one refresh covers the highest.
  uint32_t highest = 0;
  for (const auto& input : inputs) {
    if (auto header = crypto::ParseVersionHeader(input.first))
      highest = std::max(highest, header->version);
  }
  if (highest > (*key)->latest()) {
    key = co_await RefreshKey(st, sv, req, highest);
    if (!key.ok()) co_return BackendError(key.status(), "failed to read key", req, sv);
  }
  const keystore::KeyRing& ring = **key;

  Response resp = SensitiveJson(answer_size);
  JsonWriter w(resp.body);
  w.BeginArray();
  for (const auto& [ct, ctx] : inputs) {
    auto pt = keystore::DecryptWithRing(ring, ct, ctx);
    if (!pt.ok()) {
      crypto::Zeroize(resp.body.data(), resp.body.size());
      co_return DecryptFailure(pt.status());
    }
    w.BeginObject().Key("plaintext").Bytes(pt->plaintext.span()).EndObject();
  }
  w.EndArray();
  resp.body += '\n';
  co_return resp;
}

// --- key versions (kes-cpp extension, rotation.md §6) ---------------------------

void WriteVersionInfo(JsonWriter& w, const crypto::KeyVersion& kv) {
  w.Key("algorithm")
      .String(crypto::KeyTypeName(kv.key.type()))
      .Key("created_at")
      .String(kv.created_at.ToRfc3339());
  if (!kv.created_by.empty()) w.Key("created_by").String(kv.created_by);
}

asio::awaitable<Response> KeyRotate(const Request& req, const State& st, Services& sv) {
  if (!identity::IsValidName(req.resource))
    co_return Response::Error(400, InvalidKeyName(req.resource));
  auto ring = co_await Offload(
      *sv.workers, [&] { return st.cache->Rotate(req.resource, req.identity, req.deadline); });
  if (!ring.ok()) co_return RingError(ring.status(), "failed to rotate key", req, sv);
  const std::string version = std::to_string(ring->number);
  AuditKeyEvent(req, sv, "rotated to version " + version,
                AuditedRing{ring->number, ring->min_decryption_version});
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("name").String(req.resource).Key("version").String(version);
  WriteVersionInfo(w, ring->key);
  w.EndObject();
  co_return Response::Json(std::move(body));
}

asio::awaitable<Response> KeyVersions(const Request& req, const State& st, Services& sv) {
  if (!identity::IsValidName(req.resource))
    co_return Response::Error(400, InvalidKeyName(req.resource));
  auto key = co_await LoadKey(st, sv, req);
  if (!key.ok()) co_return BackendError(key.status(), "failed to read key", req, sv);
  const keystore::KeyRing& ring = **key;
  std::string body;
  JsonWriter w(body);
  w.BeginObject()
      .Key("name")
      .String(req.resource)
      .Key("latest_version")
      .String(std::to_string(ring.latest()))
      .Key("min_decryption_version")
      .String(std::to_string(ring.min_decryption_version))
      .Key("versions")
      .BeginArray();
  for (uint32_t v = 1; v <= ring.latest(); ++v) {
    w.BeginObject().Key("version").String(std::to_string(v));
    WriteVersionInfo(w, *ring.version(v));
    w.Key("enabled").Bool(v >= ring.min_decryption_version).EndObject();
  }
  w.EndArray().EndObject();
  co_return Response::Json(std::move(body));
}

// {"min_decryption_version": "2"} or 2; unknown fields ignored. 0 when the
// value is missing or not a whole number (answered as out of range).
std::optional<uint32_t> ParseMinDecryptionVersion(std::string_view body) {
  auto doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return std::nullopt;
  for (const auto& [k, v] : doc.items()) {
    if (!EqualFoldAscii(k, "min_decryption_version")) continue;
    if (v.is_number_unsigned()) {
      const uint64_t n = v.get<uint64_t>();
      return n > UINT32_MAX ? 0 : static_cast<uint32_t>(n);
    }
    if (v.is_string()) return keystore::ParseVersionNumber(v.get<std::string>()).value_or(0);
    return 0;
  }
  return 0;
}

asio::awaitable<Response> KeyConfigure(const Request& req, const State& st, Services& sv) {
  if (!identity::IsValidName(req.resource))
    co_return Response::Error(400, InvalidKeyName(req.resource));
  if (req.body_too_large) co_return Response::Error(400, "invalid request body");
  const std::optional<uint32_t> m = ParseMinDecryptionVersion(req.body);
  if (!m) co_return Response::Error(400, "invalid request body");
  auto ring = co_await Offload(*sv.workers, [&] {
    return st.cache->Configure(req.resource, *m, req.identity, req.deadline);
  });
  if (!ring.ok()) co_return RingError(ring.status(), "failed to update key", req, sv);
  AuditEvent(req, sv,
             "minimum decryption version of secret key '" + req.resource + "' set to " +
                 std::to_string(ring->min_decryption_version),
             AuditedRing{ring->latest, ring->min_decryption_version});
  std::string body;
  JsonWriter(body)
      .BeginObject()
      .Key("name")
      .String(req.resource)
      .Key("latest_version")
      .String(std::to_string(ring->latest))
      .Key("min_decryption_version")
      .String(std::to_string(ring->min_decryption_version))
      .EndObject();
  co_return Response::Json(std::move(body));
}

asio::awaitable<Response> KeyRewrap(const Request& req, const State& st, Services& sv) {
  if (!identity::IsValidName(req.resource))
    co_return Response::Error(400, InvalidKeyName(req.resource));
  static constexpr std::string_view kFields[] = {"ciphertext", "context", "version"};
  const auto bad_body = [] { return Response::Error(400, "invalid request body"); };
  if (req.body_too_large) co_return bad_body();
  auto fields = DecodeJsonFields(req.body, kFields);
  if (!fields) co_return bad_body();
  auto ciphertext = DecodeBase64Field(fields->values[0]);
  auto context = DecodeBase64Field(fields->values[1]);
  if (!ciphertext || !context) co_return bad_body();
  const std::string pinned = fields->values[2].value_or("");

  auto key = co_await LoadKey(st, sv, req);
  if (!key.ok()) co_return BackendError(key.status(), "failed to read key", req, sv);
  auto header = crypto::ParseVersionHeader(*ciphertext);
  if (header && header->version > (*key)->latest()) {
    key = co_await RefreshKey(st, sv, req, header->version);
    if (!key.ok()) co_return BackendError(key.status(), "failed to read key", req, sv);
  }
  uint32_t target = (*key)->latest();
  if (!pinned.empty()) {
    auto v = co_await PinnedVersion(st, sv, req, pinned, /*enforce_minimum=*/true,
                                    /*ignore_if_unrotated=*/false, key);
    if (!v.ok()) co_return RingError(v.status(), "failed to read key", req, sv);
    target = *v;
  }
  auto pt = keystore::DecryptWithRing(**key, *ciphertext, *context);
  if (!pt.ok()) co_return DecryptFailure(pt.status());
  auto ct = keystore::EncryptWithRing(**key, target, pt->plaintext.span(), *context);
  if (!ct.ok()) co_return Response::Error(500, "failed to encrypt plaintext");
  std::string body;
  JsonWriter(body)
      .BeginObject()
      .Key("ciphertext")
      .Bytes(*ct)
      .Key("version")
      .String(std::to_string(target))
      .EndObject();
  co_return Response::Json(std::move(body));
}

// --- policies and identities ---------------------------------------------------------

Response PolicyDescribeOrRead(const Request& req, const State& st) {
  if (!identity::IsValidName(req.resource)) {
    return Response::Error(400, "policy name '" + req.resource +
                                    "' is empty, too long or contains invalid characters");
  }
  auto it = st.policies.find(req.resource);
  if (it == st.policies.end()) return Response::Error(404, "policy does not exist");
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("name").String(it->first);
  if (req.route->id == RouteId::kPolicyRead) {
    WriteRuleSet(w, "allow", it->second.policy.allow);
    WriteRuleSet(w, "deny", it->second.policy.deny);
  }
  w.Key("created_at").String(st.created_at);
  if (!st.admin.empty()) w.Key("created_by").String(st.admin);
  w.EndObject();
  return Response::Json(std::move(body));
}

Response NameList(const Request& req, std::vector<std::string> names, std::string_view field) {
  if (!identity::IsValidPattern(req.resource))
    return Response::Error(400, InvalidPattern(req.resource));
  const std::string_view prefix = PatternPrefix(req.resource);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key(field);
  bool any = false;
  for (const auto& n : names) {
    if (n.compare(0, prefix.size(), prefix) != 0) continue;
    if (!any) w.BeginArray();
    any = true;
    w.String(n);
  }
  if (any) {
    w.EndArray();
  } else {
    w.Null();
  }
  w.Key("continue_at").String("").EndObject();
  return Response::Json(std::move(body));
}

Response PolicyList(const Request& req, const State& st) {
  std::vector<std::string> names;
  for (const auto& [name, _] : st.policies) names.push_back(name);
  return NameList(req, std::move(names), "names");
}

Response IdentityList(const Request& req, const State& st) {
  std::vector<std::string> names;
  if (!st.admin.empty()) names.push_back(st.admin);
  for (const auto& [id, _] : st.policy_of) names.push_back(id);
  return NameList(req, std::move(names), "identities");
}

Response IdentityDescribe(const Request& req, const State& st) {
  if (!identity::IsValidName(req.resource)) {
    return Response::Error(
        400, "identity '" + req.resource + "' is empty, too long or contains invalid characters");
  }
  std::string body;
  JsonWriter w(body);
  if (req.resource == st.admin) {
    w.BeginObject().Key("admin").Bool(true).Key("created_at").String(st.created_at).EndObject();
    return Response::Json(std::move(body));
  }
  auto it = st.policy_of.find(req.resource);
  if (it == st.policy_of.end()) return Response::Error(404, "identity does not exist");
  w.BeginObject().Key("policy").String(it->second->name).Key("created_at").String(st.created_at);
  if (!st.admin.empty()) w.Key("created_by").String(st.admin);
  w.EndObject();
  return Response::Json(std::move(body));
}

Response SelfDescribe(const Request& req, const State& st) {
  std::string body;
  JsonWriter w(body);
  if (!req.identity.empty() && req.identity == st.admin) {
    w.BeginObject()
        .Key("identity")
        .String(req.identity)
        .Key("admin")
        .Bool(true)
        .Key("created_at")
        .String(st.created_at)
        .EndObject();
    return Response::Json(std::move(body));
  }
  auto it =
      req.identity.empty() ? st.policy_of.end() : st.policy_of.find(std::string(req.identity));
  if (it == st.policy_of.end()) return Response::Error(404, "identity does not exist");
  // The SDK's shape (api.md §3.7.3), not upstream's undecodable nested one.
  const PolicyEntry& p = *it->second;
  w.BeginObject()
      .Key("identity")
      .String(req.identity)
      .Key("policy")
      .String(p.name)
      .Key("created_at")
      .String(st.created_at);
  if (!st.admin.empty()) w.Key("created_by").String(st.admin);
  WriteRuleSet(w, "allow", p.policy.allow);
  WriteRuleSet(w, "deny", p.policy.deny);
  w.EndObject();
  return Response::Json(std::move(body));
}

}  // namespace

Response Response::Error(unsigned status, std::string_view message) {
  Response r;
  r.status = status;
  r.type = Type::kJson;
  r.body = "{\"message\":";
  AppendJsonString(r.body, message);
  r.body += "\n}";
  return r;
}

Response Response::Json(std::string body) {
  Response r;
  r.type = Type::kJson;
  r.body = std::move(body);
  r.body += '\n';
  return r;
}

Response Response::NotFoundPage() {
  Response r;
  r.status = 404;
  r.type = Type::kText;
  r.body = "404 page not found\n";
  return r;
}

Response Response::BadRequestPage(std::string_view why) {
  Response r;
  r.status = 400;
  r.type = Type::kText;
  r.body = "400 Bad Request";
  if (!why.empty()) {
    r.body += ": ";
    r.body += why;
  }
  return r;
}

Response Response::Redirect(std::string location, bool with_body) {
  Response r;
  r.status = 301;
  r.location = std::move(location);
  if (with_body) {
    // http.Redirect for GET: an HTML link, written with Fprintln.
    r.type = Type::kHtml;
    std::string escaped;
    for (char c : r.location) {
      switch (c) {
        case '&':
          escaped += "&amp;";
          break;
        case '<':
          escaped += "&lt;";
          break;
        case '>':
          escaped += "&gt;";
          break;
        case '"':
          escaped += "&#34;";
          break;
        case '\'':
          escaped += "&#39;";
          break;
        default:
          escaped += c;
      }
    }
    r.body = "<a href=\"" + escaped + "\">Moved Permanently</a>.\n\n";
  }
  return r;
}

std::optional<Response> Authorize(const Request& req, const PeerIdentity& peer, const State& state,
                                  Services& sv) {
  if (peer.error == PeerIdentity::Error::kNoCertificate) {
    return Response::Error(400, "tls: client certificate is required");
  }
  if (peer.error == PeerIdentity::Error::kTooMany) {
    return Response::Error(400, "tls: received more than one client certificate");
  }
  if (peer.identity == state.admin) return std::nullopt;
  auto it = state.policy_of.find(peer.identity);
  if (it == state.policy_of.end()) {
    sv.logs.Error(config::kLevelDebug, "access denied: identity not found",
                  {{"req.method", req.method},
                   {"req.path", req.path},
                   {"req.ip", req.remote_ip},
                   {"req.identity", peer.identity}});
    return Response::Error(Status::NotAllowed());
  }
  if (!it->second->policy.Verify(req.path).ok()) {
    if (sv.logs.ErrorEnabled(config::kLevelDebug)) {
      sv.logs.Error(config::kLevelDebug,
                    "access denied: rejected by policy '" + it->second->name + "'",
                    {{"req.method", req.method},
                     {"req.path", req.path},
                     {"req.ip", req.remote_ip},
                     {"req.identity", peer.identity}});
    }
    return Response::Error(Status::NotAllowed());
  }
  return std::nullopt;
}

asio::awaitable<Response> Handle(const Request& req, const State& st, Services& sv) {
  switch (req.route->id) {
    case RouteId::kVersion:
      co_return Version();
    case RouteId::kReady:
      co_return co_await Ready(req, st, sv);
    case RouteId::kStatus:
      co_return co_await ServerStatus(req, st, sv);
    case RouteId::kMetrics:
      co_return MetricsPage(st, sv);
    case RouteId::kApi:
      co_return Api(st);
    case RouteId::kKeyCreate:
      co_return co_await KeyCreate(req, st, sv);
    case RouteId::kKeyImport:
      co_return co_await KeyImport(req, st, sv);
    case RouteId::kKeyDescribe:
      co_return co_await KeyDescribe(req, st, sv);
    case RouteId::kKeyList:
      co_return co_await KeyList(req, st, sv);
    case RouteId::kKeyDelete:
      co_return co_await KeyDelete(req, st, sv);
    case RouteId::kKeyGenerate:
    case RouteId::kKeyEncrypt:
    case RouteId::kKeyDecrypt:
    case RouteId::kKeyHmac:
      co_return co_await KeyCrypto(req, st, sv);
    case RouteId::kKeyBulkDecrypt:
      co_return co_await KeyBulkDecrypt(req, st, sv);
    case RouteId::kKeyRotate:
      co_return co_await KeyRotate(req, st, sv);
    case RouteId::kKeyVersions:
      co_return co_await KeyVersions(req, st, sv);
    case RouteId::kKeyConfig:
      co_return co_await KeyConfigure(req, st, sv);
    case RouteId::kKeyRewrap:
      co_return co_await KeyRewrap(req, st, sv);
    case RouteId::kPolicyDescribe:
    case RouteId::kPolicyRead:
      co_return PolicyDescribeOrRead(req, st);
    case RouteId::kPolicyList:
      co_return PolicyList(req, st);
    case RouteId::kIdentityDescribe:
      co_return IdentityDescribe(req, st);
    case RouteId::kIdentityList:
      co_return IdentityList(req, st);
    case RouteId::kSelfDescribe:
      co_return SelfDescribe(req, st);
    case RouteId::kLogError:
    case RouteId::kLogAudit:
      break;  // streamed by the connection
  }
  co_return Response::NotFoundPage();
}

}  // namespace kes::server

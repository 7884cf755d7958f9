#include "crypto/key_version.h"

#include <google/protobuf/stubs/logging.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>
#include <unordered_map>

#include "common/strings.h"
#include "crypto/encoding.h"
#include "kes.pb.h"

namespace kes::crypto {
namespace {

constexpr uint32_t kHashSHA256 = 1;

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Legacy JSON key (crypto.md §4.3), decoded with Go encoding/json semantics.
Result<KeyVersion> ParseLegacyJson(const nlohmann::ordered_json& doc) {
  if (doc.is_null()) {
    // Go: unmarshalling null into a struct is a no-op, leaving an empty key.
    return Status::Invalid("crypto: invalid key length '0' for 'AES256'");
  }
  if (!doc.is_object()) {
    return Status::Invalid("json: cannot unmarshal " + std::string(doc.type_name()) +
                           " into Go value of type crypto.KeyVersion");
  }
  std::optional<std::vector<uint8_t>> bytes;
  std::string algorithm, created_by;
  std::optional<Timestamp> created_at;
  for (const auto& [name, value] : doc.items()) {
    const bool is_bytes = EqualFoldAscii(name, "bytes"), is_alg = EqualFoldAscii(name, "algorithm"),
               is_at = EqualFoldAscii(name, "created_at"),
               is_by = EqualFoldAscii(name, "created_by");
    if (!is_bytes && !is_alg && !is_at && !is_by) continue;
    if (value.is_null()) continue;
    if (!value.is_string()) {
      return Status::Invalid("json: cannot unmarshal " + std::string(value.type_name()) +
                             " into Go struct field of type string");
    }
    const auto& s = value.get_ref<const std::string&>();
    if (is_bytes) {
      bytes = Base64Decode(s);
      if (!bytes) return Status::Invalid("crypto: invalid base64 key bytes");
    } else if (is_alg) {
      algorithm = s;
    } else if (is_by) {
      created_by = s;
    } else {
      created_at = Timestamp::ParseRfc3339(s);
      if (!created_at) {
        return Status::Invalid("parsing time \"" + s + "\" as RFC 3339: invalid timestamp");
      }
    }
  }

  KeyType type = KeyType::kAES256;
  if (!algorithm.empty()) {
    auto t = ParseKeyType(algorithm);
    if (!t) return Status::Invalid("crypto: secret key type '" + algorithm + "' is not supported");
    type = *t;
  }
  const size_t len = bytes ? bytes->size() : 0;
  if (len != kKeySize) {
    if (bytes) Zeroize(bytes->data(), bytes->size());
    return Status::Invalid("crypto: invalid key length '" + std::to_string(len) + "' for '" +
                           std::string(KeyTypeName(type)) + "'");
  }
  auto key = SecretKey::Make(type, *bytes);
  Zeroize(bytes->data(), bytes->size());
  if (!key.ok()) return key.status();
  key->set_untyped(algorithm.empty());
  return KeyVersion{std::move(*key), std::nullopt, created_at.value_or(Timestamp::GoZero()),
                    created_by};
}

Result<KeyVersion> ParseProtobuf(std::string_view stored) {
  auto raw = Base64DecodeWithError(stored);
  if (!raw.ok()) return raw.status();
  miniohq::kms::KeyVersion pb;
  // A corrupt value is reported through the returned Status; libprotobuf
  // would also print it to stderr (e.g. invalid UTF-8 in CreatedBy).
  const google::protobuf::LogSilencer quiet;
  const bool parsed = pb.ParseFromArray(raw->data(), static_cast<int>(raw->size()));
  Zeroize(raw->data(), raw->size());
  struct Wipe {  // the message holds key bytes in std::strings
    miniohq::kms::KeyVersion& pb;
    ~Wipe() {
      if (pb.has_key()) Zeroize(pb.mutable_key()->mutable_key()->data(), pb.key().key().size());
      if (pb.has_hmackey())
        Zeroize(pb.mutable_hmackey()->mutable_key()->data(), pb.hmackey().key().size());
    }
  } wipe{pb};
  if (!parsed) return Status::Invalid("proto: cannot parse invalid wire-format data");
  if (!pb.has_key()) return Status::Invalid("crypto: stored key has no secret key");
  if (!pb.has_hmackey()) return Status::Invalid("crypto: stored key has no HMAC key");

  const auto& sk = pb.key();
  if (sk.key().size() != kKeySize) {
    return Status::Invalid("crypto: invalid secret key length '" + std::to_string(sk.key().size()) +
                           "'");
  }
  if (sk.type() != static_cast<uint32_t>(KeyType::kAES256) &&
      sk.type() != static_cast<uint32_t>(KeyType::kChaCha20)) {
    return Status::Invalid("crypto: invalid secret key type '" + std::to_string(sk.type()) + "'");
  }
  const auto& hk = pb.hmackey();
  if (hk.key().size() != 32) {
    return Status::Invalid("crypto: invalid HMAC key length '" + std::to_string(hk.key().size()) +
                           "'");
  }
  if (hk.hash() != kHashSHA256) {
    return Status::Invalid("crypto: invalid HMAC key hash '" + std::to_string(hk.hash()) + "'");
  }
  if (pb.createdat().nanos() < 0 || pb.createdat().nanos() > 999'999'999) {
    return Status::Invalid("crypto: invalid key creation time");
  }
  KES_ASSIGN_OR_RETURN(SecretKey key,
                       SecretKey::Make(static_cast<KeyType>(sk.type()), Bytes(sk.key())));
  KES_ASSIGN_OR_RETURN(HMACKey hmac, HMACKey::Make(Bytes(hk.key())));
  Timestamp created;
  created.seconds = pb.createdat().seconds();
  created.nanos = pb.createdat().nanos();
  return KeyVersion{std::move(key), std::move(hmac), created, pb.createdby()};
}

}  // namespace

SharedString::SharedString(std::string_view s) {
  if (s.empty()) return;
  // Bounds on what the table keeps (it never shrinks): creator identities
  // are few and short. Anything else gets its own copy.
  constexpr size_t kMaxInternedSize = 256;
  constexpr size_t kMaxInternedCount = 1024;
  if (s.size() > kMaxInternedSize) {
    s_ = std::make_shared<const std::string>(s);
    return;
  }
  static std::mutex mu;
  // Never destroyed: SharedStrings may outlive static destruction order.
  static auto* const table =
      new std::unordered_map<std::string_view, std::shared_ptr<const std::string>>();
  std::lock_guard lock(mu);
  if (auto it = table->find(s); it != table->end()) {
    s_ = it->second;
    return;
  }
  s_ = std::make_shared<const std::string>(s);
  if (table->size() < kMaxInternedCount) table->emplace(*s_, s_);
}

const std::string& SharedString::str() const {
  static const std::string kEmpty;
  return s_ ? *s_ : kEmpty;
}

std::ostream& operator<<(std::ostream& os, const SharedString& s) { return os << s.view(); }

KeyVersion KeyVersion::Clone() const {
  return KeyVersion{key.Clone(), hmac ? std::optional<HMACKey>(hmac->Clone()) : std::nullopt,
                    created_at, created_by};
}

Result<KeyVersion> NewKeyVersion(KeyType type, std::string_view creator) {
  KES_ASSIGN_OR_RETURN(SecretKey key, SecretKey::Generate(type));
  KES_ASSIGN_OR_RETURN(HMACKey hmac, HMACKey::Generate());
  return KeyVersion{std::move(key), std::move(hmac), Timestamp::Now(), std::string(creator)};
}

namespace {

// Whether `s` can be JSON text at all: after optional JSON whitespace, a
// JSON value starts with one of {["-0123456789tfn. Anything else (every
// base64 protobuf value: those this server and upstream write start with 'C',
// the encoding of the tag byte 0x0a) skips the JSON parser, which would
// otherwise build a parse_error, message string included, for each such key.
bool MayBeJson(std::string_view s) {
  const size_t i = s.find_first_not_of(" \t\n\r");
  if (i == std::string_view::npos) return false;
  const char c = s[i];
  return c == '{' || c == '[' || c == '"' || c == '-' || (c >= '0' && c <= '9') || c == 't' ||
         c == 'f' || c == 'n';
}

}  // namespace

Result<KeyVersion> ParseKeyVersion(std::string_view stored) {
  // §4.2: valid JSON (surrounding whitespace allowed) is the legacy form.
  if (!MayBeJson(stored)) return ParseProtobuf(stored);
  auto doc = nlohmann::ordered_json::parse(stored, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_discarded()) return ParseLegacyJson(doc);
  return ParseProtobuf(stored);
}

Result<std::string> EncodeKeyVersion(const KeyVersion& version) {
  if (!version.hmac) return Status::Invalid("crypto: key version has no HMAC key");
  const auto type = static_cast<uint32_t>(version.key.type());
  if (type != 1 && type != 2) return Status::Invalid("crypto: invalid secret key type");
  if (version.key.bytes().size() != kKeySize || version.hmac->bytes().size() != 32) {
    return Status::Invalid("crypto: key version is not initialized");
  }

  miniohq::kms::KeyVersion pb;
  auto* sk = pb.mutable_key();
  sk->set_key(version.key.bytes().data(), version.key.bytes().size());
  sk->set_type(type);
  auto* hk = pb.mutable_hmackey();
  hk->set_key(version.hmac->bytes().data(), version.hmac->bytes().size());
  hk->set_hash(kHashSHA256);
  auto* ts = pb.mutable_createdat();
  ts->set_seconds(version.created_at.seconds);
  ts->set_nanos(version.created_at.nanos);
  pb.set_createdby(std::string(version.created_by.view()));

  // libprotobuf writes known fields in field-number order and omits proto3
  // zero scalars, which is exactly Go's proto.Marshal output for this schema.
  std::string raw;
  const bool ok = pb.SerializeToString(&raw);
  Zeroize(sk->mutable_key()->data(), sk->key().size());
  Zeroize(hk->mutable_key()->data(), hk->key().size());
  if (!ok) {
    Zeroize(raw.data(), raw.size());
    return Status::Internal("crypto: failed to encode key version");
  }
  std::string out = Base64Encode(raw);
  Zeroize(raw.data(), raw.size());
  return out;
}

}  // namespace kes::crypto

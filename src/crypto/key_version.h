// KeyVersion: one stored key and its codec (crypto.md §4). Writes the
// current format (base64 of protobuf KeyVersion); reads that and the legacy
// JSON form.
#pragma once

#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/time.h"
#include "crypto/hmac_key.h"
#include "crypto/secret_key.h"

namespace kes::crypto {

// An immutable string shared by every holder of the same text: the creator
// identity of a key (64 hex characters), which nearly all keys of a keystore
// have in common. A cached key then holds a pointer instead of its own copy.
// Equal short strings are interned process-wide in a bounded table; the text
// is not secret.
class SharedString {
 public:
  SharedString() = default;
  // Implicit, so a SharedString is initialized like the std::string it
  // replaces.
  SharedString(std::string_view s);  // NOLINT(google-explicit-constructor)
  SharedString(const std::string& s) : SharedString(std::string_view(s)) {}  // NOLINT
  SharedString(const char* s) : SharedString(std::string_view(s)) {}         // NOLINT

  std::string_view view() const { return s_ ? std::string_view(*s_) : std::string_view(); }
  // For callers that need a std::string (no implicit conversion: with both a
  // string and a string_view conversion, `str = shared` would be ambiguous).
  const std::string& str() const;
  operator std::string_view() const { return view(); }  // NOLINT
  bool empty() const { return view().empty(); }
  size_t size() const { return view().size(); }
  void clear() { s_.reset(); }

  friend bool operator==(const SharedString& a, std::string_view b) { return a.view() == b; }

 private:
  std::shared_ptr<const std::string> s_;  // nullptr for ""
};
std::ostream& operator<<(std::ostream& os, const SharedString& s);

struct KeyVersion {
  SecretKey key;
  std::optional<HMACKey> hmac;  // absent only for legacy JSON keys
  Timestamp created_at;         // legacy keys keep their zone offset
  SharedString created_by;

  KeyVersion Clone() const;
};

// A new key version: random secret key of `type`, random HMAC key,
// created_at = now (UTC, ns), created_by = `creator`.
Result<KeyVersion> NewKeyVersion(KeyType type, std::string_view creator);

// Decodes a stored value (legacy JSON or base64 protobuf). Any failure is an
// error whose message says why; the server answers such keys with
// 502 "failed to read key".
Result<KeyVersion> ParseKeyVersion(std::string_view stored);

// Encodes to base64(protobuf KeyVersion), byte-identical to upstream's Go
// encoder. Fails for a key without HMAC key (legacy keys are never rewritten).
Result<std::string> EncodeKeyVersion(const KeyVersion& version);

}  // namespace kes::crypto

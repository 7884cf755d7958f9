// KeyVersion: one stored key and its codec (crypto.md §4). Writes the
// current format (base64 of protobuf KeyVersion); reads that and the legacy
// JSON form.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/time.h"
#include "crypto/hmac_key.h"
#include "crypto/secret_key.h"

namespace kes::crypto {

struct KeyVersion {
  SecretKey key;
  std::optional<HMACKey> hmac;  // absent only for legacy JSON keys
  Timestamp created_at;         // legacy keys keep their zone offset
  std::string created_by;

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

// KeyRing: the numbered versions of one key (kes-cpp extension, spec
// rotation.md). Version 1 is the key's own entry, stored and parsed exactly
// as upstream; versions N >= 2 and configuration records (the minimum
// decryption version) live in create-only internal entries beside it:
//   "<name>-v<N>-"  version N          "<name>-c<K>-"  K-th config record
// No entry is ever rewritten, so every step rests on the keystore's
// create-if-absent: a crash leaves the old or the new ring, and two
// concurrent rotations never produce the same version.
//
// The functions here talk to a KeyStore directly (no cache); KeyCache
// calls them and serializes rotations of one key within the process.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/deadline.h"
#include "common/status.h"
#include "crypto/key_version.h"
#include "keystore/keystore.h"

namespace kes::keystore {

inline constexpr uint32_t kMaxKeyVersions = 1000;
inline constexpr uint32_t kMaxKeyConfigs = 1000;

// First 16 bytes of HMAC-SHA256(version 1's secret key, "kes:ring:genesis"):
// binds internal entries to one incarnation of a key (§4.2).
using Genesis = std::array<uint8_t, 16>;
Genesis RingGenesis(const crypto::KeyVersion& version1);

std::string VersionEntryName(std::string_view name, uint32_t version);
std::string ConfigEntryName(std::string_view name, uint32_t sequence);
// Internal entries end with '-', which no key name may (api.md §3.2).
inline bool IsInternalEntryName(std::string_view name) {
  return !name.empty() && name.back() == '-';
}
// The key an internal entry belongs to ("a-b-v2-" -> "a-b"), or nullopt.
std::optional<std::string_view> InternalEntryOwner(std::string_view entry);

// Version entry codec (§4.2): base64 of protobuf KeyVersion + Version (5) +
// Genesis (6).
Result<std::string> EncodeVersionEntry(const crypto::KeyVersion& version, uint32_t number,
                                       const Genesis& genesis);
struct VersionEntry {
  crypto::KeyVersion key;
  uint32_t number = 0;
  Genesis genesis{};
};
Result<VersionEntry> ParseVersionEntry(std::string_view stored);

// Configuration record codec (§4.3).
struct KeyConfig {
  uint32_t sequence = 0;
  uint32_t min_decryption_version = 1;
  Timestamp created_at;
  std::string created_by;
  Genesis genesis{};
};
Result<std::string> EncodeKeyConfig(const KeyConfig& config);
Result<KeyConfig> ParseKeyConfig(std::string_view stored);

struct KeyRing {
  std::vector<crypto::KeyVersion> versions;  // versions[i] is version i + 1
  Genesis genesis{};
  uint32_t min_decryption_version = 1;
  uint32_t config_sequence = 0;  // 0: no configuration record

  uint32_t latest() const { return static_cast<uint32_t>(versions.size()); }
  // Only rings with more than one version show version fields (§6.2, I1).
  bool rotated() const { return versions.size() > 1; }
  // Version `n` (1-based), or nullptr if the ring has no such version.
  const crypto::KeyVersion* version(uint32_t n) const {
    return n >= 1 && n <= versions.size() ? &versions[n - 1] : nullptr;
  }
};

// A version's wire form (§3): decimal, no sign or leading zero,
// "1".."4294967295". nullopt for anything else.
std::optional<uint32_t> ParseVersionNumber(std::string_view text);

// --- cryptography over a ring (§5) ---

struct RingPlaintext {
  crypto::SecretBytes plaintext;
  uint32_t version = 1;
};
// Decrypts any ciphertext of the ring (§5.2): a "kesv" header candidate
// under its version, else the whole input as a version-1 ciphertext in any
// upstream format. NotAuthentic if neither opens; BelowMinimumDecryption if
// the opening version is disabled.
Result<RingPlaintext> DecryptWithRing(const KeyRing& ring, std::span<const uint8_t> ciphertext,
                                      std::span<const uint8_t> context);
// Encrypts under `version` (which must exist): raw form for version 1,
// header + raw form above (§5.3).
Result<std::vector<uint8_t>> EncryptWithRing(const KeyRing& ring, uint32_t version,
                                             std::span<const uint8_t> plaintext,
                                             std::span<const uint8_t> context);
Result<crypto::DataKey> GenerateWithRing(const KeyRing& ring, uint32_t version,
                                         std::span<const uint8_t> context);

// Ring errors that are client errors carry their API status and text.
Status BelowMinimumDecryption();  // 400 decryption failed: key version is below ...
Status KeyVersionConflict();      // 409 key version conflict
Status TooManyVersions();         // 409 key has too many versions

// Reads the ring of `name` (§4.4): KeyNotFound if `name` is missing; a
// corrupt entry is kUnavailable (the API's 502 "failed to read key").
// `revision`, when given, receives the revision of the key's own entry,
// which is read first (0 for a backend without revisions).
Result<KeyRing> LoadKeyRing(KeyStore& store, std::string_view name, Deadline deadline,
                            int64_t* revision = nullptr);

// Adds version N+1 (§4.5) created by `creator`. Reads only what it needs
// (O(log N) entries), not every version.
struct RotatedVersion {
  uint32_t number = 0;
  crypto::KeyVersion key;
  uint32_t min_decryption_version = 1;  // in force at the rotation
};
Result<RotatedVersion> RotateKeyRing(KeyStore& store, std::string_view name,
                                     std::string_view creator, Deadline deadline);

// Writes a configuration record setting the minimum decryption version
// (§4.6); `m` must lie in 1..latest (else 400 with the spec's text).
struct RingSummary {
  uint32_t latest = 1;
  uint32_t min_decryption_version = 1;
};
Result<RingSummary> ConfigureKeyRing(KeyStore& store, std::string_view name, uint32_t m,
                                     std::string_view creator, Deadline deadline);

// Best effort: deletes the internal entries of `name` whose genesis is not
// `keep` (all of them when `keep` is empty): after a delete of the key, or
// orphans of an earlier incarnation after a create (§4.7).
void RemoveInternalEntries(KeyStore& store, std::string_view name,
                           const std::optional<Genesis>& keep, Deadline deadline);

}  // namespace kes::keystore

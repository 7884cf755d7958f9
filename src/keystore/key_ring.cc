// KeyRing storage (rotation.md §4). Every write is a create of a new
// internal entry; reads probe the dense sequences v2, v3, ... and c1, c2, ...
#include "keystore/key_ring.h"

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "crypto/encoding.h"
#include "crypto/hmac_key.h"
#include "crypto/secret_bytes.h"
#include "crypto/versioned_ciphertext.h"
#include "kes.pb.h"

namespace kes::keystore {
namespace {

constexpr int kCommitAttempts = 3;

std::string_view Bytes(const Genesis& g) {
  return {reinterpret_cast<const char*>(g.data()), g.size()};
}

std::optional<Genesis> GenesisOf(const std::string& bytes) {
  Genesis g;
  if (bytes.size() != g.size()) return std::nullopt;
  std::copy(bytes.begin(), bytes.end(), g.begin());
  return g;
}

void AppendVarint(std::vector<uint8_t>& out, uint32_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

// The error log names the entry (rotation.md §8); the API says only
// "failed to read key".
Status Corrupt(std::string_view entry, std::string_view why) {
  spdlog::error("key ring: corrupt internal entry '{}': {}", entry, why);
  return Status::Unavailable("corrupt key entry '" + std::string(entry) + "': " + std::string(why));
}

// Reads and parses `name` (version 1) and returns it with its genesis.
// `revision`, when given, receives the entry's revision (0: the backend has none).
Result<crypto::KeyVersion> LoadVersion1(KeyStore& store, std::string_view name, Deadline deadline,
                                        int64_t* revision = nullptr) {
  Result<StoredValue> stored = store.GetWithRevision(name, deadline);
  if (!stored.ok()) return stored.status();
  if (revision != nullptr) *revision = stored->revision;
  Result<crypto::KeyVersion> parsed = crypto::ParseKeyVersion(stored->value);
  crypto::Zeroize(stored->value.data(), stored->value.size());
  if (!parsed.ok()) {
    return Status::Unavailable("failed to parse key '" + std::string(name) +
                               "': " + parsed.status().message());
  }
  return parsed;
}

// Version entry `n`: nullopt when absent or an orphan (other genesis).
Result<std::optional<crypto::KeyVersion>> LoadVersionEntry(KeyStore& store, std::string_view name,
                                                           uint32_t n, const Genesis& genesis,
                                                           Deadline deadline) {
  const std::string entry = VersionEntryName(name, n);
  Result<std::string> stored = store.Get(entry, deadline);
  if (!stored.ok()) {
    if (stored.status().code() == Code::kNotFound) return std::optional<crypto::KeyVersion>();
    return stored.status();
  }
  Result<VersionEntry> parsed = ParseVersionEntry(*stored);
  crypto::Zeroize(stored->data(), stored->size());
  if (!parsed.ok()) return Corrupt(entry, parsed.status().message());
  if (parsed->genesis != genesis) {
    spdlog::warn("key ring: ignoring orphan entry '{}' of an earlier key '{}'", entry, name);
    return std::optional<crypto::KeyVersion>();
  }
  if (parsed->number != n) return Corrupt(entry, "version number does not match its name");
  return std::optional<crypto::KeyVersion>(std::move(parsed->key));
}

// Configuration record `k`: nullopt when absent or an orphan.
Result<std::optional<KeyConfig>> LoadConfigEntry(KeyStore& store, std::string_view name, uint32_t k,
                                                 const Genesis& genesis, Deadline deadline) {
  const std::string entry = ConfigEntryName(name, k);
  Result<std::string> stored = store.Get(entry, deadline);
  if (!stored.ok()) {
    if (stored.status().code() == Code::kNotFound) return std::optional<KeyConfig>();
    return stored.status();
  }
  Result<KeyConfig> parsed = ParseKeyConfig(*stored);
  if (!parsed.ok()) return Corrupt(entry, parsed.status().message());
  if (parsed->genesis != genesis) {
    spdlog::warn("key ring: ignoring orphan entry '{}' of an earlier key '{}'", entry, name);
    return std::optional<KeyConfig>();
  }
  if (parsed->sequence != k) return Corrupt(entry, "sequence number does not match its name");
  return std::optional<KeyConfig>(std::move(*parsed));
}

// The highest genuine entry of a dense sequence first, first+1, ... (at
// most `max`), found by doubling then bisecting: O(log n) reads. `probe(i)`
// returns the entry or nullopt. Sets `*number` to its number (0: none).
template <typename T, typename Probe>
Result<std::optional<T>> FindHighest(uint32_t first, uint32_t max, Probe probe, uint32_t* number) {
  *number = 0;
  KES_ASSIGN_OR_RETURN(std::optional<T> best, probe(first));
  if (!best) return best;
  uint32_t lo = first;  // genuine
  uint32_t hi = first;  // becomes the first one known to be absent
  while (true) {
    hi = std::min<uint64_t>(uint64_t{hi} * 2, uint64_t{max} + 1);
    if (hi > max) break;
    KES_ASSIGN_OR_RETURN(std::optional<T> e, probe(hi));
    if (!e) break;
    best = std::move(e);
    lo = hi;
  }
  while (hi - lo > 1) {
    const uint32_t mid = lo + (hi - lo) / 2;
    KES_ASSIGN_OR_RETURN(std::optional<T> e, probe(mid));
    if (e) {
      best = std::move(e);
      lo = mid;
    } else {
      hi = mid;
    }
  }
  *number = lo;
  return best;
}

// The configuration in force: the highest genuine record.
Result<std::optional<KeyConfig>> LoadLatestConfig(KeyStore& store, std::string_view name,
                                                  const Genesis& genesis, Deadline deadline) {
  uint32_t k = 0;
  return FindHighest<KeyConfig>(
      1, kMaxKeyConfigs,
      [&](uint32_t i) { return LoadConfigEntry(store, name, i, genesis, deadline); }, &k);
}

// What a rotation or configuration needs to know (§4.5 step 1): version 1's
// genesis, the latest version number and the configuration in force, read
// from the backend in O(log n) reads without loading every version.
struct RingHead {
  Genesis genesis{};
  uint32_t latest = 1;
  std::optional<KeyConfig> config;
};

Result<RingHead> LoadRingHead(KeyStore& store, std::string_view name, Deadline deadline) {
  KES_ASSIGN_OR_RETURN(crypto::KeyVersion v1, LoadVersion1(store, name, deadline));
  RingHead head;
  head.genesis = RingGenesis(v1);
  uint32_t latest = 0;
  KES_ASSIGN_OR_RETURN(
      std::optional<crypto::KeyVersion> top,
      FindHighest<crypto::KeyVersion>(
          2, kMaxKeyVersions,
          [&](uint32_t i) { return LoadVersionEntry(store, name, i, head.genesis, deadline); },
          &latest));
  head.latest = top ? latest : 1;
  KES_ASSIGN_OR_RETURN(head.config, LoadLatestConfig(store, name, head.genesis, deadline));
  return head;
}

// Whether `entry` holds a parsable value of another incarnation (genesis).
bool IsOrphan(KeyStore& store, std::string_view entry, const Genesis& genesis, Deadline deadline) {
  Result<std::string> stored = store.Get(entry, deadline);
  if (!stored.ok()) return false;
  std::optional<Genesis> g;
  if (auto v = ParseVersionEntry(*stored); v.ok()) {
    g = v->genesis;
  } else if (auto c = ParseKeyConfig(*stored); c.ok()) {
    g = c->genesis;
  }
  crypto::Zeroize(stored->data(), stored->size());
  return g && *g != genesis;
}

// Creates `entry` (the commit point of §4.5 / §4.6). An orphan in the way is
// deleted and the create retried once. kAlreadyExists means a concurrent
// writer took this number; 409 key version conflict that one overwrote it.
Status CreateEntry(KeyStore& store, std::string_view entry, std::string_view value,
                   const Genesis& genesis, Deadline deadline) {
  Status s = store.Create(entry, value, deadline);
  if (s.code() == Code::kAlreadyExists && IsOrphan(store, entry, genesis, deadline)) {
    Status d = store.Delete(entry, deadline);
    if (!d.ok() && d.code() != Code::kNotFound) return d;
    spdlog::warn("key ring: removed orphan entry '{}' to reuse its name", entry);
    s = store.Create(entry, value, deadline);
  }
  if (!s.ok()) return s;
  // Read back (§4.8): on a keystore whose create is check-then-write (Vault
  // K/V v1) another node may have written the same name just after us.
  Result<std::string> stored = store.Get(entry, deadline);
  if (!stored.ok()) {
    return stored.status().code() == Code::kNotFound ? KeyVersionConflict() : stored.status();
  }
  const bool ours = crypto::ConstantTimeEqual(*stored, value);
  crypto::Zeroize(stored->data(), stored->size());
  return ours ? Status::Ok() : KeyVersionConflict();
}

// §4.5 step 4: after a commit, the key must still be the same incarnation;
// otherwise the new entry is withdrawn.
Status CheckStillPresent(KeyStore& store, std::string_view name, std::string_view entry,
                         const Genesis& genesis, Deadline deadline) {
  Result<crypto::KeyVersion> v1 = LoadVersion1(store, name, deadline);
  if (v1.ok() && RingGenesis(*v1) == genesis) return Status::Ok();
  if (!v1.ok() && v1.status().code() != Code::kNotFound) return v1.status();
  (void)store.Delete(entry, deadline);
  return Status::KeyNotFound();
}

}  // namespace

Genesis RingGenesis(const crypto::KeyVersion& version1) {
  static constexpr std::string_view kLabel = "kes:ring:genesis";
  std::array<uint8_t, 32> mac =
      crypto::HmacSha256(version1.key.bytes(),
                         std::span(reinterpret_cast<const uint8_t*>(kLabel.data()), kLabel.size()));
  Genesis g;
  std::copy_n(mac.begin(), g.size(), g.begin());
  return g;
}

std::string VersionEntryName(std::string_view name, uint32_t version) {
  return std::string(name) + "-v" + std::to_string(version) + "-";
}

std::string ConfigEntryName(std::string_view name, uint32_t sequence) {
  return std::string(name) + "-c" + std::to_string(sequence) + "-";
}

std::optional<std::string_view> InternalEntryOwner(std::string_view entry) {
  if (!IsInternalEntryName(entry)) return std::nullopt;
  entry.remove_suffix(1);
  const size_t dash = entry.rfind('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 2 > entry.size()) return std::nullopt;
  const std::string_view tag = entry.substr(dash + 1);
  if (tag[0] != 'v' && tag[0] != 'c') return std::nullopt;
  const std::string_view digits = tag.substr(1);
  if (digits.empty() || digits[0] == '0' ||
      digits.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  return entry.substr(0, dash);
}

Result<std::string> EncodeVersionEntry(const crypto::KeyVersion& version, uint32_t number,
                                       const Genesis& genesis) {
  // KeyVersion's bytes followed by fields 5 and 6, in field order: the
  // version-1 codec stays the only encoder of the key material.
  KES_ASSIGN_OR_RETURN(std::string base, crypto::EncodeKeyVersion(version));
  auto raw = crypto::Base64Decode(base);
  crypto::Zeroize(base.data(), base.size());
  if (!raw) return Status::Internal("crypto: failed to encode key version");
  raw->push_back(0x28);  // field 5, varint
  AppendVarint(*raw, number);
  raw->push_back(0x32);  // field 6, bytes
  raw->push_back(static_cast<uint8_t>(genesis.size()));
  raw->insert(raw->end(), genesis.begin(), genesis.end());
  std::string out = crypto::Base64Encode(*raw);
  crypto::Zeroize(raw->data(), raw->size());
  return out;
}

Result<VersionEntry> ParseVersionEntry(std::string_view stored) {
  // Fields 1-4 are a KeyVersion (protobuf skips the unknown 5 and 6).
  KES_ASSIGN_OR_RETURN(crypto::KeyVersion key, crypto::ParseKeyVersion(stored));
  if (!key.hmac) return Status::Invalid("version entry is not in protobuf form");
  auto raw = crypto::Base64Decode(stored);
  if (!raw) return Status::Invalid("version entry is not base64");
  miniohq::kms::RingVersion pb;
  const google::protobuf::LogSilencer quiet;
  const bool parsed = pb.ParseFromArray(raw->data(), static_cast<int>(raw->size()));
  crypto::Zeroize(raw->data(), raw->size());
  if (pb.has_key()) crypto::Zeroize(pb.mutable_key()->mutable_key()->data(), pb.key().key().size());
  if (pb.has_hmackey()) {
    crypto::Zeroize(pb.mutable_hmackey()->mutable_key()->data(), pb.hmackey().key().size());
  }
  if (!parsed) return Status::Invalid("proto: cannot parse invalid wire-format data");
  auto genesis = GenesisOf(pb.genesis());
  if (!genesis) return Status::Invalid("version entry has no genesis");
  if (pb.version() < 2) return Status::Invalid("version entry has no version number");
  return VersionEntry{std::move(key), pb.version(), *genesis};
}

Result<std::string> EncodeKeyConfig(const KeyConfig& config) {
  miniohq::kms::KeyConfig pb;
  pb.set_sequence(config.sequence);
  pb.set_mindecryptionversion(config.min_decryption_version);
  pb.mutable_createdat()->set_seconds(config.created_at.seconds);
  pb.mutable_createdat()->set_nanos(config.created_at.nanos);
  pb.set_createdby(config.created_by);
  pb.set_genesis(std::string(Bytes(config.genesis)));
  std::string raw;
  if (!pb.SerializeToString(&raw)) return Status::Internal("failed to encode key configuration");
  return crypto::Base64Encode(raw);
}

Result<KeyConfig> ParseKeyConfig(std::string_view stored) {
  auto raw = crypto::Base64Decode(stored);
  if (!raw) return Status::Invalid("configuration record is not base64");
  miniohq::kms::KeyConfig pb;
  const google::protobuf::LogSilencer quiet;
  if (!pb.ParseFromArray(raw->data(), static_cast<int>(raw->size()))) {
    return Status::Invalid("proto: cannot parse invalid wire-format data");
  }
  auto genesis = GenesisOf(pb.genesis());
  if (!genesis || pb.sequence() < 1 || pb.mindecryptionversion() < 1) {
    return Status::Invalid("configuration record is incomplete");
  }
  KeyConfig c;
  c.sequence = pb.sequence();
  c.min_decryption_version = pb.mindecryptionversion();
  c.created_at.seconds = pb.createdat().seconds();
  c.created_at.nanos = pb.createdat().nanos();
  c.created_by = pb.createdby();
  c.genesis = *genesis;
  return c;
}

std::optional<uint32_t> ParseVersionNumber(std::string_view text) {
  if (text.empty() || text.size() > 10 || text[0] == '0') return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(v);
}

Result<RingPlaintext> DecryptWithRing(const KeyRing& ring, std::span<const uint8_t> ciphertext,
                                      std::span<const uint8_t> context) {
  std::optional<RingPlaintext> opened;
  const std::optional<crypto::VersionedCiphertext> header = crypto::ParseVersionHeader(ciphertext);
  if (header) {
    if (const crypto::KeyVersion* v = ring.version(header->version)) {
      if (auto pt = v->key.DecryptRaw(header->body, context); pt.ok()) {
        opened = RingPlaintext{std::move(pt).value(), header->version};
      }
    }
  }
  if (!opened) {
    // Every upstream ciphertext is a version-1 ciphertext (I2).
    KES_ASSIGN_OR_RETURN(crypto::SecretBytes pt, ring.versions[0].key.Decrypt(ciphertext, context));
    opened = RingPlaintext{std::move(pt), 1};
    if (header) spdlog::debug("key ring: a 'kesv' header candidate failed; version 1 opened it");
  }
  // Authenticity first: garbage stays "not authentic".
  if (opened->version < ring.min_decryption_version) return BelowMinimumDecryption();
  return std::move(*opened);
}

Result<std::vector<uint8_t>> EncryptWithRing(const KeyRing& ring, uint32_t version,
                                             std::span<const uint8_t> plaintext,
                                             std::span<const uint8_t> context) {
  const crypto::KeyVersion* v = ring.version(version);
  if (!v) return Status::Internal("key version does not exist");
  KES_ASSIGN_OR_RETURN(std::vector<uint8_t> ct, v->key.Encrypt(plaintext, context));
  if (version >= 2) crypto::AddVersionHeader(version, ct);
  return ct;
}

Result<crypto::DataKey> GenerateWithRing(const KeyRing& ring, uint32_t version,
                                         std::span<const uint8_t> context) {
  const crypto::KeyVersion* v = ring.version(version);
  if (!v) return Status::Internal("key version does not exist");
  KES_ASSIGN_OR_RETURN(crypto::DataKey dk, v->key.GenerateDataKey(context));
  if (version >= 2) crypto::AddVersionHeader(version, dk.ciphertext);
  return dk;
}

Status BelowMinimumDecryption() {
  return Status::Invalid("decryption failed: key version is below the minimum decryption version");
}
Status KeyVersionConflict() { return {Code::kInvalidArgument, 409, "key version conflict"}; }
Status TooManyVersions() { return {Code::kInvalidArgument, 409, "key has too many versions"}; }

Result<KeyRing> LoadKeyRing(KeyStore& store, std::string_view name, Deadline deadline,
                            int64_t* revision) {
  KES_ASSIGN_OR_RETURN(crypto::KeyVersion v1, LoadVersion1(store, name, deadline, revision));
  KeyRing ring;
  ring.genesis = RingGenesis(v1);
  ring.versions.push_back(std::move(v1));
  // Versions are needed one by one anyway, so a linear probe.
  for (uint32_t n = 2; n <= kMaxKeyVersions; ++n) {
    KES_ASSIGN_OR_RETURN(std::optional<crypto::KeyVersion> v,
                         LoadVersionEntry(store, name, n, ring.genesis, deadline));
    if (!v) break;
    ring.versions.push_back(std::move(*v));
  }
  KES_ASSIGN_OR_RETURN(std::optional<KeyConfig> config,
                       LoadLatestConfig(store, name, ring.genesis, deadline));
  if (config) {
    ring.config_sequence = config->sequence;
    // m <= N holds when written (§4.6) and versions are never removed.
    ring.min_decryption_version = std::min(config->min_decryption_version, ring.latest());
  }
  return ring;
}

Result<RotatedVersion> RotateKeyRing(KeyStore& store, std::string_view name,
                                     std::string_view creator, Deadline deadline) {
  for (int attempt = 0; attempt < kCommitAttempts; ++attempt) {
    KES_ASSIGN_OR_RETURN(RingHead head, LoadRingHead(store, name, deadline));
    const uint32_t n = head.latest + 1;
    if (n > kMaxKeyVersions) return TooManyVersions();
    KES_ASSIGN_OR_RETURN(crypto::KeyVersion next,
                         crypto::NewKeyVersion(crypto::DefaultKeyType(), creator));
    KES_ASSIGN_OR_RETURN(std::string value, EncodeVersionEntry(next, n, head.genesis));
    const std::string entry = VersionEntryName(name, n);
    Status s = CreateEntry(store, entry, value, head.genesis, deadline);
    crypto::Zeroize(value.data(), value.size());
    if (s.code() == Code::kAlreadyExists) continue;  // a concurrent rotation won n
    KES_TRY(s);
    KES_TRY(CheckStillPresent(store, name, entry, head.genesis, deadline));
    RotatedVersion out{n, std::move(next), head.config ? head.config->min_decryption_version : 1};
    return out;
  }
  return KeyVersionConflict();
}

Result<RingSummary> ConfigureKeyRing(KeyStore& store, std::string_view name, uint32_t m,
                                     std::string_view creator, Deadline deadline) {
  for (int attempt = 0; attempt < kCommitAttempts; ++attempt) {
    KES_ASSIGN_OR_RETURN(RingHead head, LoadRingHead(store, name, deadline));
    if (m < 1 || m > head.latest) {
      return Status::Invalid("minimum decryption version must be between 1 and " +
                             std::to_string(head.latest));
    }
    KeyConfig config;
    config.sequence = head.config ? head.config->sequence + 1 : 1;
    if (config.sequence > kMaxKeyConfigs) return TooManyVersions();
    config.min_decryption_version = m;
    config.created_at = Timestamp::Now();
    config.created_by = std::string(creator);
    config.genesis = head.genesis;
    KES_ASSIGN_OR_RETURN(std::string value, EncodeKeyConfig(config));
    const std::string entry = ConfigEntryName(name, config.sequence);
    Status s = CreateEntry(store, entry, value, head.genesis, deadline);
    if (s.code() == Code::kAlreadyExists) continue;
    KES_TRY(s);
    KES_TRY(CheckStillPresent(store, name, entry, head.genesis, deadline));
    return RingSummary{head.latest, m};
  }
  return KeyVersionConflict();
}

void RemoveInternalEntries(KeyStore& store, std::string_view name,
                           const std::optional<Genesis>& keep, Deadline deadline) {
  // Each sequence is dense from its start, so the first gap ends it.
  auto sweep = [&](uint32_t first, uint32_t last, auto entry_name) {
    for (uint32_t i = first; i <= last; ++i) {
      // Read first: some backends (AWS) also accept deletes of absent names.
      const std::string entry = entry_name(name, i);
      Result<std::string> stored = store.Get(entry, deadline);
      if (!stored.ok()) return;  // the end of the sequence, or unreachable
      crypto::Zeroize(stored->data(), stored->size());
      // An entry of the live incarnation ends the sweep.
      if (keep && !IsOrphan(store, entry, *keep, deadline)) return;
      Status s = store.Delete(entry, deadline);
      if (!s.ok()) return;
      if (keep) spdlog::warn("key ring: removed orphan entry '{}'", entry);
    }
  };
  sweep(2, kMaxKeyVersions, VersionEntryName);
  sweep(1, kMaxKeyConfigs, ConfigEntryName);
}

}  // namespace kes::keystore

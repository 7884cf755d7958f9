// SecretKey: a 32-byte AES256 or ChaCha20 key and KES's encryption scheme
// (spec crypto.md §5, §6): per-message subkey from a random 16-byte iv,
// AES-256-GCM or ChaCha20-Poly1305 with a 12-byte nonce, the context as AAD,
// output = ciphertext || tag || iv || nonce.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "crypto/secret_bytes.h"

namespace kes::crypto {

inline constexpr size_t kKeySize = 32;
inline constexpr size_t kIVSize = 16;
inline constexpr size_t kNonceSize = 12;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kCiphertextOverhead = kTagSize + kIVSize + kNonceSize;  // 44

// Values are the protobuf SecretKey.Type numbers (crypto.md §2.1).
enum class KeyType : uint32_t { kAES256 = 1, kChaCha20 = 2 };

// "AES256" / "ChaCha20": the API and display names.
std::string_view KeyTypeName(KeyType type);
// Accepts exactly "AES256", "AES256-GCM_SHA256", "ChaCha20", "XCHACHA20-POLY1305".
std::optional<KeyType> ParseKeyType(std::string_view name);
// The type of a newly created key: AES256 when the CPU has AES-GCM hardware
// support, ChaCha20 otherwise (crypto.md §2.2).
KeyType DefaultKeyType();

// A fresh data encryption key: the plaintext and its ciphertext under a
// SecretKey (what /v1/key/generate returns).
struct DataKey {
  SecretBytes plaintext;            // kKeySize random bytes
  std::vector<uint8_t> ciphertext;  // kKeySize + kCiphertextOverhead bytes
};

class SecretKey {
 public:
  // `bytes` must be exactly 32 bytes.
  static Result<SecretKey> Make(KeyType type, std::span<const uint8_t> bytes);
  static Result<SecretKey> Generate(KeyType type);

  SecretKey(SecretKey&&) noexcept = default;
  SecretKey& operator=(SecretKey&&) noexcept = default;
  SecretKey Clone() const;

  KeyType type() const { return static_cast<KeyType>(type_); }
  std::span<const uint8_t> bytes() const { return key_.span(); }

  // A legacy JSON key stored without "algorithm" (crypto.md §6.5): it acts as
  // AES256 but decrypts legacy MessagePack/JSON ciphertexts with the
  // algorithm they name.
  bool untyped() const { return untyped_; }
  void set_untyped(bool v) { untyped_ = v; }

  // Encrypts in the current binary format with fresh random iv and nonce.
  Result<std::vector<uint8_t>> Encrypt(std::span<const uint8_t> plaintext,
                                       std::span<const uint8_t> context) const;
  // Same, with caller-chosen iv and nonce (for test vectors only).
  Result<std::vector<uint8_t>> EncryptWith(std::span<const uint8_t, kIVSize> iv,
                                           std::span<const uint8_t, kNonceSize> nonce,
                                           std::span<const uint8_t> plaintext,
                                           std::span<const uint8_t> context) const;
  // A random 32-byte data key sealed under this key with `context` as AAD,
  // exactly as Encrypt(plaintext, context) would. The key, iv and nonce come
  // from one RandomBytes call (one CSPRNG round trip instead of two).
  Result<DataKey> GenerateDataKey(std::span<const uint8_t> context) const;
  // Decrypts any of the three ciphertext formats (binary, MessagePack, JSON).
  // Every malformed or unauthentic input gives Status::NotAuthentic().
  Result<SecretBytes> Decrypt(std::span<const uint8_t> ciphertext,
                              std::span<const uint8_t> context) const;
  // Decrypts the binary format only (the body of a versioned ciphertext,
  // rotation.md §5.2 (a)).
  Result<SecretBytes> DecryptRaw(std::span<const uint8_t> ciphertext,
                                 std::span<const uint8_t> context) const;

 private:
  Result<SecretBytes> OpenSealed(KeyType algorithm, std::span<const uint8_t> sealed,
                                 std::span<const uint8_t> iv, std::span<const uint8_t> nonce,
                                 std::span<const uint8_t> context) const;
  SecretKey(KeyType type, std::span<const uint8_t, kKeySize> key);
  void DeriveSubkey(KeyType algorithm, std::span<const uint8_t, kIVSize> iv,
                    SecretBytes& subkey) const;

  // HMAC-SHA256 keyed with this key, precomputed for the AES subkey
  // derivation (AES256 keys only): the SHA-256 chaining values after the
  // (key ^ ipad) and (key ^ opad) blocks, 32 bytes each. A derivation then
  // costs two hash finalizations and no allocation. Key-derived, so secret.
  SecretArray<64> hmac_states_;
  SecretArray<kKeySize> key_;
  // One byte, so the key has no padding (every member is byte-aligned).
  uint8_t type_;
  bool untyped_ = false;
};
// The inline states, key and flags: no heap block (a cached key's size).
static_assert(sizeof(SecretKey) == 64 + kKeySize + 2);

// HChaCha20 (crypto.md §5.2); exposed for its test vector.
std::array<uint8_t, 32> HChaCha20(std::span<const uint8_t, 32> key,
                                  std::span<const uint8_t, 16> input);

}  // namespace kes::crypto

// HMACKey: the 32-byte HMAC-SHA256 key stored beside every current-format
// secret key (crypto.md §8).
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "common/status.h"
#include "crypto/secret_bytes.h"

namespace kes::crypto {

class HMACKey {
 public:
  static Result<HMACKey> Make(std::span<const uint8_t> bytes);  // exactly 32 bytes
  static Result<HMACKey> Generate();

  HMACKey(HMACKey&&) noexcept = default;
  HMACKey& operator=(HMACKey&&) noexcept = default;
  HMACKey Clone() const;

  std::span<const uint8_t> bytes() const { return key_.span(); }
  std::array<uint8_t, 32> Sum(std::span<const uint8_t> message) const;

 private:
  explicit HMACKey(std::span<const uint8_t, 32> key) : key_(key) {}
  SecretArray<32> key_;  // inline: no heap block per cached key
};

// HMAC-SHA256 of `message` under `key` (any key length).
std::array<uint8_t, 32> HmacSha256(std::span<const uint8_t> key, std::span<const uint8_t> message);
std::array<uint8_t, 32> Sha256(std::span<const uint8_t> data);

}  // namespace kes::crypto

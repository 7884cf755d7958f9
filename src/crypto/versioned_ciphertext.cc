#include "crypto/versioned_ciphertext.h"

#include "crypto/secret_key.h"

namespace kes::crypto {
namespace {
constexpr uint8_t kMagic[4] = {'k', 'e', 's', 'v'};
}  // namespace

std::optional<VersionedCiphertext> ParseVersionHeader(std::span<const uint8_t> ciphertext) {
  // The body must be a raw ciphertext of at least an empty plaintext.
  if (ciphertext.size() < kVersionHeaderSize + kCiphertextOverhead) return std::nullopt;
  for (size_t i = 0; i < 4; ++i) {
    if (ciphertext[i] != kMagic[i]) return std::nullopt;
  }
  const uint32_t version = (uint32_t{ciphertext[4]} << 24) | (uint32_t{ciphertext[5]} << 16) |
                           (uint32_t{ciphertext[6]} << 8) | uint32_t{ciphertext[7]};
  if (version < 2) return std::nullopt;
  return VersionedCiphertext{version, ciphertext.subspan(kVersionHeaderSize)};
}

void AddVersionHeader(uint32_t version, std::vector<uint8_t>& raw) {
  const uint8_t header[kVersionHeaderSize] = {kMagic[0],
                                              kMagic[1],
                                              kMagic[2],
                                              kMagic[3],
                                              static_cast<uint8_t>(version >> 24),
                                              static_cast<uint8_t>(version >> 16),
                                              static_cast<uint8_t>(version >> 8),
                                              static_cast<uint8_t>(version)};
  raw.insert(raw.begin(), header, header + kVersionHeaderSize);
}

}  // namespace kes::crypto

// The version header of kes-cpp ciphertexts (rotation.md §5.1): a
// ciphertext made with key version N >= 2 is "kesv" || uint32be(N) || the
// raw ciphertext of crypto.md §5.1 under version N's key. Version 1
// ciphertexts carry no header (byte-for-byte upstream).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace kes::crypto {

inline constexpr size_t kVersionHeaderSize = 8;

struct VersionedCiphertext {
  uint32_t version;               // >= 2
  std::span<const uint8_t> body;  // the raw ciphertext after the header
};

// The header candidate of `ciphertext` (rotation.md §5.2 (a)): present iff it
// is at least 52 bytes, starts with "kesv" and names a version >= 2. Whether
// it is genuine is only known once the body authenticates.
std::optional<VersionedCiphertext> ParseVersionHeader(std::span<const uint8_t> ciphertext);

// Prepends the header for `version` (>= 2) to `raw` in place.
void AddVersionHeader(uint32_t version, std::vector<uint8_t>& raw);

}  // namespace kes::crypto

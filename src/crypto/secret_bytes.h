// SecretBytes: an owned byte buffer for key material. It is zeroized
// (OPENSSL_cleanse) when destroyed, cleared, moved from or reassigned, is
// never copied implicitly, and compares in constant time.
// SecretArray<N>: the same guarantees for a fixed-size secret held inline
// (no heap block), e.g. a 32-byte key inside a cached key.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace kes::crypto {

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t n);  // n zero bytes
  explicit SecretBytes(std::span<const uint8_t> bytes);
  ~SecretBytes();

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  SecretBytes Clone() const { return SecretBytes(span()); }

  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  std::span<uint8_t> span() { return bytes_; }
  std::span<const uint8_t> span() const { return bytes_; }
  // Zeroizes, then resizes (new bytes are zero).
  void Resize(size_t n);
  void Clear();

 private:
  std::vector<uint8_t> bytes_;
};

// Overwrites memory that held secrets (OPENSSL_cleanse).
void Zeroize(void* p, size_t n);

template <size_t N>
class SecretArray {
 public:
  SecretArray() = default;  // N zero bytes
  explicit SecretArray(std::span<const uint8_t, N> bytes) {
    std::copy(bytes.begin(), bytes.end(), bytes_.begin());
  }
  ~SecretArray() { Zeroize(bytes_.data(), N); }

  // A move copies the bytes and zeroizes the source.
  SecretArray(SecretArray&& other) noexcept : bytes_(other.bytes_) {
    Zeroize(other.bytes_.data(), N);
  }
  SecretArray& operator=(SecretArray&& other) noexcept {
    if (this != &other) {
      bytes_ = other.bytes_;
      Zeroize(other.bytes_.data(), N);
    }
    return *this;
  }
  SecretArray(const SecretArray&) = delete;
  SecretArray& operator=(const SecretArray&) = delete;
  SecretArray Clone() const { return SecretArray(span()); }

  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  static constexpr size_t size() { return N; }
  std::span<uint8_t, N> span() { return bytes_; }
  std::span<const uint8_t, N> span() const { return bytes_; }

 private:
  std::array<uint8_t, N> bytes_{};
};

// Constant-time equality of two byte strings (length is not secret).
bool ConstantTimeEqual(std::span<const uint8_t> a, std::span<const uint8_t> b);
bool ConstantTimeEqual(std::string_view a, std::string_view b);

}  // namespace kes::crypto

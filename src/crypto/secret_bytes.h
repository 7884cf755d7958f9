// SecretBytes: an owned byte buffer for key material. It is zeroized
// (OPENSSL_cleanse) when destroyed, cleared, moved from or reassigned, is
// never copied implicitly, and compares in constant time.
#pragma once

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

// Constant-time equality of two byte strings (length is not secret).
bool ConstantTimeEqual(std::span<const uint8_t> a, std::span<const uint8_t> b);
bool ConstantTimeEqual(std::string_view a, std::string_view b);

// Overwrites memory that held secrets (OPENSSL_cleanse).
void Zeroize(void* p, size_t n);

}  // namespace kes::crypto

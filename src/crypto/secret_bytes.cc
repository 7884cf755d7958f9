#include "crypto/secret_bytes.h"

#include <openssl/crypto.h>

namespace kes::crypto {

SecretBytes::SecretBytes(size_t n) : bytes_(n, 0) {}

SecretBytes::SecretBytes(std::span<const uint8_t> bytes) : bytes_(bytes.begin(), bytes.end()) {}

SecretBytes::~SecretBytes() { Clear(); }

SecretBytes::SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) {
  other.Clear();
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Clear();
    bytes_ = std::move(other.bytes_);
    other.Clear();
  }
  return *this;
}

void SecretBytes::Resize(size_t n) {
  // A growing vector may reallocate and leave the old buffer behind, so the
  // contents are wiped first; callers resize before filling.
  Zeroize(bytes_.data(), bytes_.size());
  if (n > bytes_.capacity()) {
    std::vector<uint8_t> fresh(n, 0);
    bytes_.swap(fresh);
    Zeroize(fresh.data(), fresh.size());
  } else {
    bytes_.resize(n);
  }
}

void SecretBytes::Clear() {
  Zeroize(bytes_.data(), bytes_.size());
  bytes_.clear();
}

bool ConstantTimeEqual(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  return ConstantTimeEqual(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(a.data()), a.size()),
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(b.data()), b.size()));
}

void Zeroize(void* p, size_t n) {
  if (p != nullptr && n > 0) OPENSSL_cleanse(p, n);
}

}  // namespace kes::crypto

// libFuzzer target: ciphertext dispatch (crypto.md §6). Input byte 0 picks
// the key (AES256, ChaCha20, untyped legacy); the rest is the ciphertext.
// Decryption must never crash and never authenticate garbage.
#include <array>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "crypto/secret_key.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const std::array<uint8_t, 32> kZero{};
  const uint8_t mode = data[0] % 3;
  auto key = kes::crypto::SecretKey::Make(
      mode == 1 ? kes::crypto::KeyType::kChaCha20 : kes::crypto::KeyType::kAES256, kZero);
  if (!key.ok()) std::abort();
  key->set_untyped(mode == 2);
  auto plain = key->Decrypt(std::span<const uint8_t>(data + 1, size - 1), {});
  if (!plain.ok() && !(plain.status() == kes::Status::NotAuthentic())) std::abort();
  return 0;
}

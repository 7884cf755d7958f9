// libFuzzer target: the parsers of Vault's JSON answers
// (keystore/vault/response.h), which read bytes from the network. Needs
// src/keystore/vault/response.cc and nlohmann-json (header only).
#include <cstdint>
#include <string_view>

#include "keystore/vault/response.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  using namespace kes::keystore::vault;
  (void)ParseAuth(body);
  (void)ParseHealth(body);
  (void)ParseKvEntry(body, "my-key", false);
  (void)ParseKvEntry(body, "my-key", true);
  (void)ParseKeyList(body);
  (void)ParseDataString(body, "ciphertext");
  (void)ParseErrors(body);
  return 0;
}

// libFuzzer target: stored-key decoding (crypto.md §4). Every value a
// keystore returns is untrusted; parsing must never crash, and anything that
// parses with an HMAC key must re-encode to a value that parses the same.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "crypto/key_version.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto kv = kes::crypto::ParseKeyVersion(text);
  if (!kv.ok() || !kv->hmac) return 0;
  auto encoded = kes::crypto::EncodeKeyVersion(*kv);
  if (!encoded.ok()) std::abort();
  auto again = kes::crypto::ParseKeyVersion(*encoded);
  if (!again.ok() || again->key.type() != kv->key.type() || again->created_by != kv->created_by ||
      again->created_at != kv->created_at) {
    std::abort();
  }
  return 0;
}

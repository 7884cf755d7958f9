#include "crypto/random.h"

#include <openssl/rand.h>

#include <limits>

namespace kes::crypto {

Status RandomBytes(std::span<uint8_t> out) {
  while (!out.empty()) {
    const size_t n = std::min<size_t>(out.size(), std::numeric_limits<int>::max());
    if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) {
      return Status::Internal("crypto: failed to read random bytes");
    }
    out = out.subspan(n);
  }
  return Status::Ok();
}

}  // namespace kes::crypto

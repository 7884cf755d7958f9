// Random bytes from the operating system CSPRNG (OpenSSL RAND_bytes).
#pragma once

#include <cstdint>
#include <span>

#include "common/status.h"

namespace kes::crypto {

// Fills `out` with random bytes; fails only if the CSPRNG fails.
Status RandomBytes(std::span<uint8_t> out);

}  // namespace kes::crypto

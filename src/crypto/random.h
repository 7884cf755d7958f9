// Random bytes from OpenSSL's CSPRNG (RAND_bytes, a NIST SP 800-90A DRBG
// seeded by the operating system).
#pragma once

#include <cstdint>
#include <span>

#include "common/status.h"

namespace kes::crypto {

// Fills `out` with random bytes; fails only if the CSPRNG fails.
//
// Requests of up to kPooledRandomMax bytes are served from a per-thread block
// of DRBG output drawn with one RAND_bytes call: OpenSSL's CTR-DRBG re-keys
// AES after every call, which made the 60 bytes of a /v1/key/generate cost
// ~0.7 us (docs/performance.md). Served bytes are wiped from the block at
// once, the block is wiped when its thread ends, and it is discarded in a
// child after fork() so that parent and child never share output.
Status RandomBytes(std::span<uint8_t> out);

inline constexpr size_t kPooledRandomMax = 128;

}  // namespace kes::crypto

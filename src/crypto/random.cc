#include "crypto/random.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>

#include <atomic>
#include <cstring>
#include <limits>
#include <mutex>

namespace kes::crypto {
namespace {

Status DrawDirect(std::span<uint8_t> out) {
  while (!out.empty()) {
    const size_t n = std::min<size_t>(out.size(), std::numeric_limits<int>::max());
    if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) {
      return Status::Internal("crypto: failed to read random bytes");
    }
    out = out.subspan(n);
  }
  return Status::Ok();
}

// Bumped in the child of every fork(): a pool filled before it is stale.
std::atomic<uint64_t> fork_generation{0};

void RegisterForkHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    pthread_atfork(nullptr, nullptr,
                   [] { fork_generation.fetch_add(1, std::memory_order_relaxed); });
  });
}

class RandomPool {
 public:
  static constexpr size_t kSize = 4096;

  ~RandomPool() { OPENSSL_cleanse(bytes_, sizeof bytes_); }

  Status Take(std::span<uint8_t> out) {
    const uint64_t gen = fork_generation.load(std::memory_order_relaxed);
    if (gen != generation_ || kSize - used_ < out.size()) {
      RegisterForkHandler();
      OPENSSL_cleanse(bytes_ + used_, kSize - used_);
      used_ = kSize;  // stays empty if the refill fails
      if (RAND_bytes(bytes_, static_cast<int>(kSize)) != 1) {
        return Status::Internal("crypto: failed to read random bytes");
      }
      used_ = 0;
      generation_ = gen;
    }
    std::memcpy(out.data(), bytes_ + used_, out.size());
    OPENSSL_cleanse(bytes_ + used_, out.size());
    used_ += out.size();
    return Status::Ok();
  }

 private:
  uint8_t bytes_[kSize];
  size_t used_ = kSize;  // empty until first use
  uint64_t generation_ = 0;
};

}  // namespace

Status RandomBytes(std::span<uint8_t> out) {
  if (out.empty()) return Status::Ok();
  if (out.size() > kPooledRandomMax) return DrawDirect(out);
  thread_local RandomPool pool;
  return pool.Take(out);
}

}  // namespace kes::crypto

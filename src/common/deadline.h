// Deadline: the time by which a blocking call (keystore, outbound HTTP) must
// have returned. A route's timeout becomes the deadline of every backend call
// it makes, so a slow backend gives the worker thread back in time.
#pragma once

#include <chrono>

#include "common/status.h"

namespace kes {

using Deadline = std::chrono::steady_clock::time_point;

// No deadline: the call is bounded only by its own timeouts.
inline constexpr Deadline kNoDeadline = Deadline::max();

inline Deadline DeadlineIn(std::chrono::steady_clock::duration d) {
  return std::chrono::steady_clock::now() + d;
}

// Time left until `deadline`, never negative; `cap` when there is more.
inline std::chrono::milliseconds TimeLeft(Deadline deadline, std::chrono::milliseconds cap) {
  if (deadline == kNoDeadline) return cap;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return std::chrono::milliseconds(0);
  return left < cap ? left : cap;
}

inline bool Expired(Deadline deadline) {
  return deadline != kNoDeadline && std::chrono::steady_clock::now() >= deadline;
}

// Go's context.DeadlineExceeded text; the API answers 502 like upstream.
inline Status DeadlineExceeded() { return Status::Unavailable("context deadline exceeded"); }

}  // namespace kes

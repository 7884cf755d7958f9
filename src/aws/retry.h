// RetryPolicy: the AWS SDKs' "standard" retry mode (spec aws-protocol.md
// §5.2): at most `max_attempts` attempts per call, full-jitter exponential
// back-off capped at 20 s, and a client-wide retry-token bucket that stops
// retry storms when the service is down.
//
// Bases (documented choice, as the JS SDK v3): 100 ms for transient errors,
// 500 ms for throttling. The random source and the clock are injected so the
// policy can be tested without sleeping.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>

#include "aws/error.h"

namespace kes::aws {

struct RetryOptions {
  int max_attempts = 3;
  std::chrono::milliseconds transient_base{100};
  std::chrono::milliseconds throttling_base{500};
  std::chrono::milliseconds max_backoff{20000};
  int bucket_capacity = 500;
  int retry_cost = 5;
  int timeout_retry_cost = 10;
};

class RetryPolicy {
 public:
  // `uniform01` returns a value in [0, 1); defaults to a CSPRNG-free
  // per-thread generator (jitter needs no secrecy).
  explicit RetryPolicy(RetryOptions options = {}, std::function<double()> uniform01 = {});

  // After failed attempt number `attempt` (1-based) with `error`: the delay
  // before the next attempt, or nullopt when the call must give up (not
  // retryable, attempts used up, or the bucket is empty). A returned delay
  // has already taken its cost from the bucket.
  std::optional<std::chrono::milliseconds> OnFailure(int attempt, const AwsError& error);

  // A call succeeded after `attempts` attempts: refund the bucket.
  void OnSuccess(int attempts);

  int available_tokens() const;
  const RetryOptions& options() const { return options_; }

  static bool IsRetryable(const AwsError& error);

 private:
  RetryOptions options_;
  std::function<double()> uniform01_;
  mutable std::mutex mu_;
  int tokens_;
  int last_cost_ = 0;
};

}  // namespace kes::aws

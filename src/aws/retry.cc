#include "aws/retry.h"

#include <algorithm>
#include <random>

namespace kes::aws {

RetryPolicy::RetryPolicy(RetryOptions options, std::function<double()> uniform01)
    : options_(options), uniform01_(std::move(uniform01)), tokens_(options.bucket_capacity) {
  if (!uniform01_) {
    uniform01_ = [] {
      thread_local std::mt19937_64 gen{std::random_device{}()};
      return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
    };
  }
}

bool RetryPolicy::IsRetryable(const AwsError& error) {
  return IsTransientError(error) || IsThrottlingError(error);
}

std::optional<std::chrono::milliseconds> RetryPolicy::OnFailure(int attempt,
                                                                const AwsError& error) {
  if (attempt >= options_.max_attempts || !IsRetryable(error)) return std::nullopt;
  const int cost = error.timeout ? options_.timeout_retry_cost : options_.retry_cost;
  {
    std::lock_guard lock(mu_);
    if (tokens_ < cost) return std::nullopt;
    tokens_ -= cost;
    last_cost_ = cost;
  }
  const auto base = IsThrottlingError(error) ? options_.throttling_base : options_.transient_base;
  // min(base * 2^(attempt-1), cap) with full jitter.
  double ceiling = static_cast<double>(base.count());
  for (int i = 1; i < attempt && ceiling < options_.max_backoff.count(); ++i) ceiling *= 2;
  ceiling = std::min(ceiling, static_cast<double>(options_.max_backoff.count()));
  double r = std::clamp(uniform01_(), 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(r * ceiling));
}

void RetryPolicy::OnSuccess(int attempts) {
  std::lock_guard lock(mu_);
  const int refund = attempts <= 1 ? 1 : last_cost_;
  tokens_ = std::min(options_.bucket_capacity, tokens_ + refund);
}

int RetryPolicy::available_tokens() const {
  std::lock_guard lock(mu_);
  return tokens_;
}

}  // namespace kes::aws

#include "net/retry.h"

#include <random>
#include <thread>

namespace kes::net {
namespace {

std::chrono::milliseconds Backoff(const RetryPolicy& policy) {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  const int64_t jitter = policy.jitter.count();
  if (jitter <= 0) return policy.base;
  return policy.base +
         std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(0, jitter - 1)(gen));
}

bool WorthRetrying(const Result<HttpResponse>& result, TransportFailure failure) {
  if (result.ok()) return result->status >= 500;
  return failure == TransportFailure::kTemporary;
}

}  // namespace

Result<HttpResponse> DoWithRetry(HttpClient& client, const HttpRequest& request,
                                 const RetryPolicy& policy) {
  for (int attempt = 0;; ++attempt) {
    TransportFailure failure = TransportFailure::kNone;
    Result<HttpResponse> result = client.Do(request, &failure);
    if (!WorthRetrying(result, failure)) return result;
    const auto wait = Backoff(policy);
    const bool last =
        attempt >= policy.retries || (request.deadline != kNoDeadline &&
                                      std::chrono::steady_clock::now() + wait >= request.deadline);
    if (last) {
      if (!result.ok() && failure == TransportFailure::kTemporary) {
        return Status::Unreachable("http: temporary network error: " + result.status().message());
      }
      return result;
    }
    std::this_thread::sleep_for(wait);
  }
}

}  // namespace kes::net

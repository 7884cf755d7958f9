// JsonClient: one AWS service spoken in the AWS JSON 1.1 protocol (Secrets
// Manager, KMS): POST / with X-Amz-Target, SigV4, standard-mode retries,
// clock-skew correction from the Date header, and one credential refresh
// after an expired-token error. Blocking; safe to call from many threads.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "aws/credentials.h"
#include "aws/error.h"
#include "aws/retry.h"
#include "aws/sigv4.h"
#include "common/deadline.h"
#include "net/http_client.h"

namespace kes::aws {

struct JsonClientOptions {
  net::Url endpoint;          // e.g. https://secretsmanager.us-east-1.amazonaws.com
  std::string region;         // signing region, never parsed from the host
  std::string service;        // signing name: "secretsmanager" or "kms"
  std::string target_prefix;  // "secretsmanager" or "TrentService"
  RetryOptions retry;
};

struct CallResult {     // NOLINT(bugprone-exception-escape): nlohmann::json moves do not throw
  nlohmann::json body;  // the response object on success
  std::optional<AwsError> error;  // set on failure
  int attempts = 0;
  bool ok() const { return !error.has_value(); }
};

class JsonClient {
 public:
  using Sleeper = std::function<void(std::chrono::milliseconds)>;

  JsonClient(JsonClientOptions options, std::shared_ptr<net::HttpClient> http,
             std::shared_ptr<CredentialProvider> credentials);

  // Calls `<target_prefix>.<operation>` with `input` (a JSON object). The body
  // is serialised once and the same bytes are re-signed on every attempt.
  // No attempt starts, and no back-off sleeps, past `deadline`.
  CallResult Call(std::string_view operation, const nlohmann::json& input,
                  Deadline deadline = kNoDeadline);

  // Test hooks.
  void set_sleeper(Sleeper sleeper) { sleeper_ = std::move(sleeper); }
  RetryPolicy& retry_policy() { return retry_; }
  std::chrono::milliseconds clock_offset() const {
    return std::chrono::milliseconds(clock_offset_ms_.load());
  }

  const JsonClientOptions& options() const { return options_; }

 private:
  void LearnClockOffset(const net::HttpResponse& response);

  JsonClientOptions options_;
  std::shared_ptr<net::HttpClient> http_;
  std::shared_ptr<CredentialProvider> credentials_;
  SigV4Signer signer_;
  RetryPolicy retry_;
  Sleeper sleeper_;
  std::atomic<int64_t> clock_offset_ms_{0};  // server time minus local time
};

// One HTTP answer to a call: a 2xx body must be a JSON object (an empty body
// counts as {}), else the error is "SerializationError"; any other status is
// ParseErrorResponse's error. `attempts` is left 0.
CallResult DecodeResponse(const net::HttpResponse& response);

// Parses an HTTP date (RFC 1123, "Sun, 06 Nov 1994 08:49:37 GMT").
std::optional<Clock::time_point> ParseHttpDate(std::string_view text);

}  // namespace kes::aws

#include "aws/error.h"

#include <array>
#include <nlohmann/json.hpp>

#include "common/json_members.h"

namespace kes::aws {

std::string AwsError::ToString() const {
  std::string s = code;
  if (!message.empty()) s += ": " + message;
  if (transport || http_status == 0) return s;
  s += " (status " + std::to_string(http_status);
  if (!request_id.empty()) s += ", request id " + request_id;
  return s + ")";
}

std::string CleanErrorCode(std::string_view raw) {
  if (auto colon = raw.find(':'); colon != std::string_view::npos) raw = raw.substr(0, colon);
  if (auto hash = raw.rfind('#'); hash != std::string_view::npos) raw = raw.substr(hash + 1);
  while (!raw.empty() && raw.front() == ' ') raw.remove_prefix(1);
  while (!raw.empty() && raw.back() == ' ') raw.remove_suffix(1);
  return std::string(raw);
}

AwsError ParseErrorResponse(const net::HttpResponse& response) {
  AwsError e;
  e.http_status = response.status;
  e.request_id = response.Header("x-amzn-requestid");
  std::string raw = response.Header("x-amzn-errortype");
  auto body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_object()) {
    auto str = [&](const char* key) { return StringMember(body, key); };
    if (raw.empty()) raw = str("code");
    if (raw.empty()) raw = str("__type");
    e.message = str("message");
    if (e.message.empty()) e.message = str("Message");
  }
  e.code = CleanErrorCode(raw);
  if (e.code.empty()) e.code = "Http" + std::to_string(response.status);
  return e;
}

bool IsThrottlingError(const AwsError& e) {
  static constexpr std::array<std::string_view, 14> kCodes = {
      "Throttling",
      "ThrottlingException",
      "ThrottledException",
      "RequestThrottledException",
      "TooManyRequestsException",
      "ProvisionedThroughputExceededException",
      "TransactionInProgressException",
      "RequestLimitExceeded",
      "BandwidthLimitExceeded",
      "LimitExceededException",
      "RequestThrottled",
      "SlowDown",
      "PriorRequestNotComplete",
      "EC2ThrottledException"};
  if (e.http_status == 429) return true;
  for (auto c : kCodes) {
    if (e.code == c) return true;
  }
  return false;
}

bool IsTransientError(const AwsError& e) {
  if (e.transport) return true;
  if (e.http_status == 500 || e.http_status == 502 || e.http_status == 503 ||
      e.http_status == 504) {
    return true;
  }
  return e.code == "RequestTimeout" || e.code == "RequestTimeoutException" ||
         e.code == "PriorRequestNotComplete" || e.code == "InternalFailure" ||
         e.code == "ServiceUnavailable" || e.code == "IDPCommunicationError";
}

bool IsClockSkewError(const AwsError& e) {
  if (e.code == "RequestExpired" || e.code == "RequestInTheFuture" ||
      e.code == "RequestTimeTooSkewed") {
    return true;
  }
  return e.code == "InvalidSignatureException" &&
         (e.message.find("Signature expired") != std::string::npos ||
          e.message.find("Signature not yet current") != std::string::npos);
}

bool IsExpiredCredentialsError(const AwsError& e) {
  return e.code == "ExpiredTokenException" || e.code == "ExpiredToken" ||
         e.code == "UnrecognizedClientException" || e.code == "InvalidClientTokenId";
}

}  // namespace kes::aws

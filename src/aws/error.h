// AwsError: one failed AWS call, reduced to what the caller dispatches on
// (spec aws-protocol.md §2.4): the cleaned error code, the message, the HTTP
// status and the request id. Dispatch on `code`, never on the message.
#pragma once

#include <string>
#include <string_view>

#include "net/http_client.h"

namespace kes::aws {

struct AwsError {
  int http_status = 0;     // 0 when no response arrived
  std::string code;        // e.g. "ResourceNotFoundException"; "Http<status>" without a body
  std::string message;     // from "message" or "Message"
  std::string request_id;  // x-amzn-RequestId, for logs
  bool transport = false;  // no HTTP response at all (connect, TLS, timeout)
  bool timeout = false;    // a transport failure that was a timeout

  // "<Code>: <Message>" (+ request id); never contains credentials.
  std::string ToString() const;
};

// Extracts code and message from a non-2xx response: X-Amzn-ErrorType
// header, else body "code", else body "__type"; the code is cut at the first
// ':' and after the last '#'. A body that is not JSON yields "Http<status>".
AwsError ParseErrorResponse(const net::HttpResponse& response);

// Cleans a raw error code ("aws.protocoltests#FooError:http://..." -> "FooError").
std::string CleanErrorCode(std::string_view raw);

// Classification used by the retry policy (standard mode, aws-protocol.md §5.1).
bool IsThrottlingError(const AwsError& e);
bool IsTransientError(const AwsError& e);
// Errors that mean "the request date is off": re-sign with a corrected clock.
bool IsClockSkewError(const AwsError& e);
// Errors after which temporary credentials should be refreshed once.
bool IsExpiredCredentialsError(const AwsError& e);

}  // namespace kes::aws

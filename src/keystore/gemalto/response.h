// Parsers for CipherTrust Manager's JSON answers (keystores-cloud.md §3).
// Bodies come from the network: every function accepts any bytes and never
// throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "net/http_client.h"

namespace kes::keystore::gemalto {

// A successful `POST /api/v1/auth/tokens` (§3.1).
struct Login {
  std::string jwt;
  std::chrono::seconds duration{0};
};
// The login answer, or the error upstream reports for it: `<status line>:
// <codeDesc> (<code>)` for a non-200, the missing/unexpected field otherwise.
Result<Login> ParseLogin(const net::HttpResponse& resp);

// An error answer: `{"code":..,"codeDesc":..}` when the Content-Type is
// JSON, else the trimmed text with the HTTP status as code.
struct ApiError {
  int64_t code = 0;
  std::string desc;
};
ApiError ParseError(const net::HttpResponse& resp);

// "401 Unauthorized", as Go's resp.Status shows it (the code alone when the
// reason is not known).
std::string StatusLine(int status);

// `material` of an export answer; fails when it is missing or not a string.
Result<std::string> ParseMaterial(std::string_view body);

// One page of `GET /api/v1/vault/secrets`.
struct SecretPage {
  int64_t skip = 0;
  int64_t total = 0;
  std::vector<std::string> names;
};
Result<SecretPage> ParsePage(std::string_view body);

}  // namespace kes::keystore::gemalto

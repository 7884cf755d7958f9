// Parsers and builders for KeyControl's JSON answers (keystores-cloud.md
// §5). Bodies come from the network: every function accepts any bytes and
// never throws.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kes::keystore::entrust {

// A Login or Renew answer (§5.1).
struct AuthToken {
  std::string token;
  // When the token expires; nullopt when `expires_at` is absent or zero
  // (the caller then assumes now + 5 min).
  std::optional<std::chrono::system_clock::time_point> expires_at;
};
// Fails with "auth token is empty" when `access_token` is missing or empty,
// and on a body that is no JSON object or an `expires_at` that is no RFC 3339.
Result<AuthToken> ParseAuthToken(std::string_view body);

// The `secret_data` of a CheckoutSecret answer, base64-decoded: the stored
// value. Fails when missing or not base64.
Result<std::string> ParseSecretData(std::string_view body);

// One page of ListSecretIds: the names of the secrets that are not expired,
// and the raw `next_token` (empty on the last page).
struct SecretPage {
  std::vector<std::string> names;
  std::string next_token;
};
Result<SecretPage> ParseSecretPage(std::string_view body);

// The error text of a non-200 answer (§5.3): `error` of a JSON body when the
// Content-Type starts with application/json, otherwise
// "<status line>: <body>" (the body cut to 256 bytes).
std::string ErrorText(int status, std::string_view content_type, std::string_view body);

}  // namespace kes::keystore::entrust

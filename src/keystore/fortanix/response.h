// Parsers for Fortanix DSM's answers (keystores-cloud.md §4). Bodies come
// from the network: every function accepts any bytes and never throws.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "net/http_client.h"

namespace kes::keystore::fortanix {

// POST /sys/v1/session/auth: fails without a bearer access token.
Result<std::string> ParseSessionToken(std::string_view body);

// A security object as POST /crypto/v1/keys/export answers it.
struct Sobject {
  std::string kid;
  std::string name;
  bool enabled = false;
  std::string value;  // base64, as sent
};
// Fails when the answer is not an object with a string `kid`.
Result<Sobject> ParseSobject(std::string_view body);

// GET /crypto/v1/keys: the `name` of every object in the array, in order.
// Fails when the answer is not an array of objects with a string name.
Result<std::vector<std::string>> ParseNames(std::string_view body);

// The message of an error answer: `message` of a JSON body (Content-Type
// application/json), otherwise the whole body as text, as DSM's own
// clients read it; empty when there is none.
std::string ErrorMessage(const net::HttpResponse& resp);

}  // namespace kes::keystore::fortanix

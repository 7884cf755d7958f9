// Parsers for Vault's JSON answers (keystores-vault.md §3-8). Bodies come
// from the network: every function accepts any bytes and never throws.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kes::keystore::vault {

// `auth` of a login or renew-self answer (§3.3).
struct Auth {
  std::string token;
  std::chrono::seconds ttl{0};  // 0: never expires
  bool renewable = false;
};
// Fails when the answer carries no token (upstream accepted an empty one and
// failed every later call).
Result<Auth> ParseAuth(std::string_view body);

// `sys/health` (§5).
struct Health {
  bool initialized = false;
  bool sealed = false;
};
Result<Health> ParseHealth(std::string_view body);

// A K/V read: the string field `name` of `data` (v1) or `data.data` (v2).
struct KvEntry {
  enum class Kind {
    kValue,      // the field is a string
    kNoValue,    // data present, field missing or null
    kNotString,  // the field has another type
    kNoData,     // v2: no `data.data` member
    kBadData,    // v2: `data.data` is not an object
    kEmpty,      // no JSON object, or no `data` at all
  };
  Kind kind = Kind::kEmpty;
  std::string value;
};
KvEntry ParseKvEntry(std::string_view body, std::string_view name, bool v2);

// `data.keys` of a listing; fails when it is missing or not a string array.
Result<std::vector<std::string>> ParseKeyList(std::string_view body);

// The string `data.<field>` (transit `ciphertext` / `plaintext`); an empty
// result when absent.
Result<std::string> ParseDataString(std::string_view body, std::string_view field);

// The `errors` array of an error answer (empty if none or not JSON).
std::vector<std::string> ParseErrors(std::string_view body);

}  // namespace kes::keystore::vault

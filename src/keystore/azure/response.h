// Parsers for what Azure Key Vault, Azure AD and IMDS answer
// (keystores-cloud.md §1.2-1.5). They accept any bytes: a malformed answer
// is an error Status, never an exception.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kes::keystore::azure {

// {"error":{"code":…,"message":…,"innererror":{"code":…}}}. Upstream's
// error code is the inner one only (empty when absent).
struct ErrorBody {
  std::string code;
  std::string inner;
  std::string message;
};
ErrorBody ParseError(std::string_view body);

// One entry of GET /secrets/<name>/versions.
struct SecretVersion {
  std::string version;  // last path segment of its id
  std::optional<int64_t> created;
};
struct VersionPage {
  std::vector<SecretVersion> versions;
  std::string next_link;  // empty: last page
};
Result<VersionPage> ParseVersions(std::string_view body);

// The version Get reads: the one with the smallest `created` (first wins on
// ties), or the latest (empty) when no entry has one (§1.4).
std::string OldestVersion(const std::vector<SecretVersion>& versions);

// GET /secrets/<name>/<version>.
struct SecretBundle {
  std::string value;
  bool enabled = true;
  std::optional<int64_t> not_before, expires;  // Unix seconds
};
Result<SecretBundle> ParseSecret(std::string_view body);

// GET /secrets: names are the last path segment of each id.
struct NamePage {
  std::vector<std::string> names;
  std::string next_link;
};
Result<NamePage> ParseSecretList(std::string_view body);

// An OAuth2 token answer of Azure AD (numbers) or IMDS (numbers as strings).
struct TokenAnswer {
  std::string access_token;
  int64_t expires_in = 0;  // seconds
};
Result<TokenAnswer> ParseToken(std::string_view body);

// Azure AD's error answer: "<error>: <error_description>", or empty.
std::string ParseAadError(std::string_view body);

// WWW-Authenticate: Bearer authorization="…", resource="…"[, scope="…"].
struct Challenge {
  std::string authorization;
  std::string resource;
  std::string scope;
};
std::optional<Challenge> ParseChallenge(std::string_view header);

}  // namespace kes::keystore::azure

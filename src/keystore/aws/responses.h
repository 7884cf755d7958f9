// What the Secrets Manager keystore reads from a successful AWS answer
// (spec keystores.md §4.4-4.5), as pure functions of the decoded body so
// that every path through untrusted response JSON is reachable without a
// network (tests/fuzz/fuzz_aws_response.cc).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kes::keystore::aws {

// GetSecretValue: the SecretString, else the base64-decoded SecretBinary.
// Moves the value out of `body` (it is key material). `name` is for errors.
Result<std::string> TakeSecretValue(nlohmann::json& body, std::string_view name);

// ListSecrets: appends every SecretList[].Name that starts with `prefix` to
// `names`; returns the NextToken, empty on the last page.
std::string ReadListSecretsPage(const nlohmann::json& body, std::string_view prefix,
                                std::vector<std::string>* names);

}  // namespace kes::keystore::aws

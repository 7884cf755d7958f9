// Standard base64 with padding, as AWS JSON 1.1 carries blobs.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kes::aws {

std::string Base64Encode(std::string_view bytes);
// Strict: standard alphabet, padding required, no whitespace.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace kes::aws

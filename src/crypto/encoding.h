// Base64 (RFC 4648 standard alphabet, '=' padding required) and lowercase hex,
// as KES uses them on the wire and in stored keys.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kes::crypto {

std::string Base64Encode(std::span<const uint8_t> bytes);
// Appends the encoding to `out` without a temporary (a secret stays in the
// one buffer its owner zeroizes).
void Base64Append(std::string& out, std::span<const uint8_t> bytes);
std::string Base64Encode(std::string_view bytes);
// Strict standard base64 with padding. '\r' and '\n' anywhere are ignored,
// as Go's decoder does. nullopt on any other deviation.
std::optional<std::vector<uint8_t>> Base64Decode(std::string_view text);
// The same decoder; a failure carries Go's message "illegal base64 data at
// input byte <n>" (n = offset into `text`, as Go's CorruptInputError).
Result<std::vector<uint8_t>> Base64DecodeWithError(std::string_view text);
namespace detail {
// The character-by-character decoder behind Base64DecodeWithError, which
// first tries a one-pass decode of canonical input; for tests comparing them.
Result<std::vector<uint8_t>> Base64DecodeGeneral(std::string_view text);
}  // namespace detail

std::string HexEncode(std::span<const uint8_t> bytes);
// Lower- or upper-case hex digits, even length; nullopt otherwise.
std::optional<std::vector<uint8_t>> HexDecode(std::string_view text);

}  // namespace kes::crypto

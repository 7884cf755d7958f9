// Small string helpers that reproduce Go standard-library behaviour the KES
// wire formats and messages depend on.
#pragma once

#include <string>
#include <string_view>

namespace kes {

// ASCII case-insensitive equality: how Go's encoding/json matches object
// keys to struct field names (for the ASCII names KES uses).
bool EqualFoldAscii(std::string_view a, std::string_view b);

// Go's strconv.Quote for the ASCII subset: "..." with \" \\ \n \r \t and
// \xNN for other control bytes; bytes >= 0x80 pass through unchanged.
std::string GoQuote(std::string_view s);
void AppendGoQuoted(std::string& out, std::string_view s);

}  // namespace kes

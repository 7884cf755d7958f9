// Terminal detection, styling and output helpers shared by the commands
// (spec cli.md §1.2, §1.3, §1.5).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/strings.h"  // GoQuote, used by every command

namespace kes::cli {

// "Terminal mode": stdout OR stderr is a TTY (upstream's IsTerminal).
bool IsTerminal();
// Styling is on when stdout is a colour-capable TTY, NO_COLOR is unset and
// TERM is not "dumb", unless overridden by --color.
bool ColorEnabled();
// Applies a --color value: "", "auto", "always", "never" (case-insensitive).
// Error text: `invalid argument "x" for "--color" flag: invalid color option`.
Status SetColorMode(std::string_view mode);
// For tests: forces terminal mode and colour.
void OverrideTerminal(bool terminal, bool color);

// ANSI styling; identity functions when colour is off.
std::string Bold(std::string_view s);
std::string Faint(std::string_view s);
std::string Underline(std::string_view s);
std::string Color(uint32_t rgb, std::string_view s);  // 24-bit foreground
std::string BoldColor(uint32_t rgb, std::string_view s);

inline constexpr uint32_t kRed = 0xac0000;
inline constexpr uint32_t kGreen = 0x00a700;
inline constexpr uint32_t kYellow = 0xd1bd2e;
inline constexpr uint32_t kBlue = 0x2e42d1;
inline constexpr uint32_t kCyan = 0x00a6d6;
inline constexpr uint32_t kDenyRed = 0xd70000;

void Out(std::string_view s);  // stdout, unbuffered write of all bytes

// Output of the `ls` commands: with `as_json` one JSON array line (`null`
// when empty) and nothing else, so it can be piped to a JSON tool; otherwise
// an underlined header and one name per line (nothing when empty).
void PrintNames(const std::vector<std::string>& names, std::string_view header, bool as_json);
void Err(std::string_view s);  // stderr

// Prints "Error: <msg>" (red "Error:" with colour) on stderr; returns 1.
int Fail(std::string_view message);
// Prints "Error: <msg>. See '<cmd> --help'"; returns 1.
int FailSee(std::string_view message, std::string_view command);

// Reads a password without echo from the terminal (prompt on stderr, newline
// after). KES_CLIENT_KEY_PASSWORD, when set, is used instead (scripts/tests).
Result<std::string> ReadPassword(std::string_view prompt);

// Wraps text in upstream's one-space frame: blank first/last line, one
// leading space, lines right-padded to equal width.
std::string Frame(std::string_view text);

}  // namespace kes::cli

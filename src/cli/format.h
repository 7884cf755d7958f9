// Text formats of the CLI's human output (spec cli.md §1.5, §3.8-3.10).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/duration.h"

namespace kes::cli {

// Go's Duration.Round(m).
std::chrono::nanoseconds RoundDuration(std::chrono::nanoseconds d, std::chrono::nanoseconds m);

// Decimal units, one decimal, no space: "5.2MB", "512.0B", "0B".
std::string FormatSize(uint64_t bytes);
// "5 minutes", "3 hours", "2 days 4 hours", "7 seconds" (kes status).
std::string FormatUptime(double seconds);

// "YYYY-MM-DD HH:MM:SS" of an RFC 3339 timestamp: its wall clock as
// written (local = false) or converted to the local zone (local = true).
// Empty for unparsable input.
std::string FormatDate(std::string_view rfc3339, bool local);
// True for Go's zero time (0001-01-01T00:00:00Z) or empty input.
bool IsZeroTime(std::string_view rfc3339);

// Left-aligns `s` in `width` columns (no truncation).
std::string Pad(std::string_view s, size_t width);

}  // namespace kes::cli

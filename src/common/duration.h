// Go's time.Duration text: ParseDuration reads what config files, VAULT_*
// variables and CLI flags hold; FormatDuration writes what upstream prints.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kes {

using Duration = std::chrono::nanoseconds;

// Go's time.ParseDuration: "300ms", "-1.5h", "2h45m", "0". Units ns, us,
// µs (U+00B5 or U+03BC), ms, s, m, h. A number without unit is an error
// except "0".
Result<Duration> ParseDuration(std::string_view text);
// Go's Duration.String(): "5m0s", "-1.5s", "300ms", "0s".
std::string FormatDuration(Duration d);

}  // namespace kes

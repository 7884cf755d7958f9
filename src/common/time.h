// Timestamp: a point in time with nanoseconds and the zone offset it was
// written with, formatted like Go's time.RFC3339Nano (trailing zeros of the
// fraction trimmed; "Z" for UTC, otherwise "+hh:mm").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kes {

struct Timestamp {
  int64_t seconds = 0;       // since the Unix epoch, UTC
  int32_t nanos = 0;         // 0..999'999'999
  int32_t utc_offset = 0;    // seconds east of UTC, used only for formatting

  static Timestamp Now();       // UTC
  static Timestamp NowLocal();  // host's local zone (server start time)
  // Go's zero time 0001-01-01T00:00:00Z: what legacy keys without
  // created_at report. seconds = -62135596800.
  static Timestamp GoZero();

  std::string ToRfc3339() const;
  // Parses RFC 3339 with optional fraction and a "Z" or "±hh:mm" zone.
  static std::optional<Timestamp> ParseRfc3339(std::string_view text);

  friend bool operator==(const Timestamp&, const Timestamp&) = default;
};

}  // namespace kes

// Go's time.ParseDuration and Duration.String (config.md §1.1).
#include "common/duration.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace kes {
namespace {

// Nanoseconds per unit; 0 if `unit` is not a Go duration unit.
uint64_t UnitNanos(std::string_view unit) {
  if (unit == "ns") return 1;
  if (unit == "us" || unit == "\xC2\xB5s" /* U+00B5 */ || unit == "\xCE\xBCs" /* U+03BC */) {
    return 1000;
  }
  if (unit == "ms") return 1000000;
  if (unit == "s") return 1000000000ULL;
  if (unit == "m") return 60ULL * 1000000000ULL;
  if (unit == "h") return 3600ULL * 1000000000ULL;
  return 0;
}

Status InvalidDuration(std::string_view text) {
  return Status::Invalid("time: invalid duration \"" + std::string(text) + "\"");
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

Result<Duration> ParseDuration(std::string_view text) {
  const std::string_view orig = text;
  // Go accumulates the magnitude as uint64 and allows exactly 1<<63 for a
  // negative value.
  constexpr uint64_t kMax = uint64_t{1} << 63;
  bool negative = false;
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  if (text == "0") return Duration(0);
  if (text.empty()) return InvalidDuration(orig);

  uint64_t total = 0;
  while (!text.empty()) {
    if (!(IsDigit(text[0]) || text[0] == '.')) return InvalidDuration(orig);
    // Integer part.
    uint64_t whole = 0;
    size_t i = 0;
    bool overflow = false;
    while (i < text.size() && IsDigit(text[i])) {
      if (!overflow && whole > kMax / 10) overflow = true;
      if (!overflow) whole = whole * 10 + static_cast<uint64_t>(text[i] - '0');
      if (whole > kMax) overflow = true;
      ++i;
    }
    if (overflow) return InvalidDuration(orig);
    const bool had_whole = i > 0;
    // Fraction.
    uint64_t frac = 0;
    double scale = 1;
    bool had_frac = false;
    if (i < text.size() && text[i] == '.') {
      ++i;
      const size_t start = i;
      while (i < text.size() && IsDigit(text[i])) {
        if (frac <= (kMax - 9) / 10) {  // further digits are below precision
          frac = frac * 10 + static_cast<uint64_t>(text[i] - '0');
          scale *= 10;
        }
        ++i;
      }
      had_frac = i > start;
    }
    if (!had_whole && !had_frac) return InvalidDuration(orig);
    text.remove_prefix(i);
    // Unit: everything up to the next digit or '.'.
    size_t u = 0;
    while (u < text.size() && !IsDigit(text[u]) && text[u] != '.') ++u;
    if (u == 0) {
      return Status::Invalid("time: missing unit in duration \"" + std::string(orig) + "\"");
    }
    const std::string_view unit = text.substr(0, u);
    const uint64_t per = UnitNanos(unit);
    if (per == 0) {
      return Status::Invalid("time: unknown unit \"" + std::string(unit) + "\" in duration \"" +
                             std::string(orig) + "\"");
    }
    text.remove_prefix(u);
    if (whole > kMax / per) return InvalidDuration(orig);
    uint64_t v = whole * per;
    if (frac > 0) {
      v += static_cast<uint64_t>(static_cast<double>(frac) * (static_cast<double>(per) / scale));
      if (v > kMax) return InvalidDuration(orig);
    }
    total += v;
    if (total > kMax) return InvalidDuration(orig);
  }
  if (negative) {
    return Duration(total == kMax ? INT64_MIN : -static_cast<int64_t>(total));
  }
  if (total > kMax - 1) return InvalidDuration(orig);
  return Duration(static_cast<int64_t>(total));
}

namespace {

// Writes v / 10^prec with trailing zeros of the fraction trimmed.
std::string FormatFrac(uint64_t v, int prec) {
  std::string digits = std::to_string(v);
  if (static_cast<int>(digits.size()) <= prec) {
    digits.insert(0, static_cast<size_t>(prec) - digits.size() + 1, '0');
  }
  std::string whole = digits.substr(0, digits.size() - static_cast<size_t>(prec));
  std::string frac = digits.substr(digits.size() - static_cast<size_t>(prec));
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  return frac.empty() ? whole : whole + "." + frac;
}

}  // namespace

std::string FormatDuration(Duration d) {
  const int64_t ns = d.count();
  if (ns == 0) return "0s";
  const bool negative = ns < 0;
  const uint64_t u = negative ? (~static_cast<uint64_t>(ns) + 1) : static_cast<uint64_t>(ns);
  std::string out;
  if (u < 1000000000ULL) {
    // Sub-second: the largest unit that keeps a non-zero integer part.
    if (u < 1000) {
      out = std::to_string(u) + "ns";
    } else if (u < 1000000) {
      out = FormatFrac(u, 3) + "\xC2\xB5s";
    } else {
      out = FormatFrac(u, 6) + "ms";
    }
  } else {
    const uint64_t hours = u / 3600000000000ULL;
    const uint64_t rem_h = u % 3600000000000ULL;
    const uint64_t minutes = rem_h / 60000000000ULL;
    const uint64_t secs_ns = rem_h % 60000000000ULL;
    std::string s = FormatFrac(secs_ns, 9) + "s";
    if (hours > 0) {
      out = std::to_string(hours) + "h" + std::to_string(minutes) + "m" + s;
    } else if (minutes > 0) {
      out = std::to_string(minutes) + "m" + s;
    } else {
      out = s;
    }
  }
  return negative ? "-" + out : out;
}

}  // namespace kes

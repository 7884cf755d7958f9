#include "cli/format.h"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <string>

namespace kes::cli {

using std::chrono::nanoseconds;

nanoseconds RoundDuration(nanoseconds d, nanoseconds m) {
  if (m.count() <= 0) return d;
  int64_t v = d.count(), q = m.count();
  int64_t r = v % q;
  if (v < 0) {
    r = -r;
    if (r + r < q) return nanoseconds(v + r);
    return nanoseconds(v - q + r);
  }
  if (r + r < q) return nanoseconds(v - r);
  return nanoseconds(v + q - r);
}

std::string FormatSize(uint64_t bytes) {
  if (bytes == 0) return "0B";
  static const char* kUnits[] = {"B", "KB", "MB", "GB", "TB", "PB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 5) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%s", v, kUnits[u]);
  return buf;
}

std::string FormatUptime(double seconds) {
  double hours = seconds / 3600;
  char buf[64];
  if (hours > 24) {
    std::snprintf(buf, sizeof buf, "%.0f days %.0f hours", std::round(hours / 24),
                  std::round(std::fmod(hours, 24)));
  } else if (hours > 1) {
    std::snprintf(buf, sizeof buf, "%.0f hours", std::round(hours));
  } else if (seconds > 60) {
    std::snprintf(buf, sizeof buf, "%.0f minutes", std::round(seconds / 60));
  } else {
    std::snprintf(buf, sizeof buf, "%.0f seconds", std::round(seconds));
  }
  return buf;
}

namespace {

// Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm)" into broken-down wall time
// and the zone offset in seconds.
bool ParseRfc3339(std::string_view s, std::tm* tm, long* offset) {
  int y, mo, d, h, mi, sec;
  // NOLINTNEXTLINE(cert-err34-c): fixed-width fields cannot overflow; the count is checked
  if (s.size() < 20 || std::sscanf(std::string(s.substr(0, 19)).c_str(), "%4d-%2d-%2dT%2d:%2d:%2d",
                                   &y, &mo, &d, &h, &mi, &sec) != 6) {
    return false;
  }
  *tm = {};
  tm->tm_year = y - 1900;
  tm->tm_mon = mo - 1;
  tm->tm_mday = d;
  tm->tm_hour = h;
  tm->tm_min = mi;
  tm->tm_sec = sec;
  std::string_view rest = s.substr(19);
  if (!rest.empty() && rest[0] == '.') {
    size_t i = 1;
    while (i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i]))) ++i;
    rest.remove_prefix(i);
  }
  *offset = 0;
  if (rest == "Z") return true;
  int oh, om;
  if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') &&
      // NOLINTNEXTLINE(cert-err34-c): two digits each cannot overflow; the count is checked
      std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &oh, &om) == 2) {
    *offset = (rest[0] == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
    return true;
  }
  return false;
}

}  // namespace

std::string FormatDate(std::string_view rfc3339, bool local) {
  std::tm tm{};
  long offset = 0;
  if (!ParseRfc3339(rfc3339, &tm, &offset)) return {};
  if (local) {
    time_t t = timegm(&tm) - offset;
    localtime_r(&t, &tm);
  }
  char buf[80];  // room for any int values: no truncation warning
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

bool IsZeroTime(std::string_view rfc3339) {
  return rfc3339.empty() || rfc3339.starts_with("0001-01-01T00:00:00");
}

std::string Pad(std::string_view s, size_t width) {
  std::string out(s);
  if (out.size() < width) out.append(width - out.size(), ' ');
  return out;
}

}  // namespace kes::cli

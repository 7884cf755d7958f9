// Log level grammar of the config file (config.md §3.8) and slog's level
// names.
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/config.h"

namespace kes::config {
namespace {

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool NamedLevel(std::string_view name, int* level) {
  if (name == "DEBUG")
    *level = kLevelDebug;
  else if (name == "INFO")
    *level = kLevelInfo;
  else if (name == "WARN")
    *level = kLevelWarn;
  else if (name == "ERROR")
    *level = kLevelError;
  else
    return false;
  return true;
}

// Go's strconv.Atoi for an int64 platform: optional sign, decimal digits.
Result<int> Atoi(const std::string& s) {
  auto syntax = [&] {
    return Status::Invalid("strconv.Atoi: parsing \"" + s + "\": invalid syntax");
  };
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (i == s.size()) return syntax();
  for (size_t j = i; j < s.size(); ++j) {
    if (!std::isdigit(static_cast<unsigned char>(s[j]))) return syntax();
  }
  errno = 0;
  const long long v = std::strtoll(s.c_str(), nullptr, 10);
  // slog levels are ints; anything beyond int range is out of range here.
  if (errno == ERANGE || v > INT32_MAX || v < INT32_MIN) {
    return Status::Invalid("strconv.Atoi: parsing \"" + s + "\": value out of range");
  }
  return static_cast<int>(v);
}

}  // namespace

Result<int> ParseLogLevel(std::string_view text) {
  const std::string v(Trim(Upper(text)));
  if (v.empty() || v == "ON") return kLevelInfo;
  if (v == "OFF") return kLevelOff;
  // A value starting with a level name must be exactly the name or
  // "<NAME>+<n>"; anything else starting with a name is rejected.
  for (std::string_view name : {"DEBUG", "INFO", "WARN", "ERROR"}) {
    if (!v.starts_with(name)) continue;
    int base = 0;
    NamedLevel(name, &base);
    if (v == name) return base;
    const size_t plus = v.find('+');
    if (plus == std::string::npos || Trim(std::string_view(v).substr(0, plus)) != name) {
      return Status::Invalid("kesconf: invalid log level '" + v + "'");
    }
    const std::string suffix = v.substr(plus + 1);
    auto n = Atoi(suffix);
    if (!n.ok()) {
      return Status::Invalid("kesconf: invalid log level suffix '" + suffix +
                             "': " + n.status().message());
    }
    return base + *n;
  }
  return Atoi(v);
}

std::string LogLevelName(int level) {
  auto name = [](const char* base, int offset) {
    if (offset == 0) return std::string(base);
    return std::string(base) + (offset > 0 ? "+" : "") + std::to_string(offset);
  };
  if (level < kLevelInfo) return name("DEBUG", level - kLevelDebug);
  if (level < kLevelWarn) return name("INFO", level - kLevelInfo);
  if (level < kLevelError) return name("WARN", level - kLevelWarn);
  return name("ERROR", level - kLevelError);
}

}  // namespace kes::config

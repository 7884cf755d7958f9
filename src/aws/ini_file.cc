#include "aws/ini_file.h"

namespace kes::aws {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

IniFile ParseIni(std::string_view text) {
  IniFile file;
  IniSection* current = nullptr;
  std::string last_key;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      size_t close = line.find(']');
      if (close == std::string_view::npos) {
        current = nullptr;
        continue;
      }
      std::string name(Trim(line.substr(1, close - 1)));
      current = &file[name];
      continue;
    }
    // Indented lines belong to a nested sub-section ("s3 =\n  max = 1"): skip.
    if (raw.front() == ' ' || raw.front() == '\t') continue;
    if (current == nullptr) continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string key(Trim(line.substr(0, eq)));
    std::string_view value = Trim(line.substr(eq + 1));
    // No inline comments: like botocore, a '#' inside a value is part of it.
    (*current)[key] = std::string(value);
  }
  return file;
}

const IniSection* FindProfile(const IniFile& file, std::string_view profile, bool config_file) {
  std::string name(profile);
  if (config_file && profile != "default") name = "profile " + name;
  auto it = file.find(name);
  if (it == file.end() && config_file && profile == "default") it = file.find("profile default");
  return it == file.end() ? nullptr : &it->second;
}

}  // namespace kes::aws

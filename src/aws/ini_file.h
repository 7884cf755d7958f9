// Parser for the AWS shared credentials and config files (INI, spec
// aws-protocol.md §8.3): "[section]" headers, "key = value" lines, '#' and
// ';' comments, indented sub-section lines skipped.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace kes::aws {

using IniSection = std::map<std::string, std::string>;
using IniFile = std::map<std::string, IniSection>;  // section name (trimmed) -> keys

IniFile ParseIni(std::string_view text);

// The section of `profile` in a credentials file ("name") or config file
// ("default" or "profile name"); nullptr when absent.
const IniSection* FindProfile(const IniFile& file, std::string_view profile, bool config_file);

}  // namespace kes::aws

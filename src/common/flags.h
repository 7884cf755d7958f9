// FlagSet: command-line flags with Go pflag's syntax and error texts (spec
// cli.md §1.1), which `kes` and `kes server` must reproduce: `--name value`,
// `--name=value`, `-k`, bundled shorthands, flags between positionals, `--`
// ends flags, a value flag consumes the next word even if it starts with '-'.
// (CLI11 cannot reproduce pflag's messages, hence this small parser.)
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kes {

class FlagSet {
 public:
  // `usage` is printed for -h/--help.
  explicit FlagSet(std::string usage) : usage_(std::move(usage)) {}

  bool* Bool(const std::string& name, char shorthand = 0, bool def = false);
  std::string* String(const std::string& name, char shorthand = 0, std::string def = {});
  // Repeatable; each value is also split on ',' (pflag StringSlice, CSV rules).
  std::vector<std::string>* StringSlice(const std::string& name, char shorthand = 0);

  // OK, or a Status whose message is pflag's text ("unknown flag: --x").
  // Sets help() for -h/--help (and stops parsing).
  Status Parse(const std::vector<std::string>& args);

  bool help() const { return help_; }
  bool Changed(const std::string& name) const;
  const std::vector<std::string>& args() const { return positional_; }
  const std::string& usage() const { return usage_; }

 private:
  enum class Kind { kBool, kString, kSlice };
  struct Flag {
    Kind kind;
    std::string name;
    char shorthand = 0;
    bool changed = false;
    std::unique_ptr<bool> b;
    std::unique_ptr<std::string> s;
    std::unique_ptr<std::vector<std::string>> v;
  };
  Flag& Add(const std::string& name, char shorthand, Kind kind);
  Status Set(Flag& f, const std::string& flag_text, const std::string& value);

  std::string usage_;
  std::map<std::string, Flag> flags_;
  std::map<char, std::string> shorthands_;
  std::vector<std::string> positional_;
  bool help_ = false;
};

}  // namespace kes

// The `kes` sub-commands (spec cli.md §3). Each takes the words after its
// own name and returns the exit code.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/flags.h"

namespace kes::cli {

using Args = std::vector<std::string>;

int KeyCommand(const Args& args);
int PolicyCommand(const Args& args);
int IdentityCommand(const Args& args);
int LsCommand(const Args& args);
int StatusCommand(const Args& args);
int MetricCommand(const Args& args);
int LogCommand(const Args& args);
int MigrateCommand(const Args& args);
int UpdateCommand(const Args& args);

// Parses `args` into `flags`. Returns an exit code when the command must
// stop: 2 after printing usage for -h/--help, 1 after a flag error
// ("Error: <msg>. See '<command> --help'", or without the suffix when
// `command` is empty). nullopt: go on.
std::optional<int> ParseFlags(FlagSet& flags, const Args& args, const std::string& command);

// --json and --color <when>: the output options of the ls, info and status
// commands, registered on a command's FlagSet.
struct OutputFlags {
  bool* json;
  std::string* color;
};
OutputFlags AddOutputFlags(FlagSet& flags);
// ParseFlags, then applies --color; a bad value fails like a flag error.
std::optional<int> ParseFlags(FlagSet& flags, const Args& args, const std::string& command,
                              const OutputFlags& output);

// The machine architecture in Go's GOARCH spelling ("amd64", "arm64").
std::string HostArch();

// Shell completion (cli.md §1.7): candidates for the words of COMP_LINE.
std::vector<std::string> CompletionCandidates(const std::string& comp_line);

}  // namespace kes::cli

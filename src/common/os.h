// Operating-system errors worded like Go's (upstream's messages are Go's
// *PathError texts: "open /x: no such file or directory"), and reading a
// whole file with such messages.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace kes {

// Go's syscall.Errno text: strerror with a lower-case first letter.
std::string GoErrnoText(int err);
// "<op> <path>: <errno text>", Go's *fs.PathError.
std::string GoPathError(std::string_view op, std::string_view path, int err);
// The file's bytes; errors are Go's os.ReadFile texts (kInvalidArgument).
Result<std::string> ReadWholeFile(const std::string& path);
// The environment variable's value; empty when unset.
std::string GetEnv(const char* name);

}  // namespace kes

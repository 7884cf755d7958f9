// Entry point of every `kes` sub-command except `server` (spec cli.md).
#pragma once

namespace kes::cli {

// argv[0] is the program name. Returns the process exit code
// (0 success, 1 failure, 2 usage error).
int Main(int argc, char** argv);

}  // namespace kes::cli

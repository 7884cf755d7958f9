// `kes server [flags]` (spec cli.md §3.2, config.md §5-6).
#pragma once

namespace kes::server {

// argv[0] is "server". Returns the process exit code.
int ServerMain(int argc, char** argv);

}  // namespace kes::server

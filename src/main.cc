// The one `kes` binary: `kes server ...` runs the server, every other
// sub-command is the CLI (spec cli.md §1.1).
#include <string_view>

#include "cli/cli.h"
#include "server/server_command.h"

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "server") {
    return kes::server::ServerMain(argc - 1, argv + 1);
  }
  return kes::cli::Main(argc, argv);
}

// `kes update` (spec cli.md §3.12). kes-cpp is built from source and has no
// binary release channel, so the command never downloads anything: it
// validates its arguments like upstream and explains how to update.
#include <sys/utsname.h>

#include <cctype>

#include "cli/commands.h"
#include "cli/term.h"
#include "common/version.h"

namespace kes::cli {
namespace {

const char* kUsage =
    "Usage:\n"
    "    kes update [options] [<version>]\n"
    "\n"
    "Options:\n"
    "    -k, --insecure           Skip TLS certificate validation.\n"
    "    -d, --downgrade          Allow downgrading to a previous version.\n"
    "    -o, --output <PATH>      Write the binary to <PATH> instead of replacing kes.\n"
    "        --os <OS>            Download a binary for the given operating system.\n"
    "        --arch <ARCH>        Download a binary for the given CPU architecture.\n"
    "        --minisign-key <KEY> Verify the binary with this minisign public key.\n"
    "    -h, --help               Print command line options.\n"
    "\n"
    "    kes-cpp does not download binaries: rebuild it from source instead\n"
    "    (git pull && cmake --build <build dir> --target kes).\n"
    "\n"
    "Example:\n"
    "    $ kes update\n";

// Release tags look like 2025-03-12T09-35-18Z.
bool IsReleaseVersion(const std::string& v) {
  static const std::string kShape = "dddd-dd-ddTdd-dd-ddZ";
  if (v.size() != kShape.size()) return false;
  for (size_t i = 0; i < v.size(); ++i) {
    if (kShape[i] == 'd' ? !std::isdigit(static_cast<unsigned char>(v[i])) : v[i] != kShape[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string HostArch() {
  utsname u{};
  uname(&u);
  std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  return m;
}

int UpdateCommand(const Args& args) {
  FlagSet f(kUsage);
  f.Bool("insecure", 'k');
  f.Bool("downgrade", 'd');
  std::string* output = f.String("output", 'o');
  std::string* os = f.String("os", 0, "linux");
  std::string* arch = f.String("arch", 0, HostArch());
  f.String("minisign-key", 0, "RWTx5Zr1tiHQLwG9keckT0c45M3AGeHD6IvimQHpyRywVWGbP1aVSGav");
  if (auto rc = ParseFlags(f, args, "kes update")) return *rc;
  if (f.args().size() > 1) return FailSee("too many arguments", "kes update");
  if (output->empty()) {
    if (*os != "linux")
      return Fail("cannot update to a '" + *os + "' binary on linux-" + HostArch() +
                  ". Use '--output'");
    if (*arch != HostArch()) {
      return Fail("cannot update to a '" + *arch + "' binary on linux-" + HostArch() +
                  ". Use '--output'");
    }
  }
  std::string version = f.args().empty() ? "latest" : f.args()[0];
  if (version != "latest") {
    std::string v = version.starts_with("v") ? version.substr(1) : version;
    if (!IsReleaseVersion(v)) {
      return Fail("invalid release version '" + version +
                  "': not a release tag (YYYY-MM-DDTHH-MM-SSZ)");
    }
  }
  return Fail("kes-cpp " + std::string(BuildVersion()) +
              " cannot update itself: it has no binary release channel and never downloads "
              "upstream Go binaries. Rebuild from source: git pull && cmake --build <build dir> "
              "--target kes");
}

}  // namespace kes::cli

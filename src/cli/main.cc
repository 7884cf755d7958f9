// `kes` dispatch, top-level usage, --version and shell completion
// (spec cli.md §1.1, §1.6, §1.7).
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/connect.h"
#include "cli/term.h"
#include "common/version.h"

namespace kes::cli {
namespace {

const char* kUsage =
    "Usage:\n"
    "    kes [options] <command>\n"
    "\n"
    "Commands:\n"
    "    server                   Start a KES server.\n"
    "\n"
    "    ls                       List keys, policies and identities.\n"
    "    key                      Manage cryptographic keys.\n"
    "    policy                   Manage KES policies.\n"
    "    identity                 Manage KES identities.\n"
    "\n"
    "    log                      Print error and audit log events.\n"
    "    status                   Print server status.\n"
    "    metric                   Print server metrics.\n"
    "\n"
    "    migrate                  Migrate KMS data.\n"
    "    update                   Update KES binary.\n"
    "\n"
    "Options:\n"
    "    -v, --version            Print version information.\n"
    "        --auto-completion    Install auto-completion for this shell.\n"
    "    -h, --help               Print command line options.\n"
    "\n"
    "Example:\n"
    "    $ kes identity new --ip \"127.0.0.1\" localhost\n"
    "    $ kes server --config config.yml\n";

int Version() {
  auto line = [](const std::string& label, const std::string& value, const std::string& note) {
    std::string v = value;
    if (v.size() < 22) v.append(22 - v.size(), ' ');
    std::string l = label;
    if (l.size() < 11) l.append(11 - l.size(), ' ');
    return l + v + " " + Faint(note) + "\n";
  };
  std::string out;
  out += line("Version", std::string(BuildVersion()), "commit=" + std::string(BuildCommit()));
  out += line("Runtime", "C++20 linux/" + HostArch(), "compiler=gcc");
  // Upstream prints its own licence and copyright; kes-cpp is a separate
  // code base and names itself instead.
  out += line("Project", "kes-cpp", "drop-in replacement for MinIO KES");
  Out(out);
  return 0;
}

// The completion table (cli.md §1.7): command path -> candidates.
const std::map<std::string, std::vector<std::string>>& CompletionTable() {
  static const std::map<std::string, std::vector<std::string>> kTable = {
      {"", {"server", "key", "policy", "identity", "log", "status", "metric", "update"}},
      {"server", {"--config", "--addr", "--auth"}},
      {"log", {"--audit", "--error", "--json", "--insecure"}},
      {"status", {"--short", "--api", "--json", "--color", "--insecure"}},
      {"metric", {"--rate", "--insecure"}},
      {"update", {"--downgrade", "--output", "--os", "--arch", "--minisign-key", "--insecure"}},
      {"key", {"create", "import", "info", "ls", "rm", "encrypt", "decrypt", "dek"}},
      {"key create", {"--insecure"}},
      {"key import", {"--insecure"}},
      {"key info", {"--insecure", "--json", "--color"}},
      {"key ls", {"--insecure", "--json", "--color"}},
      {"key rm", {"--insecure"}},
      {"key encrypt", {"--insecure"}},
      {"key decrypt", {"--insecure"}},
      {"key dek", {"--insecure"}},
      {"policy", {"info", "ls", "rm", "show"}},
      {"identity", {"new", "of", "info", "ls", "rm"}},
      {"identity new", {"--key", "--cert", "--force", "--ip", "--dns", "--expiry", "--encrypt"}},
  };
  return kTable;
}

}  // namespace

// Completion mode: print the candidates for COMP_LINE.
std::vector<std::string> CompletionCandidates(const std::string& comp_line) {
  std::vector<std::string> words;
  std::istringstream in(comp_line);
  for (std::string w; in >> w;) words.push_back(w);
  bool trailing_space = !comp_line.empty() && comp_line.back() == ' ';
  std::string last = (!trailing_space && words.size() > 1) ? words.back() : "";
  if (!trailing_space && words.size() > 1) words.pop_back();
  std::string path;
  for (size_t i = 1; i < words.size(); ++i) {
    if (words[i].starts_with("-")) continue;
    std::string next = path.empty() ? words[i] : path + " " + words[i];
    if (CompletionTable().count(next) == 0) return {};  // not a command path
    path = next;
  }
  std::vector<std::string> out;
  auto it = CompletionTable().find(path);
  if (it == CompletionTable().end()) return out;
  for (const auto& c : it->second) {
    if (c.starts_with(last)) out.push_back(c);
  }
  return out;
}

namespace {

int InstallCompletion(const char* argv0) {
  const char* shell = std::getenv("SHELL");
  if (shell == nullptr)
    return Fail("failed to detect shell. The env variable $SHELL is not defined");
  std::string sh = std::filesystem::path(shell).filename().string();
  const char* home = std::getenv("HOME");
  std::string rc;
  std::vector<std::string> lines;
  std::error_code ec;
  std::string binary = std::filesystem::canonical("/proc/self/exe", ec).string();
  std::string complete = "complete -o default -C " + binary + " " + argv0;
  if (sh == "zsh") {
    rc = std::string(home ? home : "") + "/.zshrc";
    lines = {"autoload -U +X bashcompinit && bashcompinit", complete};
  } else if (sh == "bash") {
    rc = std::string(home ? home : "") + "/.bashrc";
    lines = {complete};
  } else {
    return Fail("auto-completion for '" + sh + "' is not available");
  }
  std::ifstream in(rc);
  if (!in) return Fail("open " + rc + ": no such file or directory");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string content = "\n" + ss.str();
  std::vector<std::string> missing;
  for (auto& l : lines) {
    if (content.find("\n" + l) == std::string::npos) missing.push_back(l);
  }
  if (missing.empty()) {
    Out("Completion is already installed.\n");
    return 0;
  }
  std::ofstream out(rc, std::ios::app);
  std::string text = ss.str().empty() || ss.str().back() == '\n' ? "" : "\n";
  for (auto& l : missing) text += l + "\n";
  out << text;
  if (!out) return Fail("failed to write " + rc);
  std::string msg = "Added completion to '" + rc +
                    "'\n\nTo uninstall completion remove the following lines from '" + rc + "':\n";
  for (auto& l : missing) msg += "   " + l + "\n";
  Out(msg);
  return 0;
}

}  // namespace

std::optional<int> ParseFlags(FlagSet& flags, const Args& args, const std::string& command) {
  Status s = flags.Parse(args);
  if (!s.ok()) {
    if (command.empty()) return Fail(s.message());
    return FailSee(s.message(), command);
  }
  if (flags.help()) {
    Err(flags.usage());
    return 2;
  }
  return std::nullopt;
}

OutputFlags AddOutputFlags(FlagSet& flags) {
  return {flags.Bool("json"), flags.String("color", 0, "auto")};
}

std::optional<int> ParseFlags(FlagSet& flags, const Args& args, const std::string& command,
                              const OutputFlags& output) {
  if (auto rc = ParseFlags(flags, args, command)) return rc;
  if (Status s = SetColorMode(*output.color); !s.ok()) return FailSee(s.message(), command);
  return std::nullopt;
}

int Main(int argc, char** argv) {
  Args args(argv + 1, argv + argc);
  const char* shell = std::getenv("SHELL");
  const char* comp_line = std::getenv("COMP_LINE");
  if (shell != nullptr && comp_line != nullptr &&
      (std::string_view(shell).ends_with("zsh") || std::string_view(shell).ends_with("bash"))) {
    for (const auto& c : CompletionCandidates(comp_line)) Out(c + "\n");
    return 0;
  }
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    Err(kUsage);
    return 2;
  }
  InstallInterruptHandler();
  const std::string& cmd = args[0];
  Args rest(args.begin() + 1, args.end());
  if (cmd == "-v" || cmd == "--version") return Version();
  if (cmd == "--auto-completion") return InstallCompletion(argv[0]);
  if (cmd == "ls") return LsCommand(rest);
  if (cmd == "key") return KeyCommand(rest);
  if (cmd == "policy") return PolicyCommand(rest);
  if (cmd == "identity") return IdentityCommand(rest);
  if (cmd == "log") return LogCommand(rest);
  if (cmd == "status") return StatusCommand(rest);
  if (cmd == "metric") return MetricCommand(rest);
  if (cmd == "migrate") return MigrateCommand(rest);
  if (cmd == "update") return UpdateCommand(rest);
  if (cmd.starts_with("-")) {
    std::string flag = cmd.substr(0, cmd.find('='));
    if (!cmd.starts_with("--") && cmd.size() > 1) {
      return Fail("unknown shorthand flag: '" + cmd.substr(1, 1) + "' in " + cmd +
                  ". See 'kes --help'");
    }
    return Fail("unknown flag: " + flag + ". See 'kes --help'");
  }
  return Fail(GoQuote(cmd) + " is not a kes command. See 'kes --help'");
}

}  // namespace kes::cli

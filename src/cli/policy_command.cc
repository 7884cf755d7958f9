// `kes policy info|ls|show` (spec cli.md §3.6) and `kes ls` (§3.7).
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/connect.h"
#include "cli/format.h"
#include "cli/term.h"

namespace kes::cli {
namespace {

using nlohmann::json;

const char* kPolicyUsage =
    "Usage:\n"
    "    kes policy <command>\n"
    "\n"
    "Commands:\n"
    "    info                     Get information about a KES policy.\n"
    "    ls                       List KES policies.\n"
    "    show                     Display a KES policy.\n"
    "\n"
    "Options:\n"
    "    -h, --help               Print command line options.\n"
    "\n"
    "Example:\n"
    "    $ kes policy show my-app\n";

std::string Usage(const std::string& synopsis, const std::string& example, bool json_color) {
  std::string opts = "    -k, --insecure           Skip TLS certificate validation.\n";
  if (json_color) {
    opts +=
        "        --json               Print in JSON format.\n"
        "        --color <when>       Specify when to use colored output.\n";
  }
  return "Usage:\n    " + synopsis + "\n\nOptions:\n" + opts +
         "    -h, --help               Print command line options.\n\nExample:\n    " + example +
         "\n";
}

std::string Dump(const json& j, bool indent) { return indent ? j.dump(2) : j.dump(); }

int List(const Args& args) {
  const std::string cmd = "kes policy ls";
  FlagSet f(Usage("kes policy ls [options] [<pattern>]", "$ kes policy ls 'my-app*'", true));
  bool* insecure = f.Bool("insecure", 'k');
  const OutputFlags output = AddOutputFlags(f);
  f.String("enclave", 'e');
  if (auto rc = ParseFlags(f, args, cmd, output)) return *rc;
  if (f.args().size() > 1) return FailSee("too many arguments", cmd);
  auto client = Connect({*insecure, {}, {}});
  if (!client.ok()) return Fail(client.status().message());
  std::string prefix = f.args().empty() ? "" : f.args()[0];
  if (prefix == "*") prefix.clear();
  auto names = (*client)->ListPolicies(prefix);
  if (!names.ok()) return FailRequest(names.status(), "failed to list keys: ");  // sic
  PrintNames(*names, "Key", *output.json);  // header "Key": sic (cli.md §3.6)
  return 0;
}

int Info(const Args& args) {
  const std::string cmd = "kes policy info";
  FlagSet f(Usage("kes policy info [options] <name>", "$ kes policy info my-app", true));
  bool* insecure = f.Bool("insecure", 'k');
  const OutputFlags output = AddOutputFlags(f);
  f.String("enclave", 'e');
  if (auto rc = ParseFlags(f, args, cmd, output)) return *rc;
  if (f.args().empty()) return FailSee("no policy name specified", "kes policy show");  // sic
  auto client = Connect({*insecure, {}, {}});
  if (!client.ok()) return Fail(client.status().message());
  auto info = (*client)->DescribePolicy(f.args()[0]);
  if (!info.ok()) return FailRequest(info.status());
  if (*output.json) {
    json j = {
        {"name", info->name}, {"created_at", info->created_at}, {"created_by", info->created_by}};
    Out(Dump(j, IsTerminal()) + "\n");
    return 0;
  }
  std::string out = Bold(Faint("Name        ")) + info->name + "\n";
  if (!IsZeroTime(info->created_at)) {
    out += Bold(Faint("Date        ")) + FormatDate(info->created_at, true) + "\n";
  }
  if (!info->created_by.empty()) out += Bold(Faint("Created by  ")) + info->created_by + "\n";
  Out(out);
  return 0;
}

int Show(const Args& args) {
  const std::string cmd = "kes policy show";
  FlagSet f(Usage("kes policy show [options] <name>", "$ kes policy show my-app", false));
  bool* insecure = f.Bool("insecure", 'k');
  bool* as_json = f.Bool("json");
  f.String("enclave", 'e');
  if (auto rc = ParseFlags(f, args, cmd)) return *rc;
  if (f.args().empty()) return FailSee("no policy name specified", cmd);
  const std::string& name = f.args()[0];
  auto client = Connect({*insecure, {}, {}});
  if (!client.ok()) return Fail(client.status().message());
  auto policy = (*client)->GetPolicy(name);
  if (!policy.ok()) return FailRequest(policy.status(), "failed to show policy '" + name + "': ");
  if (!IsTerminal() || *as_json) {
    json j = json::object();
    auto rules = [](const std::vector<std::string>& v) {
      json o = json::object();
      for (auto& p : v) o[p] = json::object();
      return o;
    };
    if (!policy->allow.empty()) j["allow"] = rules(policy->allow);
    if (!policy->deny.empty()) j["deny"] = rules(policy->deny);
    j["created_at"] = policy->created_at;
    j["created_by"] = policy->created_by;
    Out(Dump(j, IsTerminal()) + "\n");
    return 0;
  }
  std::string out;
  if (!policy->allow.empty()) {
    out += BoldColor(kGreen, "Allow:") + "\n";
    for (auto& p : policy->allow) out += "  · " + p + "\n";
  }
  if (!policy->allow.empty() && !policy->deny.empty()) out += "\n";
  if (!policy->deny.empty()) {
    out += BoldColor(kDenyRed, "Deny:") + "\n";
    for (auto& p : policy->deny) out += "  · " + p + "\n";
  }
  out += "\n\n";
  if (!IsZeroTime(policy->created_at)) {
    out += BoldColor(kCyan, "Created at:") + " " + FormatDate(policy->created_at, true) + "\n";
  }
  out += BoldColor(kCyan, "Created by:") + " " +
         (policy->created_by.empty() ? std::string("<unknown>") : policy->created_by) + "\n";
  Out(out);
  return 0;
}

}  // namespace

int PolicyCommand(const Args& args) {
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    Err(kPolicyUsage);
    return 2;
  }
  Args rest(args.begin() + 1, args.end());
  const std::string& sub = args[0];
  if (sub == "info") return Info(rest);
  if (sub == "ls") return List(rest);
  if (sub == "show") return Show(rest);
  if (sub.starts_with("-")) return FailSee("unknown flag: " + sub, "kes policy");
  return FailSee(GoQuote(sub) + " is not a policy command", "kes policy");
}

int LsCommand(const Args& args) {
  FlagSet f(
      "Usage:\n"
      "    kes ls [options] [<prefix>]\n"
      "\n"
      "Options:\n"
      "    -a, --api-key <KEY>      API key to authenticate to the KES server.\n"
      "    -s, --server <HOST:PORT> Address of the KES server. (default: $MINIO_KES_SERVER)\n"
      "    -k, --insecure           Skip TLS certificate validation.\n"
      "        --json               Print the names in JSON format.\n"
      "    -i, --identity           List identities instead of keys.\n"
      "    -p, --policy             List policies instead of keys.\n"
      "    -h, --help               Print command line options.\n"
      "\n"
      "Examples:\n"
      "    $ kes ls\n"
      "    $ kes ls -p 'my-app*'\n");
  std::string* api_key = f.String("api-key", 'a', APIKeyEnv());
  std::string* server = f.String("server", 's', EndpointEnv());
  bool* insecure = f.Bool("insecure", 'k');
  bool* as_json = f.Bool("json");
  bool* identities = f.Bool("identity", 'i');
  bool* policies = f.Bool("policy", 'p');
  Status ps = f.Parse(args);
  if (!ps.ok()) return Fail(ps.message());
  if (f.help()) {
    Err(f.usage());
    return Fail("pflag: help requested");  // upstream quirk: exit 1
  }
  if (f.args().size() > 1) return Fail("too many arguments");
  if (*identities && *policies) {
    return Fail("'-p / --policy' and '-i / --identity' must not be used at the same time");
  }
  // -a/-s default to the environment; an explicit value wins over it.
  ConnectOptions opts{*insecure, *server, {}};
  if (f.Changed("api-key") || !api_key->empty()) opts.api_key = *api_key;
  auto client = Connect(opts);
  if (!client.ok()) return Fail(client.status().message());
  std::string prefix = f.args().empty() ? "" : f.args()[0];
  Result<std::vector<std::string>> names = std::vector<std::string>{};
  std::string header;
  if (*identities) {
    names = (*client)->ListIdentities(prefix);
    header = "Identity";
  } else if (*policies) {
    names = (*client)->ListPolicies(prefix);
    header = "Policy";
  } else {
    names = (*client)->ListKeys(prefix);
    header = "Key";
  }
  if (!names.ok()) return FailRequest(names.status());
  PrintNames(*names, header, *as_json);
  return 0;
}

}  // namespace kes::cli

// `kes status` (spec cli.md §3.8).
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/connect.h"
#include "cli/format.h"
#include "cli/term.h"

namespace kes::cli {
namespace {

using nlohmann::json;

const char* kUsage =
    "Usage:\n"
    "    kes status [options]\n"
    "\n"
    "Options:\n"
    "    -k, --insecure           Skip TLS certificate validation.\n"
    "    -s, --short              Print status information in a short summary format.\n"
    "        --api                List all server APIs.\n"
    "        --json               Print status information in JSON format.\n"
    "        --color <when>       Specify when to use colored output.\n"
    "    -h, --help               Print command line options.\n"
    "\n"
    "Example:\n"
    "    $ kes status --short\n";

}  // namespace

int StatusCommand(const Args& args) {
  const std::string cmd = "kes status";
  FlagSet f(kUsage);
  bool* insecure = f.Bool("insecure", 'k');
  bool* short_form = f.Bool("short", 's');
  bool* api = f.Bool("api");
  const OutputFlags output = AddOutputFlags(f);
  f.String("enclave", 'e');
  if (auto rc = ParseFlags(f, args, cmd, output)) return *rc;
  if (!f.args().empty()) return FailSee("too many arguments", cmd);

  auto client = Connect({*insecure, {}, {}});
  if (!client.ok()) return Fail(client.status().message());
  auto status = (*client)->GetStatus();
  if (!status.ok()) return FailRequest(status.status());
  std::vector<client::APIRoute> routes;
  if (*api) {
    auto r = (*client)->APIs();
    if (!r.ok()) return FailRequest(r.status());
    routes = std::move(*r);
  }

  if (*output.json) {
    bool indent = IsTerminal() && !*short_form;
    if (*api) {
      json arr = json::array();
      for (auto& r : routes) {
        json o = {{"method", r.method}, {"path", r.path}};
        if (r.max_body != 0) o["max_body"] = r.max_body;
        if (r.timeout_seconds != 0) o["timeout"] = r.timeout_seconds;
        arr.push_back(o);
      }
      Out((indent ? arr.dump(2) : arr.dump()) + "\n");
      return 0;
    }
    const auto& s = *status;
    json o = json::object();
    if (!s.version.empty()) o["version"] = s.version;
    if (!s.os.empty()) o["os"] = s.os;
    if (!s.arch.empty()) o["arch"] = s.arch;
    if (s.uptime_seconds != 0) o["uptime"] = static_cast<int64_t>(s.uptime_seconds);
    if (s.num_cpu != 0) o["num_cpu"] = s.num_cpu;
    if (s.num_cpu_used != 0) o["num_cpu_used"] = s.num_cpu_used;
    if (s.mem_heap_used != 0) o["mem_heap_used"] = s.mem_heap_used;
    if (s.mem_stack_used != 0) o["mem_stack_used"] = s.mem_stack_used;
    if (s.keystore_latency != 0) o["keystore_latency"] = s.keystore_latency;
    if (s.keystore_unreachable) o["keystore_unreachable"] = true;
    if (s.keystore_unavailable) o["keystore_unavailable"] = true;
    Out((indent ? o.dump(2) : o.dump()) + "\n");
    return 0;
  }

  std::string endpoint = (*client)->endpoints().front();
  if (endpoint.starts_with("https://")) endpoint.erase(0, 8);
  std::string out = BoldColor(kGreen, "●") + " " + BoldColor(kCyan, endpoint) + "\n";
  if (!*short_form) {
    const auto& s = *status;
    auto line = [](const std::string& label, const std::string& value) {
      return "  " + Pad(label, 8) + " " + value + "\n";
    };
    out += line("Version", s.version);
    out += line("Uptime", FormatUptime(s.uptime_seconds));
    out += line("Latency", FormatDuration(RoundDuration(s.latency, std::chrono::milliseconds(1))));
    out += line("OS", s.os);
    out += line("CPUs", std::to_string(s.num_cpu_used) + " " + s.arch);
    out += "  Memory  \n";
    out +=
        "  · " + Pad("Heap", 6) + " " + FormatSize(static_cast<uint64_t>(s.mem_heap_used)) + "\n";
    out +=
        "  · " + Pad("Stack", 6) + " " + FormatSize(static_cast<uint64_t>(s.mem_stack_used)) + "\n";
  }
  if (*api) {
    out += "\n  " + Faint(Underline(Pad("Method", 7) + " " + Pad("API", 28) + " Timeout")) + "\n";
    for (auto& r : routes) {
      std::string timeout =
          r.timeout_seconds == 0 ? "Inf" : FormatDuration(std::chrono::seconds(r.timeout_seconds));
      out += "  " + Pad(r.method, 7) + " " + Pad(r.path, 28) + " " + timeout + "\n";
    }
  }
  Out(out);
  return 0;
}

}  // namespace kes::cli

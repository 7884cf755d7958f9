// `kes log [--audit|--error] [--json]` (spec cli.md §3.10): follows a log
// stream until interrupted.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/connect.h"
#include "cli/format.h"
#include "cli/term.h"
#include "common/json_members.h"

namespace kes::cli {
namespace {

using nlohmann::json;

const char* kUsage =
    "Usage:\n"
    "    kes log [options]\n"
    "\n"
    "Options:\n"
    "    --audit                  Print audit logs. (default)\n"
    "    --error                  Print error logs.\n"
    "    --json                   Print log events as JSON.\n"
    "    -k, --insecure           Skip TLS certificate validation.\n"
    "    -h, --help               Print command line options.\n"
    "\n"
    "Examples:\n"
    "    $ kes log\n"
    "    $ kes log --error\n";

// Go's rounding of the audit latency for display.
std::string AuditLatency(std::chrono::nanoseconds d) {
  using namespace std::chrono;
  if (d >= seconds(1))
    d = RoundDuration(d, milliseconds(100));
  else if (d >= milliseconds(10))
    d = RoundDuration(d, milliseconds(1));
  else if (d >= milliseconds(1))
    d = RoundDuration(d, microseconds(100));
  else if (d >= microseconds(10))
    d = RoundDuration(d, microseconds(1));
  return FormatDuration(d);
}

std::string Clip(const std::string& s, size_t n) { return s.size() > n ? s.substr(0, n) : s; }

std::string AuditLine(const json& e) {
  std::string time = StringMember(e, "time");
  std::string hms = FormatDate(time, true);
  hms = hms.size() >= 19 ? hms.substr(11, 8) : "";
  const json& req = ObjectMember(e, "request");
  const json& resp = ObjectMember(e, "response");
  int64_t code = IntMember(resp, "code");
  int64_t t = IntMember(resp, "time");
  std::string ip = StringMember(req, "ip");
  if (ip.empty()) ip = "<unknown>";
  std::string status = std::to_string(code);
  status = std::string(status.size() < 5 ? 5 - status.size() : 0, ' ') + status;
  status = code == 200 ? Color(kGreen, status) : Color(kRed, status);
  // Upstream quirk kept: response.time (ms) is read as nanoseconds.
  return Pad(hms, 8) + "    " + status + "     " +
         Pad(Clip(StringMember(req, "identity"), 20), 20) + "    " + Pad(ip, 15) + "    " +
         Pad(StringMember(req, "path"), 30) + "    " + AuditLatency(std::chrono::nanoseconds(t)) +
         "\n";
}

}  // namespace

int LogCommand(const Args& args) {
  const std::string cmd = "kes log";
  FlagSet f(kUsage);
  bool* audit = f.Bool("audit", 0, true);
  bool* error = f.Bool("error");
  bool* as_json = f.Bool("json");
  bool* insecure = f.Bool("insecure", 'k');
  f.String("enclave", 'e');
  if (auto rc = ParseFlags(f, args, cmd)) return *rc;
  if (f.Changed("audit") && f.Changed("error") && *audit && *error) {
    return Fail("cannot display audit and error logs at the same time");
  }
  if (!*audit && !*error) {
    Err(f.usage());
    return 2;
  }
  if (!f.args().empty()) return FailSee("too many arguments", "kes key import");  // sic
  auto client = Connect({*insecure, {}, {}});
  if (!client.ok()) return Fail(client.status().message());

  const bool want_error = *error;
  bool header = false;
  auto on_line = [&](std::string_view line) -> bool {
    auto e = json::parse(line, nullptr, false);
    if (e.is_discarded() || !e.is_object()) return true;  // skip garbage, keep following
    if (*as_json) {
      Out(e.dump() + "\n");
      return true;
    }
    if (want_error) {
      Out(StringMember(e, "message") + "\n");
      return true;
    }
    if (!header) {
      Out(Bold(Underline("Time        Status    Identity                IP                 API     "
                         "                          Latency")) +
          "\n");
      header = true;
    }
    Out(AuditLine(e));
    return true;
  };
  Status s = want_error ? (*client)->ErrorLog(on_line) : (*client)->AuditLog(on_line);
  if (Interrupted().load()) return Fail("context canceled");
  if (!s.ok()) {
    return FailRequest(
        s, std::string("failed to connect to ") + (want_error ? "error" : "audit") + " log: ");
  }
  return 0;
}

}  // namespace kes::cli

// `kes metric` (spec cli.md §3.9): scrapes /v1/metrics every --rate until
// interrupted. SIGINT/SIGTERM end it cleanly (cursor restored, exit 0).
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.h"
#include "cli/connect.h"
#include "cli/format.h"
#include "cli/term.h"

namespace kes::cli {
namespace {

using nlohmann::json;

const char* kUsage =
    "Usage:\n"
    "    kes metric [options]\n"
    "\n"
    "Options:\n"
    "    --rate <DURATION>        Scrap rate when monitoring metrics. (default: 5s)\n"
    "    -k, --insecure           Skip TLS certificate validation.\n"
    "    -h, --help               Print command line options.\n"
    "\n"
    "Example:\n"
    "    $ kes metric --rate 10s\n";

std::string MetricsJson(const client::Metrics& m) {
  json hist = json::object();
  for (auto& [bound, count] : m.latency_histogram) hist[std::to_string(bound)] = count;
  json o = {{"kes_http_request_success", m.request_ok},
            {"kes_http_request_error", m.request_err},
            {"kes_http_request_failure", m.request_fail},
            {"kes_http_request_active", m.request_active},
            {"kes_log_audit_events", m.audit_events},
            {"kes_log_error_events", m.error_events},
            {"kes_http_response_time", hist},
            {"kes_system_up_time", m.uptime.count()},
            {"kes_system_num_cpu", m.cpus},
            {"kes_system_num_cpu_used", m.usable_cpus},
            {"kes_system_num_threads", m.threads},
            {"kes_system_mem_heap_used", m.heap_alloc},
            {"kes_system_mem_heap_objects", m.heap_objects},
            {"kes_system_mem_stack_used", m.stack_alloc}};
  // nlohmann sorts object keys; upstream's order is its struct order. Both
  // are valid JSON objects; consumers do not depend on key order.
  return o.dump();
}

// Mean latency from the cumulative histogram (bucket upper bounds).
std::chrono::nanoseconds MeanLatency(const client::Metrics& m) {
  uint64_t prev = 0, n = 0;
  long double sum = 0;
  for (auto& [bound, count] : m.latency_histogram) {
    uint64_t in_bucket = count >= prev ? count - prev : 0;
    sum += static_cast<long double>(in_bucket) * bound;
    n += in_bucket;
    prev = count;
  }
  if (n == 0) return std::chrono::nanoseconds(0);
  return std::chrono::nanoseconds(static_cast<int64_t>(sum / n));
}

std::string Dashboard(const client::Metrics& m, uint64_t prev_requests, double rate_seconds) {
  char buf[512];
  uint64_t total = m.RequestN();
  double req_s = prev_requests == 0 || total < prev_requests
                     ? 0
                     : static_cast<double>(total - prev_requests) / rate_seconds;
  auto pct = [&](uint64_t v) { return total == 0 ? 0.0 : 100.0 * static_cast<double>(v) / total; };
  std::string latency = FormatDuration(RoundDuration(MeanLatency(m), std::chrono::milliseconds(1)));
  std::string out;
  out +=
      Bold("Request    OK [2xx]       Err [4xx]       Err [5xx]      Req/s        Latency") + "\n";
  std::snprintf(buf, sizeof buf, "           %s %s %s %-12.2f %s\n",
                Color(kGreen, Pad(std::to_string(m.request_ok), 14)).c_str(),
                Color(kYellow, Pad(std::to_string(m.request_err), 15)).c_str(),
                Color(kRed, Pad(std::to_string(m.request_fail), 14)).c_str(), req_s,
                latency.c_str());
  out += buf;
  std::snprintf(buf, sizeof buf, "           %-14s %-15s %-14s\n",
                (std::to_string(std::lround(pct(m.request_ok))) + "%").c_str(),
                (std::to_string(std::lround(pct(m.request_err))) + "%").c_str(),
                (std::to_string(std::lround(pct(m.request_fail))) + "%").c_str());
  out += buf;
  out += "\n";
  out +=
      Bold("System       UpTime            Heap           Stack       CPUs        Threads") + "\n";
  std::snprintf(buf, sizeof buf, "             %-17s %-14s %-11s %-11s %llu\n",
                FormatDuration(RoundDuration(m.uptime, std::chrono::seconds(1))).c_str(),
                FormatSize(m.heap_alloc).c_str(), FormatSize(m.stack_alloc).c_str(),
                (std::to_string(m.usable_cpus) + "/" + std::to_string(m.cpus)).c_str(),
                static_cast<unsigned long long>(m.threads));
  out += buf;
  out += "\n\n";
  return out;  // 8 lines
}

// Sleeps `d`, waking early on interrupt. False if interrupted.
bool Wait(std::chrono::nanoseconds d) {
  auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
    if (Interrupted().load()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return !Interrupted().load();
}

}  // namespace

int MetricCommand(const Args& args) {
  const std::string cmd = "kes metric";
  FlagSet f(kUsage);
  std::string* rate_text = f.String("rate", 0, "5s");
  bool* insecure = f.Bool("insecure", 'k');
  f.String("enclave", 'e');
  if (auto rc = ParseFlags(f, args, cmd)) return *rc;
  auto rate = ParseDuration(*rate_text);
  if (!rate.ok()) {
    return FailSee(
        "invalid argument \"" + *rate_text + "\" for \"--rate\" flag: " + rate.status().message(),
        cmd);
  }
  if (!f.args().empty()) return FailSee("too many arguments", cmd);
  if (rate->count() <= 0) *rate = std::chrono::seconds(5);
  auto client = Connect({*insecure, {}, {}});
  if (!client.ok()) return Fail(client.status().message());

  const bool terminal = IsTerminal();
  if (!terminal) {
    while (!Interrupted().load()) {
      auto m = (*client)->GetMetrics();
      if (Interrupted().load()) break;
      if (!m.ok()) return FailRequest(m.status(), "failed to fetch metrics: ");
      Out(MetricsJson(*m) + "\n");
      if (!Wait(*rate)) break;
    }
    return 0;
  }
  Out("\x1b[?25l");  // hide the cursor
  uint64_t prev = 0;
  bool drawn = false;
  while (!Interrupted().load()) {
    auto m = (*client)->GetMetrics();
    if (Interrupted().load()) break;
    if (m.ok()) {
      if (drawn) Out("\x1b[8A");  // back to the top of the dashboard
      Out(Dashboard(*m, prev, std::chrono::duration<double>(*rate).count()));
      drawn = true;
      prev = m->RequestN();
    }
    if (!Wait(*rate)) break;
  }
  Out("\x1b[?25h");  // show the cursor again
  return 0;
}

}  // namespace kes::cli

#include "server/metrics.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "server/system_info.h"

namespace kes::server {

std::string FormatPromFloat(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == 0) return "0";
  char buf[64];
  // Shortest round-trip digits in scientific form: d.ddde±XX.
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string_view sci(buf, r.ptr - buf);
  size_t e = sci.find('e');
  std::string_view exp_text = sci.substr(e + 1);
  if (!exp_text.empty() && exp_text[0] == '+') exp_text.remove_prefix(1);
  int exp = 0;
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exp);
  if (exp < -4 || exp >= 21) return std::string(sci);
  if (exp >= 6) {
    // Go switches to %e at exponent >= 6 when printing shortest digits.
    return std::string(sci);
  }
  r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, r.ptr - buf);
}

Metrics::Shard& Metrics::Local() {
  // Metrics is one per process; a thread keeps the shard it was given.
  thread_local size_t index = next_shard_.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shards_[index];
}

template <class F>
uint64_t Metrics::Sum(F field) const {
  uint64_t total = 0;
  for (const Shard& s : shards_) total += field(s).load(std::memory_order_relaxed);
  return total;
}

void Metrics::RequestFinished(unsigned status, std::chrono::nanoseconds elapsed) {
  Shard& s = Local();
  s.active.fetch_sub(1, std::memory_order_relaxed);
  if (status < s.by_code.size()) s.by_code[status].fetch_add(1, std::memory_order_relaxed);
  const double secs = std::chrono::duration<double>(elapsed).count();
  size_t i = 0;
  while (i < kBuckets.size() && secs > kBuckets[i]) ++i;
  s.buckets[i].fetch_add(1, std::memory_order_relaxed);
  s.sum_ns.fetch_add(static_cast<uint64_t>(elapsed.count()), std::memory_order_relaxed);
  s.count.fetch_add(1, std::memory_order_relaxed);
}

namespace {

void Family(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void Sample(std::string& out, std::string_view name, std::string_view labels, double v) {
  out += name;
  out += labels;
  out += ' ';
  out += FormatPromFloat(v);
  out += '\n';
}

}  // namespace

std::string Metrics::Exposition(const MetricsSnapshotInputs& in) const {
  std::string out;
  out.reserve(4096);
  const SystemInfo sys = ReadSystemInfo();

  // Counters by status class; families without samples are omitted.
  auto codes = [&](std::string_view name, std::string_view help, unsigned lo, unsigned hi) {
    bool any = false;
    for (unsigned c = lo; c < hi; ++c)
      any |= Sum([c](const Shard& x) -> auto& { return x.by_code[c]; }) > 0;
    if (!any) return;
    Family(out, name, help, "counter");
    for (unsigned c = lo; c < hi; ++c) {
      uint64_t n = Sum([c](const Shard& x) -> auto& { return x.by_code[c]; });
      if (n == 0) continue;
      Sample(out, name, "{code=\"" + std::to_string(c) + "\"}", static_cast<double>(n));
    }
  };

  // kes-cpp's own families follow Prometheus naming (counters end in
  // _total); upstream's names above and below stay exactly as upstream has them.
  Family(out, "kes_cpp_keystore_backend_gets_total",
         "Number of keystore backend Get calls made on key cache misses (kes-cpp specific).",
         "counter");
  Sample(out, "kes_cpp_keystore_backend_gets_total", "", static_cast<double>(in.backend_gets));
  Family(out, "kes_cpp_keystore_cache_keys",
         "Number of keys held in the key cache (kes-cpp specific).", "gauge");
  Sample(out, "kes_cpp_keystore_cache_keys", "", static_cast<double>(in.cached_keys));
  Family(out, "kes_cpp_keystore_offline",
         "1 while the keystore health probe finds the keystore unreachable, else 0 (kes-cpp "
         "specific).",
         "gauge");
  Sample(out, "kes_cpp_keystore_offline", "", in.keystore_offline ? 1 : 0);
    if (in.keystore_watch) {
    Family(
        out, "kes_cpp_keystore_watch_up",
        "1 while the keystore's change feed (etcd watch) is connected, else 0 (kes-cpp specific).",
        "gauge");
    Sample(out, "kes_cpp_keystore_watch_up", "", *in.keystore_watch ? 1 : 0);
  }

  Family(out, "kes_http_request_active", "Number of active requests that are not finished, yet.",
         "gauge");
  Sample(out, "kes_http_request_active", "",
         static_cast<double>(
             static_cast<int64_t>(Sum([](const Shard& x) -> auto& { return x.active; }))));
  codes("kes_http_request_error",
        "Number of request that failed due to some error. (HTTP 4xx status code)", 400, 500);
  codes("kes_http_request_failure",
        "Number of request that failed due to some internal failure. (HTTP 5xx status code)", 500,
        600);
  codes("kes_http_request_success", "Number of requests that have been served successfully.", 200,
        300);

  const uint64_t count = Sum([](const Shard& x) -> auto& { return x.count; });
  if (count > 0) {
    Family(out, "kes_http_response_time",
           "Histogram of request response times spawning from 10ms to 10s.", "histogram");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += Sum([i](const Shard& x) -> auto& { return x.buckets[i]; });
      Sample(out, "kes_http_response_time_bucket", "{le=\"" + FormatPromFloat(kBuckets[i]) + "\"}",
             static_cast<double>(cumulative));
    }
    cumulative += Sum([](const Shard& x) -> auto& { return x.buckets[kBuckets.size()]; });
    Sample(out, "kes_http_response_time_bucket", "{le=\"+Inf\"}", static_cast<double>(cumulative));
    Sample(out, "kes_http_response_time_sum", "",
           static_cast<double>(Sum([](const Shard& x) -> auto& { return x.sum_ns; })) / 1e9);
    Sample(out, "kes_http_response_time_count", "", static_cast<double>(count));
  }

  Family(out, "kes_log_audit_events",
         "Number of audit log events written to the audit log targets.", "counter");
  Sample(out, "kes_log_audit_events", "", static_cast<double>(in.log_audit_events));
  Family(out, "kes_log_error_events",
         "Number of error log events written to the error log targets.", "counter");
  Sample(out, "kes_log_error_events", "", static_cast<double>(in.log_error_events));

  Family(out, "kes_system_mem_heap_objects",
         "The number of objects that are currently allocated on the heap memory.", "gauge");
  Sample(out, "kes_system_mem_heap_objects", "", static_cast<double>(sys.heap_objects));
  Family(out, "kes_system_mem_heap_used",
         "The number of bytes that are currently allocated on the heap memory.", "gauge");
  Sample(out, "kes_system_mem_heap_used", "", static_cast<double>(sys.heap_used));
  Family(out, "kes_system_mem_stack_used", "The bytes of stack memory obtained from the OS.",
         "gauge");
  Sample(out, "kes_system_mem_stack_used", "", static_cast<double>(sys.stack_used));
  Family(out, "kes_system_num_cpu",
         "The number of logical CPUs available on the system. It may be larger than the number "
         "of usable CPUs.",
         "gauge");
  Sample(out, "kes_system_num_cpu", "", sys.num_cpu);
  Family(out, "kes_system_num_cpu_used",
         "The number of logical CPUs usable by the server. It may be smaller than the number of "
         "available CPUs.",
         "gauge");
  Sample(out, "kes_system_num_cpu_used", "", sys.num_cpu_used);
  Family(out, "kes_system_num_threads",
         "The number of concurrent co-routines/threads that currently exists.", "gauge");
  Sample(out, "kes_system_num_threads", "", sys.num_threads);
  Family(out, "kes_system_up_time", "The time the server has been up and running in seconds.",
         "gauge");
  Sample(out, "kes_system_up_time", "", std::round(in.uptime_seconds * 100) / 100);
  return out;
}

}  // namespace kes::server

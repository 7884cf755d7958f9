// Metrics: the server's Prometheus text exposition (GET /v1/metrics) parsed
// the way the SDK's Client.Metrics does (api.md §3.4.4): request counters
// summed over their `code` labels, the response-time histogram with upper
// bounds converted from seconds (+Inf ignored), and single-sample gauges.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string_view>

#include "common/status.h"

namespace kes::client {

struct Metrics {
  uint64_t request_ok = 0;      // kes_http_request_success
  uint64_t request_err = 0;     // kes_http_request_error
  uint64_t request_fail = 0;    // kes_http_request_failure
  uint64_t request_active = 0;  // kes_http_request_active
  uint64_t audit_events = 0;    // kes_log_audit_events
  uint64_t error_events = 0;    // kes_log_error_events
  // Upper bound in nanoseconds -> cumulative count.
  std::map<int64_t, uint64_t> latency_histogram;
  std::chrono::nanoseconds uptime{0};
  uint64_t cpus = 0;
  uint64_t usable_cpus = 0;
  uint64_t threads = 0;
  uint64_t heap_alloc = 0;
  uint64_t heap_objects = 0;
  uint64_t stack_alloc = 0;

  uint64_t RequestN() const { return request_ok + request_err + request_fail; }
};

// Parses the text format. Unknown families are ignored; a malformed sample
// line of a known family is an error.
Result<Metrics> ParseMetrics(std::string_view text);

}  // namespace kes::client

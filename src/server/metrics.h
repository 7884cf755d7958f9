// Request metrics and the Prometheus text exposition of /v1/metrics
// (api.md §3.4.4). Counters are relaxed atomics: no lock on the hot path.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace kes::server {

struct MetricsSnapshotInputs {
  uint64_t log_error_events = 0;
  uint64_t log_audit_events = 0;
  uint64_t backend_gets = 0;
  uint64_t cached_keys = 0;
  bool keystore_offline = false;
  std::optional<bool> keystore_watch;  // the backend's change feed, if it has one
  double uptime_seconds = 0;
};

class Metrics {
 public:
  // A metered request started / finished with `status` after `elapsed`.
  // Both on the same thread.
  void RequestStarted() { Local().active.fetch_add(1, std::memory_order_relaxed); }
  void RequestFinished(unsigned status, std::chrono::nanoseconds elapsed);

  // Prometheus text format 0.0.4, families sorted by name.
  std::string Exposition(const MetricsSnapshotInputs& in) const;

  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  static constexpr std::array<double, 10> kBuckets = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 3, 5, 10};
  // One set of counters per thread (up to kShards, then shared), summed by
  // Exposition: I/O threads never write to the same cache line, which cost
  // measurably when a second I/O thread was added (docs/performance.md).
  struct alignas(64) Shard {
    std::atomic<int64_t> active{0};
    std::atomic<uint64_t> sum_ns{0};
    std::atomic<uint64_t> count{0};
    std::array<std::atomic<uint64_t>, kBuckets.size() + 1> buckets{};  // last: +Inf
    std::array<std::atomic<uint64_t>, 600> by_code{};
  };
  static constexpr size_t kShards = 8;
  Shard& Local();
  template <class F>
  uint64_t Sum(F field) const;

  std::array<Shard, kShards> shards_;
  std::atomic<size_t> next_shard_{0};
};

// Go's strconv.FormatFloat(v, 'g', -1, 64), as Prometheus' text encoder uses.
std::string FormatPromFloat(double v);

}  // namespace kes::server

// LatencyHistogram: a log-linear histogram of nanosecond values, in the
// spirit of HdrHistogram. Values below 128 ns are exact; above, each power
// of two is split into 64 buckets, so any reported percentile is within
// 1/64 (1.6 %) of the true value. Fixed size, no allocation per sample,
// mergeable across threads.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace kes::bench {

class LatencyHistogram {
 public:
  void Record(uint64_t ns) {
    counts_[IndexOf(ns)]++;
    total_++;
    sum_ += ns;
    max_ = std::max(max_, ns);
    min_ = std::min(min_, ns);
  }

  void Merge(const LatencyHistogram& other) {
    for (size_t i = 0; i < kBuckets; i++) counts_[i] += other.counts_[i];
    total_ += other.total_;
    sum_ += other.sum_;
    max_ = std::max(max_, other.max_);
    min_ = std::min(min_, other.min_);
  }

  uint64_t count() const { return total_; }
  uint64_t max() const { return max_; }
  uint64_t min() const { return total_ ? min_ : 0; }
  double mean() const { return total_ ? static_cast<double>(sum_) / total_ : 0; }

  // The upper edge of the bucket holding the q-quantile (0 < q <= 1),
  // clamped to the largest value seen.
  uint64_t Quantile(double q) const {
    if (total_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total_));
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; i++) {
      seen += counts_[i];
      if (seen >= rank) return std::min(UpperEdge(i), max_);
    }
    return max_;
  }

 private:
  static constexpr int kExactBits = 7;  // values < 128 are exact
  static constexpr uint64_t kExact = uint64_t{1} << kExactBits;
  static constexpr uint64_t kSub = kExact / 2;  // buckets per power of two
  static constexpr size_t kBuckets = kExact + (64 - kExactBits + 1) * kSub;

  static size_t IndexOf(uint64_t v) {
    if (v < kExact) return static_cast<size_t>(v);
    int msb = 63 - std::countl_zero(v);
    int shift = msb - (kExactBits - 1);  // keeps the top 7 bits: 64..127
    return kExact + (shift - 1) * kSub + ((v >> shift) - kSub);
  }
  static uint64_t UpperEdge(size_t i) {
    if (i < kExact) return i;
    size_t k = i - kExact;
    int shift = static_cast<int>(k / kSub) + 1;
    uint64_t top = k % kSub + kSub;
    return ((top + 1) << shift) - 1;
  }

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = ~uint64_t{0};
};

}  // namespace kes::bench

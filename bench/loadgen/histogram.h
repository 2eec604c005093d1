// LatencyHistogram: an HDR-style log-linear histogram of non-negative integers (microseconds).
//
// Values below 2 * kSubBuckets are recorded exactly; above that each power-of-two range is split
// into kSubBuckets equal buckets, so a reported percentile is within 1/kSubBuckets (< 0.8%) above
// the true value. Percentiles report the highest value equivalent to the bucket reached, capped
// at the exact maximum. count(), max() and min() are exact.
//
// Threads: record() is lock-free (relaxed atomics) and may be called from any number of threads;
// read the results after the recording threads are done (or accept a slightly torn snapshot).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace otlpd::loadgen {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr uint64_t kSubBuckets = 1ULL << kSubBucketBits;  // 128

  LatencyHistogram();

  void record(uint64_t value);
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  uint64_t max() const { return max_.load(std::memory_order_relaxed); }
  uint64_t min() const;  // 0 when empty
  // The value at percentile p in [0, 100]: the smallest recorded value v such that at least
  // p% of the values are <= v (to the histogram's precision). 0 when empty.
  uint64_t percentile(double p) const;

  static size_t bucket_of(uint64_t value);
  static uint64_t highest_equivalent(size_t bucket);

 private:
  static constexpr size_t kBuckets = 2 * kSubBuckets + (64 - kSubBucketBits - 1) * kSubBuckets;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> max_{0};
  std::atomic<uint64_t> min_{UINT64_MAX};
};

}  // namespace otlpd::loadgen

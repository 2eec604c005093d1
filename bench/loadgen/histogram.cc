// LatencyHistogram: bucket arithmetic and percentile walk. Threads: see histogram.h.
#include "bench/loadgen/histogram.h"

#include <cmath>

namespace otlpd::loadgen {

LatencyHistogram::LatencyHistogram() : buckets_(new std::atomic<uint64_t>[kBuckets]) {
  for (size_t i = 0; i < kBuckets; ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

size_t LatencyHistogram::bucket_of(uint64_t v) {
  if (v < 2 * kSubBuckets) return static_cast<size_t>(v);
  const int msb = 63 - __builtin_clzll(v);        // >= kSubBucketBits + 1
  const int shift = msb - kSubBucketBits;          // >= 1: bucket width 2^shift
  return static_cast<size_t>(2 * kSubBuckets + (shift - 1) * kSubBuckets + ((v >> shift) - kSubBuckets));
}

uint64_t LatencyHistogram::highest_equivalent(size_t b) {
  if (b < 2 * kSubBuckets) return b;
  const size_t rel = b - 2 * kSubBuckets;
  const int shift = static_cast<int>(rel / kSubBuckets) + 1;
  const uint64_t sub = kSubBuckets + rel % kSubBuckets;
  const uint64_t low = sub << shift;
  return low + ((1ULL << shift) - 1);
}

void LatencyHistogram::record(uint64_t v) {
  buckets_[bucket_of(v)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  uint64_t m = max_.load(std::memory_order_relaxed);
  while (v > m && !max_.compare_exchange_weak(m, v, std::memory_order_relaxed)) {
  }
  m = min_.load(std::memory_order_relaxed);
  while (v < m && !min_.compare_exchange_weak(m, v, std::memory_order_relaxed)) {
  }
}

uint64_t LatencyHistogram::min() const {
  uint64_t m = min_.load(std::memory_order_relaxed);
  return m == UINT64_MAX ? 0 : m;
}

uint64_t LatencyHistogram::percentile(double p) const {
  const uint64_t total = count();
  if (total == 0) return 0;
  if (p < 0) p = 0;
  if (p > 100) p = 100;
  uint64_t rank = static_cast<uint64_t>(std::ceil(p * static_cast<double>(total) / 100.0));
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (size_t b = 0; b < kBuckets; ++b) {
    seen += buckets_[b].load(std::memory_order_relaxed);
    if (seen >= rank) {
      const uint64_t v = highest_equivalent(b);
      return v < max() ? (v > min() ? v : min()) : max();
    }
  }
  return max();
}

}  // namespace otlpd::loadgen

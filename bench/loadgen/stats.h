// SendStats: the sender's counters and latency histogram, and its report (table + RESULT line).
//
// Threads: the driver thread counts requests sent; transports' completion threads call
// record(). Counters are atomics; the refusal map is guarded by a mutex (only refusals take it).
// report() is called once, after the run, from the driver thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <ostream>
#include <string>

#include "bench/loadgen/histogram.h"
#include "bench/loadgen/transport.h"

namespace otlpd::loadgen {

struct RunInfo {
  std::string signal, protocol, endpoint;
  size_t connections = 1, concurrency = 1, items_per_request = 0;
  double rate = 0;  // items/s, 0 = unlimited
  bool gzip = false;
  size_t payload_bytes = 0;  // average uncompressed request size
};

class SendStats {
 public:
  void sent(uint64_t items) {
    requests_sent_.fetch_add(1, std::memory_order_relaxed);
    items_sent_.fetch_add(items, std::memory_order_relaxed);
  }
  void record(const Outcome& o, uint64_t items, uint64_t latency_us);

  uint64_t requests_sent() const { return requests_sent_.load(); }
  uint64_t items_sent() const { return items_sent_.load(); }
  uint64_t items_acknowledged() const { return items_acked_.load(); }
  uint64_t items_failed() const { return items_failed_.load(); }

  // Prints the human table, then one line `RESULT {json}`. `elapsed`: first send to last answer.
  void report(const RunInfo& info, std::chrono::nanoseconds elapsed, std::ostream& out) const;

 private:
  std::atomic<uint64_t> requests_sent_{0}, items_sent_{0};
  std::atomic<uint64_t> requests_ok_{0}, items_acked_{0}, items_rejected_{0};
  std::atomic<uint64_t> requests_refused_{0}, items_refused_total_{0};
  std::atomic<uint64_t> requests_failed_{0}, items_failed_{0};
  LatencyHistogram latency_;
  mutable std::mutex mu_;
  std::map<int, uint64_t> items_refused_;     // guarded by mu_
  std::map<int, uint64_t> requests_refused_by_;  // guarded by mu_
  std::string first_error_;                   // guarded by mu_
};

}  // namespace otlpd::loadgen

// The `memory_limiter` processor: refuses data while otlpd's memory is above a limit, so an
// overloaded otlpd pushes back on its clients (retryable refusals) instead of growing until the
// kernel kills it and loses everything it holds.
//
// Every `check_interval` it reads the process's resident memory. Above the soft limit
// (`limit_mib - spike_limit_mib`) consume() refuses with a retryable `unavailable` (the receivers
// answer gRPC UNAVAILABLE with RetryInfo, HTTP 503 with Retry-After) until a check finds memory
// below it again. Limits may also be given as percentages of the machine's memory, as the
// Collector's `limit_percentage` / `spike_limit_percentage`.
//
// Threads: consume() from any thread (one atomic load); the check runs on a timer of the I/O pool.
// Counters (labels processor, signal): otlpd_processor_refused_items.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "pipeline/registry.h"
#include "pipeline/telemetry.h"

namespace otlpd {

struct MemoryLimiterConfig : ComponentConfig {
  std::chrono::milliseconds check_interval{1000};
  int64_t limit_mib = 0;               // hard limit; or limit_percentage of total memory
  int64_t spike_limit_mib = 0;         // headroom below the hard limit; unset: 20% of it
  int64_t limit_percentage = 0;
  int64_t spike_limit_percentage = 0;

  // The soft limit in bytes, given the machine's total memory.
  uint64_t soft_limit_bytes(uint64_t total_memory_bytes) const;
};

class MemoryLimiter : public Processor {
 public:
  // Bytes of memory in use now; by default the resident set size from /proc/self/statm.
  using Usage = std::function<uint64_t()>;

  MemoryLimiter(ComponentId id, Signal signal, const MemoryLimiterConfig& config, ConsumerPtr next, Host& host,
                Usage usage = {});
  ~MemoryLimiter() override;

  Status start() override;
  Status consume(BatchPtr batch) override;
  bool never_waits() const override { return next_->never_waits(); }
  bool persists() const override { return next_->persists(); }
  void shutdown(Clock::time_point deadline) override;

  bool refusing() const;

  struct State;  // shared with the timer, which may fire once more after shutdown

 private:
  const ComponentId id_;
  const ConsumerPtr next_;
  Counter& refused_items_;
  std::shared_ptr<State> state_;
};

class MemoryLimiterFactory : public ProcessorFactory {
 public:
  std::string_view type() const override { return "memory_limiter"; }
  std::string_view description() const override {
    return "refuses data (retryable) while resident memory is above a soft limit";
  }
  ComponentConfigPtr parse(config::Node& node) const override;
  ProcessorPtr create(const ComponentId& id, const ComponentConfig& config, Signal signal, ConsumerPtr next,
                      Host& host) const override;
};

// Resident set size of this process, in bytes (0 if it cannot be read).
uint64_t resident_memory_bytes();

}  // namespace otlpd

// The `batch` processor: groups a pipeline's requests into batches by size and time, with a
// bounded queue and a configurable policy when it is full.
//
// Items wait in the stage until handed to the next consumer: a batch leaves when it holds
// `max_export_batch_size` items or when its oldest item has waited `schedule_delay`, whichever is
// first. A request larger than the room left in the open batch is cut on the wire (otlp::split_items),
// so batches are never larger than the limit. Batches are appended bytes, never decoded here.
//
// When the next consumer persists (an exporter with a persistent sending queue), batches pass
// straight through, unbatched and unsplit: holding acknowledged data in memory would lose it in a
// crash. The persistent queue is then where data waits.
//
// Threads: consume() from any thread. A worker thread of its own (otlpd-batch, like the reference
// design's batch processor) seals batches by time and calls next->consume() one batch at a time,
// in order; it never depends on the I/O threads, so callers blocked by `when_full: block` cannot
// starve it. Shared state is guarded by one mutex.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "pipeline/registry.h"
#include "pipeline/telemetry.h"

namespace otlpd {

struct BatchConfig : ComponentConfig {
  enum class WhenFull { refuse, block, drop };

  int64_t max_queue_size = 2048;                     // items waiting in the stage (unset: max(2048, 4 batches));
                                                     // a request is admitted while the stage is below it
  std::chrono::milliseconds schedule_delay{5000};    // longest an item waits for its batch to fill
  int64_t max_export_batch_size = 512;               // items per batch; larger requests are split
  std::chrono::milliseconds max_export_timeout{30000};  // how long a batch is re-offered downstream while refused
  WhenFull when_full = WhenFull::refuse;             // refuse: retryable error; block: wait, then refuse; drop: count
  std::chrono::milliseconds block_timeout{5000};     // `block`: longest a request waits for room
};

class BatchProcessor : public Processor {
 public:
  BatchProcessor(ComponentId id, Signal signal, BatchConfig config, ConsumerPtr next, Host& host);
  ~BatchProcessor() override;

  Status start() override;
  Status consume(BatchPtr batch) override;
  bool never_waits() const override;
  bool persists() const override;
  // Sends the open batch at once and waits for the stage to empty until `deadline`; what is still
  // waiting then is dropped and counted.
  void shutdown(Clock::time_point deadline) override;

  // Items currently waiting in the stage.
  size_t queued_items() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with the worker, which may outlive a stuck shutdown
  std::thread worker_;
};

class BatchProcessorFactory : public ProcessorFactory {
 public:
  std::string_view type() const override { return "batch"; }
  std::string_view description() const override {
    return "groups items into batches by size and time, with a bounded queue";
  }
  ComponentConfigPtr parse(config::Node& node) const override;
  ProcessorPtr create(const ComponentId& id, const ComponentConfig& config, Signal signal, ConsumerPtr next,
                      Host& host) const override;
};

}  // namespace otlpd

// Settings every exporter shares, under the Collector's key names: `timeout`, `sending_queue`,
// `retry_on_failure`. Parsed by each exporter factory from its own node.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "config/node.h"

namespace otlpd {

// The unit of `queue_size` (the Collector's `sending_queue.sizer`).
enum class QueueSizer {
  requests,  // batches waiting (in flight ones not counted)
  items,     // spans, data points or log records waiting and in flight
  bytes,     // payload bytes waiting and in flight
};

// A batch is admitted while it fits under every bound that applies; a full queue refuses it.
struct QueueSettings {
  bool enabled = true;
  int64_t num_consumers = 10;                 // sends in flight at once
  QueueSizer sizer = QueueSizer::requests;    // what queue_size counts
  int64_t queue_size = 1000;                  // in `sizer` units
  bool queue_size_set = false;                // written in the config (with storage, requests count only then)
  // When full: wait (up to the exporter's `timeout`) for room instead of refusing at once.
  bool block_on_overflow = false;
  int64_t max_size_mib = 64;                  // payload bytes waiting and in flight; 0: no byte bound
  // Persistent queue: a file_storage extension id or a directory; empty: the queue is in memory.
  // With storage, max_size_mib bounds the queue's disk use instead of its memory.
  std::string storage;

  static constexpr uint64_t kMiB = uint64_t{1} << 20;
  uint64_t max_size_bytes() const { return static_cast<uint64_t>(max_size_mib) * kMiB; }
};

struct RetrySettings {
  bool enabled = true;
  std::chrono::milliseconds initial_interval{5000};
  std::chrono::milliseconds max_interval{30000};
  double multiplier = 1.5;
  double randomization_factor = 0.5;
  std::chrono::milliseconds max_elapsed_time{300000};  // 0: retry until shutdown
};

struct ExporterSettings {
  std::chrono::milliseconds timeout{5000};  // one send attempt
  QueueSettings queue;
  RetrySettings retry;

  // Reads `timeout`, `sending_queue` and `retry_on_failure` from `node` (keys marked known).
  void parse(config::Node& node);
};

}  // namespace otlpd

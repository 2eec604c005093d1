// Settings every exporter shares, under the Collector's key names: `timeout`, `sending_queue`,
// `retry_on_failure`. Parsed by each exporter factory from its own node.
#pragma once

#include <chrono>
#include <cstdint>

#include "config/node.h"

namespace otlpd {

struct QueueSettings {
  bool enabled = true;
  int64_t num_consumers = 10;   // sends in flight at once
  int64_t queue_size = 1000;    // batches waiting; a full queue refuses new batches
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

#include "exporters/common/exporter_settings.h"

namespace otlpd {

namespace {

// Largest queue_size per sizer: a million batches, a billion items, 1 TiB.
int64_t max_queue_size(QueueSizer sizer) {
  switch (sizer) {
    case QueueSizer::requests: return 1'000'000;
    case QueueSizer::items: return 1'000'000'000;
    case QueueSizer::bytes: return int64_t{1} << 40;
  }
  return 0;
}

void parse_queue(config::Node& q, QueueSettings& queue) {
  q.read("enabled", queue.enabled);
  q.read("num_consumers", queue.num_consumers);
  q.read("block_on_overflow", queue.block_on_overflow);
  q.read_enum("sizer", queue.sizer,
              {{"requests", QueueSizer::requests}, {"items", QueueSizer::items}, {"bytes", QueueSizer::bytes}});
  // The default of 1000 only makes sense as batches; 1000 items or bytes would refuse nearly everything.
  if (queue.sizer != QueueSizer::requests && !q.has("queue_size")) {
    q.error("queue_size", "required when sizer is items or bytes");
  }
  queue.queue_size_set = q.has("queue_size");
  q.read("queue_size", queue.queue_size);
  q.read("max_size_mib", queue.max_size_mib);
  q.read("storage", queue.storage);
  q.check_range("num_consumers", queue.num_consumers, 1, 1024);
  q.check_range("queue_size", queue.queue_size, 1, max_queue_size(queue.sizer));
  q.check_range("max_size_mib", queue.max_size_mib, 0, 1'048'576);  // up to 1 TiB
}

}  // namespace

void ExporterSettings::parse(config::Node& node) {
  node.read_duration("timeout", timeout);
  if (timeout.count() <= 0) node.error("timeout", "must be positive");

  config::Node q = node.child("sending_queue");
  parse_queue(q, queue);
  q.finish();

  config::Node r = node.child("retry_on_failure");
  r.read("enabled", retry.enabled);
  r.read_duration("initial_interval", retry.initial_interval);
  r.read_duration("max_interval", retry.max_interval);
  r.read("multiplier", retry.multiplier);
  r.read("randomization_factor", retry.randomization_factor);
  r.read_duration("max_elapsed_time", retry.max_elapsed_time);
  if (retry.initial_interval.count() <= 0) r.error("initial_interval", "must be positive");
  if (retry.max_interval < retry.initial_interval) r.error("max_interval", "must not be less than initial_interval");
  if (retry.multiplier < 1.0) r.error("multiplier", "must be at least 1");
  if (retry.randomization_factor < 0 || retry.randomization_factor >= 1) {
    r.error("randomization_factor", "must be in [0, 1)");
  }
  r.finish();
}

}  // namespace otlpd

// QueuedExporter: the Exporter every exporter type is built as, wrapping one protocol's Sender.
//
// consume() (any thread) puts the batch in a bounded sending queue and returns at once, or refuses
// with a retryable status when the queue is full, so a slow exporter never stalls its pipeline's
// other exporters beyond its own queue. The queue is bounded by `queue_size` in its sizer's unit
// and by `max_size_mib` of payload bytes; item and byte bounds count batches in flight too, since
// they still hold their memory. A single batch bigger than an item or byte bound is admitted when
// nothing is queued or in flight, so it is not refused forever. `num_consumers` sends run at once
// on the io_context; a failed attempt is retried with exponential backoff while retryable and
// within max_elapsed_time, then dropped and counted. Counters (label exporter=<id>, signal=<signal>):
//   otlpd_exporter_sent_items, otlpd_exporter_send_failed_items, otlpd_exporter_enqueue_failed_items,
//   otlpd_exporter_retries; gauges otlpd_exporter_queue_items and otlpd_exporter_queue_bytes (held
//   now, in flight included).
// shutdown(deadline) stops taking batches and keeps sending what is queued until the deadline.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include <boost/container/small_vector.hpp>

#include "exporters/common/exporter_settings.h"
#include "exporters/common/sender.h"
#include "pipeline/registry.h"
#include "pipeline/telemetry.h"

namespace otlpd {

class QueuedExporter : public Exporter, public std::enable_shared_from_this<QueuedExporter> {
 public:
  QueuedExporter(ComponentId id, Signal signal, ExporterSettings settings, SenderPtr sender, Host& host);
  ~QueuedExporter() override;

  Status start() override;
  Status consume(BatchPtr batch) override;
  bool never_waits() const override { return true; }  // it queues or refuses
  void shutdown(Clock::time_point deadline) override;

  // Batches queued or in flight (for tests and telemetry). Any thread.
  size_t pending() const;
  // Payload bytes of the batches queued or in flight. Any thread.
  size_t pending_bytes() const;

 private:
  struct Attempt;
  struct RetryTimer;
  using Attempts = boost::container::small_vector<std::shared_ptr<Attempt>, 2>;
  // Under mu_: the bound `batch` would break, described for the refusal ("64 MiB"); none if it fits.
  std::optional<std::string> full_bound_locked(const Batch& batch) const;
  // Under mu_: counts the refused items and warns at most once a second.
  void note_refusal_locked(const Batch& batch, const std::string& bound);
  // Under mu_: a batch enters (queued) or leaves (sent or dropped) the queue's item and byte totals.
  void hold_locked(const Batch& batch);
  void unhold_locked(const Batch& batch);
  // Under mu_: takes queued batches for free consumers. launch() then starts them, without mu_.
  Attempts take_attempts_locked();
  void launch(Attempts attempts);
  void run_attempt(std::shared_ptr<Attempt> attempt);
  void finish_attempt(const std::shared_ptr<Attempt>& attempt, const Status& status);
  std::chrono::milliseconds backoff(int retry_number);

  const ComponentId id_;
  const Signal signal_;
  const ExporterSettings settings_;
  SenderPtr sender_;
  Host& host_;

  Counter& sent_items_;
  Counter& failed_items_;
  Counter& enqueue_failed_items_;
  Counter& retries_;
  Counter& queue_items_;  // gauges: what the queue holds now, in flight included
  Counter& queue_bytes_;

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable idle_cv_;
  std::deque<BatchPtr> queue_;
  size_t in_flight_ = 0;
  // Totals over queue_ and the batches in flight (held until their attempt finishes).
  size_t held_items_ = 0;
  size_t held_bytes_ = 0;
  bool accepting_ = false;
  bool stopping_ = false;
  Clock::time_point last_full_warning_{};
  // Backoff timers armed now; shutdown cancels them so waiting retries finish (as failed) at once.
  std::set<std::shared_ptr<RetryTimer>> retry_timers_;
};

}  // namespace otlpd

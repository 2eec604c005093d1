// QueuedExporter: the Exporter every exporter type is built as, wrapping one protocol's Sender.
//
// consume() (any thread) puts the batch in a bounded sending queue and returns at once, or refuses
// with a retryable status when the queue is full, so a slow exporter never stalls its pipeline's
// other exporters beyond its own queue. `num_consumers` sends run at once on the io_context; a
// failed attempt is retried with exponential backoff while retryable and within max_elapsed_time,
// then dropped and counted. Counters (label exporter=<id>, signal=<signal>):
//   otlpd_exporter_sent_items, otlpd_exporter_send_failed_items, otlpd_exporter_enqueue_failed_items,
//   otlpd_exporter_retries.
// shutdown(deadline) stops taking batches and keeps sending what is queued until the deadline.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <set>

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

  // Batches queued or in flight (for tests and telemetry).
  size_t pending() const;

 private:
  struct Attempt;
  struct RetryTimer;
  using Attempts = boost::container::small_vector<std::shared_ptr<Attempt>, 2>;
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

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable idle_cv_;
  std::deque<BatchPtr> queue_;
  size_t in_flight_ = 0;
  bool accepting_ = false;
  bool stopping_ = false;
  Clock::time_point last_full_warning_{};
  // Backoff timers armed now; shutdown cancels them so waiting retries finish (as failed) at once.
  std::set<std::shared_ptr<RetryTimer>> retry_timers_;
};

}  // namespace otlpd

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
//   otlpd_exporter_rejected_items (a partial success's rejected count: logged, counted, not retried),
//   otlpd_exporter_retries; gauges otlpd_exporter_queue_items and otlpd_exporter_queue_bytes (held
//   now, in flight included); for the health check (daemon/health.h), gauges
//   otlpd_exporter_consecutive_failures (failed send attempts, retries included, since the last
//   success; a partial success is a success) and otlpd_exporter_failing_since_timestamp_seconds
//   (unix time of the first of them; 0 when not failing). Both go to 0 at the end of shutdown, so
//   an exporter a reload removed does not keep the service unhealthy.
// shutdown(deadline) stops taking batches and keeps sending what is queued until the deadline.
//
// With `sending_queue.storage` the queue is persistent (see disk_log.h): consume() returns OK only
// once the batch is written to the exporter's log, so an acknowledged request survives a crash;
// start() replays what an earlier run left; a sent batch is finished in the log, one given up on
// is set aside there. What shutdown cannot send stays in the log for the next start instead of
// being counted as lost. max_size_mib bounds the log's disk use (memory holds at most 16 MiB of
// queued payloads; the rest is read back from the log). Records are the batches as they came in
// (often one client request each), so consecutive ones are sent together, up to 8192 items or
// 3 MiB per request. Extra counters:
//   otlpd_exporter_persisted_items, otlpd_exporter_replayed_items, otlpd_exporter_set_aside_items,
//   otlpd_exporter_kept_items (left in the log at shutdown), otlpd_exporter_storage_cut_bytes.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include <boost/container/small_vector.hpp>

#include "exporters/common/disk_log.h"
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
  // It queues or refuses at once, unless block_on_overflow makes it wait for room.
  bool never_waits() const override { return !settings_.queue.block_on_overflow; }
  bool persists() const override { return !settings_.queue.storage.empty(); }
  std::string queue_directory() const override { return storage_directory_; }
  void shutdown(Clock::time_point deadline) override;

  // Batches queued or in flight (for tests and telemetry). Any thread.
  size_t pending() const;
  // Payload bytes of the batches queued or in flight. Any thread.
  size_t pending_bytes() const;

 private:
  struct Attempt;
  struct Timer;
  // A queued batch; with a persistent queue also its record in the log, and the batch may be
  // null (not kept in memory: read back from the log when sent).
  struct Queued {
    BatchPtr batch;
    std::optional<RecordRef> record;
    size_t items = 0;
    size_t bytes = 0;
    bool alone = false;  // persistent queue: sent by itself, not with its neighbours
  };
  using Attempts = boost::container::small_vector<std::shared_ptr<Attempt>, 2>;
  // Under mu_: the bound `batch` would break, described for the refusal ("64 MiB"); none if it fits.
  std::optional<std::string> full_bound_locked(const Batch& batch) const;
  // Under mu_: counts the refused items and warns at most once a second.
  void note_refusal_locked(const Batch& batch, const std::string& bound);
  // Under mu_: a batch enters (queued) or leaves (sent or dropped) the queue's item and byte totals.
  void hold_locked(const Queued& queued);
  void unhold_locked(const Queued& queued);
  // Persistent queue: opens the log and queues what it holds (start()); writes a batch (consume()).
  Status open_storage();
  Status persist(BatchPtr batch);
  // Queues an admitted batch (mu_ held by `lock`) and starts sends for free consumers.
  void enqueue(std::unique_lock<std::mutex> lock, Queued queued);
  void arm_sync_timer();
  // Persistent queue: puts the attempt's records together into one batch, reading back those not
  // kept in memory; a record that no longer reads back is dropped and counted. False when none is left.
  bool assemble(Attempt& attempt);
  // Persistent queue: copies an attempt given up on to the log's set-aside file, record by record.
  void set_aside(const Attempt& attempt);
  // Under mu_: takes queued batches for free consumers. launch() then starts them, without mu_.
  Attempts take_attempts_locked();
  void launch(Attempts attempts);
  void run_attempt(std::shared_ptr<Attempt> attempt);
  void finish_attempt(const std::shared_ptr<Attempt>& attempt, const Status& status);
  // Under mu_, so the two failure gauges change together: a send attempt failed; one succeeded
  // (or the exporter stopped), which ends the failing streak.
  void note_failure_locked();
  void clear_failures_locked();
  void publish_failures_locked();
  // An attempt is over (sent, dropped or kept): its consumer slot and held totals go.
  void release_slot(const Attempt& attempt);
  // Persistent queue: a request of several records refused for good goes back to the front of the
  // queue as one request per record, so only the record the backend refuses is set aside.
  void requeue_alone(const Attempt& attempt);
  // Under mu_: the queue_size gauge in the sizer's unit.
  void update_queue_size_locked();
  std::chrono::milliseconds backoff(int retry_number);

  const ComponentId id_;
  const Signal signal_;
  const ExporterSettings settings_;
  SenderPtr sender_;
  Host& host_;

  Counter& sent_items_;
  Counter& failed_items_;
  Counter& enqueue_failed_items_;
  Counter& rejected_items_;  // refused by the backend in a partial success
  Counter& retries_;
  Counter& queue_items_;  // gauges: what the queue holds now, in flight included
  Counter& queue_bytes_;
  Counter& queue_size_;      // gauge: queue_size's unit (batches waiting, items or bytes held)
  Counter& queue_capacity_;  // gauge: queue_size
  Counter& consecutive_failures_;  // gauges, written under mu_
  Counter& failing_since_;
  uint64_t failures_ = 0;               // this instance's: failed attempts since the last success
  uint64_t failing_since_seconds_ = 0;  // unix time of the first of them; 0 when not failing
  Counter& persisted_items_;
  Counter& replayed_items_;
  Counter& set_aside_items_;
  Counter& kept_items_;
  Counter& cut_bytes_;

  // Persistent queue (null log_ when in memory). log_ is set in start() before any consume().
  std::string storage_directory_;
  FileStorageSettings storage_;
  std::unique_ptr<DiskLog> log_;
  std::shared_ptr<Timer> sync_timer_;  // flushes the log every fsync_interval

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable idle_cv_;
  std::deque<Queued> queue_;
  size_t cached_bytes_ = 0;  // payload bytes of queue_ kept in memory (persistent queue)
  size_t in_flight_ = 0;
  // Totals over queue_ and the batches in flight (held until their attempt finishes).
  size_t held_items_ = 0;
  size_t held_bytes_ = 0;
  bool accepting_ = false;
  bool stopping_ = false;
  Clock::time_point last_full_warning_{};
  // Backoff timers armed now; shutdown cancels them so waiting retries finish (as failed) at once.
  std::set<std::shared_ptr<Timer>> retry_timers_;
};

}  // namespace otlpd

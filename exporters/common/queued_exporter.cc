#include "exporters/common/queued_exporter.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <random>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

namespace otlpd {

namespace asio = boost::asio;

namespace {

constexpr size_t kMemoryCacheBytes = size_t{16} << 20;  // persistent queue: payloads kept in memory
// Persistent queue: consecutive records sent as one request up to these sizes (records are client
// requests, often small; the Collector's default batch is 8192 items; gRPC servers take 4 MiB).
constexpr size_t kCoalesceItems = 8192;
constexpr size_t kCoalesceBytes = size_t{3} << 20;

Telemetry::Labels labels_of(const ComponentId& id, Signal signal) {
  return {{"exporter", id.str()}, {"signal", std::string(otlp::signal_name(signal))}};
}

// The persistent queue's directory for one exporter and signal, inside the configured storage.
std::string storage_directory_for(const ComponentId& id, Signal signal, const std::string& storage,
                                  const FileStorages* storages, FileStorageSettings* settings) {
  if (storage.empty()) return "";
  std::string base = storage;
  if (is_storage_extension_id(storage)) {
    auto it = storages ? storages->find(storage) : FileStorages::const_iterator{};
    if (!storages || it == storages->end()) return "";
    *settings = it->second;
    base = it->second.directory;
  } else {
    settings->directory = storage;
    settings->create_directory = true;  // a directory written in the exporter is otlpd's own
  }
  std::string name = "exporter_" + id.type + (id.name.empty() ? "" : "_" + id.name) + "_" +
                     std::string(otlp::signal_name(signal));
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') c = '_';
  }
  return base + "/" + name;
}

}  // namespace

struct QueuedExporter::Timer {
  explicit Timer(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
};

struct QueuedExporter::Attempt {
  BatchPtr batch;  // what is sent; with a persistent queue, put together from `records` at the first try
  // Persistent queue: the records this attempt carries, in payload order.
  boost::container::small_vector<RecordRef, 1> records;
  std::vector<Queued> parts;  // persistent queue, until assembled into `batch`
  size_t items = 0;
  size_t bytes = 0;
  Clock::time_point first_try;
  int retries = 0;
};

QueuedExporter::QueuedExporter(ComponentId id, Signal signal, ExporterSettings settings, SenderPtr sender, Host& host)
    : id_(std::move(id)),
      signal_(signal),
      settings_(settings),
      sender_(std::move(sender)),
      host_(host),
      sent_items_(host.telemetry.counter("otlpd_exporter_sent_items", labels_of(id_, signal))),
      failed_items_(host.telemetry.counter("otlpd_exporter_send_failed_items", labels_of(id_, signal))),
      enqueue_failed_items_(host.telemetry.counter("otlpd_exporter_enqueue_failed_items", labels_of(id_, signal))),
      rejected_items_(host.telemetry.counter("otlpd_exporter_rejected_items", labels_of(id_, signal))),
      retries_(host.telemetry.counter("otlpd_exporter_retries", labels_of(id_, signal))),
      queue_items_(host.telemetry.gauge("otlpd_exporter_queue_items", labels_of(id_, signal))),
      queue_bytes_(host.telemetry.gauge("otlpd_exporter_queue_bytes", labels_of(id_, signal))),
      queue_size_(host.telemetry.gauge("otlpd_exporter_queue_size", labels_of(id_, signal))),
      queue_capacity_(host.telemetry.gauge("otlpd_exporter_queue_capacity", labels_of(id_, signal))),
      consecutive_failures_(host.telemetry.gauge("otlpd_exporter_consecutive_failures", labels_of(id_, signal))),
      failing_since_(host.telemetry.gauge("otlpd_exporter_failing_since_timestamp_seconds", labels_of(id_, signal))),
      persisted_items_(host.telemetry.counter("otlpd_exporter_persisted_items", labels_of(id_, signal))),
      replayed_items_(host.telemetry.counter("otlpd_exporter_replayed_items", labels_of(id_, signal))),
      set_aside_items_(host.telemetry.counter("otlpd_exporter_set_aside_items", labels_of(id_, signal))),
      kept_items_(host.telemetry.counter("otlpd_exporter_kept_items", labels_of(id_, signal))),
      cut_bytes_(host.telemetry.counter("otlpd_exporter_storage_cut_bytes", labels_of(id_, signal))) {
  storage_directory_ =
      storage_directory_for(id_, signal_, settings_.queue.storage, host.storages, &storage_);
  queue_capacity_.set(static_cast<uint64_t>(settings_.queue.queue_size));
}

QueuedExporter::~QueuedExporter() = default;

Status QueuedExporter::start() {
  if (!settings_.queue.storage.empty()) {
    Status s = open_storage();
    if (!s.is_ok()) return s;
  }
  Status s = sender_->start();
  if (!s.is_ok()) return s;
  std::unique_lock lock(mu_);
  accepting_ = true;
  publish_failures_locked();  // not failing: also over what an instance this one replaces left there
  Attempts attempts = take_attempts_locked();  // what the log held
  lock.unlock();
  launch(std::move(attempts));
  return Status::ok();
}

Status QueuedExporter::open_storage() {
  if (storage_directory_.empty()) {
    return Status::invalid_argument("sending_queue.storage names " + settings_.queue.storage +
                                    ", which is not a configured extension");
  }
  DiskLogOptions options;
  options.directory = storage_directory_;
  options.create_directory = true;
  options.fsync_each = storage_.fsync;
  options.max_bytes = settings_.queue.max_size_bytes();
  // Small segments under a small bound, so finished records free their space soon.
  options.segment_bytes = options.max_bytes == 0 ? (8u << 20)
                                                 : std::clamp<uint64_t>(options.max_bytes / 8, 64u << 10, 8u << 20);
  std::error_code ec;
  if (!storage_.create_directory && !std::filesystem::is_directory(storage_.directory, ec)) {
    return Status::invalid_argument("file_storage directory " + storage_.directory + " does not exist");
  }
  DiskLogRecovery recovery;
  std::string error;
  log_ = DiskLog::open(options, &recovery, &error);
  if (!log_) return Status::internal("persistent queue: " + error);

  cut_bytes_.add(recovery.cut_bytes);
  if (recovery.corrupted_regions > 0) {
    spdlog::warn("exporter {}: persistent queue {}: cut {} bytes in {} place(s) that were not valid records",
                 id_.str(), storage_directory_, recovery.cut_bytes, recovery.corrupted_regions);
  }
  if (!recovery.pending.empty()) {
    spdlog::info("exporter {}: persistent queue {}: replaying {} batches ({} {}) left by an earlier run", id_.str(),
                 storage_directory_, recovery.pending.size(), recovery.pending_items, otlp::item_name(signal_));
  }
  replayed_items_.add(recovery.pending_items);
  std::lock_guard lock(mu_);
  for (const RecordRef& ref : recovery.pending) {
    Queued q{nullptr, ref, ref.items, ref.length};
    hold_locked(q);
    queue_.push_back(std::move(q));
  }
  arm_sync_timer();
  return Status::ok();
}

void QueuedExporter::arm_sync_timer() {
  if (storage_.fsync || storage_.fsync_interval.count() <= 0) return;
  if (!sync_timer_) sync_timer_ = std::make_shared<Timer>(host_.io);
  sync_timer_->timer.expires_after(storage_.fsync_interval);
  sync_timer_->timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled at shutdown
    self->log_->sync();
    std::lock_guard lock(self->mu_);
    if (!self->stopping_) self->arm_sync_timer();
  });
}

Status QueuedExporter::consume(BatchPtr batch) {
  std::unique_lock lock(mu_);
  if (!accepting_) return Status::not_running("exporter " + id_.str() + " is not running");
  auto bound = full_bound_locked(*batch);
  if (bound && settings_.queue.block_on_overflow) {
    // Finished sends notify idle_cv_; shutdown ends the wait too (accepting_ false).
    idle_cv_.wait_for(lock, settings_.timeout, [&] { return !accepting_ || !full_bound_locked(*batch); });
    if (!accepting_) return Status::not_running("exporter " + id_.str() + " is not running");
    bound = full_bound_locked(*batch);
  }
  if (bound) {
    note_refusal_locked(*batch, *bound);
    return Status::unavailable("sending queue of exporter " + id_.str() + " is full (" + *bound + ")");
  }
  if (log_) {
    lock.unlock();
    return persist(std::move(batch));
  }
  Queued q{nullptr, std::nullopt, batch->items, batch->payload.size()};
  q.batch = std::move(batch);
  enqueue(std::move(lock), std::move(q));
  return Status::ok();
}

void QueuedExporter::enqueue(std::unique_lock<std::mutex> lock, Queued queued) {
  hold_locked(queued);
  queue_.push_back(std::move(queued));
  Attempts attempts = take_attempts_locked();
  lock.unlock();
  launch(std::move(attempts));
}

Status QueuedExporter::persist(BatchPtr batch) {
  // Written without mu_, so senders finishing are not held up by disk writes.
  RecordRef ref;
  Status s = log_->append(batch->payload, static_cast<uint32_t>(batch->items), &ref);
  std::unique_lock lock(mu_);
  if (!s.is_ok()) {
    note_refusal_locked(*batch, s.code() == Status::Code::resource_exhausted
                                    ? std::to_string(settings_.queue.max_size_mib) + " MiB on disk"
                                    : "storage error");
    if (s.code() != Status::Code::resource_exhausted) spdlog::error("exporter {}: {}", id_.str(), s.message());
    return Status::unavailable("sending queue of exporter " + id_.str() + " cannot take more: " + s.message());
  }
  persisted_items_.add(batch->items);
  if (stopping_) {  // written as shutdown passed its deadline: it waits in the log for the next start
    kept_items_.add(batch->items);
    return Status::ok();
  }
  Queued q{nullptr, ref, batch->items, batch->payload.size()};
  if (cached_bytes_ + q.bytes <= kMemoryCacheBytes) {
    cached_bytes_ += q.bytes;
    q.batch = std::move(batch);
  }
  enqueue(std::move(lock), std::move(q));
  return Status::ok();
}

std::optional<std::string> QueuedExporter::full_bound_locked(const Batch& batch) const {
  const QueueSettings& q = settings_.queue;
  const auto limit = static_cast<uint64_t>(q.queue_size);
  if (!q.enabled) {
    // A disabled queue only takes what a free consumer can send right away.
    if (in_flight_ < static_cast<size_t>(q.num_consumers) && queue_.empty()) return std::nullopt;
    return "queue disabled, " + std::to_string(in_flight_) + " sends in flight";
  }
  // With storage, records are client requests and the disk bound holds them; a requests bound
  // applies only when queue_size is written.
  const bool count_requests = q.sizer == QueueSizer::requests && (!log_ || q.queue_size_set);
  if (count_requests && queue_.size() >= limit) return std::to_string(limit) + " batches";
  if (queue_.empty() && in_flight_ == 0) return std::nullopt;  // a lone batch gets in whatever its size
  if (q.sizer == QueueSizer::items && held_items_ + batch.items > limit) {
    return std::to_string(limit) + " " + std::string(otlp::item_name(signal_));
  }
  const size_t bytes = held_bytes_ + batch.payload.size();
  if (q.sizer == QueueSizer::bytes && bytes > limit) return std::to_string(limit) + " bytes";
  // With storage the MiB bound is the log's, checked as it is written.
  if (!log_ && q.max_size_mib > 0 && bytes > q.max_size_bytes()) return std::to_string(q.max_size_mib) + " MiB";
  return std::nullopt;
}

void QueuedExporter::note_refusal_locked(const Batch& batch, const std::string& bound) {
  enqueue_failed_items_.add(batch.items);
  const auto now = Clock::now();
  if (now - last_full_warning_ >= std::chrono::seconds(1)) {  // at most one line a second
    last_full_warning_ = now;
    spdlog::warn("exporter {}: sending queue is full ({}; {} batches, {} bytes held); refusing {} {}", id_.str(),
                 bound, queue_.size() + in_flight_, held_bytes_, batch.items, otlp::item_name(signal_));
  }
}

void QueuedExporter::hold_locked(const Queued& queued) {
  held_items_ += queued.items;
  held_bytes_ += queued.bytes;
  queue_items_.set(held_items_);
  queue_bytes_.set(held_bytes_);
  update_queue_size_locked();
}

void QueuedExporter::unhold_locked(const Queued& queued) {
  held_items_ -= queued.items;
  held_bytes_ -= queued.bytes;
  queue_items_.set(held_items_);
  queue_bytes_.set(held_bytes_);
  update_queue_size_locked();
}

void QueuedExporter::update_queue_size_locked() {
  switch (settings_.queue.sizer) {
    case QueueSizer::requests: queue_size_.set(queue_.size()); break;
    case QueueSizer::items: queue_size_.set(held_items_); break;
    case QueueSizer::bytes: queue_size_.set(held_bytes_); break;
  }
}

QueuedExporter::Attempts QueuedExporter::take_attempts_locked() {
  Attempts attempts;
  while (in_flight_ < static_cast<size_t>(settings_.queue.num_consumers) && !queue_.empty()) {
    auto attempt = std::make_shared<Attempt>();
    attempt->first_try = Clock::now();
    if (!log_) {
      Queued& q = queue_.front();
      attempt->batch = std::move(q.batch);
      attempt->items = q.items;
      attempt->bytes = q.bytes;
      queue_.pop_front();
    } else {
      const bool alone = queue_.front().alone;
      do {
        Queued& q = queue_.front();
        if (q.batch) cached_bytes_ -= q.bytes;
        attempt->items += q.items;
        attempt->bytes += q.bytes;
        attempt->records.push_back(*q.record);
        attempt->parts.push_back(std::move(q));
        queue_.pop_front();
      } while (!alone && !queue_.empty() && !queue_.front().alone &&
               attempt->items + queue_.front().items <= kCoalesceItems &&
               attempt->bytes + queue_.front().bytes <= kCoalesceBytes);
    }
    ++in_flight_;
    attempts.push_back(std::move(attempt));
  }
  update_queue_size_locked();
  return attempts;
}

void QueuedExporter::launch(Attempts attempts) {
  for (auto& attempt : attempts) {
    if (sender_->sends_without_blocking()) {
      run_attempt(std::move(attempt));  // saves a thread switch per batch
    } else {
      asio::post(host_.io, [self = shared_from_this(), attempt] { self->run_attempt(attempt); });
    }
  }
}

bool QueuedExporter::assemble(Attempt& attempt) {
  if (attempt.parts.size() == 1 && attempt.parts[0].batch) {
    attempt.batch = std::move(attempt.parts[0].batch);  // one record kept in memory: no copy
    attempt.parts.clear();
    return true;
  }
  // Serialized requests concatenate into one request holding all their items (see batch.h).
  std::string payload;
  payload.reserve(attempt.bytes);
  std::string scratch;
  attempt.records.clear();
  for (Queued& part : attempt.parts) {
    if (part.batch) {
      payload.append(part.batch->payload);
    } else if (Status s = log_->read(*part.record, &scratch); s.is_ok()) {
      payload.append(scratch);
    } else {
      spdlog::error("exporter {}: dropped {} {}: {}", id_.str(), part.items, otlp::item_name(signal_), s.message());
      failed_items_.add(part.items);
      log_->finish(*part.record);  // nothing readable is left to set aside
      attempt.items -= part.items;
      attempt.bytes -= part.bytes;
      std::lock_guard lock(mu_);
      unhold_locked(part);
      continue;
    }
    attempt.records.push_back(*part.record);
  }
  attempt.parts.clear();
  if (attempt.records.empty()) return false;
  attempt.batch = make_batch(signal_, std::move(payload), attempt.items);
  return true;
}

void QueuedExporter::run_attempt(std::shared_ptr<Attempt> attempt) {
  if (!attempt->batch && !assemble(*attempt)) {
    release_slot(*attempt);
    return;
  }
  Clock::time_point deadline = Clock::now() + settings_.timeout;
  BatchPtr batch = attempt->batch;
  sender_->send(std::move(batch), deadline, [self = shared_from_this(), attempt](Status status) {
    self->finish_attempt(attempt, status);
  });
}

std::chrono::milliseconds QueuedExporter::backoff(int retry_number) {
  const auto& r = settings_.retry;
  double interval = static_cast<double>(r.initial_interval.count());
  for (int i = 0; i < retry_number; ++i) interval = std::min(interval * r.multiplier, double(r.max_interval.count()));
  thread_local std::minstd_rand rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(1.0 - r.randomization_factor, 1.0 + r.randomization_factor);
  return std::chrono::milliseconds(static_cast<int64_t>(interval * jitter(rng)));
}

void QueuedExporter::finish_attempt(const std::shared_ptr<Attempt>& attempt, const Status& status) {
  const size_t items = attempt->items;
  if (status.is_ok()) {
    // A partial success is not retried: the backend has decided about every item.
    const size_t rejected = std::min<size_t>(status.rejected_items(), items);
    sent_items_.add(items - rejected);
    rejected_items_.add(rejected);
    for (const RecordRef& record : attempt->records) log_->finish(record);
    {
      std::lock_guard lock(mu_);
      clear_failures_locked();
    }
    release_slot(*attempt);
    return;
  }
  std::unique_lock lock(mu_);
  note_failure_locked();
  auto wait = std::max(backoff(attempt->retries), status.retry_after());
  const auto& r = settings_.retry;
  const bool within_budget =
      r.max_elapsed_time.count() == 0 || Clock::now() + wait - attempt->first_try <= r.max_elapsed_time;
  if (status.retryable() && r.enabled && !stopping_ && within_budget) {
    retries_.add(1);
    ++attempt->retries;
    spdlog::warn("exporter {}: sending {} {} failed ({}); retry {} in {} ms", id_.str(), items,
                 otlp::item_name(signal_), status.to_string(), attempt->retries, wait.count());
    // Armed under mu_, so shutdown either sees it in retry_timers_ or has already set stopping_.
    // It runs when the backoff ends, or at once when shutdown cancels it; then it never sends.
    auto retry = std::make_shared<Timer>(host_.io);
    retry->timer.expires_after(wait);
    retry_timers_.insert(retry);
    retry->timer.async_wait([self = shared_from_this(), attempt, retry](const boost::system::error_code&) {
      bool stopped;
      {
        std::lock_guard guard(self->mu_);
        self->retry_timers_.erase(retry);
        stopped = self->stopping_;
      }
      if (stopped) {
        self->finish_attempt(attempt, Status::unavailable("exporter shut down before the retry"));
      } else {
        self->run_attempt(attempt);
      }
    });
    return;
  }
  const bool stopped = stopping_;
  lock.unlock();
  if (attempt->records.size() > 1 && !status.retryable() && !stopped) {
    spdlog::warn("exporter {}: {} {} in {} batches refused for good ({}); sending each batch alone", id_.str(), items,
                 otlp::item_name(signal_), attempt->records.size(), status.to_string());
    requeue_alone(*attempt);
    return;
  }
  if (!attempt->records.empty() && stopped && status.retryable()) {
    kept_items_.add(items);  // still in the log: sent at the next start
  } else {
    failed_items_.add(items);
    spdlog::error("exporter {}: dropped {} {} after {} retries: {}", id_.str(), items, otlp::item_name(signal_),
                  attempt->retries, status.to_string());
    set_aside(*attempt);
  }
  release_slot(*attempt);
}

void QueuedExporter::clear_failures_locked() {
  failures_ = 0;
  failing_since_seconds_ = 0;
  publish_failures_locked();
}

void QueuedExporter::note_failure_locked() {
  if (failures_ == 0) {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    failing_since_seconds_ = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(now).count());
  }
  ++failures_;
  publish_failures_locked();
}

void QueuedExporter::publish_failures_locked() {
  // Only an instance taking data speaks for the exporter: after a reload, the old instance still
  // draining shares the gauges with its successor. Once stopping, failures are shutdown's own
  // (retries cancelled) or the old instance's, not the running exporter's.
  if (!accepting_) return;
  consecutive_failures_.set(failures_);
  failing_since_.set(failing_since_seconds_);
}

void QueuedExporter::set_aside(const Attempt& attempt) {
  if (attempt.records.empty()) return;
  set_aside_items_.add(attempt.items);
  // The records lie end to end in the payload, in order.
  std::string_view payload = attempt.batch->payload;
  bool copied = true;
  for (const RecordRef& record : attempt.records) {
    copied &= log_->set_aside(record, payload.substr(0, record.length));
    payload.remove_prefix(record.length);
  }
  if (!copied) spdlog::error("exporter {}: could not copy them all to {}/set-aside.log", id_.str(), storage_directory_);
}

void QueuedExporter::requeue_alone(const Attempt& attempt) {
  std::unique_lock lock(mu_);
  unhold_locked(Queued{nullptr, std::nullopt, attempt.items, attempt.bytes});
  --in_flight_;
  if (stopping_) {
    kept_items_.add(attempt.items);  // still in the log
  } else {
    for (auto it = attempt.records.rbegin(); it != attempt.records.rend(); ++it) {
      queue_.push_front(Queued{nullptr, *it, it->items, it->length, /*alone=*/true});
      hold_locked(queue_.front());
    }
  }
  Attempts attempts = stopping_ ? Attempts{} : take_attempts_locked();
  idle_cv_.notify_all();
  lock.unlock();
  launch(std::move(attempts));
}

void QueuedExporter::release_slot(const Attempt& attempt) {
  std::unique_lock lock(mu_);
  unhold_locked(Queued{nullptr, std::nullopt, attempt.items, attempt.bytes});
  --in_flight_;
  Attempts attempts = stopping_ ? Attempts{} : take_attempts_locked();
  idle_cv_.notify_all();
  lock.unlock();
  launch(std::move(attempts));
}

size_t QueuedExporter::pending() const {
  std::lock_guard lock(mu_);
  return queue_.size() + in_flight_;
}

size_t QueuedExporter::pending_bytes() const {
  std::lock_guard lock(mu_);
  return held_bytes_;
}

void QueuedExporter::shutdown(Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  if (!accepting_ && stopping_) return;
  accepting_ = false;
  idle_cv_.notify_all();  // callers waiting for room (block_on_overflow) give up
  idle_cv_.wait_until(lock, deadline, [&] { return queue_.empty() && in_flight_ == 0; });
  stopping_ = true;  // retries from here on give up
  for (const auto& retry : retry_timers_) retry->timer.cancel();
  if (sync_timer_) sync_timer_->timer.cancel();
  if (!queue_.empty() || in_flight_ > 0) {
    size_t items = 0;
    for (const auto& q : queue_) {
      items += q.items;
      unhold_locked(q);
    }
    if (log_) {
      kept_items_.add(items);
      spdlog::warn("exporter {}: shutdown deadline passed; {} {} queued and {} sends in flight stay in {} for the "
                   "next start", id_.str(), items, otlp::item_name(signal_), in_flight_, storage_directory_);
    } else {
      failed_items_.add(items);
      spdlog::error("exporter {}: shutdown deadline passed; dropped {} queued {}, {} sends still in flight",
                    id_.str(), items, otlp::item_name(signal_), in_flight_);
    }
    queue_.clear();
    cached_bytes_ = 0;
    update_queue_size_locked();
  }
  lock.unlock();
  sender_->shutdown();
  if (log_) log_->sync();
  lock.lock();
  // A stopped exporter is not failing; unless a successor has written the gauges since.
  if (consecutive_failures_.value() == failures_ && failing_since_.value() == failing_since_seconds_) {
    consecutive_failures_.set(0);
    failing_since_.set(0);
  }
}

}  // namespace otlpd

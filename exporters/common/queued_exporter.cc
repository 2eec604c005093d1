#include "exporters/common/queued_exporter.h"

#include <algorithm>
#include <random>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

namespace otlpd {

namespace asio = boost::asio;

struct QueuedExporter::RetryTimer {
  explicit RetryTimer(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
};

struct QueuedExporter::Attempt {
  BatchPtr batch;
  Clock::time_point first_try;
  int retries = 0;
};

QueuedExporter::QueuedExporter(ComponentId id, Signal signal, ExporterSettings settings, SenderPtr sender, Host& host)
    : id_(std::move(id)),
      signal_(signal),
      settings_(settings),
      sender_(std::move(sender)),
      host_(host),
      sent_items_(host.telemetry.counter("otlpd_exporter_sent_items",
                                         {{"exporter", id_.str()}, {"signal", std::string(otlp::signal_name(signal))}})),
      failed_items_(host.telemetry.counter(
          "otlpd_exporter_send_failed_items", {{"exporter", id_.str()}, {"signal", std::string(otlp::signal_name(signal))}})),
      enqueue_failed_items_(host.telemetry.counter(
          "otlpd_exporter_enqueue_failed_items", {{"exporter", id_.str()}, {"signal", std::string(otlp::signal_name(signal))}})),
      retries_(host.telemetry.counter("otlpd_exporter_retries",
                                      {{"exporter", id_.str()}, {"signal", std::string(otlp::signal_name(signal))}})),
      queue_items_(host.telemetry.counter("otlpd_exporter_queue_items",
                                          {{"exporter", id_.str()}, {"signal", std::string(otlp::signal_name(signal))}})),
      queue_bytes_(host.telemetry.counter("otlpd_exporter_queue_bytes",
                                          {{"exporter", id_.str()}, {"signal", std::string(otlp::signal_name(signal))}})) {}

QueuedExporter::~QueuedExporter() = default;

Status QueuedExporter::start() {
  Status s = sender_->start();
  if (!s.is_ok()) return s;
  std::lock_guard lock(mu_);
  accepting_ = true;
  return Status::ok();
}

Status QueuedExporter::consume(BatchPtr batch) {
  std::unique_lock lock(mu_);
  if (!accepting_) return Status::unavailable("exporter " + id_.str() + " is not running");
  if (auto bound = full_bound_locked(*batch)) {
    note_refusal_locked(*batch, *bound);
    return Status::unavailable("sending queue of exporter " + id_.str() + " is full (" + *bound + ")");
  }
  hold_locked(*batch);
  queue_.push_back(std::move(batch));
  Attempts attempts = take_attempts_locked();
  lock.unlock();
  launch(std::move(attempts));
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
  if (q.sizer == QueueSizer::requests && queue_.size() >= limit) return std::to_string(limit) + " batches";
  if (queue_.empty() && in_flight_ == 0) return std::nullopt;  // a lone batch gets in whatever its size
  if (q.sizer == QueueSizer::items && held_items_ + batch.items > limit) {
    return std::to_string(limit) + " " + std::string(otlp::item_name(signal_));
  }
  const size_t bytes = held_bytes_ + batch.payload.size();
  if (q.sizer == QueueSizer::bytes && bytes > limit) return std::to_string(limit) + " bytes";
  if (q.max_size_mib > 0 && bytes > q.max_size_bytes()) return std::to_string(q.max_size_mib) + " MiB";
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

void QueuedExporter::hold_locked(const Batch& batch) {
  held_items_ += batch.items;
  held_bytes_ += batch.payload.size();
  queue_items_.set(held_items_);
  queue_bytes_.set(held_bytes_);
}

void QueuedExporter::unhold_locked(const Batch& batch) {
  held_items_ -= batch.items;
  held_bytes_ -= batch.payload.size();
  queue_items_.set(held_items_);
  queue_bytes_.set(held_bytes_);
}

QueuedExporter::Attempts QueuedExporter::take_attempts_locked() {
  Attempts attempts;
  while (in_flight_ < static_cast<size_t>(settings_.queue.num_consumers) && !queue_.empty()) {
    auto attempt = std::make_shared<Attempt>();
    attempt->batch = std::move(queue_.front());
    attempt->first_try = Clock::now();
    queue_.pop_front();
    ++in_flight_;
    attempts.push_back(std::move(attempt));
  }
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

void QueuedExporter::run_attempt(std::shared_ptr<Attempt> attempt) {
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
  const size_t items = attempt->batch->items;
  if (status.is_ok()) {
    sent_items_.add(items);
  } else {
    std::unique_lock lock(mu_);
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
      auto retry = std::make_shared<RetryTimer>(host_.io);
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
    lock.unlock();
    failed_items_.add(items);
    spdlog::error("exporter {}: dropped {} {} after {} retries: {}", id_.str(), items, otlp::item_name(signal_),
                  attempt->retries, status.to_string());
  }
  std::unique_lock lock(mu_);
  unhold_locked(*attempt->batch);
  --in_flight_;
  Attempts attempts = take_attempts_locked();
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
  idle_cv_.wait_until(lock, deadline, [&] { return queue_.empty() && in_flight_ == 0; });
  stopping_ = true;  // retries from here on give up
  for (const auto& retry : retry_timers_) retry->timer.cancel();
  if (!queue_.empty() || in_flight_ > 0) {
    size_t items = 0;
    for (const auto& b : queue_) {
      items += b->items;
      unhold_locked(*b);
    }
    failed_items_.add(items);
    spdlog::error("exporter {}: shutdown deadline passed; dropped {} queued {}, {} sends still in flight", id_.str(),
                  items, otlp::item_name(signal_), in_flight_);
    queue_.clear();
  }
  lock.unlock();
  sender_->shutdown();
}

}  // namespace otlpd

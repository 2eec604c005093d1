#include "pipeline/batch_processor.h"

#include <algorithm>
#include <vector>

#include <pthread.h>

#include <spdlog/spdlog.h>

#include "otlp/wire.h"
#include "pipeline/buffer_pool.h"
#include "pipeline/io_thread.h"

namespace otlpd {

namespace {
constexpr std::chrono::milliseconds kRetryOfferMin{50};
constexpr std::chrono::milliseconds kRetryOfferMax{1000};
}  // namespace

struct BatchProcessor::Impl {
  Impl(ComponentId id_, Signal signal_, BatchConfig config_, ConsumerPtr next_, Host& host)
      : id(std::move(id_)),
        signal(signal_),
        config(config_),
        next(std::move(next_)),
        next_never_waits(next->never_waits()),
        pass_through(next->persists()),
        pools(host.pools),
        labels(processor_labels(id, signal, host)),
        accepted_items(host.telemetry.counter("otlpd_processor_accepted_items", labels)),
        refused_items(host.telemetry.counter("otlpd_processor_refused_items", labels)),
        dropped_items(host.telemetry.counter("otlpd_processor_dropped_items", labels)),
        batches_by_size(host.telemetry.counter("otlpd_processor_batches_sent_by_size", labels)),
        batches_by_time(host.telemetry.counter("otlpd_processor_batches_sent_by_time", labels)) {}

  const ComponentId id;
  const Signal signal;
  const BatchConfig config;
  const ConsumerPtr next;
  const bool next_never_waits;      // then a filled batch goes on from the thread that filled it
  const bool pass_through;          // the next consumer persists: batches go on at once, unbatched
  BatchPools* const pools;          // may be null
  Telemetry::Labels labels;
  Counter& accepted_items;
  Counter& refused_items;
  Counter& dropped_items;
  Counter& batches_by_size;
  Counter& batches_by_time;

  mutable std::mutex mu;            // guards everything below
  std::condition_variable changed;  // room freed or stage emptied: blocked callers, shutdown
  std::condition_variable wake;     // work for the worker
  otlp::Splitter splitter;          // reused, so cutting requests allocates nothing in steady state
  std::string open_payload;
  size_t open_items = 0;
  size_t last_batch_bytes = 0;      // what the next batch likely needs, to reserve it at once
  Clock::time_point open_since;
  std::deque<BatchPtr> ready;
  size_t queued = 0;                // open + ready items
  BatchPtr offering;                // ready.front() while the worker has it downstream
  Clock::time_point head_first_offered{};
  Clock::time_point reoffer_at{};
  std::chrono::milliseconds offer_backoff{0};
  bool stopping = false;
  bool abandoned = false;           // shutdown deadline passed: the worker exits
  Clock::time_point give_up_at = Clock::time_point::max();

  size_t max_batch() const { return static_cast<size_t>(config.max_export_batch_size); }

  Status refuse_full(const Batch& batch) {
    refused_items.add(batch.items);
    return Status::unavailable("batch queue of processor " + id.str() + " is full (" + std::to_string(queued) +
                               " of " + std::to_string(config.max_queue_size) + " items waiting)");
  }

  // Under mu. Closes the open batch into the ready queue.
  void seal_open_locked() {
    if (open_items == 0) return;
    last_batch_bytes = open_payload.size();
    ready.push_back(pools ? make_pooled_batch(pools->batch_objects, pools->batch_buffers, signal,
                                              std::move(open_payload), open_items)
                          : make_batch(signal, std::move(open_payload), open_items));
    open_payload = std::string();
    open_items = 0;
  }

  void add_open_locked(std::string_view bytes, size_t items) {
    if (open_items == 0) {
      open_since = Clock::now();
      // Room for a whole batch up front: appending then never reallocates and copies.
      const size_t expected = std::max(last_batch_bytes, bytes.size());
      if (pools) {
        open_payload = pools->batch_buffers.acquire(expected);
      } else {
        open_payload.reserve(expected);
      }
    }
    open_payload.append(bytes);
    open_items += items;
    if (open_items >= max_batch()) {
      seal_open_locked();
      batches_by_size.add(1);
    }
  }

  // Under mu. Appends a request, cutting it where the open batch fills up.
  void append_locked(const BatchPtr& batch) {
    const size_t room = max_batch() - open_items;
    if (batch->items <= room) {
      add_open_locked(batch->payload, batch->items);
    } else {
      for (const auto& piece : splitter.split(signal, batch->payload, room, max_batch())) {
        add_open_locked(piece.bytes, piece.items);
      }
    }
    queued += batch->items;
  }

  Status consume(BatchPtr batch) {
    if (batch->items == 0) return Status::ok();  // nothing to carry; an empty request is valid OTLP
    std::unique_lock lock(mu);
    if (stopping) return Status::not_running("processor " + id.str() + " is shutting down");
    // A request is admitted while the stage is below its limit, so one larger than the whole
    // queue still gets in (it is split into batches); the stage overshoots by at most a request.
    const size_t limit = static_cast<size_t>(config.max_queue_size);
    if (queued >= limit) {
      switch (config.when_full) {
        case BatchConfig::WhenFull::refuse:
          return refuse_full(*batch);
        case BatchConfig::WhenFull::drop:
          dropped_items.add(batch->items);
          return Status::partial(batch->items, "batch queue of processor " + id.str() + " is full; dropped");
        case BatchConfig::WhenFull::block: {
          // Waiting on an I/O thread would stop the very sends that free room.
          if (on_io_thread()) return refuse_full(*batch);
          bool room = changed.wait_for(lock, config.block_timeout, [&] { return stopping || queued < limit; });
          if (stopping) return Status::not_running("processor " + id.str() + " is shutting down");
          if (!room) return refuse_full(*batch);
          break;
        }
      }
    }
    const bool was_empty = open_items == 0;
    const size_t ready_before = ready.size();
    append_locked(batch);
    accepted_items.add(batch->items);
    bool wake_worker = was_empty && open_items > 0;  // a new deadline
    if (ready.size() != ready_before) {
      // A batch filled up: hand it on from this thread when nothing else is being offered,
      // saving a thread switch per batch; otherwise (or if refused) the worker takes over.
      while (next_never_waits && !ready.empty() && !offering && Clock::now() >= reoffer_at) offer_head(lock);
      wake_worker = wake_worker || !ready.empty() || stopping;  // shutdown may have begun meanwhile
    }
    // The worker sleeps until the open batch's deadline or a re-offer time.
    if (wake_worker) wake.notify_one();
    return Status::ok();
  }

  // The worker thread: seals batches by time and hands ready batches downstream, in order.
  void run() {
    std::unique_lock lock(mu);
    while (!abandoned) {
      const Clock::time_point now = Clock::now();
      if (open_items > 0 && now >= open_since + config.schedule_delay) {
        seal_open_locked();
        batches_by_time.add(1);
      }
      if (!ready.empty() && !offering && now >= reoffer_at) {
        offer_head(lock);
        continue;
      }
      if (stopping && ready.empty() && open_items == 0) break;
      Clock::time_point until = Clock::time_point::max();
      if (open_items > 0) until = open_since + config.schedule_delay;
      if (!ready.empty() && !offering) until = std::min(until, reoffer_at);
      wake.wait_until(lock, until);
    }
  }

  // Worker or a consume() caller, under mu (released while downstream has the batch); only one
  // thread offers at a time (`offering`), so batches leave in order.
  void offer_head(std::unique_lock<std::mutex>& lock) {
    BatchPtr head = ready.front();
    offering = head;
    if (head_first_offered == Clock::time_point{}) head_first_offered = Clock::now();
    lock.unlock();
    Status s = next->consume(head);
    lock.lock();
    offering.reset();
    const Clock::time_point now = Clock::now();
    if (!s.is_ok() && s.retryable()) {
      // Downstream is full: keep the batch (the stage fills and clients are refused) and offer it
      // again, until max_export_timeout or the shutdown deadline.
      offer_backoff = std::clamp(offer_backoff * 2, kRetryOfferMin, kRetryOfferMax);
      if (s.retry_after().count() > 0) offer_backoff = std::min(offer_backoff, s.retry_after());
      const Clock::time_point limit = std::min(head_first_offered + config.max_export_timeout, give_up_at);
      if (now < limit) {
        reoffer_at = std::min(now + offer_backoff, limit);  // the last offer is made at the limit
        return;
      }
    }
    if (!s.is_ok()) {
      dropped_items.add(head->items);
      spdlog::error("processor {}: dropped a batch of {} {}: {}", id.str(), head->items, otlp::item_name(signal),
                    s.to_string());
    }
    if (!ready.empty() && ready.front() == head) {  // not already dropped by a passed shutdown deadline
      ready.pop_front();
      queued -= head->items;
    }
    head_first_offered = Clock::time_point{};
    reoffer_at = Clock::time_point{};
    offer_backoff = std::chrono::milliseconds(0);
    changed.notify_all();
  }

  void shutdown(Clock::time_point deadline) {
    std::unique_lock lock(mu);
    if (!stopping) {
      stopping = true;
      give_up_at = deadline;
      seal_open_locked();
      changed.notify_all();
      wake.notify_one();
    }
    changed.wait_until(lock, deadline, [&] { return queued == 0; });
    // The batch being offered right now stays: the worker settles it when downstream answers.
    const size_t keep = offering ? 1 : 0;
    size_t dropped = 0;
    while (ready.size() > keep) {
      dropped += ready.back()->items;
      ready.pop_back();
    }
    if (dropped > 0) {
      dropped_items.add(dropped);
      queued -= dropped;
      spdlog::error("processor {}: shutdown deadline passed with {} {} not handed on; dropped", id.str(), dropped,
                    otlp::item_name(signal));
    }
    if (keep == 0) abandoned = true;
    wake.notify_one();
  }
};

BatchProcessor::BatchProcessor(ComponentId id, Signal signal, BatchConfig config, ConsumerPtr next, Host& host)
    : impl_(std::make_shared<Impl>(std::move(id), signal, config, std::move(next), host)) {}

BatchProcessor::~BatchProcessor() {
  if (worker_.joinable()) shutdown(Clock::now());
}

Status BatchProcessor::start() {
  if (impl_->pass_through) {
    spdlog::info("processor {} ({}): its exporters keep persistent queues, so requests pass to them unbatched and "
                 "are acknowledged once on disk", impl_->id.str(), otlp::signal_name(impl_->signal));
  }
  worker_ = std::thread([impl = impl_] {
    pthread_setname_np(pthread_self(), "otlpd-batch");
    impl->run();
  });
  return Status::ok();
}

Status BatchProcessor::consume(BatchPtr batch) {
  if (!impl_->pass_through) return impl_->consume(std::move(batch));
  const size_t items = batch->items;
  Status s = impl_->next->consume(std::move(batch));
  (s.is_ok() ? impl_->accepted_items : impl_->refused_items).add(items);
  return s;
}

bool BatchProcessor::never_waits() const {
  if (impl_->pass_through) return impl_->next_never_waits;
  return impl_->config.when_full != BatchConfig::WhenFull::block && impl_->next_never_waits;
}

bool BatchProcessor::persists() const { return impl_->pass_through; }

void BatchProcessor::shutdown(Clock::time_point deadline) {
  impl_->shutdown(deadline);
  if (!worker_.joinable()) return;
  bool busy;
  {
    std::lock_guard lock(impl_->mu);
    busy = impl_->offering != nullptr;
  }
  // A worker stuck downstream past the deadline is left to finish on its own (it holds the Impl).
  if (busy) {
    worker_.detach();
  } else {
    worker_.join();
  }
}

size_t BatchProcessor::queued_items() const {
  std::lock_guard lock(impl_->mu);
  return impl_->queued;
}

ComponentConfigPtr BatchProcessorFactory::parse(config::Node& node) const {
  auto config = std::make_unique<BatchConfig>();
  // Each setting has the reference design's name and the Collector's name; only one may be set.
  auto check_one_of = [&](const char* key, const char* alias) {
    if (node.has(key) && node.has(alias)) node.error(alias, std::string("set only one of ") + key + " and " + alias);
  };
  check_one_of("schedule_delay", "timeout");
  check_one_of("max_export_batch_size", "send_batch_size");
  const char* batch_size_key = node.has("send_batch_size") ? "send_batch_size" : "max_export_batch_size";
  node.read("max_queue_size", config->max_queue_size);
  const bool queue_size_set = node.has("max_queue_size");
  node.read_duration("timeout", config->schedule_delay);
  node.read_duration("schedule_delay", config->schedule_delay);
  node.read("send_batch_size", config->max_export_batch_size);
  node.read("max_export_batch_size", config->max_export_batch_size);
  node.read_duration("max_export_timeout", config->max_export_timeout);
  // The Collector's hard cap. Batches here never exceed max_export_batch_size, so it only has to
  // be consistent with it.
  int64_t send_batch_max_size = 0;
  node.read("send_batch_max_size", send_batch_max_size);
  node.read_enum("when_full", config->when_full,
                 {{"refuse", BatchConfig::WhenFull::refuse},
                  {"block", BatchConfig::WhenFull::block},
                  {"drop", BatchConfig::WhenFull::drop}});
  node.read_duration("block_timeout", config->block_timeout);

  // Unset, the queue holds 2048 items or four batches, whichever is more, so a Collector config
  // with a large send_batch_size works as written.
  if (!queue_size_set) config->max_queue_size = std::max<int64_t>(2048, 4 * config->max_export_batch_size);
  node.check_range("max_queue_size", config->max_queue_size, 1, 100'000'000);
  node.check_range(batch_size_key, config->max_export_batch_size, 1, 100'000'000);
  if (config->max_export_batch_size > config->max_queue_size) {
    node.error(batch_size_key, "must not exceed max_queue_size (" + std::to_string(config->max_queue_size) + ")");
  }
  if (send_batch_max_size != 0 && send_batch_max_size < config->max_export_batch_size) {
    node.error("send_batch_max_size", "must be 0 or at least send_batch_size (" +
                                          std::to_string(config->max_export_batch_size) + ")");
  }
  if (config->schedule_delay.count() <= 0) node.error("schedule_delay", "must be positive");
  if (config->max_export_timeout.count() <= 0) node.error("max_export_timeout", "must be positive");
  if (config->block_timeout.count() <= 0) node.error("block_timeout", "must be positive");
  node.finish();
  return config;
}

ProcessorPtr BatchProcessorFactory::create(const ComponentId& id, const ComponentConfig& config, Signal signal,
                                           ConsumerPtr next, Host& host) const {
  return std::make_shared<BatchProcessor>(id, signal, static_cast<const BatchConfig&>(config), std::move(next), host);
}

}  // namespace otlpd

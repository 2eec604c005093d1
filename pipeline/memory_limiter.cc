#include "pipeline/memory_limiter.h"

#include <unistd.h>

#include <cstdio>
#include <mutex>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "pipeline/host.h"

namespace otlpd {

namespace {
constexpr uint64_t kMiB = 1024 * 1024;

uint64_t total_memory_bytes() {
  return static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}
}  // namespace

uint64_t resident_memory_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

uint64_t MemoryLimiterConfig::soft_limit_bytes(uint64_t total) const {
  const uint64_t hard = limit_mib > 0 ? static_cast<uint64_t>(limit_mib) * kMiB
                                      : total / 100 * static_cast<uint64_t>(limit_percentage);
  uint64_t spike = hard / 5;  // the Collector's default: 20% of the limit
  if (spike_limit_mib > 0) spike = static_cast<uint64_t>(spike_limit_mib) * kMiB;
  if (limit_mib == 0 && spike_limit_percentage > 0) spike = total / 100 * static_cast<uint64_t>(spike_limit_percentage);
  return hard > spike ? hard - spike : 0;
}

struct MemoryLimiter::State {
  State(boost::asio::io_context& io, std::string id_, std::chrono::milliseconds interval_, uint64_t soft, Usage u)
      : timer(io), id(std::move(id_)), interval(interval_), soft_limit(soft), usage(std::move(u)) {}

  // Checks memory now and records whether data must be refused.
  void check() {
    const uint64_t used = usage();
    const bool over = used > soft_limit;
    if (over == refusing.exchange(over)) return;
    if (over) {
      spdlog::warn("processor {}: {} MiB in use, above the soft limit of {} MiB; refusing data", id, used / kMiB,
                   soft_limit / kMiB);
    } else {
      spdlog::info("processor {}: {} MiB in use; accepting data again", id, used / kMiB);
    }
  }

  // Arms the next check; the handler holds a share of the state, so it is safe after shutdown.
  static void schedule(const std::shared_ptr<State>& self) {
    std::lock_guard lock(self->mu);
    if (self->stopped) return;
    self->timer.expires_after(self->interval);
    self->timer.async_wait([self](const boost::system::error_code& ec) {
      if (ec) return;
      self->check();
      schedule(self);
    });
  }

  std::mutex mu;  // guards timer and stopped
  boost::asio::steady_timer timer;
  bool stopped = false;
  const std::string id;
  const std::chrono::milliseconds interval;
  const uint64_t soft_limit;
  const Usage usage;
  std::atomic<bool> refusing{false};
};

MemoryLimiter::MemoryLimiter(ComponentId id, Signal signal, const MemoryLimiterConfig& config, ConsumerPtr next,
                             Host& host, Usage usage)
    : id_(std::move(id)),
      next_(std::move(next)),
      refused_items_(host.telemetry.counter("otlpd_processor_refused_items", processor_labels(id_, signal, host))),
      state_(std::make_shared<State>(host.io, id_.str(), config.check_interval,
                                     config.soft_limit_bytes(total_memory_bytes()),
                                     usage ? std::move(usage) : Usage(resident_memory_bytes))) {}

MemoryLimiter::~MemoryLimiter() { shutdown(Clock::now()); }

Status MemoryLimiter::start() {
  state_->check();
  State::schedule(state_);
  return Status::ok();
}

Status MemoryLimiter::consume(BatchPtr batch) {
  if (state_->refusing.load(std::memory_order_relaxed)) {
    refused_items_.add(batch->items);
    return Status::unavailable("processor " + id_.str() + ": memory above its soft limit (" +
                                   std::to_string(state_->soft_limit / kMiB) + " MiB)",
                               state_->interval < std::chrono::milliseconds(1000) ? std::chrono::milliseconds(1000)
                                                                                  : state_->interval);
  }
  return next_->consume(std::move(batch));
}

bool MemoryLimiter::refusing() const { return state_->refusing.load(std::memory_order_relaxed); }

void MemoryLimiter::shutdown(Clock::time_point) {
  std::lock_guard lock(state_->mu);
  state_->stopped = true;
  state_->timer.cancel();
}

ComponentConfigPtr MemoryLimiterFactory::parse(config::Node& node) const {
  auto config = std::make_unique<MemoryLimiterConfig>();
  node.read_duration("check_interval", config->check_interval);
  node.read("limit_mib", config->limit_mib);
  node.read("spike_limit_mib", config->spike_limit_mib);
  node.read("limit_percentage", config->limit_percentage);
  node.read("spike_limit_percentage", config->spike_limit_percentage);
  if (config->check_interval.count() <= 0) node.error("check_interval", "must be positive");
  node.check_range("limit_mib", config->limit_mib, 0, 1 << 30);
  node.check_range("spike_limit_mib", config->spike_limit_mib, 0, 1 << 30);
  node.check_range("limit_percentage", config->limit_percentage, 0, 100);
  node.check_range("spike_limit_percentage", config->spike_limit_percentage, 0, 100);
  if (config->limit_mib == 0 && config->limit_percentage == 0) {
    node.error("limit_mib", "set limit_mib or limit_percentage");
  }
  if (config->limit_mib > 0 && config->spike_limit_mib >= config->limit_mib) {
    node.error("spike_limit_mib", "must be below limit_mib (" + std::to_string(config->limit_mib) + ")");
  }
  if (config->limit_percentage > 0 && config->spike_limit_percentage >= config->limit_percentage) {
    node.error("spike_limit_percentage",
               "must be below limit_percentage (" + std::to_string(config->limit_percentage) + ")");
  }
  node.finish();
  return config;
}

ProcessorPtr MemoryLimiterFactory::create(const ComponentId& id, const ComponentConfig& config, Signal signal,
                                          ConsumerPtr next, Host& host) const {
  return std::make_shared<MemoryLimiter>(id, signal, static_cast<const MemoryLimiterConfig&>(config), std::move(next),
                                         host);
}

}  // namespace otlpd

// run_sink: counting handler, servers, interval lines and the final RESULT. Threads: see sink.h.
#include "bench/loadgen/sink.h"

#include <signal.h>

#include <array>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "bench/loadgen/item_keys.h"
#include "otlp/wire.h"
#include "receivers/otlp/grpc_server.h"
#include "receivers/otlp/http_server.h"

namespace otlpd::loadgen {

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr std::array<otlp::Signal, 3> kSignals = {otlp::Signal::traces, otlp::Signal::metrics, otlp::Signal::logs};

const char* mode_name(SinkMode m) {
  switch (m) {
    case SinkMode::ok: return "ok";
    case SinkMode::fail: return "fail";
    case SinkMode::stall: return "stall";
    case SinkMode::refuse: return "refuse";
  }
  return "?";
}

namespace col = opentelemetry::proto::collector;


struct SignalCounters {
  std::atomic<uint64_t> requests{0}, items{0}, accepted{0}, failed{0}, refused{0}, stalled{0}, malformed{0};
};

// Shared by every handler thread; all counters are atomics, the stall wait uses mu_/cv_.
class Counting {
 public:
  explicit Counting(const SinkOptions& o) : o_(o) {}

  Status handle(otlp::Signal signal, const std::string& request) {
    SignalCounters& c = per_[static_cast<size_t>(signal)];
    c.requests.fetch_add(1, std::memory_order_relaxed);
    otlp::WalkResult w = otlp::count_items(signal, request);
    if (!w.ok) {
      c.malformed.fetch_add(1, std::memory_order_relaxed);
      return Status::invalid_argument("malformed request: " + w.error);
    }
    c.items.fetch_add(w.items, std::memory_order_relaxed);
    if (o_.delay.count() > 0 && o_.mode != SinkMode::stall) hold(o_.delay);
    switch (o_.mode) {
      case SinkMode::ok:
        break;
      case SinkMode::fail: {
        const uint64_t n = fail_seq_.fetch_add(1, std::memory_order_relaxed);
        const bool fail = o_.fail_rate >= 1.0 ||
                          std::floor(static_cast<double>(n + 1) * o_.fail_rate) > std::floor(static_cast<double>(n) * o_.fail_rate);
        if (fail) {
          c.failed.fetch_add(w.items, std::memory_order_relaxed);
          return Status::invalid_argument("otlpd-loadgen sink: failing this request (mode fail)");
        }
        break;
      }
      case SinkMode::refuse:
        c.refused.fetch_add(w.items, std::memory_order_relaxed);
        return Status::unavailable("otlpd-loadgen sink: refusing (mode refuse)");
      case SinkMode::stall: {
        c.stalled.fetch_add(w.items, std::memory_order_relaxed);
        hold(o_.stall);
        return Status::unavailable("otlpd-loadgen sink: stalled (mode stall)");
      }
    }
    // Recorded before the answer leaves, so the RESULT printed after shutdown includes it.
    if (o_.distinct) note_distinct(signal, request);
    c.accepted.fetch_add(w.items, std::memory_order_relaxed);
    return Status::ok();
  }

  // Holds the calling handler thread for `d`, or until shutdown releases every held request.
  void hold(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, d, [&] { return stopping_; });
  }

  void note_distinct(otlp::Signal signal, const std::string& request) {
    std::vector<std::string> keys;
    if (!item_keys(signal, request, &keys)) return;
    std::lock_guard lock(distinct_mu_);
    for (auto& key : keys) {
      if (seen_.insert(std::move(key)).second) {
        ++distinct_;
      } else {
        ++duplicates_;
      }
    }
  }

  // Writes every distinct identity seen, in hex, one per line (before RESULT, so a reader that
  // saw RESULT finds the file complete).
  bool write_ids(const std::string& path) const {
    std::ofstream file(path, std::ios::trunc);
    std::lock_guard lock(distinct_mu_);
    for (const auto& key : seen_) file << hex(key) << '\n';
    return static_cast<bool>(file.flush());
  }

  void release_stalls() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
  }

  uint64_t total_items() const {
    uint64_t n = 0;
    for (const auto& c : per_) n += c.items.load(std::memory_order_relaxed);
    return n;
  }
  uint64_t total_accepted() const {
    uint64_t n = 0;
    for (const auto& c : per_) n += c.accepted.load(std::memory_order_relaxed);
    return n;
  }
  uint64_t total_requests() const {
    uint64_t n = 0;
    for (const auto& c : per_) n += c.requests.load(std::memory_order_relaxed);
    return n;
  }

  nlohmann::json result(std::chrono::nanoseconds elapsed) const {
    nlohmann::json j;
    j["mode"] = mode_name(o_.mode);
    uint64_t sums[7] = {};
    nlohmann::json signals = nlohmann::json::object();
    for (otlp::Signal s : kSignals) {
      const SignalCounters& c = per_[static_cast<size_t>(s)];
      uint64_t v[7] = {c.requests.load(), c.items.load(), c.accepted.load(), c.failed.load(),
                       c.refused.load(), c.stalled.load(), c.malformed.load()};
      for (int i = 0; i < 7; ++i) sums[i] += v[i];
      signals[std::string(otlp::signal_name(s))] = {{"requests", v[0]}, {"items", v[1]}, {"items_accepted", v[2]},
                                                    {"items_failed", v[3]}, {"items_refused", v[4]},
                                                    {"items_stalled", v[5]}, {"requests_malformed", v[6]}};
    }
    j["requests_received"] = sums[0];
    j["items_received"] = sums[1];
    j["items_accepted"] = sums[2];
    j["items_failed"] = sums[3];
    j["items_refused"] = sums[4];
    j["items_stalled"] = sums[5];
    j["requests_malformed"] = sums[6];
    if (o_.distinct) {
      std::lock_guard lock(distinct_mu_);
      j["items_distinct"] = distinct_;
      j["items_duplicates"] = duplicates_;
    }
    j["signals"] = signals;
    const double secs = static_cast<double>(elapsed.count()) / 1e9;
    j["duration_s"] = secs;
    j["items_per_s"] = secs > 0 ? static_cast<double>(sums[1]) / secs : 0.0;
    return j;
  }

 private:
  const SinkOptions o_;
  std::array<SignalCounters, 3> per_;
  std::atomic<uint64_t> fail_seq_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  mutable std::mutex distinct_mu_;  // guards the three below
  std::unordered_set<std::string> seen_;
  uint64_t distinct_ = 0, duplicates_ = 0;
};

bool enabled(const std::string& endpoint) { return !endpoint.empty() && endpoint != "none"; }

}  // namespace

int run_sink(const SinkOptions& o, std::ostream& out, std::ostream& err) {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  auto counting = std::make_shared<Counting>(o);
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::vector<std::thread> threads;

  std::unique_ptr<GrpcServer> grpc;
  std::unique_ptr<HttpServer> http;
  if (enabled(o.grpc_endpoint)) {
    GrpcServerSettings gs;
    gs.endpoint = o.grpc_endpoint;
    gs.max_recv_msg_size_mib = 64;
    gs.threads = o.threads;  // handler threads: a stalled request holds one
    grpc = std::make_unique<GrpcServer>(
        gs, nullptr, [counting](otlp::Signal s, std::string&& req) { return counting->handle(s, req); },
        [](otlp::Signal) { return true; });
    Status st = grpc->start();
    if (!st.is_ok()) {
      err << "otlpd-loadgen sink: " << st.message() << "\n";
      return 1;
    }
  }
  if (enabled(o.http_endpoint)) {
    HttpServerSettings hs;
    hs.endpoint = o.http_endpoint;
    hs.max_request_body_size = 64 << 20;
    http = std::make_unique<HttpServer>(io, hs,
                                        [counting](Signal s, std::string&& req) { return counting->handle(s, req); });
    Status st = http->start();
    if (!st.is_ok()) {
      err << "otlpd-loadgen sink: " << st.message() << "\n";
      if (grpc) grpc->shutdown(SteadyClock::now());
      return 1;
    }
  }
  for (size_t i = 0; i < std::max<size_t>(1, o.threads); ++i) threads.emplace_back([&io] { io.run(); });

  const int grpc_port = grpc ? grpc->port() : 0;
  const int http_port = http ? http->port() : 0;
  const std::string ports = "grpc=" + std::to_string(grpc_port) + " http=" + std::to_string(http_port);
  if (!o.ports_file.empty()) {
    // Written whole under a temporary name, then renamed: a reader never sees half a line.
    std::string tmp = o.ports_file + ".tmp";
    {
      std::ofstream f(tmp);
      f << ports << "\n";
    }
    std::error_code ec;
    std::filesystem::rename(tmp, o.ports_file, ec);
    if (ec) err << "otlpd-loadgen sink: cannot write " << o.ports_file << ": " << ec.message() << "\n";
  }
  out << "LISTENING " << ports << " mode=" << mode_name(o.mode) << std::endl;

  const auto start = SteadyClock::now();
  auto last = start;
  uint64_t last_items = 0;
  for (;;) {
    const auto interval = o.report_interval.count() > 0 ? o.report_interval : std::chrono::milliseconds(3600 * 1000);
    timespec ts{static_cast<time_t>(interval.count() / 1000), static_cast<long>((interval.count() % 1000) * 1'000'000)};
    int sig = sigtimedwait(&sigs, nullptr, &ts);
    if (sig == SIGINT || sig == SIGTERM) break;
    if (o.report_interval.count() <= 0) continue;
    const auto now = SteadyClock::now();
    const uint64_t items = counting->total_items();
    const double secs = std::chrono::duration<double>(now - last).count();
    char line[256];
    std::snprintf(line, sizeof line, "INTERVAL t=%.1fs requests=%llu items=%llu items/s=%.0f accepted=%llu",
                  std::chrono::duration<double>(now - start).count(),
                  static_cast<unsigned long long>(counting->total_requests()), static_cast<unsigned long long>(items),
                  secs > 0 ? static_cast<double>(items - last_items) / secs : 0.0,
                  static_cast<unsigned long long>(counting->total_accepted()));
    out << line << std::endl;
    last = now;
    last_items = items;
  }

  const auto stopped = SteadyClock::now();
  counting->release_stalls();
  const auto deadline = SteadyClock::now() + std::chrono::seconds(2);
  if (http) http->shutdown(deadline);
  if (grpc) grpc->shutdown(deadline);
  guard.reset();
  io.stop();
  for (auto& t : threads) t.join();
  http.reset();
  grpc.reset();
  if (!o.ids_file.empty() && !counting->write_ids(o.ids_file)) {
    err << "otlpd-loadgen sink: cannot write " << o.ids_file << "\n";
  }
  out << "RESULT " << counting->result(stopped - start).dump() << std::endl;
  return 0;
}

}  // namespace otlpd::loadgen

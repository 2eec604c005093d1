// Shared fakes and builders for unit tests. Header-only.
//
//  - wait_until(pred, timeout): polls a condition with short waits until it holds or the deadline
//    passes. Tests synchronise on conditions, never on fixed sleeps.
//  - RecordingConsumer: a thread-safe Consumer that records every batch offered to it, answers with
//    scripted statuses, and can hold callers inside consume() until released.
//  - make_traces_request / make_metrics_request / make_logs_request: serialized OTLP requests whose
//    items carry a counter (span id, data point value, log time) so order and loss can be checked;
//    spans_in / span_ids_in / metric_points_in / log_ids_in read them back with protobuf.
//  - IoThreads: runs a boost::asio::io_context on N threads with a work guard; joins on destruction.
//  - ScopeExit: runs a callable at scope exit (release a blocked fake before the threads are joined).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "pipeline/batch.h"
#include "pipeline/component.h"
#include "pipeline/consumer.h"
#include "pipeline/status.h"

namespace otlpd::test {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Waiting on conditions

// Polls `pred` every millisecond until it returns true or `timeout` passes; returns its last value.
template <typename Pred>
bool wait_until(Pred&& pred, std::chrono::milliseconds timeout = 5000ms) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Runs `f` when the scope ends (also while unwinding after a failed REQUIRE).
template <typename F>
class ScopeExit {
 public:
  explicit ScopeExit(F f) : f_(std::move(f)) {}
  ~ScopeExit() { f_(); }
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;

 private:
  F f_;
};

// ---------------------------------------------------------------------------------------------
// IoThreads

// Runs an io_context on `threads` threads until destroyed. The destructor releases the work guard
// and lets the threads finish what is queued; if work is still pending after `drain_timeout`
// (a long timer a test left armed), it stops the io_context so the test never hangs, then joins.
// Declare it before the components that use its io_context so it is destroyed after them.
class IoThreads {
 public:
  explicit IoThreads(size_t threads = 2, std::chrono::milliseconds drain_timeout = 2000ms)
      : guard_(boost::asio::make_work_guard(io_)), drain_timeout_(drain_timeout) {
    for (size_t i = 0; i < threads; ++i) {
      threads_.emplace_back([this] {
        io_.run();
        std::lock_guard lock(mu_);
        ++finished_;
        cv_.notify_all();
      });
    }
  }

  ~IoThreads() {
    guard_.reset();
    {
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, drain_timeout_, [&] { return finished_ == threads_.size(); })) io_.stop();
    }
    for (auto& t : threads_) t.join();
  }

  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;

  boost::asio::io_context& io() { return io_; }
  size_t size() const { return threads_.size(); }

  // Returns once every handler posted to the io_context before this call has finished (each
  // thread is parked in a rendezvous handler, so none is running anything else). False when the
  // threads did not all arrive in time (one is blocked in a handler). Handlers queued on a strand
  // behind a running handler are not covered.
  bool barrier(std::chrono::milliseconds timeout = 5000ms) {
    struct Rendezvous {
      std::mutex mu;
      std::condition_variable cv;
      size_t arrived = 0;
      bool released = false;
    };
    auto r = std::make_shared<Rendezvous>();
    const size_t n = threads_.size();
    const auto deadline = Clock::now() + timeout;
    for (size_t i = 0; i < n; ++i) {
      boost::asio::post(io_, [r, n, deadline] {
        std::unique_lock lock(r->mu);
        ++r->arrived;
        r->cv.notify_all();
        r->cv.wait_until(lock, deadline, [&] { return r->released || r->arrived == n; });
      });
    }
    std::unique_lock lock(r->mu);
    bool all = r->cv.wait_until(lock, deadline, [&] { return r->arrived == n; });
    r->released = true;
    r->cv.notify_all();
    return all;
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::chrono::milliseconds drain_timeout_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t finished_ = 0;
};

// ---------------------------------------------------------------------------------------------
// RecordingConsumer

// A Consumer that records every batch offered to it. Thread-safe.
//
// Answers: the scripted statuses in order (script()), then the fallback (set_fallback(), OK by
// default). Only batches answered OK (including partial) count as accepted. block() makes callers
// wait inside consume() until release(); the wait is bounded by `max_block` as a safety net so a
// failing test cannot hang its threads forever.
class RecordingConsumer : public Consumer {
 public:
  struct Call {
    BatchPtr batch;
    Status status;
    Clock::time_point at;  // when consume() was entered
    std::thread::id thread;
  };

  explicit RecordingConsumer(std::chrono::milliseconds max_block = 30000ms) : max_block_(max_block) {}

  // What never_waits() answers (false by default, like a consumer that may wait).
  void set_never_waits(bool v) { never_waits_ = v; }
  bool never_waits() const override { return never_waits_; }
  void set_persists(bool v) { persists_ = v; }
  bool persists() const override { return persists_; }

  Status consume(BatchPtr batch) override {
    std::unique_lock lock(mu_);
    const auto at = Clock::now();
    ++entered_;
    cv_.notify_all();
    if (blocked_) {
      ++waiting_;
      cv_.notify_all();
      cv_.wait_for(lock, max_block_, [&] { return !blocked_; });
      --waiting_;
    }
    Status status = fallback_;
    if (!script_.empty()) {
      status = script_.front();
      script_.pop_front();
    }
    calls_.push_back({batch, status, at, std::this_thread::get_id()});
    if (status.is_ok()) {
      accepted_.push_back(batch);
      accepted_items_ += batch->items;
    }
    cv_.notify_all();
    return status;
  }

  // Statuses for the next calls, in order; appended to what is still scripted.
  void script(std::vector<Status> statuses) {
    std::lock_guard lock(mu_);
    for (auto& s : statuses) script_.push_back(std::move(s));
  }
  // The answer once the script is used up.
  void set_fallback(Status s) {
    std::lock_guard lock(mu_);
    fallback_ = std::move(s);
  }
  void block() {
    std::lock_guard lock(mu_);
    blocked_ = true;
  }
  void release() {
    std::lock_guard lock(mu_);
    blocked_ = false;
    cv_.notify_all();
  }

  // Every completed call, in order.
  std::vector<Call> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  size_t call_count() const {
    std::lock_guard lock(mu_);
    return calls_.size();
  }
  // Calls that entered consume() (including ones still blocked in it).
  size_t entered() const {
    std::lock_guard lock(mu_);
    return entered_;
  }
  // Callers currently held inside consume() by block().
  size_t waiting() const {
    std::lock_guard lock(mu_);
    return waiting_;
  }
  // Batches answered OK, in order.
  std::vector<BatchPtr> batches() const {
    std::lock_guard lock(mu_);
    return accepted_;
  }
  size_t batch_count() const {
    std::lock_guard lock(mu_);
    return accepted_.size();
  }
  size_t items() const {
    std::lock_guard lock(mu_);
    return accepted_items_;
  }

  bool wait_for_items(size_t n, std::chrono::milliseconds timeout = 5000ms) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return accepted_items_ >= n; });
  }
  bool wait_for_batches(size_t n, std::chrono::milliseconds timeout = 5000ms) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return accepted_.size() >= n; });
  }
  bool wait_for_calls(size_t n, std::chrono::milliseconds timeout = 5000ms) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return calls_.size() >= n; });
  }
  bool wait_for_waiting(size_t n, std::chrono::milliseconds timeout = 5000ms) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return waiting_ >= n; });
  }

 private:
  const std::chrono::milliseconds max_block_;
  std::atomic<bool> never_waits_{false};
  std::atomic<bool> persists_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<Status> script_;
  Status fallback_;
  bool blocked_ = false;
  size_t entered_ = 0;
  size_t waiting_ = 0;
  std::vector<Call> calls_;
  std::vector<BatchPtr> accepted_;
  size_t accepted_items_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Request builders

namespace pb {
using opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest;
using opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
}  // namespace pb

struct Request {
  Signal signal = Signal::traces;
  std::string bytes;  // serialized Export<Signal>ServiceRequest
  size_t items = 0;

  BatchPtr batch() const { return make_batch(signal, bytes, items); }
};

// 8 bytes, big-endian: the id as a counter.
inline std::string encode_id8(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

inline uint64_t decode_id8(const std::string& bytes) {
  if (bytes.size() != 8) throw std::runtime_error("span id of " + std::to_string(bytes.size()) + " bytes");
  uint64_t v = 0;
  for (unsigned char c : bytes) v = (v << 8) | c;
  return v;
}

inline std::string service_name_of(const opentelemetry::proto::resource::v1::Resource& resource) {
  for (const auto& kv : resource.attributes()) {
    if (kv.key() == "service.name") return kv.value().string_value();
  }
  return {};
}

inline void set_service_name(opentelemetry::proto::resource::v1::Resource* resource, const std::string& name) {
  auto* attr = resource->add_attributes();
  attr->set_key("service.name");
  attr->mutable_value()->set_string_value(name);
}

// resources x scopes_per_resource x spans_per_scope spans with span ids first_span_id, +1, ...
// Resource r has service.name "service-<r>"; scope s of resource r is named "scope-<r>-<s>".
inline Request make_traces_request(size_t resources, size_t scopes_per_resource, size_t spans_per_scope,
                                   uint64_t first_span_id = 1) {
  pb::ExportTraceServiceRequest req;
  uint64_t id = first_span_id;
  for (size_t r = 0; r < resources; ++r) {
    auto* rs = req.add_resource_spans();
    set_service_name(rs->mutable_resource(), "service-" + std::to_string(r));
    rs->set_schema_url("https://opentelemetry.io/schemas/1.21.0");
    for (size_t s = 0; s < scopes_per_resource; ++s) {
      auto* ss = rs->add_scope_spans();
      ss->mutable_scope()->set_name("scope-" + std::to_string(r) + "-" + std::to_string(s));
      for (size_t i = 0; i < spans_per_scope; ++i, ++id) {
        auto* span = ss->add_spans();
        span->set_trace_id(std::string(8, '\x7a') + encode_id8(id));
        span->set_span_id(encode_id8(id));
        span->set_name("span-" + std::to_string(id));
        span->set_start_time_unix_nano(1'700'000'000'000'000'000ull + id);
        span->set_end_time_unix_nano(1'700'000'000'000'001'000ull + id);
      }
    }
  }
  return {Signal::traces, req.SerializeAsString(), resources * scopes_per_resource * spans_per_scope};
}

// A span as read back from a payload, with the envelope it travels in.
struct SpanRef {
  uint64_t id;
  std::string service;  // resource attribute service.name
  std::string scope;    // instrumentation scope name
  bool operator==(const SpanRef&) const = default;
};

inline pb::ExportTraceServiceRequest parse_traces(const std::string& payload) {
  pb::ExportTraceServiceRequest req;
  if (!req.ParseFromString(payload)) throw std::runtime_error("payload is not an ExportTraceServiceRequest");
  return req;
}

inline std::vector<SpanRef> spans_in(const std::string& payload) {
  std::vector<SpanRef> out;
  const auto req = parse_traces(payload);
  for (const auto& rs : req.resource_spans()) {
    const std::string service = service_name_of(rs.resource());
    for (const auto& ss : rs.scope_spans()) {
      for (const auto& span : ss.spans()) out.push_back({decode_id8(span.span_id()), service, ss.scope().name()});
    }
  }
  return out;
}

// The span ids of a traces payload, in order.
inline std::vector<uint64_t> span_ids_in(const std::string& payload) {
  std::vector<uint64_t> out;
  for (const auto& s : spans_in(payload)) out.push_back(s.id);
  return out;
}

inline std::vector<uint64_t> iota_ids(uint64_t first, size_t n) {
  std::vector<uint64_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = first + i;
  return out;
}

enum class MetricKind { gauge, sum, histogram };

// `metrics` metrics of `kind` named "metric-<i>", each with `points_per_metric` data points whose
// value (as_int for gauge/sum, count for histogram) is first_value, +1, ... One resource
// ("service-0"), one scope ("scope-0-0"). Sums are cumulative and monotonic, histograms cumulative.
inline Request make_metrics_request(MetricKind kind, size_t metrics, size_t points_per_metric,
                                    uint64_t first_value = 1) {
  pb::ExportMetricsServiceRequest req;
  auto* rm = req.add_resource_metrics();
  set_service_name(rm->mutable_resource(), "service-0");
  auto* sm = rm->add_scope_metrics();
  sm->mutable_scope()->set_name("scope-0-0");
  uint64_t value = first_value;
  for (size_t m = 0; m < metrics; ++m) {
    auto* metric = sm->add_metrics();
    metric->set_name("metric-" + std::to_string(m));
    metric->set_unit("1");
    for (size_t p = 0; p < points_per_metric; ++p, ++value) {
      const uint64_t t = 1'700'000'000'000'000'000ull + value;
      switch (kind) {
        case MetricKind::gauge: {
          auto* dp = metric->mutable_gauge()->add_data_points();
          dp->set_time_unix_nano(t);
          dp->set_as_int(static_cast<int64_t>(value));
          break;
        }
        case MetricKind::sum: {
          auto* sum = metric->mutable_sum();
          sum->set_aggregation_temporality(
              opentelemetry::proto::metrics::v1::AGGREGATION_TEMPORALITY_CUMULATIVE);
          sum->set_is_monotonic(true);
          auto* dp = sum->add_data_points();
          dp->set_time_unix_nano(t);
          dp->set_as_int(static_cast<int64_t>(value));
          break;
        }
        case MetricKind::histogram: {
          auto* h = metric->mutable_histogram();
          h->set_aggregation_temporality(
              opentelemetry::proto::metrics::v1::AGGREGATION_TEMPORALITY_CUMULATIVE);
          auto* dp = h->add_data_points();
          dp->set_time_unix_nano(t);
          dp->set_count(value);
          dp->add_bucket_counts(value);
          break;
        }
      }
    }
  }
  return {Signal::metrics, req.SerializeAsString(), metrics * points_per_metric};
}

inline pb::ExportMetricsServiceRequest parse_metrics(const std::string& payload) {
  pb::ExportMetricsServiceRequest req;
  if (!req.ParseFromString(payload)) throw std::runtime_error("payload is not an ExportMetricsServiceRequest");
  return req;
}

// A data point as read back: the metric it sits in and its counter value.
struct PointRef {
  std::string metric;
  uint64_t value;
  bool operator==(const PointRef&) const = default;
};

inline std::vector<PointRef> metric_points_in(const std::string& payload) {
  std::vector<PointRef> out;
  const auto req = parse_metrics(payload);
  for (const auto& rm : req.resource_metrics()) {
    for (const auto& sm : rm.scope_metrics()) {
      for (const auto& m : sm.metrics()) {
        for (const auto& dp : m.gauge().data_points()) out.push_back({m.name(), static_cast<uint64_t>(dp.as_int())});
        for (const auto& dp : m.sum().data_points()) out.push_back({m.name(), static_cast<uint64_t>(dp.as_int())});
        for (const auto& dp : m.histogram().data_points()) out.push_back({m.name(), dp.count()});
      }
    }
  }
  return out;
}

// resources x records_per_resource log records (one scope each) whose time_unix_nano is
// first_id, +1, ... and body "log-<id>". Resource r has service.name "service-<r>".
inline Request make_logs_request(size_t resources, size_t records_per_resource, uint64_t first_id = 1) {
  pb::ExportLogsServiceRequest req;
  uint64_t id = first_id;
  for (size_t r = 0; r < resources; ++r) {
    auto* rl = req.add_resource_logs();
    set_service_name(rl->mutable_resource(), "service-" + std::to_string(r));
    auto* sl = rl->add_scope_logs();
    sl->mutable_scope()->set_name("scope-" + std::to_string(r) + "-0");
    for (size_t i = 0; i < records_per_resource; ++i, ++id) {
      auto* rec = sl->add_log_records();
      rec->set_time_unix_nano(id);
      rec->mutable_body()->set_string_value("log-" + std::to_string(id));
    }
  }
  return {Signal::logs, req.SerializeAsString(), resources * records_per_resource};
}

// The ids (time_unix_nano) of the log records of a logs payload, in order.
inline std::vector<uint64_t> log_ids_in(const std::string& payload) {
  pb::ExportLogsServiceRequest req;
  if (!req.ParseFromString(payload)) throw std::runtime_error("payload is not an ExportLogsServiceRequest");
  std::vector<uint64_t> out;
  for (const auto& rl : req.resource_logs()) {
    for (const auto& sl : rl.scope_logs()) {
      for (const auto& rec : sl.log_records()) out.push_back(rec.time_unix_nano());
    }
  }
  return out;
}

}  // namespace otlpd::test

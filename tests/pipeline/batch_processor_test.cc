// Tests for the batch processor: size and time triggers, cutting requests on the wire, the bounded
// queue and its when_full policies, re-offering refused batches, shutdown, and config parsing.
#include "pipeline/batch_processor.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <utility>

#include <yaml-cpp/yaml.h>

#include "config/node.h"
#include "otlp/wire.h"
#include "pipeline/buffer_pool.h"
#include "pipeline/telemetry.h"
#include "support/test_support.h"

namespace otlpd {
namespace {

using namespace std::chrono_literals;
using test::iota_ids;
using test::make_logs_request;
using test::make_metrics_request;
using test::make_traces_request;
using test::MetricKind;
using test::RecordingConsumer;
using test::span_ids_in;
using test::spans_in;
using test::wait_until;

const ComponentId kId{"batch", "test"};

struct BatchFixture {
  // Declaration order matters: the io threads are joined before the telemetry they may touch goes.
  Telemetry telemetry;
  test::IoThreads threads{2};
  Host host{threads.io(), telemetry};
  std::shared_ptr<RecordingConsumer> sink = std::make_shared<RecordingConsumer>();
  std::shared_ptr<BatchProcessor> processor;
  Signal signal = Signal::traces;

  ~BatchFixture() {
    sink->release();
    if (processor) processor->shutdown(Clock::now() + 2s);
  }

  void create(const BatchConfig& config, Signal s = Signal::traces) {
    signal = s;
    processor = std::make_shared<BatchProcessor>(kId, s, config, sink, host);
    REQUIRE(processor->start().is_ok());
  }

  uint64_t counter(const std::string& name) const {
    return telemetry.value(name, {{"processor", "batch/test"}, {"signal", std::string(otlp::signal_name(signal))}});
  }

  // The span ids of every batch the sink accepted, concatenated in delivery order.
  std::vector<uint64_t> delivered_span_ids() const {
    std::vector<uint64_t> out;
    for (const auto& b : sink->batches()) {
      auto ids = span_ids_in(b->payload);
      out.insert(out.end(), ids.begin(), ids.end());
    }
    return out;
  }
};

BatchConfig size_only(int64_t max_batch, int64_t max_queue = 2048) {
  BatchConfig c;
  c.max_export_batch_size = max_batch;
  c.max_queue_size = max_queue;
  c.schedule_delay = std::chrono::hours(1);
  return c;
}

std::vector<size_t> item_counts(const std::vector<BatchPtr>& batches) {
  std::vector<size_t> out;
  for (const auto& b : batches) out.push_back(b->items);
  return out;
}

// Every batch: its item count matches its bytes, it parses, and it carries no empty envelope.
void check_trace_batch_well_formed(const Batch& b) {
  CHECK(b.signal == Signal::traces);
  auto walk = otlp::count_items(Signal::traces, b.payload);
  REQUIRE(walk.ok);
  CHECK(walk.items == b.items);
  auto req = test::parse_traces(b.payload);
  for (const auto& rs : req.resource_spans()) {
    CHECK(rs.scope_spans_size() > 0);
    CHECK(rs.schema_url() == "https://opentelemetry.io/schemas/1.21.0");
    CHECK(rs.resource().attributes_size() == 1);
    for (const auto& ss : rs.scope_spans()) CHECK(ss.spans_size() > 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Triggers

TEST_CASE_METHOD(BatchFixture, "batch: size trigger sends full batches and keeps the rest", "[batch]") {
  create(size_only(10));
  for (uint64_t i = 0; i < 5; ++i) {
    auto r = make_traces_request(1, 1, 5, 1 + 5 * i);
    REQUIRE(processor->consume(r.batch()).is_ok());
  }
  REQUIRE(sink->wait_for_batches(2));
  REQUIRE(wait_until([&] { return processor->queued_items() == 5; }));
  REQUIRE(threads.barrier());  // everything the consumes started has run

  auto batches = sink->batches();
  REQUIRE(batches.size() == 2);
  CHECK(sink->call_count() == 2);
  CHECK(item_counts(batches) == std::vector<size_t>{10, 10});
  CHECK(span_ids_in(batches[0]->payload) == iota_ids(1, 10));
  CHECK(span_ids_in(batches[1]->payload) == iota_ids(11, 10));
  for (const auto& b : batches) check_trace_batch_well_formed(*b);
  CHECK(processor->queued_items() == 5);
  CHECK(counter("otlpd_processor_accepted_items") == 25);
  CHECK(counter("otlpd_processor_batches_sent_by_size") == 2);
  CHECK(counter("otlpd_processor_batches_sent_by_time") == 0);

  processor->shutdown(Clock::now() + 5s);
  REQUIRE(sink->batch_count() == 3);
  CHECK(span_ids_in(sink->batches()[2]->payload) == iota_ids(21, 5));
  CHECK(processor->queued_items() == 0);
  CHECK(counter("otlpd_processor_dropped_items") == 0);
}

TEST_CASE_METHOD(BatchFixture, "batch: time trigger sends a partial batch after schedule_delay", "[batch]") {
  BatchConfig c;
  c.max_export_batch_size = 512;
  c.schedule_delay = 300ms;
  create(c);
  const auto before = Clock::now();
  REQUIRE(processor->consume(make_traces_request(1, 1, 3).batch()).is_ok());
  CHECK(sink->call_count() == 0);
  CHECK(processor->queued_items() == 3);

  REQUIRE(sink->wait_for_batches(1, 5000ms));
  auto calls = sink->calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].at - before >= 300ms);
  CHECK(calls[0].batch->items == 3);
  CHECK(span_ids_in(calls[0].batch->payload) == iota_ids(1, 3));
  REQUIRE(wait_until([&] { return processor->queued_items() == 0; }));
  CHECK(counter("otlpd_processor_batches_sent_by_time") == 1);
  CHECK(counter("otlpd_processor_batches_sent_by_size") == 0);
}

TEST_CASE_METHOD(BatchFixture, "batch: time trigger measures from the oldest item of the open batch", "[batch]") {
  BatchConfig c;
  c.max_export_batch_size = 512;
  c.schedule_delay = 300ms;
  create(c);
  const auto before = Clock::now();
  REQUIRE(processor->consume(make_traces_request(1, 1, 2, 1).batch()).is_ok());
  REQUIRE(processor->consume(make_traces_request(1, 1, 2, 3).batch()).is_ok());
  REQUIRE(sink->wait_for_batches(1, 5000ms));
  auto calls = sink->calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].at - before >= 300ms);
  CHECK(span_ids_in(calls[0].batch->payload) == iota_ids(1, 4));
}

// ---------------------------------------------------------------------------------------------
// Cutting requests

TEST_CASE_METHOD(BatchFixture, "batch: a request larger than a batch is split in order, envelopes kept", "[batch]") {
  struct Layout {
    size_t resources, scopes, spans;
  };
  auto layout = GENERATE(Layout{1, 1, 25}, Layout{5, 1, 5}, Layout{3, 3, 3}, Layout{2, 3, 4});
  const size_t total = layout.resources * layout.scopes * layout.spans;
  const size_t full = total / 10, rest = total % 10;
  CAPTURE(layout.resources, layout.scopes, layout.spans);
  auto request = make_traces_request(layout.resources, layout.scopes, layout.spans);
  const auto original = spans_in(request.bytes);
  REQUIRE(original.size() == total);

  auto check_all_delivered = [&] {
    auto batches = sink->batches();
    REQUIRE(batches.size() == full + 1);
    std::vector<size_t> expected_counts(full, 10);
    expected_counts.push_back(rest);
    CHECK(item_counts(batches) == expected_counts);
    std::vector<test::SpanRef> delivered;
    for (const auto& b : batches) {
      check_trace_batch_well_formed(*b);
      auto spans = spans_in(b->payload);
      delivered.insert(delivered.end(), spans.begin(), spans.end());
    }
    // Same spans, same order, each still under its own resource (service.name) and scope.
    CHECK(delivered == original);
    CHECK(processor->queued_items() == 0);
  };

  SECTION("the remainder leaves on shutdown") {
    create(size_only(10));
    REQUIRE(processor->consume(request.batch()).is_ok());
    REQUIRE(sink->wait_for_batches(full));
    REQUIRE(wait_until([&] { return processor->queued_items() == rest; }));
    CHECK(sink->batch_count() == full);
    CHECK(counter("otlpd_processor_batches_sent_by_size") == full);
    processor->shutdown(Clock::now() + 5s);
    check_all_delivered();
  }
  SECTION("the remainder leaves by time") {
    BatchConfig c;
    c.max_export_batch_size = 10;
    c.schedule_delay = 300ms;
    create(c);
    REQUIRE(processor->consume(request.batch()).is_ok());
    REQUIRE(sink->wait_for_batches(full + 1));
    REQUIRE(wait_until([&] { return processor->queued_items() == 0; }));
    CHECK(counter("otlpd_processor_batches_sent_by_size") == full);
    CHECK(counter("otlpd_processor_batches_sent_by_time") == 1);
    check_all_delivered();
  }
}

TEST_CASE_METHOD(BatchFixture, "batch: a request tops up the open batch and the rest starts the next", "[batch]") {
  create(size_only(10));
  REQUIRE(processor->consume(make_traces_request(1, 1, 7, 1).batch()).is_ok());
  CHECK(processor->queued_items() == 7);
  REQUIRE(processor->consume(make_traces_request(1, 1, 5, 8).batch()).is_ok());
  REQUIRE(sink->wait_for_batches(1));
  REQUIRE(wait_until([&] { return processor->queued_items() == 2; }));
  REQUIRE(threads.barrier());
  auto batches = sink->batches();
  REQUIRE(batches.size() == 1);
  CHECK(batches[0]->items == 10);
  CHECK(span_ids_in(batches[0]->payload) == iota_ids(1, 10));
  check_trace_batch_well_formed(*batches[0]);
  CHECK(counter("otlpd_processor_batches_sent_by_size") == 1);

  processor->shutdown(Clock::now() + 5s);
  batches = sink->batches();
  REQUIRE(batches.size() == 2);
  CHECK(batches[1]->items == 2);
  CHECK(span_ids_in(batches[1]->payload) == std::vector<uint64_t>{11, 12});
  check_trace_batch_well_formed(*batches[1]);
}

TEST_CASE_METHOD(BatchFixture, "batch: metrics are split at data-point level", "[batch][metrics]") {
  auto kind = GENERATE(MetricKind::gauge, MetricKind::sum, MetricKind::histogram);
  CAPTURE(static_cast<int>(kind));
  create(size_only(10), Signal::metrics);
  auto request = make_metrics_request(kind, 1, 25);
  REQUIRE(request.items == 25);
  REQUIRE(otlp::count_items(Signal::metrics, request.bytes).items == 25);
  REQUIRE(processor->consume(request.batch()).is_ok());
  REQUIRE(sink->wait_for_batches(2));
  REQUIRE(wait_until([&] { return processor->queued_items() == 5; }));
  processor->shutdown(Clock::now() + 5s);

  auto batches = sink->batches();
  REQUIRE(batches.size() == 3);
  CHECK(item_counts(batches) == std::vector<size_t>{10, 10, 5});
  const std::vector<int> expected_points{10, 10, 5};
  uint64_t next_value = 1;
  for (size_t i = 0; i < batches.size(); ++i) {
    CAPTURE(i);
    const auto& b = *batches[i];
    CHECK(b.signal == Signal::metrics);
    auto walk = otlp::count_items(Signal::metrics, b.payload);
    REQUIRE(walk.ok);
    CHECK(walk.items == b.items);
    auto req = test::parse_metrics(b.payload);
    REQUIRE(req.resource_metrics_size() == 1);
    const auto& rm = req.resource_metrics(0);
    CHECK(test::service_name_of(rm.resource()) == "service-0");
    REQUIRE(rm.scope_metrics_size() == 1);
    CHECK(rm.scope_metrics(0).scope().name() == "scope-0-0");
    REQUIRE(rm.scope_metrics(0).metrics_size() == 1);
    const auto& m = rm.scope_metrics(0).metrics(0);
    CHECK(m.name() == "metric-0");
    CHECK(m.unit() == "1");
    using opentelemetry::proto::metrics::v1::AGGREGATION_TEMPORALITY_CUMULATIVE;
    std::vector<uint64_t> values;
    switch (kind) {
      case MetricKind::gauge:
        REQUIRE(m.has_gauge());
        CHECK(m.gauge().data_points_size() == expected_points[i]);
        for (const auto& dp : m.gauge().data_points()) values.push_back(static_cast<uint64_t>(dp.as_int()));
        break;
      case MetricKind::sum:
        REQUIRE(m.has_sum());
        CHECK(m.sum().data_points_size() == expected_points[i]);
        CHECK(m.sum().aggregation_temporality() == AGGREGATION_TEMPORALITY_CUMULATIVE);
        CHECK(m.sum().is_monotonic());
        for (const auto& dp : m.sum().data_points()) values.push_back(static_cast<uint64_t>(dp.as_int()));
        break;
      case MetricKind::histogram:
        REQUIRE(m.has_histogram());
        CHECK(m.histogram().data_points_size() == expected_points[i]);
        CHECK(m.histogram().aggregation_temporality() == AGGREGATION_TEMPORALITY_CUMULATIVE);
        for (const auto& dp : m.histogram().data_points()) {
          values.push_back(dp.count());
          CHECK(dp.bucket_counts_size() == 1);
        }
        break;
    }
    CHECK(values == iota_ids(next_value, static_cast<size_t>(expected_points[i])));
    next_value += static_cast<uint64_t>(expected_points[i]);
  }
}

TEST_CASE_METHOD(BatchFixture, "batch: logs are split at log-record level", "[batch][logs]") {
  create(size_only(5), Signal::logs);
  auto request = make_logs_request(2, 7);  // 14 records, two resources
  REQUIRE(processor->consume(request.batch()).is_ok());
  REQUIRE(sink->wait_for_batches(2));
  processor->shutdown(Clock::now() + 5s);
  auto batches = sink->batches();
  REQUIRE(batches.size() == 3);
  CHECK(item_counts(batches) == std::vector<size_t>{5, 5, 4});
  std::vector<uint64_t> ids;
  for (const auto& b : batches) {
    CHECK(b->signal == Signal::logs);
    CHECK(otlp::count_items(Signal::logs, b->payload).items == b->items);
    auto part = test::log_ids_in(b->payload);
    ids.insert(ids.end(), part.begin(), part.end());
  }
  CHECK(ids == iota_ids(1, 14));
  // The second batch straddles the two resources: records 6,7 of service-0 and 8..10 of service-1.
  auto req = test::pb::ExportLogsServiceRequest();
  REQUIRE(req.ParseFromString(batches[1]->payload));
  REQUIRE(req.resource_logs_size() == 2);
  CHECK(test::service_name_of(req.resource_logs(0).resource()) == "service-0");
  CHECK(req.resource_logs(0).scope_logs(0).log_records_size() == 2);
  CHECK(test::service_name_of(req.resource_logs(1).resource()) == "service-1");
  CHECK(req.resource_logs(1).scope_logs(0).log_records_size() == 3);
}

TEST_CASE_METHOD(BatchFixture, "batch: an empty request is accepted and carries nothing", "[batch]") {
  create(size_only(10));
  CHECK(processor->consume(make_batch(Signal::traces, "", 0)).is_ok());
  CHECK(processor->queued_items() == 0);
  processor->shutdown(Clock::now() + 5s);
  CHECK(sink->call_count() == 0);
}

// ---------------------------------------------------------------------------------------------
// A full queue

TEST_CASE_METHOD(BatchFixture, "batch: when_full refuse returns a retryable refusal", "[batch][backpressure]") {
  BatchConfig c = size_only(10, 20);
  c.when_full = BatchConfig::WhenFull::refuse;
  create(c);

  SECTION("downstream blocked") {
    sink->block();
  }
  SECTION("downstream refusing") {
    sink->set_fallback(Status::unavailable("downstream full", 0ms));
  }

  for (uint64_t i = 0; i < 4; ++i) {
    REQUIRE(processor->consume(make_traces_request(1, 1, 5, 1 + 5 * i).batch()).is_ok());
  }
  REQUIRE(wait_until([&] { return sink->entered() >= 1; }));
  CHECK(processor->queued_items() == 20);

  Status refused = processor->consume(make_traces_request(1, 1, 5, 21).batch());
  CHECK(refused.code() == Status::Code::unavailable);
  CHECK(refused.retryable());
  CHECK(refused.retry_after() > 0ms);
  CHECK(counter("otlpd_processor_refused_items") == 5);
  Status refused_one = processor->consume(make_traces_request(1, 1, 1, 26).batch());
  CHECK(refused_one.code() == Status::Code::unavailable);
  CHECK(counter("otlpd_processor_refused_items") == 6);
  CHECK(counter("otlpd_processor_accepted_items") == 20);
  CHECK(counter("otlpd_processor_dropped_items") == 0);
  CHECK(processor->queued_items() == 20);

  // Downstream recovers: both batches arrive, in order, and there is room again.
  sink->set_fallback(Status::ok());
  sink->release();
  REQUIRE(sink->wait_for_batches(2));
  REQUIRE(wait_until([&] { return processor->queued_items() == 0; }));
  CHECK(delivered_span_ids() == iota_ids(1, 20));
  CHECK(processor->consume(make_traces_request(1, 1, 5, 21).batch()).is_ok());
  CHECK(counter("otlpd_processor_dropped_items") == 0);
}

TEST_CASE_METHOD(BatchFixture, "batch: when_full drop accepts, counts and reports the dropped items", "[batch][backpressure]") {
  BatchConfig c = size_only(10, 20);
  c.when_full = BatchConfig::WhenFull::drop;
  create(c);
  sink->block();
  for (uint64_t i = 0; i < 4; ++i) {
    REQUIRE(processor->consume(make_traces_request(1, 1, 5, 1 + 5 * i).batch()).is_ok());
  }
  REQUIRE(sink->wait_for_waiting(1));

  Status s = processor->consume(make_traces_request(1, 1, 5, 21).batch());
  CHECK(s.is_ok());
  CHECK(s.rejected_items() == 5);
  CHECK(counter("otlpd_processor_dropped_items") == 5);
  CHECK(counter("otlpd_processor_refused_items") == 0);
  CHECK(counter("otlpd_processor_accepted_items") == 20);
  CHECK(processor->queued_items() == 20);

  sink->release();
  REQUIRE(sink->wait_for_batches(2));
  REQUIRE(wait_until([&] { return processor->queued_items() == 0; }));
  processor->shutdown(Clock::now() + 5s);
  CHECK(delivered_span_ids() == iota_ids(1, 20));  // 21..25 were dropped, not delivered
}

TEST_CASE_METHOD(BatchFixture, "batch: when_full block refuses after block_timeout when no room frees", "[batch][backpressure]") {
  BatchConfig c = size_only(10, 20);
  c.when_full = BatchConfig::WhenFull::block;
  c.block_timeout = 200ms;
  create(c);
  sink->block();
  for (uint64_t i = 0; i < 4; ++i) {
    REQUIRE(processor->consume(make_traces_request(1, 1, 5, 1 + 5 * i).batch()).is_ok());
  }
  REQUIRE(sink->wait_for_waiting(1));
  const auto t0 = Clock::now();
  Status s = processor->consume(make_traces_request(1, 1, 5, 21).batch());
  const auto waited = Clock::now() - t0;
  CHECK(s.code() == Status::Code::unavailable);
  CHECK(s.retryable());
  CHECK(waited >= 200ms);
  CHECK(waited < 5s);
  CHECK(counter("otlpd_processor_refused_items") == 5);
  CHECK(counter("otlpd_processor_accepted_items") == 20);
  CHECK(processor->queued_items() == 20);
}

TEST_CASE_METHOD(BatchFixture, "batch: when_full block accepts once room frees up", "[batch][backpressure]") {
  BatchConfig c = size_only(10, 20);
  c.when_full = BatchConfig::WhenFull::block;
  c.block_timeout = 10s;
  create(c);
  sink->block();
  for (uint64_t i = 0; i < 4; ++i) {
    REQUIRE(processor->consume(make_traces_request(1, 1, 5, 1 + 5 * i).batch()).is_ok());
  }
  REQUIRE(sink->wait_for_waiting(1));

  auto blocked = std::async(std::launch::async, [&] {
    return processor->consume(make_traces_request(1, 1, 5, 21).batch());
  });
  // Still waiting for room (a bounded check, not synchronisation).
  CHECK(blocked.wait_for(100ms) == std::future_status::timeout);
  const auto released_at = Clock::now();
  sink->release();
  REQUIRE(blocked.wait_for(5s) == std::future_status::ready);
  Status s = blocked.get();
  CHECK(s.is_ok());
  CHECK(s.rejected_items() == 0);
  CHECK(Clock::now() - released_at < 5s);
  CHECK(counter("otlpd_processor_accepted_items") == 25);
  CHECK(counter("otlpd_processor_refused_items") == 0);

  processor->shutdown(Clock::now() + 5s);
  CHECK(item_counts(sink->batches()) == std::vector<size_t>{10, 10, 5});
  CHECK(delivered_span_ids() == iota_ids(1, 25));
}

TEST_CASE_METHOD(BatchFixture, "batch: a request larger than max_queue_size is admitted into an empty stage and split", "[batch][backpressure]") {
  create(size_only(10, 20));
  sink->block();
  REQUIRE(processor->consume(make_traces_request(1, 1, 25).batch()).is_ok());
  CHECK(counter("otlpd_processor_accepted_items") == 25);
  REQUIRE(sink->wait_for_waiting(1));
  CHECK(processor->queued_items() == 25);
  // The stage is at its limit now: the next request is refused, retryably.
  Status s = processor->consume(make_traces_request(1, 1, 1, 26).batch());
  CHECK(s.code() == Status::Code::unavailable);
  CHECK(s.retryable());
  CHECK(counter("otlpd_processor_refused_items") == 1);
  sink->release();
  processor->shutdown(Clock::now() + 5s);
  CHECK(item_counts(sink->batches()) == std::vector<size_t>{10, 10, 5});
  CHECK(delivered_span_ids() == iota_ids(1, 25));
}

// ---------------------------------------------------------------------------------------------
// Downstream refusals

TEST_CASE_METHOD(BatchFixture, "batch: a refused batch is kept and re-offered until accepted", "[batch]") {
  create(size_only(10));
  sink->script({Status::unavailable("busy", 0ms), Status::unavailable("busy", 0ms), Status::unavailable("busy", 0ms)});
  REQUIRE(processor->consume(make_traces_request(1, 1, 10).batch()).is_ok());
  REQUIRE(sink->wait_for_batches(1));
  REQUIRE(wait_until([&] { return processor->queued_items() == 0; }));
  REQUIRE(threads.barrier());

  auto calls = sink->calls();
  REQUIRE(calls.size() == 4);
  for (size_t i = 0; i < calls.size(); ++i) {
    CAPTURE(i);
    CHECK(calls[i].batch.get() == calls[0].batch.get());  // the same batch, not a copy
    CHECK(calls[i].status.is_ok() == (i == 3));
    if (i > 0) CHECK(calls[i].at - calls[i - 1].at >= 50ms);  // re-offers are spaced, no spinning
  }
  REQUIRE(sink->batch_count() == 1);
  CHECK(span_ids_in(sink->batches()[0]->payload) == iota_ids(1, 10));
  CHECK(counter("otlpd_processor_dropped_items") == 0);
}

TEST_CASE_METHOD(BatchFixture, "batch: a permanent downstream refusal drops and counts the batch", "[batch]") {
  create(size_only(10));
  sink->script({Status::invalid_argument("bad data")});
  REQUIRE(processor->consume(make_traces_request(1, 1, 10, 1).batch()).is_ok());
  REQUIRE(wait_until([&] { return counter("otlpd_processor_dropped_items") == 10; }));
  REQUIRE(wait_until([&] { return processor->queued_items() == 0; }));
  CHECK(sink->call_count() == 1);
  CHECK(sink->batch_count() == 0);

  // The next batch is not held back.
  REQUIRE(processor->consume(make_traces_request(1, 1, 10, 11).batch()).is_ok());
  REQUIRE(sink->wait_for_batches(1));
  CHECK(delivered_span_ids() == iota_ids(11, 10));
  CHECK(sink->call_count() == 2);
}

TEST_CASE_METHOD(BatchFixture, "batch: a batch refused for longer than max_export_timeout is dropped", "[batch]") {
  BatchConfig c = size_only(10);
  c.max_export_timeout = 300ms;
  create(c);
  sink->set_fallback(Status::unavailable("down", 0ms));
  REQUIRE(processor->consume(make_traces_request(1, 1, 10, 1).batch()).is_ok());
  REQUIRE(wait_until([&] { return counter("otlpd_processor_dropped_items") == 10; }));
  REQUIRE(wait_until([&] { return processor->queued_items() == 0; }));
  auto calls = sink->calls();
  REQUIRE(calls.size() >= 2);
  CHECK(calls.back().at - calls.front().at >= 300ms);

  sink->set_fallback(Status::ok());
  REQUIRE(processor->consume(make_traces_request(1, 1, 10, 11).batch()).is_ok());
  REQUIRE(sink->wait_for_batches(1));
  CHECK(delivered_span_ids() == iota_ids(11, 10));  // the dropped batch is not offered again
  CHECK(counter("otlpd_processor_dropped_items") == 10);
}

// ---------------------------------------------------------------------------------------------
// Shutdown

TEST_CASE_METHOD(BatchFixture, "batch: shutdown flushes the open batch at once, then refuses", "[batch][shutdown]") {
  create(size_only(10));
  REQUIRE(processor->consume(make_traces_request(1, 1, 3).batch()).is_ok());
  CHECK(sink->call_count() == 0);
  const auto t0 = Clock::now();
  processor->shutdown(t0 + 5s);
  CHECK(Clock::now() - t0 < 1s);  // did not wait for schedule_delay (1 h) or the deadline
  REQUIRE(sink->batch_count() == 1);
  CHECK(span_ids_in(sink->batches()[0]->payload) == iota_ids(1, 3));
  CHECK(processor->queued_items() == 0);
  CHECK(counter("otlpd_processor_dropped_items") == 0);

  Status s = processor->consume(make_traces_request(1, 1, 2, 4).batch());
  CHECK(s.code() == Status::Code::unavailable);
  CHECK(s.retryable());

  processor->shutdown(Clock::now() + 5s);  // idempotent
  CHECK(sink->call_count() == 1);
}

// The deadline passes while a batch is downstream: the rest is dropped and counted, the batch
// being offered is settled when downstream answers.
TEST_CASE_METHOD(BatchFixture, "batch: shutdown with a stuck downstream returns by the deadline",
                 "[batch][shutdown]") {
  create(size_only(10));
  sink->block();
  REQUIRE(processor->consume(make_traces_request(1, 1, 10, 1).batch()).is_ok());
  REQUIRE(processor->consume(make_traces_request(1, 1, 5, 11).batch()).is_ok());
  REQUIRE(sink->wait_for_waiting(1));

  const auto t0 = Clock::now();
  processor->shutdown(t0 + 200ms);
  const auto took = Clock::now() - t0;
  CHECK(took >= 200ms);
  CHECK(took < 2s);
  CHECK(processor->queued_items() == 10);  // the batch downstream is holding
  CHECK(counter("otlpd_processor_dropped_items") == 5);

  // The stuck hand-off completes after the deadline: the stage must stay consistent, and every
  // item is either delivered or counted as dropped, never both.
  sink->release();
  REQUIRE(sink->wait_for_batches(1));
  // The stage's thread settles the batch once downstream answers.
  REQUIRE(wait_until([&] { return processor->queued_items() == 0; }));
  CHECK(counter("otlpd_processor_dropped_items") + sink->items() == 15);
}

// ---------------------------------------------------------------------------------------------
// Factory and config

struct Parsed {
  std::unique_ptr<BatchConfig> config;
  std::vector<std::pair<std::string, std::string>> errors;  // (path, message)
};

Parsed parse_yaml(const YAML::Node& yaml) {
  config::Errors errors;
  config::Node node(yaml, "processors.batch", &errors);
  BatchProcessorFactory factory;
  auto c = factory.parse(node);
  Parsed p;
  p.config.reset(dynamic_cast<BatchConfig*>(c.release()));
  REQUIRE(p.config);
  for (const auto& e : errors.list()) p.errors.emplace_back(e.path, e.message);
  return p;
}

Parsed parse(const std::string& text) { return parse_yaml(YAML::Load(text)); }

using Errs = std::vector<std::pair<std::string, std::string>>;

TEST_CASE("batch factory: defaults", "[batch][config]") {
  BatchProcessorFactory factory;
  CHECK(factory.type() == "batch");
  auto check_defaults = [](const Parsed& p) {
    CHECK(p.errors.empty());
    CHECK(p.config->max_queue_size == 2048);
    CHECK(p.config->schedule_delay == 5000ms);
    CHECK(p.config->max_export_batch_size == 512);
    CHECK(p.config->max_export_timeout == 30000ms);
    CHECK(p.config->when_full == BatchConfig::WhenFull::refuse);
    CHECK(p.config->block_timeout == 5000ms);
  };
  SECTION("written as `batch:` alone") { check_defaults(parse_yaml(YAML::Node())); }
  SECTION("null") { check_defaults(parse("~")); }
  SECTION("empty mapping") { check_defaults(parse("{}")); }
}

TEST_CASE("batch factory: every key", "[batch][config]") {
  auto p = parse(
      "max_queue_size: 100\n"
      "schedule_delay: 200ms\n"
      "max_export_batch_size: 50\n"
      "max_export_timeout: 10s\n"
      "when_full: block\n"
      "block_timeout: 1.5s\n");
  CHECK(p.errors == Errs{});
  CHECK(p.config->max_queue_size == 100);
  CHECK(p.config->schedule_delay == 200ms);
  CHECK(p.config->max_export_batch_size == 50);
  CHECK(p.config->max_export_timeout == 10000ms);
  CHECK(p.config->when_full == BatchConfig::WhenFull::block);
  CHECK(p.config->block_timeout == 1500ms);
  CHECK(parse("when_full: drop").config->when_full == BatchConfig::WhenFull::drop);
  CHECK(parse("when_full: refuse").config->when_full == BatchConfig::WhenFull::refuse);
}

TEST_CASE("batch factory: the Collector's names are aliases", "[batch][config]") {
  auto p = parse(
      "send_batch_size: 100\n"
      "timeout: 2s\n"
      "send_batch_max_size: 200\n");
  CHECK(p.errors == Errs{});
  CHECK(p.config->max_export_batch_size == 100);
  CHECK(p.config->schedule_delay == 2000ms);

  CHECK(parse("send_batch_size: 100\nsend_batch_max_size: 0").errors == Errs{});
  CHECK(parse("send_batch_size: 100\nsend_batch_max_size: 100").errors == Errs{});
  CHECK(parse("send_batch_size: 100\nsend_batch_max_size: 50").errors ==
        Errs{{"processors.batch.send_batch_max_size", "must be 0 or at least send_batch_size (100)"}});
}

TEST_CASE("batch factory: a key and its alias together are an error naming the alias", "[batch][config]") {
  SECTION("schedule_delay and timeout") {
    auto p = parse("schedule_delay: 1s\ntimeout: 2s");
    CHECK(p.errors == Errs{{"processors.batch.timeout", "set only one of schedule_delay and timeout"}});
    CHECK(p.config->schedule_delay == 1000ms);
  }
  SECTION("max_export_batch_size and send_batch_size") {
    auto p = parse("max_export_batch_size: 100\nsend_batch_size: 200");
    CHECK(p.errors ==
          Errs{{"processors.batch.send_batch_size", "set only one of max_export_batch_size and send_batch_size"}});
    CHECK(p.config->max_export_batch_size == 100);
  }
}

TEST_CASE("batch factory: a key and its alias together are an error even when one equals the default",
          "[batch][config]") {
  SECTION("key written with the default value") {
    auto p = parse("schedule_delay: 5s\ntimeout: 2s");
    CHECK(p.errors == Errs{{"processors.batch.timeout", "set only one of schedule_delay and timeout"}});
  }
  SECTION("alias written with the default value") {
    auto p = parse("max_export_batch_size: 100\nsend_batch_size: 512");
    CHECK(p.errors ==
          Errs{{"processors.batch.send_batch_size", "set only one of max_export_batch_size and send_batch_size"}});
  }
}

TEST_CASE("batch factory: bad values are reported with their path", "[batch][config]") {
  SECTION("bad duration") {
    CHECK(parse("schedule_delay: 5 seconds").errors ==
          Errs{{"processors.batch.schedule_delay",
                "invalid duration \"5 seconds\" (expected a number with a unit, e.g. 200ms, 5s, 1m)"}});
    CHECK(parse("timeout: soon").errors ==
          Errs{{"processors.batch.timeout",
                "invalid duration \"soon\" (expected a number with a unit, e.g. 200ms, 5s, 1m)"}});
  }
  SECTION("bad when_full") {
    CHECK(parse("when_full: sometimes").errors ==
          Errs{{"processors.batch.when_full", "invalid value \"sometimes\" (expected one of: refuse, block, drop)"}});
  }
  SECTION("max_export_batch_size above max_queue_size") {
    auto p = parse("max_queue_size: 100\nmax_export_batch_size: 200");
    CHECK(p.errors == Errs{{"processors.batch.max_export_batch_size", "must not exceed max_queue_size (100)"}});
  }
  SECTION("unknown key") {
    CHECK(parse("max_queue_sz: 10").errors == Errs{{"processors.batch.max_queue_sz", "unknown key"}});
  }
  SECTION("not an integer") {
    CHECK(parse("max_queue_size: lots").errors ==
          Errs{{"processors.batch.max_queue_size", "invalid value \"lots\" (expected an integer)"}});
  }
  SECTION("zero durations and sizes") {
    CHECK(parse("schedule_delay: 0").errors == Errs{{"processors.batch.schedule_delay", "must be positive"}});
    CHECK(parse("block_timeout: 0").errors == Errs{{"processors.batch.block_timeout", "must be positive"}});
    CHECK(parse("max_export_timeout: 0").errors == Errs{{"processors.batch.max_export_timeout", "must be positive"}});
    CHECK(parse("max_queue_size: 0").errors ==
          Errs{{"processors.batch.max_queue_size", "must be between 1 and 100000000, got 0"},
               {"processors.batch.max_export_batch_size", "must not exceed max_queue_size (0)"}});
    CHECK(parse("max_export_batch_size: 0").errors ==
          Errs{{"processors.batch.max_export_batch_size", "must be between 1 and 100000000, got 0"}});
  }
  SECTION("not a mapping") {
    auto p = parse("[1, 2]");
    CHECK(p.errors == Errs{{"processors.batch", "expected a mapping"}});
    CHECK(p.config->max_queue_size == 2048);
  }
}

TEST_CASE_METHOD(BatchFixture, "batch factory: create builds a working processor from the parsed config", "[batch][config]") {
  auto p = parse("send_batch_size: 2\nmax_queue_size: 4\ntimeout: 1h");
  REQUIRE(p.errors == Errs{});
  BatchProcessorFactory factory;
  ProcessorPtr created = factory.create(kId, *p.config, Signal::traces, sink, host);
  REQUIRE(created);
  processor = std::dynamic_pointer_cast<BatchProcessor>(created);
  REQUIRE(processor);
  REQUIRE(processor->start().is_ok());
  REQUIRE(processor->consume(make_traces_request(1, 1, 3).batch()).is_ok());
  REQUIRE(sink->wait_for_batches(1));
  CHECK(sink->batches()[0]->items == 2);
  CHECK(span_ids_in(sink->batches()[0]->payload) == iota_ids(1, 2));
  REQUIRE(wait_until([&] { return processor->queued_items() == 1; }));
}

TEST_CASE_METHOD(BatchFixture, "batch: a filled batch goes on from the filling thread when downstream never waits",
                 "[batch]") {
  sink->set_never_waits(true);
  create(size_only(10));
  // Four producers at once: every span arrives exactly once, in full batches, and each batch was
  // handed on by one of the producers, not the stage's own thread.
  constexpr uint64_t kProducers = 4, kRequests = 50;
  std::vector<std::thread> producers;
  std::vector<std::thread::id> producer_ids(kProducers);
  for (uint64_t p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      producer_ids[p] = std::this_thread::get_id();
      for (uint64_t r = 0; r < kRequests; ++r) {
        const uint64_t first = 1 + (p * kRequests + r) * 5;
        REQUIRE(processor->consume(make_traces_request(1, 1, 5, first).batch()).is_ok());
      }
    });
  }
  for (auto& t : producers) t.join();
  REQUIRE(sink->wait_for_batches(kProducers * kRequests / 2));
  auto calls = sink->calls();
  REQUIRE(calls.size() == kProducers * kRequests / 2);
  for (const auto& call : calls) {
    CHECK(call.batch->items == 10);
    CHECK(std::find(producer_ids.begin(), producer_ids.end(), call.thread) != producer_ids.end());
  }
  auto ids = delivered_span_ids();
  std::sort(ids.begin(), ids.end());
  CHECK(ids == iota_ids(1, kProducers * kRequests * 5));
  CHECK(processor->queued_items() == 0);
}

// Counts batches and keeps none, so each batch dies as soon as it has been handed on.
class DiscardingConsumer : public Consumer {
 public:
  Status consume(BatchPtr) override {
    ++batches;
    return Status::ok();
  }
  bool never_waits() const override { return true; }
  std::atomic<size_t> batches{0};
};

TEST_CASE("batch: with pools, batch buffers and objects go round instead of being allocated", "[batch][pool]") {
  Telemetry telemetry;
  test::IoThreads threads{1};
  BatchPools pools(telemetry);
  Host host{threads.io(), telemetry, &pools};
  auto sink = std::make_shared<DiscardingConsumer>();
  auto processor = std::make_shared<BatchProcessor>(kId, Signal::traces, size_only(10), sink, host);
  REQUIRE(processor->start().is_ok());
  // 40 batches of 10 spans, each handed on (and freed) by the consume() that fills it: its buffer
  // and object come back to the pools in time for the next batch.
  for (uint64_t i = 0; i < 80; ++i) {
    REQUIRE(processor->consume(make_traces_request(1, 1, 5, 1 + 5 * i).batch()).is_ok());
  }
  CHECK(sink->batches == 40);
  processor->shutdown(Clock::now() + 5s);
  auto stat = [&](const char* name, const char* pool) { return telemetry.value(name, {{"pool", pool}}); };
  CHECK(stat("otlpd_pool_misses", "batch_buffers") == 1);  // only the first batch needed a new buffer
  CHECK(stat("otlpd_pool_hits", "batch_buffers") == 39);
  CHECK(stat("otlpd_pool_misses", "batch_objects") == 1);
  CHECK(stat("otlpd_pool_hits", "batch_objects") == 39);
  CHECK(stat("otlpd_pool_size", "batch_buffers") == 1);
}

}  // namespace
}  // namespace otlpd

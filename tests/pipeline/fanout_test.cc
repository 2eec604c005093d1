// Tests for FanOut: one shared batch to every target, refusals isolated, the combined status.
#include "pipeline/fanout.h"

#include <catch2/catch.hpp>

#include "support/test_support.h"

namespace otlpd {
namespace {

using namespace std::chrono_literals;
using test::make_traces_request;
using test::RecordingConsumer;

std::vector<std::shared_ptr<RecordingConsumer>> make_sinks(size_t n) {
  std::vector<std::shared_ptr<RecordingConsumer>> out;
  for (size_t i = 0; i < n; ++i) out.push_back(std::make_shared<RecordingConsumer>());
  return out;
}

FanOut make_fanout(const std::vector<std::shared_ptr<RecordingConsumer>>& sinks) {
  std::vector<FanOut::Target> targets;
  for (size_t i = 0; i < sinks.size(); ++i) targets.push_back({"exporter test/" + std::to_string(i), sinks[i]});
  return FanOut(std::move(targets));
}

TEST_CASE("fanout: every target gets the same batch object", "[fanout]") {
  auto sinks = make_sinks(3);
  FanOut fanout = make_fanout(sinks);
  BatchPtr batch = make_traces_request(1, 1, 4).batch();
  const Batch* raw = batch.get();

  Status s = fanout.consume(batch);
  CHECK(s.is_ok());
  CHECK(s.rejected_items() == 0);
  for (const auto& sink : sinks) {
    auto got = sink->batches();
    REQUIRE(got.size() == 1);
    CHECK(got[0].get() == raw);  // shared, not copied
    CHECK(got[0]->items == 4);
    CHECK(test::span_ids_in(got[0]->payload) == test::iota_ids(1, 4));
  }
}

TEST_CASE("fanout: one refusing target does not hold back the others", "[fanout]") {
  auto sinks = make_sinks(3);
  sinks[1]->set_fallback(Status::unavailable("queue full", 250ms));
  FanOut fanout = make_fanout(sinks);
  BatchPtr batch = make_traces_request(1, 1, 4).batch();

  Status s = fanout.consume(batch);
  CHECK(s.is_ok());
  CHECK(s.rejected_items() == 0);
  CHECK(sinks[0]->batch_count() == 1);
  CHECK(sinks[1]->call_count() == 1);
  CHECK(sinks[1]->batch_count() == 0);
  CHECK(sinks[2]->batch_count() == 1);
  CHECK(sinks[2]->batches()[0].get() == batch.get());

  SECTION("also when the first target refuses") {
    auto first_refuses = make_sinks(2);
    first_refuses[0]->set_fallback(Status::invalid_argument("bad"));
    FanOut f2 = make_fanout(first_refuses);
    CHECK(f2.consume(batch).is_ok());
    CHECK(first_refuses[1]->batch_count() == 1);
  }
}

TEST_CASE("fanout: a persisting target's refusal is returned even when others took the batch", "[fanout]") {
  auto sinks = make_sinks(3);
  sinks[1]->set_persists(true);
  sinks[1]->set_fallback(Status::unavailable("persistent queue full", 300ms));
  FanOut fanout = make_fanout(sinks);
  CHECK(fanout.persists());
  Status s = fanout.consume(make_traces_request(1, 1, 4).batch());
  CHECK(s.code() == Status::Code::unavailable);
  CHECK(s.message() == "persistent queue full");
  CHECK(s.retry_after() == 300ms);
  CHECK(sinks[0]->batch_count() == 1);  // the others still got it: a client retry may repeat it there
  CHECK(sinks[2]->batch_count() == 1);

  sinks[1]->set_fallback(Status::ok());
  CHECK(fanout.consume(make_traces_request(1, 1, 4).batch()).is_ok());
  CHECK(sinks[1]->batch_count() == 1);
}

TEST_CASE("fanout: when every target refuses the first refusal is returned", "[fanout]") {
  auto sinks = make_sinks(3);
  sinks[0]->set_fallback(Status::unavailable("first is full", 250ms));
  sinks[1]->set_fallback(Status::resource_exhausted("second is slow", 900ms));
  sinks[2]->set_fallback(Status::invalid_argument("third dislikes it"));
  FanOut fanout = make_fanout(sinks);

  Status s = fanout.consume(make_traces_request(1, 1, 4).batch());
  CHECK(s.code() == Status::Code::unavailable);
  CHECK(s.message() == "first is full");
  CHECK(s.retry_after() == 250ms);
  CHECK(s.retryable());
  for (const auto& sink : sinks) CHECK(sink->call_count() == 1);  // each was offered the batch

  SECTION("a permanent first refusal is returned as such") {
    auto perm = make_sinks(2);
    perm[0]->set_fallback(Status::invalid_argument("bad data"));
    perm[1]->set_fallback(Status::unavailable("full", 100ms));
    Status p = make_fanout(perm).consume(make_traces_request(1, 1, 1).batch());
    CHECK(p.code() == Status::Code::invalid_argument);
    CHECK(p.message() == "bad data");
    CHECK_FALSE(p.retryable());
  }
}

TEST_CASE("fanout: a partial acceptance propagates the largest rejected count", "[fanout]") {
  auto sinks = make_sinks(3);
  sinks[0]->set_fallback(Status::partial(3, "three dropped"));
  sinks[1]->set_fallback(Status::partial(7, "seven dropped"));
  sinks[2]->set_fallback(Status::ok());
  FanOut fanout = make_fanout(sinks);

  Status s = fanout.consume(make_traces_request(1, 1, 10).batch());
  CHECK(s.is_ok());
  CHECK(s.rejected_items() == 7);
  CHECK(s.message() == "seven dropped");

  SECTION("together with a refusal") {
    auto mixed = make_sinks(2);
    mixed[0]->set_fallback(Status::unavailable("full", 100ms));
    mixed[1]->set_fallback(Status::partial(4, "four dropped"));
    Status m = make_fanout(mixed).consume(make_traces_request(1, 1, 10).batch());
    CHECK(m.is_ok());
    CHECK(m.rejected_items() == 4);
    CHECK(m.message() == "four dropped");
  }
}

TEST_CASE("fanout: a single target's status passes through unchanged", "[fanout]") {
  auto sinks = make_sinks(1);
  FanOut fanout = make_fanout(sinks);
  BatchPtr batch = make_traces_request(1, 1, 2).batch();
  CHECK(fanout.consume(batch).is_ok());
  sinks[0]->set_fallback(Status::unavailable("full", 300ms));
  Status s = fanout.consume(batch);
  CHECK(s.code() == Status::Code::unavailable);
  CHECK(s.retry_after() == 300ms);
  sinks[0]->set_fallback(Status::partial(2, "both dropped"));
  Status p = fanout.consume(batch);
  CHECK(p.is_ok());
  CHECK(p.rejected_items() == 2);
  CHECK(sinks[0]->call_count() == 3);
}

}  // namespace
}  // namespace otlpd

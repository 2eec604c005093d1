// Tests for QueuedExporter: the sending queue, retries with backoff, per-attempt deadlines, the
// consumer limit, shutdown draining, and its counters. The protocol is a scripted fake Sender.
#include "exporters/common/queued_exporter.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <set>
#include <thread>

#include "pipeline/telemetry.h"
#include "support/test_support.h"

namespace otlpd {
namespace {

using namespace std::chrono_literals;
using test::make_traces_request;
using test::wait_until;

// What the fake sender saw and will answer; shared between the test and the sender the exporter
// owns, so it outlives either. Thread-safe.
struct SenderScript {
  struct Attempt {
    BatchPtr batch;
    Clock::time_point at;        // when send() was called
    Clock::time_point deadline;  // the deadline it was given
  };

  mutable std::mutex mu;
  std::condition_variable cv;
  Status start_status;
  std::deque<Status> script;  // answers for the next attempts, in order
  Status fallback;            // then this
  bool hold = false;          // keep completions until released
  std::deque<std::pair<Sender::Done, Status>> held;
  std::vector<Attempt> attempts;
  size_t in_flight = 0, max_in_flight = 0;
  int shutdowns = 0;
  size_t sends_after_shutdown = 0;

  void set_script(std::vector<Status> statuses, Status then = Status::ok()) {
    std::lock_guard lock(mu);
    script.assign(statuses.begin(), statuses.end());
    fallback = std::move(then);
  }
  void set_hold(bool h) {
    std::lock_guard lock(mu);
    hold = h;
  }
  size_t attempt_count() const {
    std::lock_guard lock(mu);
    return attempts.size();
  }
  size_t held_count() const {
    std::lock_guard lock(mu);
    return held.size();
  }
  std::vector<Attempt> attempts_copy() const {
    std::lock_guard lock(mu);
    return attempts;
  }
  // Completes the oldest held send with its scripted answer, or with `override_status`.
  bool release_one(std::optional<Status> override_status = std::nullopt) {
    Sender::Done done;
    Status status;
    {
      std::lock_guard lock(mu);
      if (held.empty()) return false;
      done = std::move(held.front().first);
      status = override_status ? *override_status : held.front().second;
      held.pop_front();
      --in_flight;
    }
    done(status);
    return true;
  }
  void release_all() {
    set_hold(false);
    while (release_one()) {
    }
  }
};

class FakeSender : public Sender {
 public:
  explicit FakeSender(std::shared_ptr<SenderScript> s) : s_(std::move(s)) {}

  Status start() override {
    std::lock_guard lock(s_->mu);
    return s_->start_status;
  }

  void send(BatchPtr batch, Clock::time_point deadline, Done done) override {
    Status status;
    {
      std::lock_guard lock(s_->mu);
      s_->attempts.push_back({batch, Clock::now(), deadline});
      if (s_->shutdowns > 0) ++s_->sends_after_shutdown;
      status = s_->fallback;
      if (!s_->script.empty()) {
        status = s_->script.front();
        s_->script.pop_front();
      }
      ++s_->in_flight;
      s_->max_in_flight = std::max(s_->max_in_flight, s_->in_flight);
      s_->cv.notify_all();
      if (s_->hold) {
        s_->held.emplace_back(std::move(done), status);
        return;
      }
      --s_->in_flight;
    }
    done(status);
  }

  void shutdown() override {
    std::lock_guard lock(s_->mu);
    ++s_->shutdowns;
  }

 private:
  std::shared_ptr<SenderScript> s_;
};

ExporterSettings fast_settings() {
  ExporterSettings s;
  s.timeout = 2s;
  s.retry.initial_interval = 10ms;
  s.retry.max_interval = 50ms;
  s.retry.multiplier = 2.0;
  s.retry.randomization_factor = 0;  // deterministic waits
  s.retry.max_elapsed_time = 10s;
  return s;
}

BatchPtr spans(size_t n, uint64_t first = 1) { return make_traces_request(1, 1, n, first).batch(); }

// A batch of `bytes` payload bytes; the fake sender never parses it.
BatchPtr sized(size_t bytes, size_t items) { return make_batch(Signal::traces, std::string(bytes, 'x'), items); }

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * kKiB;

struct ExporterFixture {
  Telemetry telemetry;  // before the threads: handlers may touch counters until joined
  test::IoThreads threads{2};
  Host host{threads.io(), telemetry};
  std::shared_ptr<SenderScript> sender = std::make_shared<SenderScript>();
  std::shared_ptr<QueuedExporter> exporter;

  ~ExporterFixture() {
    if (exporter) {
      sender->release_all();
      exporter->shutdown(Clock::now() + 2s);
      sender->release_all();
    }
  }

  void create(const ExporterSettings& settings, bool start = true) {
    exporter = std::make_shared<QueuedExporter>(ComponentId{"otlp", "test"}, Signal::traces, settings,
                                                std::make_unique<FakeSender>(sender), host);
    if (start) REQUIRE(exporter->start().is_ok());
  }

  uint64_t counter(const std::string& name) const {
    return telemetry.value(name, {{"exporter", "otlp/test"}, {"signal", "traces"}});
  }
  uint64_t sent() const { return counter("otlpd_exporter_sent_items"); }
  uint64_t failed() const { return counter("otlpd_exporter_send_failed_items"); }
  uint64_t enqueue_failed() const { return counter("otlpd_exporter_enqueue_failed_items"); }
  uint64_t retries() const { return counter("otlpd_exporter_retries"); }

  bool idle(std::chrono::milliseconds timeout = 5000ms) {
    return wait_until([&] { return exporter->pending() == 0; }, timeout);
  }
};

TEST_CASE_METHOD(ExporterFixture, "queued exporter: successful sends are counted", "[exporter]") {
  create(fast_settings());
  std::vector<BatchPtr> batches{spans(4, 1), spans(5, 5), spans(6, 10)};
  for (const auto& b : batches) REQUIRE(exporter->consume(b).is_ok());
  REQUIRE(idle());
  CHECK(sent() == 15);
  CHECK(failed() == 0);
  CHECK(enqueue_failed() == 0);
  CHECK(retries() == 0);
  auto attempts = sender->attempts_copy();
  REQUIRE(attempts.size() == 3);
  std::set<const Batch*> sent_batches, given;
  for (const auto& a : attempts) sent_batches.insert(a.batch.get());
  for (const auto& b : batches) given.insert(b.get());
  CHECK(sent_batches == given);  // each batch sent once, as the same object
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: consume before start and a failing start", "[exporter]") {
  SECTION("not started") {
    create(fast_settings(), /*start=*/false);
    Status s = exporter->consume(spans(3));
    CHECK(s.code() == Status::Code::unavailable);
    CHECK(enqueue_failed() == 0);
    CHECK(sender->attempt_count() == 0);
  }
  SECTION("the sender fails to start") {
    sender->start_status = Status::invalid_argument("bad endpoint");
    create(fast_settings(), /*start=*/false);
    Status s = exporter->start();
    CHECK(s.code() == Status::Code::invalid_argument);
    CHECK(s.message() == "bad endpoint");
    CHECK(exporter->consume(spans(3)).code() == Status::Code::unavailable);
  }
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: a retryable failure is retried with backoff until it succeeds",
                 "[exporter][retry]") {
  create(fast_settings());
  sender->set_script({Status::unavailable("down", 0ms), Status::unavailable("down", 0ms),
                      Status::resource_exhausted("busy", 0ms)});
  BatchPtr batch = spans(7);
  REQUIRE(exporter->consume(batch).is_ok());
  REQUIRE(idle());

  auto attempts = sender->attempts_copy();
  REQUIRE(attempts.size() == 4);
  for (const auto& a : attempts) CHECK(a.batch.get() == batch.get());
  // initial_interval 10ms, multiplier 2, no jitter: waits of 10, 20, 40 ms (max_interval 50ms).
  CHECK(attempts[1].at - attempts[0].at >= 10ms);
  CHECK(attempts[2].at - attempts[1].at >= 20ms);
  CHECK(attempts[3].at - attempts[2].at >= 40ms);
  CHECK(retries() == 3);
  CHECK(sent() == 7);
  CHECK(failed() == 0);
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: backoff jitter stays within randomization_factor",
                 "[exporter][retry]") {
  auto settings = fast_settings();
  settings.retry.initial_interval = 40ms;
  settings.retry.max_interval = 40ms;
  settings.retry.randomization_factor = 0.5;
  create(settings);
  sender->set_script({Status::unavailable("down", 0ms), Status::unavailable("down", 0ms),
                      Status::unavailable("down", 0ms)});
  REQUIRE(exporter->consume(spans(2)).is_ok());
  REQUIRE(idle());
  auto attempts = sender->attempts_copy();
  REQUIRE(attempts.size() == 4);
  for (size_t i = 1; i < attempts.size(); ++i) CHECK(attempts[i].at - attempts[i - 1].at >= 20ms);
  CHECK(retries() == 3);
  CHECK(sent() == 2);
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: a permanent failure is not retried", "[exporter][retry]") {
  auto settings = fast_settings();
  Status answer;
  SECTION("invalid_argument") { answer = Status::invalid_argument("rejected by backend"); }
  SECTION("too_large") { answer = Status::too_large("payload too big"); }
  SECTION("retryable, but retry_on_failure disabled") {
    settings.retry.enabled = false;
    answer = Status::unavailable("down", 0ms);
  }
  create(settings);
  sender->set_script({answer});
  REQUIRE(exporter->consume(spans(7)).is_ok());
  REQUIRE(idle());
  REQUIRE(threads.barrier());
  CHECK(sender->attempt_count() == 1);
  CHECK(failed() == 7);
  CHECK(retries() == 0);
  CHECK(sent() == 0);
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: a batch is dropped once max_elapsed_time would be exceeded",
                 "[exporter][retry]") {
  auto settings = fast_settings();
  settings.retry.initial_interval = 10ms;
  settings.retry.max_interval = 20ms;
  settings.retry.max_elapsed_time = 60ms;
  create(settings);
  sender->set_script({}, Status::unavailable("down", 0ms));
  REQUIRE(exporter->consume(spans(7)).is_ok());
  REQUIRE(wait_until([&] { return failed() == 7; }));
  REQUIRE(idle());
  REQUIRE(threads.barrier());
  CHECK(sent() == 0);
  // Waits are 10, 20, 20... ms: at most three fit in 60 ms.
  CHECK(retries() >= 1);
  CHECK(retries() <= 3);
  CHECK(sender->attempt_count() == retries() + 1);
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: the server's retry_after is honoured", "[exporter][retry]") {
  create(fast_settings());
  sender->set_script({Status::resource_exhausted("slow down", 300ms)});
  REQUIRE(exporter->consume(spans(3)).is_ok());
  REQUIRE(idle());
  auto attempts = sender->attempts_copy();
  REQUIRE(attempts.size() == 2);
  CHECK(attempts[1].at - attempts[0].at >= 300ms);
  CHECK(retries() == 1);
  CHECK(sent() == 3);
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: a full queue refuses with a retryable status", "[exporter][queue]") {
  auto settings = fast_settings();
  settings.queue.queue_size = 2;
  settings.queue.num_consumers = 1;
  create(settings);
  sender->set_hold(true);
  BatchPtr b1 = spans(1, 1), b2 = spans(2, 2), b3 = spans(3, 4);
  REQUIRE(exporter->consume(b1).is_ok());  // taken by the one consumer
  REQUIRE(exporter->consume(b2).is_ok());  // queued
  REQUIRE(exporter->consume(b3).is_ok());  // queued: the queue is full
  Status s4 = exporter->consume(spans(4, 7));
  CHECK(s4.code() == Status::Code::unavailable);
  CHECK(s4.message() == "sending queue of exporter otlp/test is full (2 batches)");
  CHECK(s4.retryable());
  CHECK(enqueue_failed() == 4);
  CHECK(exporter->consume(spans(5, 11)).code() == Status::Code::unavailable);
  CHECK(enqueue_failed() == 9);
  CHECK(exporter->pending() == 3);

  for (size_t i = 1; i <= 3; ++i) {
    REQUIRE(wait_until([&] { return sender->held_count() == 1; }));
    CHECK(sender->attempt_count() == i);
    REQUIRE(sender->release_one());
  }
  REQUIRE(idle());
  auto attempts = sender->attempts_copy();
  REQUIRE(attempts.size() == 3);
  CHECK(attempts[0].batch.get() == b1.get());  // in order
  CHECK(attempts[1].batch.get() == b2.get());
  CHECK(attempts[2].batch.get() == b3.get());
  CHECK(sent() == 6);
  CHECK(sender->max_in_flight == 1);

  // Room again.
  sender->set_hold(false);
  CHECK(exporter->consume(spans(4, 7)).is_ok());
  REQUIRE(idle());
  CHECK(sent() == 10);
  CHECK(enqueue_failed() == 9);
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: max_size_mib bounds the bytes queued and in flight",
                 "[exporter][queue]") {
  auto settings = fast_settings();
  settings.queue.num_consumers = 1;
  settings.queue.max_size_mib = 1;
  create(settings);
  sender->set_hold(true);
  BatchPtr in_flight = sized(600 * kKiB, 6), queued = sized(400 * kKiB, 4), late = sized(100 * kKiB, 3);
  REQUIRE(exporter->consume(in_flight).is_ok());
  REQUIRE(exporter->consume(queued).is_ok());  // 1000 KiB held: still under 1 MiB
  CHECK(exporter->pending_bytes() == 1000 * kKiB);
  CHECK(counter("otlpd_exporter_queue_bytes") == 1000 * kKiB);
  CHECK(counter("otlpd_exporter_queue_items") == 10);

  Status refused = exporter->consume(late);  // 1100 KiB would be over
  CHECK(refused.code() == Status::Code::unavailable);
  CHECK(refused.retryable());
  CHECK(refused.message() == "sending queue of exporter otlp/test is full (1 MiB)");
  CHECK(enqueue_failed() == 3);
  CHECK(exporter->consume(sized(1, 2)).is_ok());  // a batch that still fits
  CHECK(exporter->consume(late).code() == Status::Code::unavailable);
  CHECK(enqueue_failed() == 6);
  CHECK(exporter->pending() == 3);
  CHECK(exporter->pending_bytes() == 1000 * kKiB + 1);

  // The send in flight completes: its 600 KiB are free and the refused batch fits.
  REQUIRE(wait_until([&] { return sender->held_count() == 1; }));
  REQUIRE(sender->release_one());
  REQUIRE(wait_until([&] { return exporter->pending_bytes() == 400 * kKiB + 1; }));
  CHECK(exporter->consume(late).is_ok());
  CHECK(exporter->pending_bytes() == 500 * kKiB + 1);

  sender->release_all();
  REQUIRE(idle());
  CHECK(exporter->pending_bytes() == 0);
  CHECK(sent() == 15);
  CHECK(enqueue_failed() == 6);
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: a batch over the byte bound gets in only when the queue is empty",
                 "[exporter][queue]") {
  auto settings = fast_settings();
  settings.queue.num_consumers = 2;
  settings.queue.max_size_mib = 1;
  create(settings);
  sender->set_hold(true);
  REQUIRE(exporter->consume(sized(3 * kMiB, 5)).is_ok());  // empty and idle: admitted
  CHECK(exporter->pending_bytes() == 3 * kMiB);
  // It holds its bytes while in flight, so even a free consumer does not let the next one in.
  Status s = exporter->consume(sized(1, 2));
  CHECK(s.message() == "sending queue of exporter otlp/test is full (1 MiB)");
  CHECK(enqueue_failed() == 2);

  REQUIRE(wait_until([&] { return sender->held_count() == 1; }));
  REQUIRE(sender->release_one());
  REQUIRE(idle());
  CHECK(exporter->pending_bytes() == 0);
  CHECK(sent() == 5);

  // A small batch in flight: the next oversize batch is refused, not admitted.
  REQUIRE(exporter->consume(sized(1, 1)).is_ok());
  CHECK(exporter->consume(sized(2 * kMiB, 4)).code() == Status::Code::unavailable);
  CHECK(enqueue_failed() == 6);
  sender->release_all();
  REQUIRE(idle());
  CHECK(sent() == 6);
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: max_size_mib 0 is no byte bound", "[exporter][queue]") {
  auto settings = fast_settings();
  settings.queue.num_consumers = 1;
  settings.queue.queue_size = 3;
  settings.queue.max_size_mib = 0;
  create(settings);
  sender->set_hold(true);
  for (int i = 0; i < 4; ++i) REQUIRE(exporter->consume(sized(2 * kMiB, 1)).is_ok());  // 1 in flight, 3 queued
  CHECK(exporter->pending_bytes() == 8 * kMiB);
  CHECK(exporter->consume(sized(1, 1)).message() == "sending queue of exporter otlp/test is full (3 batches)");
  CHECK(enqueue_failed() == 1);
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: sizer items counts the items queued and in flight",
                 "[exporter][queue]") {
  auto settings = fast_settings();
  settings.queue.num_consumers = 1;
  settings.queue.sizer = QueueSizer::items;
  settings.queue.queue_size = 10;
  create(settings);
  sender->set_hold(true);
  REQUIRE(exporter->consume(spans(4, 1)).is_ok());  // in flight
  REQUIRE(exporter->consume(spans(6, 5)).is_ok());  // queued: 10 items held
  Status s = exporter->consume(spans(1, 11));
  CHECK(s.code() == Status::Code::unavailable);
  CHECK(s.message() == "sending queue of exporter otlp/test is full (10 spans)");
  CHECK(enqueue_failed() == 1);

  REQUIRE(wait_until([&] { return sender->held_count() == 1; }));
  REQUIRE(sender->release_one());  // 4 items free
  REQUIRE(wait_until([&] { return exporter->pending() == 1; }));
  CHECK(exporter->consume(spans(5, 11)).code() == Status::Code::unavailable);  // 11 > 10
  CHECK(enqueue_failed() == 6);
  CHECK(exporter->consume(spans(4, 11)).is_ok());  // exactly 10
  sender->release_all();
  REQUIRE(idle());
  CHECK(sent() == 14);

  // More items than the queue holds get in alone.
  CHECK(exporter->consume(spans(15, 100)).is_ok());
  REQUIRE(idle());
  CHECK(sent() == 29);
  CHECK(enqueue_failed() == 6);
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: sizer bytes makes queue_size a byte bound", "[exporter][queue]") {
  auto settings = fast_settings();
  settings.queue.num_consumers = 1;
  settings.queue.sizer = QueueSizer::bytes;

  SECTION("refuses what would go over, counting the batch in flight") {
    settings.queue.queue_size = 1000;
    create(settings);
    sender->set_hold(true);
    REQUIRE(exporter->consume(sized(400, 1)).is_ok());
    REQUIRE(exporter->consume(sized(400, 2)).is_ok());
    Status s = exporter->consume(sized(400, 3));
    CHECK(s.code() == Status::Code::unavailable);
    CHECK(s.message() == "sending queue of exporter otlp/test is full (1000 bytes)");
    CHECK(enqueue_failed() == 3);
    REQUIRE(wait_until([&] { return sender->held_count() == 1; }));
    REQUIRE(sender->release_one());
    REQUIRE(wait_until([&] { return exporter->pending_bytes() == 400; }));
    CHECK(exporter->consume(sized(400, 3)).is_ok());
    sender->release_all();
    REQUIRE(idle());
    CHECK(sent() == 6);
  }
  SECTION("the batch count is not bounded by queue_size") {
    settings.queue.queue_size = 2000;
    create(settings);
    sender->set_hold(true);
    for (int i = 0; i < 2000; ++i) REQUIRE(exporter->consume(sized(1, 1)).is_ok());
    CHECK(exporter->pending() == 2000);
    CHECK(exporter->consume(sized(1, 1)).message() == "sending queue of exporter otlp/test is full (2000 bytes)");
    CHECK(enqueue_failed() == 1);
  }
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: a sizer and max_size_mib both apply", "[exporter][queue]") {
  auto settings = fast_settings();
  settings.queue.num_consumers = 1;
  settings.queue.sizer = QueueSizer::items;
  settings.queue.queue_size = 100;
  settings.queue.max_size_mib = 1;
  create(settings);
  sender->set_hold(true);
  REQUIRE(exporter->consume(sized(600 * kKiB, 1)).is_ok());
  CHECK(exporter->consume(sized(600 * kKiB, 1)).message() == "sending queue of exporter otlp/test is full (1 MiB)");
  CHECK(exporter->consume(sized(1, 100)).message() == "sending queue of exporter otlp/test is full (100 spans)");
  CHECK(enqueue_failed() == 101);
  CHECK(exporter->pending() == 1);
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: a disabled queue takes only what a free consumer can send",
                 "[exporter][queue]") {
  auto settings = fast_settings();
  settings.queue.enabled = false;
  settings.queue.num_consumers = 1;
  create(settings);
  sender->set_hold(true);
  REQUIRE(exporter->consume(spans(2)).is_ok());
  CHECK(exporter->consume(spans(3)).code() == Status::Code::unavailable);
  CHECK(enqueue_failed() == 3);
  REQUIRE(wait_until([&] { return sender->held_count() == 1; }));
  sender->release_all();
  REQUIRE(idle());
  CHECK(sent() == 2);
  CHECK(exporter->consume(spans(3)).is_ok());
  REQUIRE(idle());
  CHECK(sent() == 5);
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: at most num_consumers sends are in flight", "[exporter][queue]") {
  auto settings = fast_settings();
  settings.queue.num_consumers = 3;
  settings.queue.queue_size = 10;
  create(settings);
  sender->set_hold(true);
  for (size_t i = 1; i <= 5; ++i) REQUIRE(exporter->consume(spans(i)).is_ok());
  CHECK(exporter->pending() == 5);

  REQUIRE(wait_until([&] { return sender->held_count() == 3; }));
  REQUIRE(threads.barrier());  // every attempt dispatched so far has called send()
  CHECK(sender->attempt_count() == 3);
  CHECK(exporter->pending() == 5);

  REQUIRE(sender->release_one());
  REQUIRE(wait_until([&] { return sender->attempt_count() == 4; }));
  REQUIRE(threads.barrier());
  CHECK(sender->attempt_count() == 4);
  CHECK(sender->held_count() == 3);
  CHECK(exporter->pending() == 4);

  REQUIRE(sender->release_one());
  REQUIRE(wait_until([&] { return sender->attempt_count() == 5; }));
  for (int i = 0; i < 3; ++i) {
    REQUIRE(wait_until([&] { return sender->held_count() > 0; }));
    REQUIRE(sender->release_one());
  }
  REQUIRE(idle());
  CHECK(sender->attempt_count() == 5);
  CHECK(sender->max_in_flight == 3);
  CHECK(sent() == 15);
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: shutdown drains queued batches within the deadline",
                 "[exporter][shutdown]") {
  auto settings = fast_settings();
  settings.queue.num_consumers = 1;
  settings.queue.queue_size = 10;
  create(settings);
  sender->set_hold(true);
  for (size_t n : {2, 3, 4, 5}) REQUIRE(exporter->consume(spans(n)).is_ok());
  REQUIRE(wait_until([&] { return sender->held_count() == 1; }));
  CHECK(exporter->pending() == 4);

  // Completes sends as they come, while the main thread is inside shutdown().
  std::thread completer([&] {
    for (int released = 0; released < 4;) {
      if (!wait_until([&] { return sender->held_count() > 0; })) return;
      if (sender->release_one()) ++released;
    }
  });
  const auto deadline = Clock::now() + 5s;
  exporter->shutdown(deadline);
  const auto returned = Clock::now();
  completer.join();

  CHECK(returned < deadline);
  CHECK(sent() == 14);
  CHECK(failed() == 0);
  CHECK(exporter->pending() == 0);
  CHECK(sender->attempt_count() == 4);
  {
    std::lock_guard lock(sender->mu);
    CHECK(sender->shutdowns == 1);
    CHECK(sender->sends_after_shutdown == 0);
  }
  CHECK(exporter->consume(spans(1)).code() == Status::Code::unavailable);
  CHECK(enqueue_failed() == 0);
  exporter->shutdown(Clock::now() + 1s);  // idempotent
  std::lock_guard lock(sender->mu);
  CHECK(sender->shutdowns == 1);
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: shutdown with a stuck sender returns by the deadline",
                 "[exporter][shutdown]") {
  auto settings = fast_settings();
  settings.queue.num_consumers = 1;
  settings.queue.queue_size = 10;
  create(settings);
  sender->set_hold(true);
  REQUIRE(exporter->consume(spans(5, 1)).is_ok());
  REQUIRE(exporter->consume(spans(6, 6)).is_ok());
  REQUIRE(exporter->consume(spans(7, 12)).is_ok());
  REQUIRE(wait_until([&] { return sender->held_count() == 1; }));

  const auto t0 = Clock::now();
  exporter->shutdown(t0 + 200ms);
  const auto took = Clock::now() - t0;
  CHECK(took >= 200ms);
  CHECK(took < 2s);
  CHECK(failed() == 13);  // the two queued batches; the one in flight is still the sender's
  CHECK(exporter->pending() == 1);
  CHECK(exporter->pending_bytes() == sender->attempts_copy().at(0).batch->payload.size());
  {
    std::lock_guard lock(sender->mu);
    CHECK(sender->shutdowns == 1);
  }
  CHECK(exporter->consume(spans(1)).code() == Status::Code::unavailable);
  CHECK(enqueue_failed() == 0);

  SECTION("the stuck send succeeds late") {
    REQUIRE(sender->release_one(Status::ok()));
    REQUIRE(idle());
    CHECK(exporter->pending_bytes() == 0);
    CHECK(sent() == 5);
    CHECK(failed() == 13);
  }
  SECTION("the stuck send fails late: no retry after shutdown") {
    REQUIRE(sender->release_one(Status::unavailable("down", 0ms)));
    REQUIRE(idle());
    REQUIRE(threads.barrier());
    CHECK(sent() == 0);
    CHECK(failed() == 18);
    CHECK(retries() == 0);
    CHECK(sender->attempt_count() == 1);
  }
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: a retry waiting at shutdown does not send after the sender shut down",
                 "[exporter][shutdown]") {
  auto settings = fast_settings();
  settings.retry.initial_interval = 300ms;
  settings.retry.max_interval = 300ms;
  create(settings);
  sender->set_script({}, Status::unavailable("down", 0ms));
  REQUIRE(exporter->consume(spans(7)).is_ok());
  REQUIRE(wait_until([&] { return retries() == 1; }));  // the first attempt failed; a retry is waiting

  exporter->shutdown(Clock::now() + 50ms);
  REQUIRE(wait_until([&] { return failed() == 7; }, 3000ms));
  REQUIRE(idle());
  REQUIRE(threads.barrier());
  CHECK(sent() == 0);
  std::lock_guard lock(sender->mu);
  CHECK(sender->shutdowns == 1);
  CHECK(sender->sends_after_shutdown == 0);
  CHECK(sender->attempts.size() == 1);
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: each attempt's deadline is now + timeout", "[exporter]") {
  auto settings = fast_settings();
  settings.timeout = 2s;
  create(settings);
  sender->set_script({Status::unavailable("down", 0ms)});
  const auto before = Clock::now();
  REQUIRE(exporter->consume(spans(3)).is_ok());
  REQUIRE(idle());
  auto attempts = sender->attempts_copy();
  REQUIRE(attempts.size() == 2);
  // Set just before send() was called: not earlier than consume() + timeout, not later than send() + timeout.
  CHECK(attempts[0].deadline >= before + 2s);
  CHECK(attempts[0].deadline <= attempts[0].at + 2s);
  // A retry gets a fresh deadline, after the 10 ms backoff.
  CHECK(attempts[1].deadline >= attempts[0].at + 10ms + 2s);
  CHECK(attempts[1].deadline <= attempts[1].at + 2s);
}


TEST_CASE_METHOD(ExporterFixture, "queued exporter: a partial success is counted and not retried",
                 "[exporter][retry]") {
  create(fast_settings());
  sender->set_script({Status::partial(3, "3 spans had no name")});
  REQUIRE(exporter->consume(spans(7)).is_ok());
  REQUIRE(idle());
  CHECK(sender->attempt_count() == 1);
  CHECK(sent() == 4);
  CHECK(counter("otlpd_exporter_rejected_items") == 3);
  CHECK(failed() == 0);
  CHECK(retries() == 0);
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: failure gauges count failed attempts until a success or shutdown",
                 "[exporter][retry]") {
  auto unix_now = [] {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  };
  auto consecutive = [&] { return counter("otlpd_exporter_consecutive_failures"); };
  auto since = [&] { return counter("otlpd_exporter_failing_since_timestamp_seconds"); };
  create(fast_settings());
  CHECK(consecutive() == 0);
  CHECK(since() == 0);

  // Held sends: each attempt's outcome is released, and the gauges read, one at a time.
  sender->set_hold(true);
  sender->set_script({Status::unavailable("down", 0ms), Status::unavailable("down", 0ms),
                      Status::unavailable("down", 0ms), Status::partial(1, "1 span had no name")});
  const uint64_t before = unix_now();
  REQUIRE(exporter->consume(spans(7)).is_ok());
  uint64_t first_failure = 0;
  for (size_t n = 1; n <= 3; ++n) {
    REQUIRE(wait_until([&] { return sender->held_count() == 1 && sender->attempt_count() == n; }));
    REQUIRE(sender->release_one());
    CHECK(consecutive() == n);  // counted before release_one returns
    if (n == 1) first_failure = since();
    CHECK(since() == first_failure);  // the first failure's time, kept through the retries
  }
  CHECK(first_failure >= before);
  CHECK(first_failure <= unix_now());

  // The retry's partial success is a success.
  REQUIRE(wait_until([&] { return sender->held_count() == 1 && sender->attempt_count() == 4; }));
  REQUIRE(sender->release_one());
  REQUIRE(idle());
  CHECK(consecutive() == 0);
  CHECK(since() == 0);
  CHECK(sent() == 6);

  // A failure, then shutdown: a stopped exporter is not failing.
  sender->set_hold(false);
  sender->set_script({Status::invalid_argument("rejected")});
  REQUIRE(exporter->consume(spans(2)).is_ok());
  REQUIRE(idle());
  CHECK(consecutive() == 1);
  CHECK(since() >= first_failure);
  exporter->shutdown(Clock::now() + 1s);
  CHECK(consecutive() == 0);
  CHECK(since() == 0);
}

TEST_CASE_METHOD(ExporterFixture, "queued exporter: block_on_overflow waits for room, up to the timeout",
                 "[exporter][queue]") {
  auto settings = fast_settings();
  settings.timeout = 1s;
  settings.queue.num_consumers = 1;
  settings.queue.queue_size = 1;
  settings.queue.block_on_overflow = true;
  create(settings);
  CHECK_FALSE(exporter->never_waits());
  sender->set_hold(true);
  REQUIRE(exporter->consume(spans(1, 1)).is_ok());  // in flight
  REQUIRE(wait_until([&] { return sender->held_count() == 1; }));
  REQUIRE(exporter->consume(spans(1, 2)).is_ok());  // waiting: the queue is full

  SECTION("room comes: the caller is let in") {
    std::atomic<bool> done{false};
    Status result = Status::internal("not returned");
    std::thread caller([&] {
      result = exporter->consume(spans(1, 3));
      done = true;
    });
    test::ScopeExit join([&] { caller.join(); });
    CHECK_FALSE(wait_until([&] { return done.load(); }, 50ms));  // blocked
    sender->release_one();  // the first is sent; the second goes in flight; room for the third
    REQUIRE(wait_until([&] { return done.load(); }));
    CHECK(result.is_ok());
    CHECK(enqueue_failed() == 0);
  }
  SECTION("no room within the timeout: refused, retryable") {
    const auto t0 = Clock::now();
    Status s = exporter->consume(spans(1, 3));
    CHECK(Clock::now() - t0 >= 1s);
    CHECK(s.code() == Status::Code::unavailable);
    CHECK(enqueue_failed() == 1);
  }
  SECTION("shutdown ends the wait") {
    std::atomic<bool> done{false};
    Status result;
    std::thread caller([&] {
      result = exporter->consume(spans(1, 3));
      done = true;
    });
    test::ScopeExit join([&] { caller.join(); });
    CHECK_FALSE(wait_until([&] { return done.load(); }, 50ms));
    std::thread stopper([&] { exporter->shutdown(Clock::now() + 1s); });
    REQUIRE(wait_until([&] { return done.load(); }, 500ms));  // well before the 1 s timeout
    CHECK(result.code() == Status::Code::unavailable);
    sender->release_all();
    stopper.join();
  }
}

// ---------------------------------------------------------------------------------------------
// Persistent queue (sending_queue.storage)

struct PersistentFixture : ExporterFixture {
  std::filesystem::path dir;
  PersistentFixture() {
    char tmpl[] = "/tmp/otlpd-queue-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  ~PersistentFixture() {
    if (exporter) {
      sender->release_all();
      exporter->shutdown(Clock::now() + 2s);
      sender->release_all();
      exporter.reset();
    }
    std::filesystem::remove_all(dir);
  }
  ExporterSettings settings() const {
    ExporterSettings s = fast_settings();
    s.queue.storage = dir.string();
    return s;
  }
  // Ends this run as a crash would leave it (sends in flight never answered), then starts the
  // exporter again on the same directory with a sender that answers OK.
  void restart(const ExporterSettings& s) {
    exporter->shutdown(Clock::now() + 20ms);
    while (sender->release_one(Status::unavailable("otlpd went away"))) {
    }
    exporter.reset();
    sender = std::make_shared<SenderScript>();
    create(s);
  }
  uint64_t persisted() const { return counter("otlpd_exporter_persisted_items"); }
  uint64_t replayed() const { return counter("otlpd_exporter_replayed_items"); }
  uint64_t kept() const { return counter("otlpd_exporter_kept_items"); }
  uint64_t set_aside() const { return counter("otlpd_exporter_set_aside_items"); }
};

TEST_CASE_METHOD(PersistentFixture, "persistent queue: what was acknowledged but not sent is sent by the next run",
                 "[exporter][persistent]") {
  create(settings());
  CHECK(exporter->persists());
  CHECK(exporter->queue_directory() == (dir / "exporter_otlp_test_traces").string());
  sender->set_hold(true);
  std::vector<BatchPtr> batches{spans(4, 1), spans(5, 5), spans(6, 10)};
  for (const auto& b : batches) REQUIRE(exporter->consume(b).is_ok());
  CHECK(persisted() == 15);
  REQUIRE(wait_until([&] { return sender->held_count() == 3; }));

  restart(settings());
  CHECK(kept() == 15);   // the first run counted them as left in the log, not lost
  CHECK(failed() == 0);
  REQUIRE(idle());
  CHECK(replayed() == 15);
  CHECK(sent() == 15);
  auto attempts = sender->attempts_copy();
  REQUIRE(attempts.size() == 1);  // replayed records waiting together go as one request
  CHECK(attempts[0].batch->payload == batches[0]->payload + batches[1]->payload + batches[2]->payload);
  CHECK(attempts[0].batch->items == 15);

  // Sent means finished: a third run has nothing to replay.
  restart(settings());
  REQUIRE(idle());
  CHECK(sender->attempt_count() == 0);
}

TEST_CASE_METHOD(PersistentFixture, "persistent queue: a batch refused for good is set aside and not replayed",
                 "[exporter][persistent]") {
  auto s = settings();
  s.queue.num_consumers = 1;  // sent in order, so the scripted refusal meets the first batch
  create(s);
  sender->set_script({Status::invalid_argument("bad data")});
  REQUIRE(exporter->consume(spans(3)).is_ok());
  REQUIRE(exporter->consume(spans(2, 10)).is_ok());
  REQUIRE(idle());
  CHECK(failed() == 3);
  CHECK(set_aside() == 3);
  CHECK(sent() == 2);
  CHECK(sender->attempt_count() == 2);  // no retry of the refused one
  const auto aside = dir / "exporter_otlp_test_traces" / "set-aside.log";
  REQUIRE(std::filesystem::exists(aside));
  CHECK(std::filesystem::file_size(aside) == 16 + spans(3)->payload.size());
  restart(s);
  REQUIRE(idle());
  CHECK(sender->attempt_count() == 0);
}

TEST_CASE_METHOD(PersistentFixture, "persistent queue: max_size_mib bounds the disk and refuses with a retryable status",
                 "[exporter][persistent]") {
  auto s = settings();
  s.queue.max_size_mib = 1;
  create(s);
  sender->set_hold(true);
  size_t accepted = 0;
  Status refused;
  for (int i = 0; i < 20 && refused.is_ok(); ++i) {
    refused = exporter->consume(sized(100 * kKiB, 10));
    if (refused.is_ok()) ++accepted;
  }
  CHECK(refused.code() == Status::Code::unavailable);
  CHECK(refused.retryable());
  CHECK(accepted == 10);  // 10 records of 100 KiB + 16 bytes fit in 1 MiB; the 11th does not
  CHECK(enqueue_failed() == 10);
  sender->release_all();
  REQUIRE(idle());
  CHECK(sent() == 100);
  CHECK(exporter->consume(sized(100 * kKiB, 10)).is_ok());  // sent records freed their space
}

TEST_CASE_METHOD(PersistentFixture, "persistent queue: batches beyond the memory cache are read back from the log",
                 "[exporter][persistent]") {
  auto s = settings();
  s.queue.num_consumers = 1;
  create(s);
  sender->set_hold(true);
  std::vector<std::string> payloads;
  for (int i = 0; i < 20; ++i) {  // 20 MiB: more than the 16 MiB kept in memory
    std::string p(kMiB, static_cast<char>('a' + i));
    payloads.push_back(p);
    REQUIRE(exporter->consume(make_batch(Signal::traces, std::move(p), 1)).is_ok());
  }
  sender->release_all();
  REQUIRE(idle(20s));
  CHECK(sent() == 20);
  // The first went out alone; the rest in requests of at most 3 MiB, in order.
  auto attempts = sender->attempts_copy();
  REQUIRE(attempts.size() == 8);
  std::string sent_bytes, given;
  for (const auto& a : attempts) {
    CHECK(a.batch->payload.size() <= 3 * kMiB);
    sent_bytes += a.batch->payload;
  }
  for (const auto& p : payloads) given += p;
  CHECK(sent_bytes == given);
}


TEST_CASE_METHOD(PersistentFixture, "persistent queue: records waiting together are sent as one request",
                 "[exporter][persistent]") {
  auto s = settings();
  s.queue.num_consumers = 1;
  create(s);
  sender->set_hold(true);
  REQUIRE(exporter->consume(spans(2, 1)).is_ok());  // goes out alone: the consumer was free
  REQUIRE(wait_until([&] { return sender->held_count() == 1; }));
  std::string expected;
  for (uint64_t i = 0; i < 4; ++i) {
    BatchPtr b = spans(3, 10 + 3 * i);
    expected += b->payload;
    REQUIRE(exporter->consume(b).is_ok());
  }
  sender->release_all();
  REQUIRE(idle());
  auto attempts = sender->attempts_copy();
  REQUIRE(attempts.size() == 2);
  CHECK(attempts[1].batch->items == 12);
  CHECK(attempts[1].batch->payload == expected);
  CHECK(test::span_ids_in(attempts[1].batch->payload) == std::vector<uint64_t>{10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21});
  CHECK(sent() == 14);
}

TEST_CASE_METHOD(PersistentFixture, "persistent queue: a request refused for good is retried batch by batch; only "
                                    "the refused batch is set aside", "[exporter][persistent]") {
  auto s = settings();
  s.queue.num_consumers = 1;
  create(s);
  sender->set_hold(true);
  REQUIRE(exporter->consume(spans(1, 1)).is_ok());  // out alone while the next three wait
  REQUIRE(wait_until([&] { return sender->held_count() == 1; }));
  REQUIRE(exporter->consume(spans(2, 10)).is_ok());
  REQUIRE(exporter->consume(spans(3, 20)).is_ok());
  REQUIRE(exporter->consume(spans(4, 30)).is_ok());
  // The three together are refused; then alone: the first and last go through, the middle is refused.
  sender->set_script({Status::invalid_argument("bad span"), Status::ok(), Status::invalid_argument("bad span"),
                      Status::ok()});
  sender->set_hold(false);
  sender->release_one(Status::ok());
  REQUIRE(idle());
  auto attempts = sender->attempts_copy();
  REQUIRE(attempts.size() == 5);
  CHECK(attempts[1].batch->items == 9);
  CHECK(test::span_ids_in(attempts[2].batch->payload) == std::vector<uint64_t>{10, 11});
  CHECK(test::span_ids_in(attempts[3].batch->payload) == std::vector<uint64_t>{20, 21, 22});
  CHECK(test::span_ids_in(attempts[4].batch->payload) == std::vector<uint64_t>{30, 31, 32, 33});
  CHECK(sent() == 7);
  CHECK(failed() == 3);
  CHECK(set_aside() == 3);
  CHECK(exporter->pending_bytes() == 0);
  CHECK(counter("otlpd_exporter_queue_items") == 0);
}

TEST_CASE_METHOD(PersistentFixture, "persistent queue: records are bounded by disk unless queue_size is written",
                 "[exporter][persistent]") {
  SECTION("default queue_size: 1,200 waiting requests are taken") {
    auto s = settings();
    s.queue.num_consumers = 1;
    create(s);
    sender->set_hold(true);
    for (uint64_t i = 0; i < 1200; ++i) REQUIRE(exporter->consume(spans(1, i + 1)).is_ok());
    CHECK(enqueue_failed() == 0);
  }
  SECTION("queue_size written: it bounds the waiting records") {
    auto s = settings();
    s.queue.num_consumers = 1;
    s.queue.queue_size = 3;
    s.queue.queue_size_set = true;
    create(s);
    sender->set_hold(true);
    REQUIRE(exporter->consume(spans(1, 1)).is_ok());  // in flight
    REQUIRE(wait_until([&] { return sender->held_count() == 1; }));
    for (uint64_t i = 0; i < 3; ++i) REQUIRE(exporter->consume(spans(1, 10 + i)).is_ok());
    CHECK(exporter->consume(spans(1, 20)).code() == Status::Code::unavailable);
    CHECK(enqueue_failed() == 1);
  }
}

}  // namespace
}  // namespace otlpd

// Fault tests: otlpd as users run it, between a client that knows exactly which items were
// acknowledged (otlpd-loadgen send) and a counting backend (otlpd-loadgen sink), with the backend
// going down, refusing, rejecting or slowing down, and otlpd being stopped under load. Each test
// checks exact counts: items acknowledged to the client, items the backend accepted, and otlpd's own
// totals (the `total NAME{LABELS} = N` lines it logs at exit).
//
// These are load tests for a 2-core machine: CTest runs them one at a time (RESOURCE_LOCK) and
// alone (PROCESSORS 2); each takes at most 40 s. Rates are fixed (--rate) rather than as fast as
// possible, so that what is checked does not depend on how fast the machine is.
#include <catch2/catch.hpp>

#include "fault/fault_process.h"

using namespace fault;
using namespace std::chrono_literals;

namespace {

std::string port_str(int port) { return std::to_string(port); }

// The parts of every config here: otlpd's own metrics on a port of their own (0: no collision with
// another otlpd or test), two I/O threads, and how long SIGTERM may take to drain.
std::string service_config(const std::string& shutdown_timeout, const std::string& pipelines) {
  return "service:\n"
         "  telemetry: {metrics: {address: 127.0.0.1:0}}\n"
         "  shutdown_timeout: " + shutdown_timeout + "\n"
         "  runtime: {worker_threads: 2}\n"
         "  pipelines:\n" + pipelines;
}

// otlpd's totals for the traces signal, by component.
uint64_t exporter_total(const Otlpd& otlpd, const std::string& name, const std::string& exporter) {
  return otlpd.total(name, {{"exporter", exporter}, {"signal", "traces"}});
}
uint64_t processor_total(const Otlpd& otlpd, const std::string& name, const std::string& processor) {
  return otlpd.total(name, {{"processor", processor}, {"signal", "traces"}});
}
uint64_t receiver_accepted(const Otlpd& otlpd, const std::string& transport) {
  return otlpd.total("otlpd_receiver_accepted_items", {{"receiver", "otlp"}, {"signal", "traces"}, {"transport", transport}});
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// 1. The backend goes away for 10 s in the middle of a steady load and comes back on the same port.

namespace {

// The client sends over `protocol` (grpc or http-proto) to otlpd, which forwards through
// `exporter` (otlp or otlphttp) to a sink on gRPC or HTTP accordingly.
void check_backend_outage(const std::string& protocol, const std::string& exporter) {
  TempDir dir;
  const bool grpc_backend = exporter == "otlp";
  const std::string sink_server = grpc_backend ? "--grpc" : "--http";
  const std::string other_server = grpc_backend ? "--http" : "--grpc";
  auto first = std::make_unique<Sink>(
      std::vector<std::string>{sink_server, "127.0.0.1:0", other_server, "none", "--report-interval", "100ms"});
  const int backend = grpc_backend ? first->grpc_port() : first->http_port();
  const int grpc_port = free_port();
  const int http_port = free_port();
  // Retries come soon after the backend is back; max_elapsed_time (300s) outlasts the outage.
  const std::string exporter_yaml = grpc_backend ? "  otlp:\n"
                                                   "    endpoint: 127.0.0.1:@BACKEND@\n"
                                                   "    tls: {insecure: true}\n"
                                                 : "  otlphttp:\n"
                                                   "    endpoint: http://127.0.0.1:@BACKEND@\n";
  Otlpd otlpd(dir.path(),
              fill(R"(
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:@GRPC@}
      http: {endpoint: 127.0.0.1:@HTTP@}
processors: {batch: {send_batch_size: 500, schedule_delay: 200ms}}
exporters:
)" + exporter_yaml + "    retry_on_failure: {initial_interval: 200ms, max_interval: 1s}\n" +
                       service_config("30s", "    traces: {receivers: [otlp], processors: [batch], exporters: [" +
                                                 exporter + "]}\n"),
                   {{"GRPC", port_str(grpc_port)}, {"HTTP", port_str(http_port)}, {"BACKEND", port_str(backend)}}));

  // 5,000 spans/s for 20 s. The outage leaves about 100 batches of 500 in the exporter's queue
  // (1000 batches by default), so otlpd never has to refuse the client.
  Load load({"--protocol", protocol, "--endpoint",
             "127.0.0.1:" + port_str(protocol == "grpc" ? grpc_port : http_port), "--rate", "5000", "--duration",
             "20s", "--items-per-request", "50", "--connections", "2", "--concurrency", "4", "--timeout", "5s"});
  REQUIRE(first->wait_received(20000, 15s));  // about 4 s into the load
  const json before = first->stop();
  first.reset();
  const auto down_at = SteadyClock::now();
  // otlpd notices: a send fails and is scheduled for a retry.
  CHECK(poll_until([&] { return otlpd.log().find("; retry 1 in ") != std::string::npos; }, 10s));
  std::this_thread::sleep_until(down_at + 10s);  // the outage's length, not a synchronisation
  Sink second({sink_server, "127.0.0.1:" + port_str(backend), other_server, "none", "--report-interval", "0"});
  const double back_at = seconds_since(load.started());

  const json sent = load.finish(40s);
  CHECK(otlpd.terminate(40s) == 0);  // drains within shutdown_timeout (30 s)
  const json after = second.stop();

  INFO("load: " << brief(sent));
  INFO("first sink: " << brief(before));
  INFO("second sink (started " << back_at << " s into the load): " << brief(after));
  INFO("otlpd log: " << tail(otlpd.log()));
  const uint64_t acked = count(sent, "items_acknowledged");
  CHECK(acked >= 90000);  // the load really ran: 20 s x 5,000 spans/s
  CHECK(count(sent, "items_refused_total") == 0);
  CHECK(count(sent, "items_failed") == 0);
  CHECK(acked == count(sent, "items_sent"));
  CHECK(count(before, "items_accepted") > 0);
  CHECK(count(after, "items_accepted") > 0);
  CHECK(count(before, "items_accepted") + count(after, "items_accepted") == acked);
  CHECK(receiver_accepted(otlpd, protocol == "grpc" ? "grpc" : "http") == acked);
  CHECK(exporter_total(otlpd, "otlpd_exporter_sent_items", exporter) == acked);
  CHECK(exporter_total(otlpd, "otlpd_exporter_send_failed_items", exporter) == 0);
  CHECK(exporter_total(otlpd, "otlpd_exporter_retries", exporter) > 0);
  CHECK(processor_total(otlpd, "otlpd_processor_dropped_items", "batch") == 0);
}

}  // namespace

TEST_CASE("backend down for 10 s under steady load, gRPC in and out: every acknowledged item arrives after it returns",
          "[fault][backend_down]") {
  check_backend_outage("grpc", "otlp");
}

TEST_CASE("backend down for 10 s under steady load, HTTP in and out: every acknowledged item arrives after it returns",
          "[fault][backend_down]") {
  check_backend_outage("http-proto", "otlphttp");
}

// ---------------------------------------------------------------------------------------------
// 2. Overload: the client offers three times what the backend accepts, and nothing but the
// memory_limiter bounds what otlpd holds.

TEST_CASE("overload at 3x what the backend accepts: memory_limiter keeps otlpd under 256 MiB, nothing acknowledged is lost",
          "[fault][overload]") {
  TempDir dir;
  // How the 3x is made: the backend holds each request 100 ms before accepting it (sink --delay),
  // and otlpd keeps at most num_consumers = 5 requests of 500 spans in flight to it, so the backend
  // accepts at most 5 x 500 spans / 0.1 s = 25,000 spans/s (a little less, counting transfer
  // time). The client offers 75,000 spans/s.
  Sink backend({"--grpc", "127.0.0.1:0", "--http", "none", "--delay", "100ms", "--threads", "8",
                "--report-interval", "0"});
  const int port = free_port();
  // The sending queue is bounded far above the limit (a million batches, no byte bound), so the
  // memory_limiter is what keeps otlpd's memory down: at 50,000 spans/s of surplus (about 26 MB/s)
  // it reaches the soft limit (256 - 20% = 204.8 MiB) after a few seconds.
  Otlpd otlpd(dir.path(),
              fill(R"(
receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:@PORT@}}}}
processors:
  memory_limiter: {check_interval: 100ms, limit_mib: 256}
  batch: {send_batch_size: 500, schedule_delay: 200ms}
exporters:
  otlp:
    endpoint: 127.0.0.1:@BACKEND@
    tls: {insecure: true}
    compression: none  # gzip would take CPU the 3x load needs on two cores
    sending_queue: {num_consumers: 5, queue_size: 1000000, max_size_mib: 0}
)" + service_config("90s",
                    "    traces: {receivers: [otlp], processors: [memory_limiter, batch], exporters: [otlp]}\n"),
                   {{"PORT", port_str(port)}, {"BACKEND", port_str(backend.grpc_port())}}));

  Load load({"--endpoint", "127.0.0.1:" + port_str(port), "--rate", "75000", "--duration", "15s",
             "--items-per-request", "100", "--connections", "2", "--concurrency", "8", "--timeout", "5s"});
  const json sent = load.finish(40s);
  const uint64_t peak_under_load_kib = otlpd.peak_rss_kib();
  // What otlpd holds drains at the backend's pace during shutdown (up to ~15 s here).
  CHECK(otlpd.terminate(100s) == 0);
  const json got = backend.stop();

  INFO("load: " << brief(sent));
  INFO("sink: " << brief(got));
  INFO("otlpd log: " << tail(otlpd.log()));
  INFO("peak RSS " << otlpd.peak_rss_kib() / 1024 << " MiB (" << peak_under_load_kib / 1024
                   << " MiB when the load ended); shutdown took " << otlpd.shutdown_seconds() << " s");
  const uint64_t acked = count(sent, "items_acknowledged");
  CHECK(otlpd.peak_rss_kib() < 256 * 1024);
  CHECK(otlpd.peak_rss_kib() > 150 * 1024);  // the overload really filled otlpd up to the limiter
  // The client was pushed back with retryable refusals (gRPC UNAVAILABLE with RetryInfo) ...
  CHECK(sent["items_refused"].value("14", uint64_t{0}) > 0);
  CHECK(count(sent, "items_refused_total") == sent["items_refused"].value("14", uint64_t{0}));
  CHECK(count(sent, "items_failed") == 0);
  // ... by the memory_limiter (the batch stage may refuse a burst too), not by a queue bound.
  const uint64_t limiter_refused = processor_total(otlpd, "otlpd_processor_refused_items", "memory_limiter");
  CHECK(limiter_refused > 0);
  CHECK(limiter_refused + processor_total(otlpd, "otlpd_processor_refused_items", "batch") ==
        count(sent, "items_refused_total"));
  CHECK(exporter_total(otlpd, "otlpd_exporter_enqueue_failed_items", "otlp") == 0);
  // Everything acknowledged was delivered.
  CHECK(count(got, "items_accepted") == acked);
  CHECK(exporter_total(otlpd, "otlpd_exporter_sent_items", "otlp") == acked);
  CHECK(exporter_total(otlpd, "otlpd_exporter_send_failed_items", "otlp") == 0);
  CHECK(processor_total(otlpd, "otlpd_processor_dropped_items", "batch") == 0);
}

// ---------------------------------------------------------------------------------------------
// 3. The backend rejects every request permanently (gRPC INVALID_ARGUMENT / HTTP 400): each batch
// is sent once, dropped and counted; nothing is retried.

namespace {

void check_permanent_rejection(const std::string& exporter, const std::string& exporter_yaml,
                               const std::vector<std::string>& sink_endpoints) {
  TempDir dir;
  std::vector<std::string> sink_args = sink_endpoints;
  for (const char* a : {"--mode", "fail", "--report-interval", "100ms"}) sink_args.push_back(a);  // fail rate 1.0
  Sink backend(sink_args);
  const int port = free_port();
  Otlpd otlpd(dir.path(),
              fill(R"(
receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:@PORT@}}}}
processors: {batch: {send_batch_size: 100, schedule_delay: 100ms}}
exporters:
)" + exporter_yaml +
                       service_config("30s", "    traces: {receivers: [otlp], processors: [batch], exporters: [" +
                                                 exporter + "]}\n"),
                   {{"PORT", port_str(port)},
                    {"GRPC", port_str(backend.grpc_port())},
                    {"HTTP", port_str(backend.http_port())}}));

  // 200 requests of 50 spans at 20,000 spans/s: paced, so that otlpd takes them all (as fast as
  // possible, its batch stage would refuse part of the burst while the exporter compresses).
  const uint64_t kItems = 200 * 50;
  Load load({"--endpoint", "127.0.0.1:" + port_str(port), "--requests", "200", "--items-per-request", "50",
             "--rate", "20000", "--connections", "1", "--concurrency", "4", "--timeout", "5s"});
  const json sent = load.finish(30s);
  // Every batch has reached the backend once; retries (initial_interval 100ms) would follow at once.
  const bool all_arrived = backend.wait_received(kItems, 20s).has_value();
  CHECK(otlpd.terminate(40s) == 0);
  const json got = backend.stop();

  INFO("load: " << brief(sent));
  INFO("sink: " << brief(got));
  INFO("otlpd log: " << tail(otlpd.log()));
  CHECK(all_arrived);
  CHECK(count(sent, "items_acknowledged") == kItems);  // otlpd took them; the rejection comes later
  const uint64_t batches = processor_total(otlpd, "otlpd_processor_batches_sent_by_size", "batch") +
                           processor_total(otlpd, "otlpd_processor_batches_sent_by_time", "batch");
  CHECK(batches >= kItems / 100);  // 100 spans a batch, or 50 when a batch leaves by time
  CHECK(batches <= kItems / 50);
  CHECK(count(got, "requests_received") == batches);  // one request per batch: no retry
  CHECK(count(got, "items_received") == kItems);
  CHECK(count(got, "items_failed") == kItems);
  CHECK(count(got, "items_accepted") == 0);
  CHECK(exporter_total(otlpd, "otlpd_exporter_send_failed_items", exporter) == kItems);
  CHECK(exporter_total(otlpd, "otlpd_exporter_sent_items", exporter) == 0);
  CHECK(exporter_total(otlpd, "otlpd_exporter_retries", exporter) == 0);
  CHECK(processor_total(otlpd, "otlpd_processor_dropped_items", "batch") == 0);  // dropped once, not twice
}

// Retries would come quickly if the exporter (wrongly) retried.
constexpr const char* kQuickRetry = "    retry_on_failure: {initial_interval: 100ms, max_interval: 200ms}\n";

}  // namespace

TEST_CASE("backend answers gRPC INVALID_ARGUMENT: each batch is dropped once and counted, never retried",
          "[fault][rejected]") {
  check_permanent_rejection("otlp",
                            std::string("  otlp:\n"
                                        "    endpoint: 127.0.0.1:@GRPC@\n"
                                        "    tls: {insecure: true}\n") +
                                kQuickRetry,
                            {"--grpc", "127.0.0.1:0", "--http", "none"});
}

TEST_CASE("backend answers HTTP 400: each batch is dropped once and counted, never retried", "[fault][rejected]") {
  check_permanent_rejection("otlphttp",
                            std::string("  otlphttp:\n"
                                        "    endpoint: http://127.0.0.1:@HTTP@\n") +
                                kQuickRetry,
                            {"--grpc", "none", "--http", "127.0.0.1:0"});
}

// ---------------------------------------------------------------------------------------------
// 4. One of two exporters of a pipeline is slow: the other keeps its throughput.

namespace {

// `slow_mode`: the slow backend's sink arguments, each request taking 2 s.
void check_slow_exporter_isolated(const std::vector<std::string>& slow_mode, bool slow_accepts) {
  TempDir dir;
  // 16 handler threads, so that all of otlpd's sends to the slow backend (num_consumers 10) are
  // held at once rather than waiting for a thread.
  std::vector<std::string> slow_args = {"--grpc", "127.0.0.1:0", "--http", "none", "--threads", "16",
                                        "--report-interval", "0"};
  slow_args.insert(slow_args.end(), slow_mode.begin(), slow_mode.end());
  Sink slow(slow_args);
  Sink fast({"--grpc", "127.0.0.1:0", "--http", "none", "--report-interval", "100ms"});
  const int port = free_port();
  // The slow exporter comes first in the fan-out, so each batch is offered to it before the fast
  // one. Its queue (50 batches) fills within seconds and then refuses, for that exporter only.
  Otlpd otlpd(dir.path(),
              fill(R"(
receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:@PORT@}}}}
processors: {batch: {send_batch_size: 500, schedule_delay: 200ms}}
exporters:
  otlp/slow:
    endpoint: 127.0.0.1:@SLOW@
    tls: {insecure: true}
    sending_queue: {queue_size: 50}
  otlp/fast:
    endpoint: 127.0.0.1:@FAST@
    tls: {insecure: true}
)" + service_config("5s",
                    "    traces: {receivers: [otlp], processors: [batch], exporters: [otlp/slow, otlp/fast]}\n"),
                   {{"PORT", port_str(port)},
                    {"SLOW", port_str(slow.grpc_port())},
                    {"FAST", port_str(fast.grpc_port())}}));

  // 30,000 spans/s for 10 s. The fast backend's throughput is compared with what the client got
  // acknowledged over the same run.
  const uint64_t kOffered = 30000 * 10;
  Load load({"--endpoint", "127.0.0.1:" + port_str(port), "--rate", "30000", "--duration", "10s",
             "--items-per-request", "100", "--connections", "2", "--concurrency", "8", "--timeout", "5s"});
  const json sent = load.finish(30s);
  const auto fast_when_load_ended = fast.accepted_now(5s);
  // Shutdown gives up on what the slow exporter still holds after shutdown_timeout (5 s).
  CHECK(otlpd.terminate(20s) == 0);
  const json fast_got = fast.stop();
  const json slow_got = slow.stop();

  INFO("load: " << brief(sent));
  INFO("fast sink: " << brief(fast_got) << " (" << fast_when_load_ended.value_or(0) << " when the load ended)");
  INFO("slow sink: " << brief(slow_got));
  INFO("otlpd log: " << tail(otlpd.log()));
  const uint64_t acked = count(sent, "items_acknowledged");
  CHECK(acked >= kOffered * 9 / 10);  // otlpd itself kept taking the load
  REQUIRE(fast_when_load_ended);
  // Throughput: by the time the load ended, the fast backend had at least 90% of it (the rest is
  // the last batch window, 200 ms, and transfer).
  CHECK(*fast_when_load_ended >= acked * 9 / 10);
  // Everything acknowledged reached the fast backend, exactly once.
  CHECK(count(fast_got, "items_accepted") == acked);
  CHECK(exporter_total(otlpd, "otlpd_exporter_sent_items", "otlp/fast") == acked);
  CHECK(exporter_total(otlpd, "otlpd_exporter_send_failed_items", "otlp/fast") == 0);
  CHECK(exporter_total(otlpd, "otlpd_exporter_enqueue_failed_items", "otlp/fast") == 0);
  // The slow one really was the bottleneck: its queue filled and refused.
  CHECK(exporter_total(otlpd, "otlpd_exporter_enqueue_failed_items", "otlp/slow") > 0);
  CHECK(count(slow_got, "items_received") > 0);
  if (slow_accepts) {
    CHECK(count(slow_got, "items_accepted") > 0);
    CHECK(count(slow_got, "items_accepted") < acked / 2);
  } else {
    CHECK(count(slow_got, "items_accepted") == 0);
  }
}

}  // namespace

TEST_CASE("one slow exporter (2 s per request) does not slow down the other one", "[fault][slow_exporter]") {
  check_slow_exporter_isolated({"--delay", "2s"}, /*slow_accepts=*/true);  // answers OK after 2 s
}

TEST_CASE("one stalling exporter (2 s, then UNAVAILABLE) does not slow down the other one",
          "[fault][slow_exporter]") {
  check_slow_exporter_isolated({"--mode", "stall", "--stall", "2s"}, /*slow_accepts=*/false);  // retried
}

// ---------------------------------------------------------------------------------------------
// 5. SIGTERM while the client sends: what was acknowledged is delivered before otlpd exits.

namespace {

void check_sigterm_under_load(const std::string& protocol, const std::string& transport) {
  TempDir dir;
  // The backend answers each request 1 s late, so when SIGTERM comes otlpd holds about a second of
  // acknowledged load (10,000 spans) in sends in flight and in the batch stage: shutdown must wait
  // for those answers.
  // 24 handler threads hold all of otlpd's sends (num_consumers 20) at once: the backend takes up to
  // 20 x 1000 spans/s, twice the load.
  Sink backend({"--grpc", "127.0.0.1:0", "--http", "none", "--delay", "1s", "--threads", "24",
                "--report-interval", "100ms"});
  const int grpc_port = free_port();
  const int http_port = free_port();
  // No persistent queue: everything otlpd acknowledged is in memory when SIGTERM comes.
  Otlpd otlpd(dir.path(),
              fill(R"(
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:@GRPC@}
      http: {endpoint: 127.0.0.1:@HTTP@}
processors: {batch: {send_batch_size: 1000, schedule_delay: 1s}}
exporters:
  otlp:
    endpoint: 127.0.0.1:@BACKEND@
    tls: {insecure: true}
    sending_queue: {num_consumers: 20}
)" + service_config("10s", "    traces: {receivers: [otlp], processors: [batch], exporters: [otlp]}\n"),
                   {{"GRPC", port_str(grpc_port)},
                    {"HTTP", port_str(http_port)},
                    {"BACKEND", port_str(backend.grpc_port())}}));

  // 10,000 spans/s for 8 s; SIGTERM comes about 3 s in, the rest of the load meets a closed port.
  Load load({"--protocol", protocol, "--endpoint",
             "127.0.0.1:" + port_str(protocol == "grpc" ? grpc_port : http_port), "--rate", "10000", "--duration",
             "8s", "--items-per-request", "100", "--connections", "2", "--concurrency", "4", "--timeout", "5s"});
  const auto accepted_before = backend.wait_accepted(20000, 15s);
  REQUIRE(accepted_before);
  const auto code = otlpd.terminate(15s);
  const json sent = load.finish(30s);
  const json got = backend.stop();

  INFO("load: " << brief(sent));
  INFO("sink: " << brief(got) << " (" << *accepted_before << " just before SIGTERM)");
  INFO("otlpd log: " << tail(otlpd.log()));
  INFO("shutdown took " << otlpd.shutdown_seconds() << " s");
  CHECK(code == 0);
  CHECK(otlpd.shutdown_seconds() < 10.5);  // within shutdown_timeout
  const uint64_t acked = count(sent, "items_acknowledged");
  CHECK(acked >= 20000);
  CHECK(acked < count(sent, "items_sent"));  // SIGTERM did come in the middle of the load
  // otlpd really had acknowledged data to drain: the second of load the backend held, less what
  // arrived while the sink's count above aged (up to 100 ms).
  CHECK(count(got, "items_accepted") >= *accepted_before + 5000);
  CHECK(count(got, "items_accepted") == acked);
  CHECK(receiver_accepted(otlpd, transport) == acked);
  CHECK(exporter_total(otlpd, "otlpd_exporter_sent_items", "otlp") == acked);
  CHECK(exporter_total(otlpd, "otlpd_exporter_send_failed_items", "otlp") == 0);
  CHECK(processor_total(otlpd, "otlpd_processor_dropped_items", "batch") == 0);
}

}  // namespace

TEST_CASE("SIGTERM under load over gRPC: every acknowledged item is delivered before otlpd exits",
          "[fault][sigterm]") {
  check_sigterm_under_load("grpc", "grpc");
}

TEST_CASE("SIGTERM under load over HTTP: every acknowledged item is delivered before otlpd exits",
          "[fault][sigterm]") {
  check_sigterm_under_load("http-proto", "http");
}

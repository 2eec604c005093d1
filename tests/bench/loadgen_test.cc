// otlpd-loadgen: the payload generator and latency histogram as units, and the binary's `send`
// against its own `sink` (both child processes) over every protocol, with exact counts.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/loadgen/cli.h"
#include "bench/loadgen/histogram.h"
#include "bench/loadgen/payload.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/json_codec.h"
#include "otlp/wire.h"

using namespace otlpd;
using namespace otlpd::loadgen;
using SteadyClock = std::chrono::steady_clock;
namespace col = opentelemetry::proto::collector;

namespace {

PayloadGenerator generator(otlp::Signal signal, size_t items, Format format = Format::protobuf, uint64_t seed = 7) {
  PayloadOptions o;
  o.signal = signal;
  o.items_per_request = items;
  o.format = format;
  o.seed = seed;
  return PayloadGenerator(o);
}

}  // namespace

TEST_CASE("every generated request holds exactly items-per-request items", "[loadgen][payload]") {
  for (otlp::Signal signal : {otlp::Signal::traces, otlp::Signal::metrics, otlp::Signal::logs}) {
    for (size_t items : {1u, 7u, 100u}) {
      PayloadGenerator gen = generator(signal, items);
      std::string bytes;
      for (uint64_t r = 0; r < 10; ++r) {
        gen.make(r, &bytes);
        auto w = otlp::count_items(signal, bytes);
        INFO(otlp::signal_name(signal) << " items=" << items << " request " << r);
        REQUIRE(w.ok);
        CHECK(w.items == items);
      }
    }
  }
}

TEST_CASE("spans are realistic and their ids unique across requests", "[loadgen][payload]") {
  const size_t kItems = 100, kRequests = 20;
  PayloadGenerator gen = generator(otlp::Signal::traces, kItems);
  std::set<std::string> span_ids, trace_ids;
  std::string bytes;
  for (uint64_t r = 0; r < kRequests; ++r) {
    gen.make(r, &bytes);
    col::trace::v1::ExportTraceServiceRequest req;
    REQUIRE(req.ParseFromString(bytes));
    REQUIRE(req.resource_spans_size() == 1);
    std::set<std::string> resource_keys;
    for (const auto& kv : req.resource_spans(0).resource().attributes()) resource_keys.insert(kv.key());
    for (const char* key : {"service.name", "service.instance.id", "host.name", "host.arch", "os.type"}) {
      CHECK(resource_keys.count(key) == 1);
    }
    std::set<std::string> in_request;
    for (const auto& span : req.resource_spans(0).scope_spans(0).spans()) {
      CHECK(span.attributes_size() >= 8);
      CHECK(span.attributes_size() <= 12);
      CHECK(span.events_size() >= 1);
      CHECK(span.events_size() <= 2);
      CHECK(span.trace_id().size() == 16);
      REQUIRE(span.span_id().size() == 8);
      span_ids.insert(span.span_id());
      trace_ids.insert(span.trace_id());
      in_request.insert(span.span_id());
    }
    // A parent is an earlier span of the same request and trace.
    for (const auto& span : req.resource_spans(0).scope_spans(0).spans()) {
      if (span.parent_span_id().empty()) continue;
      CHECK(in_request.count(span.parent_span_id()) == 1);
    }
    CHECK(gen.span_id(r * kItems) == req.resource_spans(0).scope_spans(0).spans(0).span_id());
  }
  CHECK(span_ids.size() == kItems * kRequests);
  CHECK(trace_ids.size() == kRequests * ((kItems + kSpansPerTrace - 1) / kSpansPerTrace));
}

TEST_CASE("metric points and log records are unique across requests", "[loadgen][payload]") {
  const size_t kItems = 50, kRequests = 10;
  PayloadGenerator metrics = generator(otlp::Signal::metrics, kItems);
  PayloadGenerator logs = generator(otlp::Signal::logs, kItems);
  std::set<uint64_t> point_times;
  std::set<int> kinds;
  std::set<std::string> log_span_ids;
  std::string bytes;
  for (uint64_t r = 0; r < kRequests; ++r) {
    metrics.make(r, &bytes);
    col::metrics::v1::ExportMetricsServiceRequest mreq;
    REQUIRE(mreq.ParseFromString(bytes));
    for (const auto& m : mreq.resource_metrics(0).scope_metrics(0).metrics()) {
      kinds.insert(m.data_case());
      for (const auto& p : m.sum().data_points()) point_times.insert(p.time_unix_nano());
      for (const auto& p : m.gauge().data_points()) point_times.insert(p.time_unix_nano());
      for (const auto& p : m.histogram().data_points()) point_times.insert(p.time_unix_nano());
    }
    logs.make(r, &bytes);
    col::logs::v1::ExportLogsServiceRequest lreq;
    REQUIRE(lreq.ParseFromString(bytes));
    for (const auto& rec : lreq.resource_logs(0).scope_logs(0).log_records()) {
      CHECK(!rec.body().string_value().empty());
      CHECK(rec.severity_number() > 0);
      CHECK(rec.trace_id().size() == 16);
      log_span_ids.insert(rec.span_id());
    }
  }
  CHECK(point_times.size() == kItems * kRequests);
  CHECK(kinds.size() == 3);  // sum, gauge, histogram
  CHECK(log_span_ids.size() == kItems * kRequests);
}

TEST_CASE("JSON payloads convert to the same items as the protobuf ones", "[loadgen][payload]") {
  for (otlp::Signal signal : {otlp::Signal::traces, otlp::Signal::metrics, otlp::Signal::logs}) {
    PayloadGenerator json = generator(signal, 30, Format::json);
    PayloadGenerator proto = generator(signal, 30, Format::protobuf);
    for (uint64_t r : {0u, 1u, 9u, 1000u}) {
      std::string text, converted, expected;
      json.make(r, &text);
      proto.make(r, &expected);
      INFO(otlp::signal_name(signal) << " request " << r);
      REQUIRE(otlp::request_json_to_proto(signal, text, &converted) == "");
      auto w = otlp::count_items(signal, converted);
      REQUIRE(w.ok);
      CHECK(w.items == 30);
      if (signal == otlp::Signal::traces) {
        col::trace::v1::ExportTraceServiceRequest a, b;
        REQUIRE(a.ParseFromString(converted));
        REQUIRE(b.ParseFromString(expected));
        const auto& sa = a.resource_spans(0).scope_spans(0).spans();
        const auto& sb = b.resource_spans(0).scope_spans(0).spans();
        REQUIRE(sa.size() == sb.size());
        for (int i = 0; i < sa.size(); ++i) {
          CHECK(sa[i].span_id() == sb[i].span_id());
          CHECK(sa[i].trace_id() == sb[i].trace_id());
          CHECK(sa[i].parent_span_id() == sb[i].parent_span_id());
        }
      }
    }
  }
}

TEST_CASE("latency histogram percentiles", "[loadgen][histogram]") {
  SECTION("small values are exact") {
    LatencyHistogram h;
    for (uint64_t v = 1; v <= 100; ++v) h.record(v);
    CHECK(h.count() == 100);
    CHECK(h.min() == 1);
    CHECK(h.max() == 100);
    CHECK(h.percentile(0) == 1);
    CHECK(h.percentile(50) == 50);
    CHECK(h.percentile(99) == 99);
    CHECK(h.percentile(100) == 100);
  }
  SECTION("larger values within the bucket precision, capped at the exact max") {
    LatencyHistogram h;
    for (uint64_t v = 1; v <= 1000; ++v) h.record(v);
    CHECK(h.percentile(50) == 501);  // 500 shares a bucket of width 2 with 501
    CHECK(h.percentile(99) == 991);  // [988, 991]: width 4
    CHECK(h.percentile(100) == 1000);
    CHECK(h.max() == 1000);
    LatencyHistogram one;
    one.record(123456789);
    CHECK(one.percentile(50) == 123456789);
    CHECK(one.percentile(99) == 123456789);
  }
  SECTION("bucket bounds are consistent") {
    std::mt19937_64 rng(1);
    for (int i = 0; i < 100000; ++i) {
      const uint64_t v = rng() >> (rng() % 64);
      const size_t b = LatencyHistogram::bucket_of(v);
      const uint64_t hi = LatencyHistogram::highest_equivalent(b);
      REQUIRE(hi >= v);
      REQUIRE(LatencyHistogram::bucket_of(hi) == b);
      REQUIRE(static_cast<double>(hi - v) <= static_cast<double>(v) / LatencyHistogram::kSubBuckets + 1);
    }
  }
  SECTION("empty") {
    LatencyHistogram h;
    CHECK(h.percentile(50) == 0);
    CHECK(h.max() == 0);
    CHECK(h.min() == 0);
  }
}

TEST_CASE("command line parsing", "[loadgen][cli]") {
  SendOptions s;
  CHECK(parse_send_args({"--signal", "logs", "--protocol=http-json", "--requests", "5", "--gzip", "--rate", "1000",
                         "--duration", "250ms"},
                        &s) == "");
  CHECK(s.signal == otlp::Signal::logs);
  CHECK(s.protocol == Protocol::http_json);
  CHECK(s.endpoint == "127.0.0.1:4318");
  CHECK(s.requests == 5);
  CHECK(s.gzip);
  CHECK(s.rate == 1000);
  CHECK(s.duration == std::chrono::milliseconds(250));
  SendOptions bad;
  CHECK(parse_send_args({"--signal", "profiles"}, &bad) == "invalid value for --signal: \"profiles\"");
  CHECK(parse_send_args({"--bogus"}, &bad) == "unknown option --bogus");
  CHECK(parse_send_args({"--connections", "0"}, &bad) == "invalid value for --connections: \"0\"");
  SinkOptions k;
  CHECK(parse_sink_args({"--mode", "fail", "--fail-rate", "0.3", "--grpc", "127.0.0.1:0", "--report-interval", "2s"}, &k) == "");
  CHECK(k.mode == SinkMode::fail);
  CHECK(k.fail_rate == 0.3);
  CHECK(k.report_interval == std::chrono::milliseconds(2000));
  CHECK(parse_sink_args({"--mode", "maybe"}, &k) == "invalid value for --mode: \"maybe\"");
  SinkOptions d;
  CHECK(!d.distinct);
  CHECK(d.delay == std::chrono::milliseconds(0));
  CHECK(parse_sink_args({"--distinct", "--delay", "250ms"}, &d) == "");
  CHECK(d.distinct);
  CHECK(d.delay == std::chrono::milliseconds(250));
  CHECK(parse_sink_args({"--distinct=yes"}, &d) == "--distinct takes no value");
  CHECK(parse_sink_args({"--delay", "soon"}, &d) == "invalid value for --delay: \"soon\"");
}

// ---------------------------------------------------------------------------------------------
// The binary: sink and sender as child processes.

namespace {

// A child process running otlpd-loadgen with its stdout on a pipe; killed if still running at
// destruction. Every wait is bounded.
class Child {
 public:
  explicit Child(const std::vector<std::string>& args, bool quiet = false) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      if (quiet) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDERR_FILENO);
      }
      close(fds[0]);
      close(fds[1]);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(OTLPD_LOADGEN_BINARY));
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(OTLPD_LOADGEN_BINARY, argv.data());
      _exit(127);
    }
    close(fds[1]);
    fd_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }

  // The next line of output, or nullopt at end of output or when `timeout` passes.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    for (;;) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        output_ += line + "\n";
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      ssize_t n = read(fd_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

  // Reads lines until one starts with `prefix`; returns the rest of it.
  std::optional<std::string> wait_for(const std::string& prefix, std::chrono::milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    while (SteadyClock::now() < deadline) {
      auto line = read_line(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()));
      if (!line) return std::nullopt;
      if (line->rfind(prefix, 0) == 0) return line->substr(prefix.size());
    }
    return std::nullopt;
  }

  void signal(int sig) { kill(pid_, sig); }

  // The exit code, or -2 when the child did not exit within `timeout`.
  int wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    while (SteadyClock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling a deadline
    }
    return -2;
  }

  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buf_;
  std::string output_;
};

struct Sink {
  std::unique_ptr<Child> child;
  int grpc_port = 0, http_port = 0;

  explicit Sink(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"sink", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--report-interval", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    child = std::make_unique<Child>(args);
    auto line = child->wait_for("LISTENING ", std::chrono::seconds(10));
    REQUIRE(line);
    REQUIRE(std::sscanf(line->c_str(), "grpc=%d http=%d", &grpc_port, &http_port) == 2);
    REQUIRE(grpc_port > 0);
    REQUIRE(http_port > 0);
  }

  nlohmann::json stop() {
    child->signal(SIGTERM);
    auto result = child->wait_for("RESULT ", std::chrono::seconds(10));
    INFO(child->output());
    REQUIRE(result);
    CHECK(child->wait_exit(std::chrono::seconds(10)) == 0);
    return nlohmann::json::parse(*result);
  }
};

nlohmann::json send(const Sink& sink, const std::string& protocol, const std::string& signal, bool gzip,
                    std::vector<std::string> extra = {"--requests", "50", "--timeout", "5s"}) {
  std::vector<std::string> args = {"send", "--signal", signal, "--protocol", protocol, "--endpoint",
                                   "127.0.0.1:" + std::to_string(protocol == "grpc" ? sink.grpc_port : sink.http_port),
                                   "--items-per-request", "20", "--connections", "2", "--concurrency", "4"};
  args.insert(args.end(), extra.begin(), extra.end());
  if (gzip) args.push_back("--gzip");
  Child sender(args);
  auto result = sender.wait_for("RESULT ", std::chrono::seconds(20));
  INFO(sender.output());
  REQUIRE(result);
  CHECK(sender.wait_exit(std::chrono::seconds(10)) == 0);
  return nlohmann::json::parse(*result);
}

}  // namespace

TEST_CASE("send delivers every item to the sink over each protocol", "[loadgen][integration]") {
  struct Case {
    std::string protocol, signal;
    bool gzip;
  };
  for (const Case& c : {Case{"grpc", "traces", false}, Case{"http-proto", "metrics", false},
                        Case{"http-json", "logs", false}, Case{"grpc", "traces", true},
                        Case{"http-proto", "traces", true}}) {
    INFO(c.protocol << " " << c.signal << (c.gzip ? " gzip" : ""));
    Sink sink;
    nlohmann::json sent = send(sink, c.protocol, c.signal, c.gzip);
    nlohmann::json got = sink.stop();
    CHECK(sent["requests_sent"] == 50);
    CHECK(sent["items_sent"] == 1000);
    CHECK(sent["items_acknowledged"] == 1000);
    CHECK(sent["items_failed"] == 0);
    CHECK(sent["items_refused_total"] == 0);
    CHECK(sent["latency_us"]["count"] == 50);
    CHECK(got["items_received"] == 1000);
    CHECK(got["items_accepted"] == 1000);
    CHECK(got["requests_received"] == 50);
    CHECK(got["signals"][c.signal]["items"] == 1000);
  }
}

TEST_CASE("refusals are counted by status on both sides", "[loadgen][integration]") {
  for (const std::string protocol : {"grpc", "http-proto"}) {
    INFO(protocol);
    Sink sink({"--mode", "refuse"});
    nlohmann::json sent = send(sink, protocol, "traces", false);
    nlohmann::json got = sink.stop();
    const std::string code = protocol == "grpc" ? "14" : "503";
    CHECK(sent["items_acknowledged"] == 0);
    CHECK(sent["items_refused"] == nlohmann::json{{code, 1000}});
    CHECK(sent["items_failed"] == 0);
    CHECK(got["items_received"] == 1000);
    CHECK(got["items_refused"] == 1000);
    CHECK(got["items_accepted"] == 0);
  }
}

TEST_CASE("fail mode fails exactly the requested fraction", "[loadgen][integration]") {
  Sink sink({"--mode", "fail", "--fail-rate", "0.3"});
  nlohmann::json sent = send(sink, "http-proto", "logs", false);
  nlohmann::json got = sink.stop();
  CHECK(sent["items_acknowledged"] == 700);
  CHECK(sent["items_refused"] == nlohmann::json{{"400", 300}});
  CHECK(got["items_failed"] == 300);
  CHECK(got["items_accepted"] == 700);
}

TEST_CASE("stalled requests time out and count as failed", "[loadgen][integration]") {
  for (const std::string protocol : {"grpc", "http-proto"}) {
    INFO(protocol);
    Sink sink({"--mode", "stall", "--stall", "30s"});
    // Two connections x one request each: both stall together, one 1 s timeout in all.
    nlohmann::json sent = send(sink, protocol, "logs", false, {"--requests", "2", "--timeout", "1s"});
    nlohmann::json got = sink.stop();  // releases the held handlers at once
    CHECK(sent["items_failed"] == 40);
    CHECK(sent["requests_failed"] == 2);
    CHECK(sent["items_acknowledged"] == 0);
    CHECK(got["items_stalled"] == 40);
    CHECK(got["items_accepted"] == 0);
  }
}

TEST_CASE("usage errors exit 2", "[loadgen][integration]") {
  for (std::vector<std::string> args : {std::vector<std::string>{}, {"bogus"}, {"send", "--rate", "fast"},
                                        {"sink", "--mode", "sometimes"}}) {
    Child c(args, /*quiet=*/true);
    CHECK(c.wait_exit(std::chrono::seconds(10)) == 2);
  }
}

TEST_CASE("delay holds each request before answering it", "[loadgen][integration]") {
  for (const std::string protocol : {"grpc", "http-proto"}) {
    INFO(protocol);
    Sink sink({"--delay", "300ms"});
    // 8 requests, at most 8 in flight and 4 handler threads: each is answered 300 ms after it arrived.
    nlohmann::json sent = send(sink, protocol, "traces", false, {"--requests", "8", "--timeout", "5s"});
    nlohmann::json got = sink.stop();
    CHECK(sent["items_acknowledged"] == 160);
    CHECK(sent["latency_us"]["count"] == 8);
    CHECK(sent["latency_us"]["p50"].get<uint64_t>() >= 300000);
    CHECK(got["items_accepted"] == 160);
  }
}

TEST_CASE("interval lines count a delayed request as received at once and as accepted once answered",
          "[loadgen][integration]") {
  Sink sink({"--delay", "1s", "--report-interval", "100ms"});
  nlohmann::json sent = send(sink, "grpc", "traces", false, {"--requests", "1", "--timeout", "5s"});
  CHECK(sent["items_acknowledged"] == 20);
  bool held = false, accepted = false;
  while (!accepted) {
    auto line = sink.child->wait_for("INTERVAL ", std::chrono::seconds(5));
    REQUIRE(line);
    const bool received = line->find(" requests=1 items=20 ") != std::string::npos;
    held = held || (received && line->size() > 11 && line->substr(line->size() - 11) == " accepted=0");
    accepted = received && line->size() > 12 && line->substr(line->size() - 12) == " accepted=20";
  }
  CHECK(held);
  sink.stop();
}

TEST_CASE("distinct counts tell items accepted again from new ones", "[loadgen][integration]") {
  Sink sink({"--distinct"});
  // The same seed makes the same span and log record ids; another seed makes new ones. Metric
  // points are told apart by timestamp, new in every run.
  send(sink, "grpc", "traces", false, {"--requests", "50", "--seed", "7"});
  send(sink, "grpc", "traces", false, {"--requests", "50", "--seed", "7"});        // 1000 again
  send(sink, "http-json", "traces", false, {"--requests", "50", "--seed", "8"});   // JSON, new ids
  send(sink, "http-proto", "logs", false, {"--requests", "50", "--seed", "7"});
  send(sink, "grpc", "logs", true, {"--requests", "50", "--seed", "7"});           // 1000 again
  send(sink, "http-proto", "metrics", false, {"--requests", "50"});
  nlohmann::json got = sink.stop();
  CHECK(got["items_accepted"] == 6000);
  CHECK(got["items_distinct"] == 4000);
  CHECK(got["items_duplicates"] == 2000);
}

TEST_CASE("distinct counts cover accepted items only", "[loadgen][integration]") {
  Sink sink({"--distinct", "--mode", "fail", "--fail-rate", "0.5"});
  nlohmann::json sent = send(sink, "grpc", "traces", false);
  nlohmann::json got = sink.stop();
  CHECK(sent["items_acknowledged"] == 500);
  CHECK(got["items_failed"] == 500);
  CHECK(got["items_distinct"] == 500);
  CHECK(got["items_duplicates"] == 0);
  Sink plain;
  send(plain, "grpc", "traces", false);
  CHECK(!plain.stop().contains("items_distinct"));  // only counted when asked for
}

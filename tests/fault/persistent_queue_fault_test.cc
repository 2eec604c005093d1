// Fault tests of the persistent sending queue (sending_queue.storage): otlpd killed with SIGKILL
// under load, a queue file damaged on disk, SIGTERM with more queued than the shutdown timeout
// can send. Every item the client had acknowledged must reach the backend: the client writes the
// ids of the items it had acknowledged (send --acked-file) and the backend those it received
// (sink --ids-file), and the test compares the two sets. Redeliveries are allowed (at least once)
// and reported.
#include <catch2/catch.hpp>

#include "fault/fault_process.h"

using namespace fault;
using namespace std::chrono_literals;

namespace {

std::string port_str(int port) { return std::to_string(port); }

// otlpd receiving OTLP/gRPC on `port`, batching, and exporting over OTLP/gRPC to `backend` through
// a persistent queue in `queue`.
std::string persistent_config(int port, int backend, const fs::path& queue, const std::string& queue_extra,
                              const std::string& shutdown_timeout) {
  return fill(R"(
receivers: {otlp: {protocols: {grpc: {endpoint: "127.0.0.1:@PORT@"}}}}
processors: {batch: {}}
exporters:
  otlp:
    endpoint: 127.0.0.1:@BACKEND@
    tls: {insecure: true}
    compression: none
    sending_queue: {storage: @QUEUE@@EXTRA@}
    retry_on_failure: {initial_interval: 100ms, max_interval: 1s}
service:
  telemetry: {metrics: {address: 127.0.0.1:0}}
  shutdown_timeout: @SHUTDOWN@
  runtime: {worker_threads: 2}
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: [otlp]}
)",
              {{"PORT", port_str(port)},
               {"BACKEND", port_str(backend)},
               {"QUEUE", queue.string()},
               {"EXTRA", queue_extra},
               {"SHUTDOWN", shutdown_timeout}});
}

uint64_t exporter_total(const Otlpd& otlpd, const std::string& name) {
  return otlpd.total(name, {{"exporter", "otlp"}, {"signal", "traces"}});
}

// The one segment of the queue's log that holds records.
fs::path segment_with_records(const fs::path& queue) {
  fs::path found;
  for (const auto& e : fs::recursive_directory_iterator(queue)) {
    if (e.path().extension() == ".log" && e.path().filename() != "set-aside.log" && fs::file_size(e.path()) > 0) {
      REQUIRE(found.empty());
      found = e.path();
    }
  }
  REQUIRE(!found.empty());
  return found;
}

// Offsets and sizes (header included) of the records in a segment: a 16-byte header whose bytes
// 4..7 are the payload length (little-endian), then the payload.
std::vector<std::pair<size_t, size_t>> record_spans(const std::string& data) {
  std::vector<std::pair<size_t, size_t>> spans;
  for (size_t at = 0; at + 16 <= data.size();) {
    REQUIRE(data.compare(at, 4, "OTQ1") == 0);
    uint32_t length = 0;
    for (int i = 0; i < 4; ++i) length |= uint32_t(static_cast<unsigned char>(data[at + 4 + i])) << (8 * i);
    spans.emplace_back(at, 16 + length);
    at += 16 + length;
  }
  return spans;
}

}  // namespace

TEST_CASE("kill -9 three times under load with a persistent queue: every acknowledged span arrives",
          "[fault][persistent][kill]") {
  TempDir dir;
  // The backend answers each request after 300 ms, so sends are in flight when otlpd is killed
  // and their records must be sent again by the next run.
  Sink sink({"--grpc", "127.0.0.1:0", "--http", "none", "--report-interval", "100ms", "--delay", "300ms",
             "--ids-file", (dir.path() / "received").string()});
  const int port = free_port();
  const std::string config =
      persistent_config(port, sink.grpc_port(), dir.path() / "queue", ", num_consumers: 4", "20s");
  auto run_dir = [&](int run) {
    fs::path d = dir.path() / ("run" + std::to_string(run));
    fs::create_directories(d);
    return d;
  };
  auto otlpd = std::make_unique<Otlpd>(run_dir(0), config);

  // 5,000 spans/s for 20 s; a request that meets a dead otlpd fails (not acknowledged) and is not
  // retried by the client.
  Load load({"--endpoint", "127.0.0.1:" + port_str(port), "--rate", "5000", "--duration", "20s", "--items-per-request",
             "50", "--connections", "2", "--concurrency", "4", "--timeout", "3s", "--acked-file",
             (dir.path() / "acked").string()});
  uint64_t progress = 0;
  std::string restarted_logs;
  for (int run = 1; run <= 3; ++run) {
    progress += 15000;  // about 3 s of load between kills
    REQUIRE(sink.wait_received(progress, 30s));
    otlpd->kill();
    restarted_logs += otlpd->log();
    otlpd = std::make_unique<Otlpd>(run_dir(run), config);
  }
  const json sent = load.finish(60s);
  CHECK(otlpd->terminate(30s) == 0);
  const std::string last_log = otlpd->log();
  const json received = sink.stop();

  const auto acked = read_ids(dir.path() / "acked");
  const auto have = read_ids(dir.path() / "received");
  const auto missing = missing_ids(acked, have);
  INFO("load: " << brief(sent));
  INFO("sink: " << brief(received));
  INFO("last otlpd log: " << tail(last_log));
  CHECK(acked.size() == count(sent, "items_acknowledged"));
  CHECK(count(sent, "items_acknowledged") >= 60000);  // the load ran through the restarts
  CHECK(count(sent, "items_failed") + count(sent, "items_refused_total") > 0);  // and met the kills
  CHECK(missing.empty());
  // At least once: what was in flight at a kill may arrive twice; the sink counts it.
  CHECK(count(received, "items_accepted") == count(received, "items_distinct") + count(received, "items_duplicates"));
  WARN("duplicates after 3 kills: " << count(received, "items_duplicates") << " of "
                                    << count(received, "items_accepted") << " spans received");
  // The restarts replayed what the killed runs had left (sends in flight at least).
  const std::string all_logs = restarted_logs + last_log;
  CHECK(all_logs.find("left by an earlier run") != std::string::npos);
  CHECK(exporter_total(*otlpd, "otlpd_exporter_send_failed_items") == 0);
}

TEST_CASE("a queue file torn mid-record and with a flipped byte: otlpd starts, reports the cut, delivers the rest",
          "[fault][persistent][corrupt]") {
  TempDir dir;
  const fs::path queue = dir.path() / "queue";
  const int port = free_port();
  const int dead_backend = free_port();  // nothing listens: every batch stays queued
  fs::create_directories(dir.path() / "run1");
  fs::create_directories(dir.path() / "run2");
  json sent;
  {
    Otlpd first(dir.path() / "run1", persistent_config(port, dead_backend, queue, "", "1s"));
    Load load({"--endpoint", "127.0.0.1:" + port_str(port), "--requests", "20", "--items-per-request", "50",
               "--acked-file", (dir.path() / "acked").string()});
    sent = load.finish(30s);
    REQUIRE(count(sent, "items_acknowledged") == 1000);
    REQUIRE(first.terminate(20s) == 0);
    CHECK(exporter_total(first, "otlpd_exporter_kept_items") == 1000);  // left in the queue, not lost
    CHECK(exporter_total(first, "otlpd_exporter_send_failed_items") == 0);
  }

  // Each request is one record (the batch stage passes requests straight to a persistent queue).
  const fs::path segment = segment_with_records(queue);
  std::string data = read_file(segment);
  const auto records = record_spans(data);
  REQUIRE(records.size() == 20);
  const auto& flipped = records[10];
  data[flipped.first + flipped.second / 2] ^= 0x10;  // in the middle of record 10
  const size_t torn_keep = records.back().second - 10;  // the last record loses its last 10 bytes
  data.resize(data.size() - 10);
  {
    std::ofstream out(segment, std::ios::binary | std::ios::trunc);
    out << data;
  }

  Sink sink({"--grpc", "127.0.0.1:0", "--http", "none", "--report-interval", "100ms", "--ids-file",
             (dir.path() / "received").string()});
  Otlpd second(dir.path() / "run2", persistent_config(port, sink.grpc_port(), queue, "", "10s"));
  CHECK(sink.wait_received(900, 20s));
  CHECK(second.terminate(20s) == 0);
  const json received = sink.stop();
  const std::string log = second.log();
  INFO("otlpd log: " << tail(log));
  INFO("sink: " << brief(received));

  CHECK(log.find("cut " + std::to_string(flipped.second + torn_keep) + " bytes in 2 place(s)") != std::string::npos);
  CHECK(exporter_total(second, "otlpd_exporter_storage_cut_bytes") == flipped.second + torn_keep);
  CHECK(exporter_total(second, "otlpd_exporter_replayed_items") == 900);
  CHECK(exporter_total(second, "otlpd_exporter_sent_items") == 900);
  CHECK(count(received, "items_accepted") == 900);
  CHECK(count(received, "items_distinct") == 900);
  // What arrived is exactly what was acknowledged, less the two damaged requests.
  const auto acked = read_ids(dir.path() / "acked");
  const auto have = read_ids(dir.path() / "received");
  CHECK(missing_ids(have, acked).empty());
  CHECK(missing_ids(acked, have).size() == 100);
}

TEST_CASE("SIGTERM with more queued than shutdown_timeout can send: the rest waits on disk for the next start",
          "[fault][persistent][sigterm]") {
  TempDir dir;
  const fs::path queue = dir.path() / "queue";
  const int port = free_port();
  fs::create_directories(dir.path() / "run1");
  fs::create_directories(dir.path() / "run2");
  json sent;
  uint64_t kept = 0;
  {
    // One send at a time, each answered after 1 s: the queue grows under 10,000 spans/s.
    Sink slow({"--grpc", "127.0.0.1:0", "--http", "none", "--report-interval", "100ms", "--delay", "1s",
               "--ids-file", (dir.path() / "received1").string()});
    Otlpd first(dir.path() / "run1",
                persistent_config(port, slow.grpc_port(), queue, ", num_consumers: 1", "2s"));
    Load load({"--endpoint", "127.0.0.1:" + port_str(port), "--rate", "10000", "--duration", "10s",
               "--items-per-request", "100", "--connections", "2", "--concurrency", "4", "--timeout", "3s",
               "--acked-file", (dir.path() / "acked").string()});
    REQUIRE(slow.wait_received(8192, 20s));  // under load, the backend has taken a request
    const auto t0 = SteadyClock::now();
    CHECK(first.terminate(15s) == 0);
    CHECK(seconds_since(t0) < 6);  // shutdown_timeout 2 s, not the queue's length
    sent = load.finish(40s);
    kept = exporter_total(first, "otlpd_exporter_kept_items");
    INFO("first otlpd log: " << tail(first.log()));
    CHECK(kept > 0);
    CHECK(exporter_total(first, "otlpd_exporter_send_failed_items") == 0);
    slow.stop();
  }

  Sink fast({"--grpc", "127.0.0.1:0", "--http", "none", "--report-interval", "100ms", "--ids-file",
             (dir.path() / "received2").string()});
  Otlpd second(dir.path() / "run2", persistent_config(port, fast.grpc_port(), queue, "", "10s"));
  CHECK(fast.wait_received(kept, 20s));
  CHECK(second.terminate(20s) == 0);
  fast.stop();
  INFO("second otlpd log: " << tail(second.log()));
  CHECK(exporter_total(second, "otlpd_exporter_replayed_items") == kept);

  auto have = read_ids(dir.path() / "received1");
  for (auto& id : read_ids(dir.path() / "received2")) have.push_back(id);
  std::sort(have.begin(), have.end());
  const auto acked = read_ids(dir.path() / "acked");
  INFO("load: " << brief(sent));
  CHECK(acked.size() == count(sent, "items_acknowledged"));
  CHECK(acked.size() > kept);
  CHECK(missing_ids(acked, have).empty());
}

// Reloading the configuration (SIGHUP) under steady load: an exporter added, a batch size
// changed, then an invalid config. Every item the client had acknowledged must reach the backend
// (ids compared: send --acked-file, sink --ids-file), the receivers' ports must accept
// connections throughout (a prober connects every few milliseconds), and the invalid config must
// be refused with its error logged while the running one goes on.
#include <catch2/catch.hpp>

#include <atomic>

#include "fault/fault_process.h"

using namespace fault;
using namespace std::chrono_literals;

namespace {

std::string port_str(int port) { return std::to_string(port); }

// Connects to each port again and again (each connection closed at once) until stopped, counting
// the attempts and the refusals.
class ConnectProber {
 public:
  explicit ConnectProber(std::vector<int> ports) : ports_(std::move(ports)), thread_([this] { run(); }) {}
  ~ConnectProber() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  uint64_t attempts() const { return attempts_; }
  uint64_t refused() const { return refused_; }

 private:
  void run() {
    const auto deadline = SteadyClock::now() + 120s;  // bounded even if stop() never comes
    while (!stop_ && SteadyClock::now() < deadline) {
      for (int port : ports_) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<uint16_t>(port));
        if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ++refused_;
        ++attempts_;
        close(fd);
      }
      std::this_thread::sleep_for(5ms);  // probing pace, not a synchronisation
    }
  }

  std::vector<int> ports_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> attempts_{0}, refused_{0};
  std::thread thread_;
};

// otlpd taking OTLP on gRPC and HTTP, batching, exporting to `backend`, and to `second` when it
// is not 0; `batch` is the batch processor's settings.
std::string reload_config(int grpc, int http, int backend, int second, const std::string& batch) {
  std::string exporters = "[otlp" + std::string(second ? ", otlp/second" : "") + "]";
  return fill(R"(
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:@GRPC@"}
      http: {endpoint: "127.0.0.1:@HTTP@"}
processors:
  batch: {@BATCH@}
exporters:
  otlp: {endpoint: "127.0.0.1:@BACKEND@", tls: {insecure: true}, compression: none}
  otlp/second: {endpoint: "127.0.0.1:@SECOND@", tls: {insecure: true}, compression: none}
service:
  telemetry: {metrics: {address: 127.0.0.1:0}}
  runtime: {worker_threads: 2}
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: @EXPORTERS@}
)",
              {{"GRPC", port_str(grpc)},
               {"HTTP", port_str(http)},
               {"BACKEND", port_str(backend)},
               {"SECOND", port_str(second ? second : backend)},
               {"BATCH", batch},
               {"EXPORTERS", exporters}});
}

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

}  // namespace

TEST_CASE("SIGHUP twice under load (an exporter added, a batch size changed), then an invalid config: nothing "
          "acknowledged is lost and the ports never close",
          "[fault][reload]") {
  TempDir dir;
  Sink backend({"--grpc", "127.0.0.1:0", "--http", "none", "--report-interval", "100ms", "--ids-file",
                (dir.path() / "received").string()});
  Sink second({"--grpc", "127.0.0.1:0", "--http", "none", "--report-interval", "100ms"});
  const int grpc = free_port(), http = free_port();
  const fs::path config = dir.path() / "otlpd.yaml";
  Otlpd otlpd(dir.path(), reload_config(grpc, http, backend.grpc_port(), 0,
                                        "schedule_delay: 200ms, max_export_batch_size: 200"));
  ConnectProber prober({grpc, http});

  // 4,000 spans/s for 12 s over gRPC; the reloads come while it runs.
  Load load({"--endpoint", "127.0.0.1:" + port_str(grpc), "--rate", "4000", "--duration", "12s",
             "--items-per-request", "40", "--connections", "2", "--concurrency", "4", "--timeout", "5s",
             "--acked-file", (dir.path() / "acked").string()});
  auto reload = [&](const std::string& text, const std::string& logged, size_t times) {
    write_file(config, text);
    otlpd.signal(SIGHUP);
    REQUIRE(poll_until([&] { return occurrences(otlpd.log(), logged) == times; }, 15s));
  };

  REQUIRE(backend.wait_received(8000, 20s));
  // 1: a second exporter. Only it starts; the receiver, the batch stage and the first exporter go on.
  reload(reload_config(grpc, http, backend.grpc_port(), second.grpc_port(),
                       "schedule_delay: 200ms, max_export_batch_size: 200"),
         "reload: kept ", 1);
  REQUIRE(second.wait_received(4000, 20s));
  // 2: a smaller batch size: a new batch stage; the old one delivers what it held.
  reload(reload_config(grpc, http, backend.grpc_port(), second.grpc_port(),
                       "schedule_delay: 200ms, max_export_batch_size: 50"),
         "reload: kept ", 2);
  REQUIRE(backend.wait_received(32000, 20s));
  // 3: a typo: refused, the running config stays.
  reload(reload_config(grpc, http, backend.grpc_port(), second.grpc_port(),
                       "schedule_delay: 200ms, max_export_batch_sizee: 10"),
         "the running one stays", 1);

  const json sent = load.finish(60s);
  prober.stop();
  const std::string log = otlpd.log();
  REQUIRE(otlpd.terminate(30s) == 0);
  const json got = backend.stop();
  const json got_second = second.stop();

  INFO("load: " << brief(sent));
  INFO("backend: " << brief(got));
  INFO("second: " << brief(got_second));
  INFO("otlpd log: " << tail(log));
  const auto acked = read_ids(dir.path() / "acked");
  const auto have = read_ids(dir.path() / "received");
  CHECK(acked.size() == count(sent, "items_acknowledged"));
  CHECK(acked.size() >= 40000);  // the load ran through the reloads
  CHECK(missing_ids(acked, have).empty());
  CHECK(count(sent, "items_failed") == 0);  // no connection failed or timed out
  // The ports accepted every connection attempt, before, during and after each reload.
  CHECK(prober.attempts() > 1000);
  CHECK(prober.refused() == 0);
  // What each reload did.
  CHECK(log.find("reload: started exporter otlp/second (traces)") != std::string::npos);
  CHECK(log.find("reload: started processor batch (pipeline traces)") != std::string::npos);
  CHECK(log.find("reload: draining and stopping processor batch (pipeline traces)") != std::string::npos);
  CHECK(log.find("reload: started receiver") == std::string::npos);
  CHECK(log.find("the new configuration has 1 error(s); the running one stays:") != std::string::npos);
  CHECK(log.find("processors.batch.max_export_batch_sizee: unknown key") != std::string::npos);
  // Items reach the second exporter only after the first reload; all of them arrive there too.
  CHECK(count(got_second, "items_accepted") >= 4000);
  CHECK(count(got_second, "items_accepted") < acked.size());
  CHECK(otlpd.total("otlpd_exporter_send_failed_items", {}) == 0);
  CHECK(otlpd.total("otlpd_processor_dropped_items", {}) == 0);
}

TEST_CASE("a reload changing a persistent-queue exporter hands its queue over: what it held is sent by the new one",
          "[fault][reload][persistent]") {
  TempDir dir;
  Sink backend({"--grpc", "127.0.0.1:0", "--http", "none", "--report-interval", "100ms", "--ids-file",
                (dir.path() / "received").string()});
  const int grpc = free_port(), nobody = free_port();
  auto config = [&](int exporter_port) {
    return fill(R"(
receivers: {otlp: {protocols: {grpc: {endpoint: "127.0.0.1:@GRPC@"}}}}
processors: {batch: {}}
exporters:
  otlp:
    endpoint: 127.0.0.1:@PORT@
    tls: {insecure: true}
    sending_queue: {storage: @QUEUE@}
    retry_on_failure: {initial_interval: 100ms, max_interval: 500ms, max_elapsed_time: 0s}
service:
  telemetry: {metrics: {address: 127.0.0.1:0}}
  pipelines: {traces: {receivers: [otlp], processors: [batch], exporters: [otlp]}}
)",
                {{"GRPC", port_str(grpc)}, {"PORT", port_str(exporter_port)}, {"QUEUE", (dir.path() / "queue").string()}});
  };
  // The exporter points at a port nobody listens on: 2,000 spans are acknowledged into its queue.
  Otlpd otlpd(dir.path(), config(nobody));
  Load load({"--endpoint", "127.0.0.1:" + port_str(grpc), "--requests", "50", "--items-per-request", "40",
             "--acked-file", (dir.path() / "acked").string()});
  const json sent = load.finish(30s);
  REQUIRE(count(sent, "items_acknowledged") == 2000);

  // The endpoint fixed: the old exporter stops, keeping the 2,000 on disk; the new one sends them.
  write_file(dir.path() / "otlpd.yaml", config(backend.grpc_port()));
  otlpd.signal(SIGHUP);
  const auto received = backend.wait_received(2000, 20s);
  const std::string log = otlpd.log();
  REQUIRE(otlpd.terminate(30s) == 0);
  const json got = backend.stop();
  INFO("otlpd log: " << tail(log));
  REQUIRE(received);
  CHECK(log.find("reload: started exporter otlp (traces)") != std::string::npos);
  CHECK(log.find("stopping exporter otlp (traces) so that its new config can take its place") != std::string::npos);
  CHECK(missing_ids(read_ids(dir.path() / "acked"), read_ids(dir.path() / "received")).empty());
  CHECK(count(got, "items_distinct") == 2000);
}

TEST_CASE("a reload changing a receiver: a new port opens and the old one closes; the same ports are taken over",
          "[fault][reload]") {
  TempDir dir;
  Sink backend({"--grpc", "127.0.0.1:0", "--http", "none", "--report-interval", "100ms"});
  const int grpc = free_port(), http = free_port(), grpc2 = free_port();
  auto config = [&](int grpc_port, const std::string& limit) {
    return fill(R"(
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:@GRPC@", max_recv_msg_size_mib: @LIMIT@}
      http: {endpoint: "127.0.0.1:@HTTP@"}
exporters: {otlp: {endpoint: "127.0.0.1:@BACKEND@", tls: {insecure: true}}}
service:
  telemetry: {metrics: {address: 127.0.0.1:0}}
  pipelines: {traces: {receivers: [otlp], exporters: [otlp]}}
)",
                {{"GRPC", port_str(grpc_port)},
                 {"HTTP", port_str(http)},
                 {"LIMIT", limit},
                 {"BACKEND", port_str(backend.grpc_port())}});
  };
  auto send = [&](int port, const std::string& protocol) {
    Load load({"--protocol", protocol, "--endpoint", "127.0.0.1:" + port_str(port), "--requests", "5",
               "--items-per-request", "10", "--timeout", "3s"});
    return count(load.finish(30s), "items_acknowledged");
  };
  Otlpd otlpd(dir.path(), config(grpc, "4"));
  REQUIRE(send(grpc, "grpc") == 50);

  // Another gRPC port: the new receiver binds it while the old one still listens.
  write_file(dir.path() / "otlpd.yaml", config(grpc2, "4"));
  otlpd.signal(SIGHUP);
  REQUIRE(poll_until([&] { return otlpd.log().find("reload: kept ") != std::string::npos; }, 15s));
  CHECK(send(grpc2, "grpc") == 50);
  CHECK(send(http, "http-proto") == 50);
  REQUIRE(poll_until([&] { return otlpd.log().find("the components a reload replaced have stopped") != std::string::npos; }, 15s));
  CHECK(send(grpc, "grpc") == 0);  // the old port is closed

  // The same ports, another limit: the old receiver must let go of the HTTP port first.
  write_file(dir.path() / "otlpd.yaml", config(grpc2, "8"));
  otlpd.signal(SIGHUP);
  REQUIRE(poll_until([&] {
    const std::string log = otlpd.log();
    size_t n = 0;
    for (size_t at = log.find("reload: kept "); at != std::string::npos; at = log.find("reload: kept ", at + 1)) ++n;
    return n == 2;
  }, 15s));
  CHECK(send(grpc2, "grpc") == 50);
  CHECK(send(http, "http-proto") == 50);
  const std::string log = otlpd.log();
  REQUIRE(otlpd.terminate(30s) == 0);
  INFO(tail(log));
  CHECK(log.find("receiver otlp cannot start next to its old instance") != std::string::npos);
  CHECK(backend.wait_received(250, 10s));
}

// The otlpd binary as users run it: CLI exit codes, start on a config, drain on SIGTERM.
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <grpcpp/grpcpp.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace fs = std::filesystem;
namespace col = opentelemetry::proto::collector;

namespace {

struct Result {
  int exit_code;
  std::string output;  // stdout and stderr
};

// Runs otlpd to completion with `args`, capturing its output.
Result run_otlpd(const std::string& args) {
  std::string cmd = std::string(OTLPD_BINARY) + " " + args + " 2>&1";
  Result r{-1, ""};
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

uint16_t free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

fs::path temp_dir() {
  fs::path dir = fs::temp_directory_path() / ("otlpd-daemon-test-" + std::to_string(getpid()) + "-" +
                                              std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  fs::create_directories(dir);
  return dir;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A running otlpd child process, killed if the test leaves early.
class Daemon {
 public:
  // `env`: variables set for otlpd only (NAME, value).
  Daemon(const fs::path& config, const fs::path& log, const std::vector<std::pair<std::string, std::string>>& env = {}) {
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      FILE* f = std::freopen(log.c_str(), "w", stderr);
      (void)f;
      for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
      execl(OTLPD_BINARY, OTLPD_BINARY, "--config", config.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Daemon() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  // Sends SIGTERM and waits up to `timeout` for the exit code.
  int terminate(std::chrono::seconds timeout) {
    kill(pid_, SIGTERM);
    return wait_exit(timeout);
  }
  // Waits up to `timeout` for the process to exit on its own; its exit code, or -2 if it runs on.
  int wait_exit(std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a deadline
    }
    return -2;
  }

 private:
  pid_t pid_ = -1;
};

// Sends one request of `n` spans named "<prefix>-<i>" over OTLP/gRPC, once the daemon listens,
// with `metadata`; the call's status (UNAVAILABLE when nothing listens within 10 s).
grpc::Status export_spans_status(uint16_t port, const std::string& prefix, int n,
                                 const std::vector<std::pair<std::string, std::string>>& metadata) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "not listening");
  }
  auto stub = col::trace::v1::TraceService::NewStub(channel);
  col::trace::v1::ExportTraceServiceRequest req;
  auto* ss = req.add_resource_spans()->add_scope_spans();
  for (int i = 0; i < n; ++i) {
    auto* span = ss->add_spans();
    span->set_trace_id(std::string(16, 'a'));
    span->set_span_id(std::string(7, 'b') + static_cast<char>('0' + i));
    span->set_name(prefix + "-" + std::to_string(i));
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  for (const auto& [key, value] : metadata) ctx.AddMetadata(key, value);
  col::trace::v1::ExportTraceServiceResponse resp;
  return stub->Export(&ctx, req, &resp);
}

bool export_spans(uint16_t port, const std::string& prefix, int n) {
  return export_spans_status(port, prefix, n, {}).ok();
}

// GET http://127.0.0.1:<port><path> with Connection: close; the whole response (status line,
// headers, body), or "" when there is no complete answer within 10 s.
std::string http_get(uint16_t port, const std::string& path) {
  namespace net = boost::asio;
  net::io_context io;
  net::ip::tcp::socket socket(io);
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  std::string response;
  boost::system::error_code result = net::error::timed_out;
  socket.async_connect({net::ip::make_address("127.0.0.1"), port}, [&](boost::system::error_code ec) {
    if (ec) {
      result = ec;
      return;
    }
    net::async_write(socket, net::buffer(request), [&](boost::system::error_code ec, size_t) {
      if (ec) {
        result = ec;
        return;
      }
      net::async_read(socket, net::dynamic_buffer(response), [&](boost::system::error_code ec, size_t) { result = ec; });
    });
  });
  io.run_for(std::chrono::seconds(10));
  return result == net::error::eof ? response : std::string();
}

// Polls the log file until it holds `needle`; the log's text then, or "" at the deadline.
std::string wait_for_log(const fs::path& log, const std::string& needle, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string text = read_file(log);
    if (text.find(needle) != std::string::npos) return text;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a deadline
  }
  return {};
}

}  // namespace

TEST_CASE("otlpd --version prints the version", "[daemon]") {
  Result r = run_otlpd("--version");
  CHECK(r.exit_code == 0);
  CHECK(r.output == std::string("otlpd ") + OTLPD_VERSION + "\n");
}

TEST_CASE("otlpd validate accepts the shipped config", "[daemon]") {
  Result r = run_otlpd("validate --config " OTLPD_SOURCE_DIR "/config/otlpd.yaml");
  CHECK(r.exit_code == 0);
  CHECK(r.output == OTLPD_SOURCE_DIR "/config/otlpd.yaml: valid\n");
}

TEST_CASE("otlpd --help lists every command and option", "[daemon][cli]") {
  Result r = run_otlpd("--help");
  CHECK(r.exit_code == 0);
  for (const char* word : {"--config FILE", "--set KEY=VALUE", "validate", "print-config", "components", "--version"}) {
    CHECK(r.output.find(word) != std::string::npos);
  }
  Result unknown = run_otlpd("--frobnicate");
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.output.find("otlpd: unknown argument --frobnicate\nusage:") == 0);
}

TEST_CASE("otlpd components lists every type with a description", "[daemon][cli]") {
  Result r = run_otlpd("components");
  CHECK(r.exit_code == 0);
  for (const char* line :
       {"receivers:\n  otlp             OTLP traces, metrics and logs over gRPC and HTTP",
        "processors:\n  batch            groups items", "  memory_limiter   refuses data",
        "exporters:\n  debug            prints batches", "  file             writes OTLP/JSON",
        "  otlp             sends OTLP over gRPC", "  otlphttp         sends OTLP over HTTP",
        "extensions:\n  bearertokenauth  a bearer token receivers require (auth) and exporters send",
        "  file_storage     a directory for persistent sending queues",
        "  health_check     an HTTP endpoint answering 200 when otlpd is healthy"}) {
    CHECK(r.output.find(line) != std::string::npos);
  }
}

TEST_CASE("print-config merges --config files and --set, expands the environment, redacts secrets",
          "[daemon][cli]") {
  fs::path dir = temp_dir();
  write_file(dir / "a.yaml", R"(
receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:4317}}}}
processors: {batch: {timeout: 5s, send_batch_size: 100}}
exporters:
  otlp: {endpoint: "${env:OTLPD_TEST_BACKEND}", headers: {authorization: "Bearer ${env:OTLPD_TEST_TOKEN}"}}
service:
  pipelines: {traces: {receivers: [otlp], processors: [batch], exporters: [otlp]}}
)");
  write_file(dir / "b.yaml", "processors: {batch: {send_batch_size: 200}}\n");
  const std::string files = "--config " + (dir / "a.yaml").string() + " --config " + (dir / "b.yaml").string();
  // otlpd inherits the test's environment.
  setenv("OTLPD_TEST_BACKEND", "backend.example:4317", 1);
  setenv("OTLPD_TEST_TOKEN", "hunter2", 1);
  struct Unset {
    ~Unset() {
      unsetenv("OTLPD_TEST_BACKEND");
      unsetenv("OTLPD_TEST_TOKEN");
    }
  } unset_at_exit;
  Result env_run = run_otlpd("print-config " + files + " --set processors::batch::timeout=1s");
  INFO(env_run.output);
  CHECK(env_run.exit_code == 0);
  CHECK(env_run.output.find("timeout: 1s") != std::string::npos);
  CHECK(env_run.output.find("send_batch_size: 200") != std::string::npos);
  CHECK(env_run.output.find("endpoint: backend.example:4317") != std::string::npos);
  CHECK(env_run.output.find("authorization: \"[REDACTED]\"") != std::string::npos);
  CHECK(env_run.output.find("hunter2") == std::string::npos);

  // validate and run take the same sources: the merged config is what runs.
  Result valid = run_otlpd("validate " + files + " --set processors::batch::send_batch_size=300");
  CHECK(valid.exit_code == 0);
  Result invalid = run_otlpd("validate " + files + " --set processors::batch::send_batch_size=many");
  CHECK(invalid.exit_code == 1);
  CHECK(invalid.output.find("processors.batch.send_batch_size: invalid value \"many\" (expected an integer)") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("otlpd validate lists every error and exits 1", "[daemon]") {
  fs::path dir = temp_dir();
  write_file(dir / "bad.yaml", R"(
receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:4317}}}}
processors: {batch: {schedule_delay: soon}}
exporters: {debug: {verbosity: loud}}
service:
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: [debug]}
)");
  Result r = run_otlpd("validate --config " + (dir / "bad.yaml").string());
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("2 errors") != std::string::npos);
  CHECK(r.output.find("processors.batch.schedule_delay: invalid duration \"soon\"") != std::string::npos);
  CHECK(r.output.find("exporters.debug.verbosity: invalid value \"loud\"") != std::string::npos);
  Result missing = run_otlpd("validate --config " + (dir / "missing.yaml").string());
  CHECK(missing.exit_code == 1);
  CHECK(missing.output.find("cannot read config file") != std::string::npos);
  Result no_args = run_otlpd("");
  CHECK(no_args.exit_code == 2);
  fs::remove_all(dir);
}

TEST_CASE("SIGTERM drains the batch stage and the exporters before exit", "[daemon]") {
  fs::path dir = temp_dir();
  const uint16_t port = free_port();
  // A delay far beyond the test: the only way the spans reach the file is the shutdown drain.
  write_file(dir / "otlpd.yaml", "receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:" + std::to_string(port) +
                                     "}}}}\n"
                                     "processors: {batch: {schedule_delay: 1h}}\n"
                                     "exporters: {file: {path: " +
                                     (dir / "out.jsonl").string() +
                                     "}}\n"
                                     "service:\n"
                                     "  telemetry: {metrics: {address: 127.0.0.1:0}}\n"
                                     "  runtime: {worker_threads: 2}\n"
                                     "  pipelines:\n"
                                     "    traces: {receivers: [otlp], processors: [batch], exporters: [file]}\n");
  Daemon daemon(dir / "otlpd.yaml", dir / "otlpd.log");
  REQUIRE(export_spans(port, "drained", 7));

  CHECK(daemon.terminate(std::chrono::seconds(15)) == 0);
  std::string out = read_file(dir / "out.jsonl");
  INFO(out);
  INFO(read_file(dir / "otlpd.log"));
  for (int i = 0; i < 7; ++i) {
    CHECK(out.find("\"name\":\"drained-" + std::to_string(i) + "\"") != std::string::npos);
  }
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);  // one batch, one line
  fs::remove_all(dir);
}

TEST_CASE("SIGTERM with the backend down exits within the grace period and counts what was lost", "[daemon]") {
  fs::path dir = temp_dir();
  const uint16_t port = free_port();
  const uint16_t dead_port = free_port();  // nothing listens there
  write_file(dir / "otlpd.yaml", "receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:" + std::to_string(port) +
                                     "}}}}\n"
                                     "exporters:\n"
                                     "  otlp:\n"
                                     "    endpoint: 127.0.0.1:" +
                                     std::to_string(dead_port) +
                                     "\n"
                                     "    tls: {insecure: true}\n"
                                     "    timeout: 500ms\n"
                                     "    retry_on_failure: {initial_interval: 30s, max_interval: 60s}\n"
                                     "service:\n"
                                     "  telemetry: {metrics: {address: 127.0.0.1:0}}\n"
                                     "  shutdown_timeout: 3s\n"
                                     "  pipelines:\n"
                                     "    traces: {receivers: [otlp], exporters: [otlp]}\n");
  Daemon daemon(dir / "otlpd.yaml", dir / "otlpd.log");
  REQUIRE(export_spans(port, "lost", 3));
  // Wait until the first attempt failed and a 30 s backoff is pending.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (read_file(dir / "otlpd.log").find("retry 1 in") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a deadline
  }

  const auto t0 = std::chrono::steady_clock::now();
  CHECK(daemon.terminate(std::chrono::seconds(20)) == 0);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took < std::chrono::seconds(5));  // shutdown_timeout 3 s, not the 30 s backoff
  std::string log = read_file(dir / "otlpd.log");
  INFO(log);
  CHECK(log.find("total otlpd_receiver_accepted_items{receiver=otlp,signal=traces,transport=grpc} = 3") !=
        std::string::npos);
  CHECK(log.find("total otlpd_exporter_send_failed_items{exporter=otlp,signal=traces} = 3") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("otlpd serves its own metrics as Prometheus text on service.telemetry.metrics.address", "[daemon]") {
  fs::path dir = temp_dir();
  const uint16_t port = free_port();
  write_file(dir / "otlpd.yaml", "receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:" + std::to_string(port) +
                                     "}}}}\n"
                                     "exporters: {file: {path: " +
                                     (dir / "out.jsonl").string() +
                                     "}}\n"
                                     "service:\n"
                                     "  telemetry: {metrics: {level: normal, address: 127.0.0.1:0}}\n"
                                     "  pipelines:\n"
                                     "    traces: {receivers: [otlp], exporters: [file]}\n");
  Daemon daemon(dir / "otlpd.yaml", dir / "otlpd.log");
  const std::string prefix = "self-metrics on http://127.0.0.1:";
  std::string log = wait_for_log(dir / "otlpd.log", " running ", std::chrono::seconds(10));
  INFO(read_file(dir / "otlpd.log"));
  const size_t at = log.find(prefix);
  REQUIRE(at != std::string::npos);
  const size_t end = log.find("/metrics", at);
  REQUIRE(end != std::string::npos);
  const int metrics_port = std::stoi(log.substr(at + prefix.size(), end - at - prefix.size()));
  REQUIRE(metrics_port > 0);
  CHECK(metrics_port != 8888);

  REQUIRE(export_spans(port, "scraped", 5));
  // The counters move as the pipeline runs: scrape until the export shows (or the deadline).
  const std::string accepted = "\notlpd_receiver_accepted_spans{receiver=\"otlp\",transport=\"grpc\"} 5\n";
  const std::string sent = "\notlpd_exporter_sent_spans{exporter=\"file\"} 5\n";
  std::string page;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    page = http_get(static_cast<uint16_t>(metrics_port), "/metrics");
    if (page.find(accepted) != std::string::npos && page.find(sent) != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a deadline
  }
  INFO(page);
  CHECK(page.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(page.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != std::string::npos);
  CHECK(page.find("\n# TYPE otlpd_receiver_accepted_spans counter\n") != std::string::npos);
  CHECK(page.find(accepted) != std::string::npos);
  CHECK(page.find(sent) != std::string::npos);
  CHECK(page.find("\notlpd_build_info{version=\"" OTLPD_VERSION "\"} 1\n") != std::string::npos);
  CHECK(page.find("\n# TYPE otlpd_process_memory_rss gauge\n") != std::string::npos);
  CHECK(http_get(static_cast<uint16_t>(metrics_port), "/").rfind("HTTP/1.1 404 ", 0) == 0);

  CHECK(daemon.terminate(std::chrono::seconds(15)) == 0);
  fs::remove_all(dir);
}

TEST_CASE("otlpd exits 1 naming the address when the self-metrics port is taken", "[daemon]") {
  fs::path dir = temp_dir();
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor taken(io, {boost::asio::ip::make_address("127.0.0.1"), 0});  // listening
  const std::string address = "127.0.0.1:" + std::to_string(taken.local_endpoint().port());
  write_file(dir / "otlpd.yaml", "receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:" +
                                     std::to_string(free_port()) +
                                     "}}}}\n"
                                     "exporters: {debug: {}}\n"
                                     "service:\n"
                                     "  telemetry: {metrics: {address: " +
                                     address +
                                     "}}\n"
                                     "  pipelines:\n"
                                     "    traces: {receivers: [otlp], exporters: [debug]}\n");
  Daemon daemon(dir / "otlpd.yaml", dir / "otlpd.log");
  CHECK(daemon.wait_exit(std::chrono::seconds(15)) == 1);
  std::string log = read_file(dir / "otlpd.log");
  INFO(log);
  CHECK(log.find("cannot serve self-metrics on " + address + " (service.telemetry.metrics.address): bind " + address +
                 ": Address already in use") != std::string::npos);
  CHECK(log.find(" running ") == std::string::npos);
  fs::remove_all(dir);
}

namespace {

// systemd's side of the notify protocol: a unix datagram socket otlpd is told about.
class NotifySocket {
 public:
  explicit NotifySocket(const fs::path& path) : path_(path.string()) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path_.size() < sizeof addr.sun_path);
    std::memcpy(addr.sun_path, path_.data(), path_.size());
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~NotifySocket() { close(fd_); }
  const std::string& path() const { return path_; }
  // The next datagram, or "" when none came within `timeout`.
  std::string next(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return "";
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  // Reads datagrams until one starts with `prefix` (kept in *seen, in order); false at the deadline.
  bool wait_for(const std::string& prefix, std::chrono::milliseconds timeout, std::vector<std::string>* seen) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      std::string m = next(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
      if (m.empty()) continue;
      seen->push_back(m);
      if (m.rfind(prefix, 0) == 0) return true;
    }
    return false;
  }

 private:
  std::string path_;
  int fd_ = -1;
};


}  // namespace

TEST_CASE("otlpd tells systemd READY, WATCHDOG, STATUS, RELOADING and STOPPING", "[daemon][systemd]") {
  fs::path dir = temp_dir();
  const uint16_t port = free_port();
  write_file(dir / "otlpd.yaml", "receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:" + std::to_string(port) +
                                     "}}}}\n"
                                     "exporters: {file: {path: " + (dir / "out.json").string() + "}}\n"
                                     "service:\n"
                                     "  telemetry: {metrics: {address: 127.0.0.1:0}}\n"
                                     "  pipelines: {traces: {receivers: [otlp], exporters: [file]}}\n");
  NotifySocket systemd(dir / "notify");
  std::vector<std::string> seen;
  {
    Daemon daemon(dir / "otlpd.yaml", dir / "otlpd.log", {{"NOTIFY_SOCKET", systemd.path()}, {"WATCHDOG_USEC", "200000"}});
    REQUIRE(systemd.wait_for("READY=1", std::chrono::seconds(15), &seen));
    CHECK(seen.size() == 1);  // nothing before READY
    CHECK(seen[0] == "READY=1\nSTATUS=running 1 pipeline(s)");
    REQUIRE(export_spans(port, "notified", 5));  // the receivers listen once READY is sent

    // Every 100 ms (half of WATCHDOG_USEC) a watchdog ping; a STATUS line every 5 s.
    REQUIRE(systemd.wait_for("STATUS=accepting ", std::chrono::seconds(10), &seen));
    CHECK(std::count(seen.begin(), seen.end(), "WATCHDOG=1") >= 10);
    const std::string& status = seen.back();
    CHECK(status.find(" items/s; sending queues 0/1000") != std::string::npos);

    // A reload: RELOADING=1 (with the time systemd matches it by), then READY=1 again.
    seen.clear();
    kill(daemon.pid(), SIGHUP);
    REQUIRE(systemd.wait_for("READY=1", std::chrono::seconds(10), &seen));
    auto reloading = std::find_if(seen.begin(), seen.end(), [](const std::string& m) {
      return m.rfind("RELOADING=1\nMONOTONIC_USEC=", 0) == 0 && m.find("\nSTATUS=reloading the configuration") != std::string::npos;
    });
    CHECK(reloading != seen.end());
    CHECK(seen.back() == "READY=1\nSTATUS=running 1 pipeline(s)");
    CHECK(export_spans(port, "after-hup", 3));  // the same receiver, still listening

    seen.clear();
    kill(daemon.pid(), SIGTERM);
    REQUIRE(systemd.wait_for("STOPPING=1", std::chrono::seconds(10), &seen));
    CHECK(seen.back() == "STOPPING=1\nSTATUS=draining");
    CHECK(daemon.wait_exit(std::chrono::seconds(15)) == 0);
  }
  const std::string log = read_file(dir / "otlpd.log");
  INFO(log);
  CHECK(log.find("total otlpd_receiver_accepted_items{receiver=otlp,signal=traces,transport=grpc} = 8") !=
        std::string::npos);
  fs::remove_all(dir);
}

namespace {

// The health endpoint's answer, polled until `predicate` holds (or 10 s passed); the last answer.
template <typename Predicate>
std::string poll_health(uint16_t port, Predicate predicate) {
  std::string page;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    page = http_get(port, "/");
    if (predicate(page)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a deadline
  }
  return page;
}

}  // namespace

TEST_CASE("the health_check extension: 200 while running, 503 while an exporter keeps failing and while draining",
          "[daemon][health]") {
  fs::path dir = temp_dir();
  const uint16_t port = free_port();
  const uint16_t nobody = free_port();  // the exporter's backend: nothing listens there
  write_file(dir / "otlpd.yaml",
             "receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:" + std::to_string(port) + "}}}}\n"
             "exporters:\n"
             "  otlp:\n"
             "    endpoint: 127.0.0.1:" + std::to_string(nobody) + "\n"
             "    tls: {insecure: true}\n"
             "    retry_on_failure: {initial_interval: 50ms, max_interval: 100ms, max_elapsed_time: 0s}\n"
             "extensions:\n"
             "  health_check:\n"
             "    endpoint: 127.0.0.1:0\n"
             "    check_collector_pipeline: {interval: 1s, exporter_failure_threshold: 3}\n"
             "service:\n"
             "  extensions: [health_check]\n"
             "  shutdown_timeout: 3s\n"
             "  telemetry: {metrics: {address: 127.0.0.1:0}}\n"
             "  pipelines: {traces: {receivers: [otlp], exporters: [otlp]}}\n");
  Daemon daemon(dir / "otlpd.yaml", dir / "otlpd.log");
  const std::string log = wait_for_log(dir / "otlpd.log", " running ", std::chrono::seconds(10));
  INFO(read_file(dir / "otlpd.log"));
  const std::string prefix = "health check on http://127.0.0.1:";
  const size_t at = log.find(prefix);
  REQUIRE(at != std::string::npos);
  const auto health_port = static_cast<uint16_t>(std::stoi(log.substr(at + prefix.size())));

  std::string page = http_get(health_port, "/");
  CHECK(page.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(page.find("\r\nContent-Type: application/json\r\n") != std::string::npos);
  CHECK(page.find("{\"status\":\"running\",\"healthy\":true,") != std::string::npos);
  CHECK(page.find("\"failing_exporters\":[]}") != std::string::npos);

  // Accepted into the sending queue; every send fails (connection refused) and is retried.
  REQUIRE(export_spans(port, "unsent", 3));
  page = poll_health(health_port, [](const std::string& p) { return p.rfind("HTTP/1.1 503 ", 0) == 0; });
  INFO(page);
  CHECK(page.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
  CHECK(page.find("{\"status\":\"exporter failing\",\"healthy\":false,") != std::string::npos);
  CHECK(page.find("\"failing_exporters\":[\"otlp (traces)\"]}") != std::string::npos);

  // Draining the queue it cannot send: "stopping" until shutdown_timeout ends it.
  kill(daemon.pid(), SIGTERM);
  page = poll_health(health_port, [](const std::string& p) { return p.find("\"status\":\"stopping\"") != std::string::npos; });
  CHECK(page.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
  CHECK(page.find("{\"status\":\"stopping\",\"healthy\":false,") != std::string::npos);
  CHECK(daemon.wait_exit(std::chrono::seconds(15)) == 0);
  fs::remove_all(dir);
}

TEST_CASE("bearertokenauth: a receiver refuses a missing or wrong token, an exporter sends the right one",
          "[daemon][auth]") {
  fs::path dir = temp_dir();
  const uint16_t backend_port = free_port(), front_port = free_port();
  const std::string token = "k7Qz-0123456789-secret";
  write_file(dir / "token", token + "\n");
  // The backend otlpd requires the token (from a file) and writes what it accepts.
  write_file(dir / "backend.yaml",
             "extensions: {bearertokenauth: {filename: " + (dir / "token").string() + "}}\n"
             "receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:" + std::to_string(backend_port) +
             ", auth: {authenticator: bearertokenauth}}}}}\n"
             "exporters: {file: {path: " + (dir / "out.jsonl").string() + "}}\n"
             "service:\n"
             "  extensions: [bearertokenauth]\n"
             "  telemetry: {metrics: {address: 127.0.0.1:0}}\n"
             "  pipelines: {traces: {receivers: [otlp], exporters: [file]}}\n");
  // The front otlpd forwards to it with the token (inline here).
  write_file(dir / "front.yaml",
             "extensions: {bearertokenauth: {token: " + token + "}}\n"
             "receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:" + std::to_string(front_port) + "}}}}\n"
             "exporters: {otlp: {endpoint: 127.0.0.1:" + std::to_string(backend_port) +
             ", tls: {insecure: true}, auth: {authenticator: bearertokenauth}}}\n"
             "service:\n"
             "  extensions: [bearertokenauth]\n"
             "  telemetry: {metrics: {address: 127.0.0.1:0}}\n"
             "  pipelines: {traces: {receivers: [otlp], exporters: [otlp]}}\n");
  Daemon backend(dir / "backend.yaml", dir / "backend.log");
  Daemon front(dir / "front.yaml", dir / "front.log");
  wait_for_log(dir / "backend.log", " running ", std::chrono::seconds(10));
  wait_for_log(dir / "front.log", " running ", std::chrono::seconds(10));

  grpc::Status missing = export_spans_status(backend_port, "none", 1, {});
  CHECK(missing.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(missing.error_message() == "missing or invalid credentials");
  std::string wrong_bytes = token;
  wrong_bytes.back() = 'X';  // the right length, one byte off
  for (const std::string& value : {"Bearer " + wrong_bytes, "Bearer " + token + "x", token, "Basic " + token}) {
    grpc::Status s = export_spans_status(backend_port, "wrong", 1, {{"authorization", value}});
    INFO(value);
    CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(s.error_message().find(token) == std::string::npos);  // never echoed
  }
  CHECK(export_spans_status(backend_port, "direct", 2, {{"authorization", "Bearer " + token}}).ok());
  // Through the front otlpd, whose exporter adds the header.
  CHECK(export_spans(front_port, "forwarded", 3));
  const std::string out = wait_for_log(dir / "out.jsonl", "forwarded-2", std::chrono::seconds(10));
  CHECK(out.find("direct-1") != std::string::npos);
  CHECK(out.find("wrong") == std::string::npos);
  CHECK(out.find("none") == std::string::npos);

  CHECK(front.terminate(std::chrono::seconds(15)) == 0);
  CHECK(backend.terminate(std::chrono::seconds(15)) == 0);
  for (const char* log : {"backend.log", "front.log"}) {
    INFO(log);
    CHECK(read_file(dir / log).find(token) == std::string::npos);  // never logged
  }
  fs::remove_all(dir);
}

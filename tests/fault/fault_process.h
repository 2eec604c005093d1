// Child processes for the fault tests: otlpd (the binary under test), otlpd-loadgen `send` (a
// client that knows exactly which items were acknowledged) and `sink` (a counting backend), all on
// 127.0.0.1. Every wait is bounded and polls a condition; a process still running when its owner
// goes away is killed, so a failed REQUIRE never leaves load running behind the next test.
#pragma once

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/temp_dir.h"

namespace fault {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;
using json = nlohmann::json;

// Calls `condition` every 20 ms until it returns true or `timeout` passes; returns its last answer.
template <typename Condition>
bool poll_until(Condition condition, Millis timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(Millis(20));  // polling interval, not a synchronisation
  }
}

inline double seconds_since(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}

// A TCP port free on 127.0.0.1 right now (otlpd takes no port 0 for its receivers).
inline int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  close(fd);
  return ntohs(addr.sin_port);
}

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

// The last `bytes` of `text`, for failure messages.
inline std::string tail(const std::string& text, size_t bytes = 6000) {
  return text.size() <= bytes ? text : "..." + text.substr(text.size() - bytes);
}

// Replaces every `@KEY@` of `text` (configs written as templates).
inline std::string fill(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [key, value] : values) {
    const std::string marker = "@" + key + "@";
    for (size_t at = text.find(marker); at != std::string::npos; at = text.find(marker, at + value.size())) {
      text.replace(at, marker.size(), value);
    }
  }
  REQUIRE(text.find('@') == std::string::npos);  // every marker filled
  return text;
}

// A directory of its own per test, removed at the end.
struct TempDir : otlpd::test::TempDir {
  TempDir() : otlpd::test::TempDir("otlpd-fault") {}
};

// Peak resident set size of a running process in KiB (VmHWM), 0 when it cannot be read.
inline uint64_t peak_rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

// A child process whose stdout (and stderr, unless `stderr_path` is given) is read line by line
// from a pipe. Killed and reaped at destruction if still running.
class Process {
 public:
  Process(const std::string& binary, const std::vector<std::string>& args, const fs::path& stderr_path = {}) {
    int fds[2];
    REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
    pid_ = fork();
    if (pid_ == 0) {  // the child: no Catch2 here
      dup2(fds[1], STDOUT_FILENO);
      int err = stderr_path.empty() ? fds[1] : open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(err, STDERR_FILENO);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(binary.c_str()));
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    close(fds[1]);
    fd_ = fds[0];
    REQUIRE(pid_ > 0);
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process() {
    if (pid_ > 0 && !exit_code_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(fd_);
  }

  pid_t pid() const { return pid_; }

  // The next line of output, or nullopt at end of output or when `timeout` passes.
  std::optional<std::string> read_line(Millis timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    for (;;) {
      const size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        output_ += line + "\n";
        return line;
      }
      const auto left = std::chrono::duration_cast<Millis>(deadline - SteadyClock::now()).count();
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 0))) <= 0) {
        if (left <= 0) return std::nullopt;
        continue;
      }
      char chunk[4096];
      const ssize_t n = read(fd_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

  // Reads lines until one starts with `prefix`; returns the rest of it.
  std::optional<std::string> wait_for(const std::string& prefix, Millis timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    for (;;) {
      auto line = read_line(std::chrono::duration_cast<Millis>(deadline - SteadyClock::now()));
      if (!line) return std::nullopt;
      if (line->rfind(prefix, 0) == 0) return line->substr(prefix.size());
    }
  }

  void signal(int sig) {
    if (pid_ > 0 && !exit_code_) kill(pid_, sig);
  }

  // The exit code if the process has exited (128 + signal when a signal ended it); reaps it.
  std::optional<int> exited() {
    if (exit_code_) return exit_code_;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_code_;
  }

  std::optional<int> wait_exit(Millis timeout) {
    poll_until([&] { return exited().has_value(); }, timeout);
    return exited();
  }

  // Every line read so far.
  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buf_, output_;
  std::optional<int> exit_code_;
};

// `otlpd-loadgen sink`: prints LISTENING, an INTERVAL line per --report-interval, RESULT at SIGTERM.
class Sink {
 public:
  // Starts a sink with `args` (after `sink`); retries while it cannot bind (exit 1), which happens
  // when a sink restarts on the port of the one it replaces, for up to `bind_timeout`.
  explicit Sink(const std::vector<std::string>& args, Millis bind_timeout = Millis(5000)) {
    std::vector<std::string> argv = {"sink"};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto deadline = SteadyClock::now() + bind_timeout;
    for (;;) {
      process_ = std::make_unique<Process>(OTLPD_LOADGEN_BINARY, argv);
      auto line = process_->wait_for("LISTENING ", Millis(10000));
      if (line) {
        REQUIRE(std::sscanf(line->c_str(), "grpc=%d http=%d", &grpc_port_, &http_port_) == 2);
        return;
      }
      const auto code = process_->wait_exit(Millis(5000));
      INFO(process_->output());
      REQUIRE(code == 1);  // could not bind: try again
      REQUIRE(SteadyClock::now() < deadline);
      std::this_thread::sleep_for(Millis(100));  // between bind attempts
    }
  }

  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_port_; }

  // Waits for an INTERVAL line reporting at least `items` received; returns its count, or nullopt
  // after `timeout`. Needs --report-interval.
  std::optional<uint64_t> wait_received(uint64_t items, Millis timeout) {
    auto line = wait_interval([&](const Interval& i) { return i.received >= items; }, timeout);
    return line ? std::optional<uint64_t>(line->received) : std::nullopt;
  }

  // The same for items accepted (received and answered OK: later than received with --delay).
  std::optional<uint64_t> wait_accepted(uint64_t items, Millis timeout) {
    auto line = wait_interval([&](const Interval& i) { return i.accepted >= items; }, timeout);
    return line ? std::optional<uint64_t>(line->accepted) : std::nullopt;
  }

  // Items accepted as of now: skips INTERVAL lines already printed and returns the next one's count.
  std::optional<uint64_t> accepted_now(Millis timeout) {
    while (next_interval(Millis(0))) {
    }
    auto line = next_interval(timeout);
    return line ? std::optional<uint64_t>(line->accepted) : std::nullopt;
  }

  // SIGTERM; returns the RESULT json once the sink has exited.
  json stop() {
    process_->signal(SIGTERM);
    auto result = process_->wait_for("RESULT ", Millis(15000));
    INFO(tail(process_->output()));
    REQUIRE(result);
    REQUIRE(process_->wait_exit(Millis(10000)) == 0);
    return json::parse(*result);
  }

 private:
  struct Interval {
    uint64_t received = 0, accepted = 0;
  };

  // The next INTERVAL line's counts, or nullopt when none comes within `timeout`.
  std::optional<Interval> next_interval(Millis timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    for (;;) {
      auto line = process_->read_line(std::chrono::duration_cast<Millis>(deadline - SteadyClock::now()));
      if (!line) return std::nullopt;
      unsigned long long requests = 0, items = 0, accepted = 0;
      if (std::sscanf(line->c_str(), "INTERVAL t=%*fs requests=%llu items=%llu items/s=%*f accepted=%llu", &requests,
                      &items, &accepted) == 3) {
        return Interval{items, accepted};
      }
    }
  }

  template <typename Condition>
  std::optional<Interval> wait_interval(Condition condition, Millis timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    while (SteadyClock::now() < deadline) {
      auto line = next_interval(std::chrono::duration_cast<Millis>(deadline - SteadyClock::now()));
      if (line && condition(*line)) return line;
    }
    return std::nullopt;
  }

  std::unique_ptr<Process> process_;
  int grpc_port_ = 0, http_port_ = 0;
};

// `otlpd-loadgen send` running in the background until its duration or request count is done.
class Load {
 public:
  explicit Load(const std::vector<std::string>& args) : started_(SteadyClock::now()) {
    std::vector<std::string> argv = {"send"};
    argv.insert(argv.end(), args.begin(), args.end());
    process_ = std::make_unique<Process>(OTLPD_LOADGEN_BINARY, argv);
  }

  // Waits for the RESULT line and the exit; returns the RESULT json.
  json finish(Millis timeout) {
    auto result = process_->wait_for("RESULT ", timeout);
    INFO(tail(process_->output()));
    REQUIRE(result);
    REQUIRE(process_->wait_exit(Millis(10000)) == 0);
    return json::parse(*result);
  }

  SteadyClock::time_point started() const { return started_; }

 private:
  SteadyClock::time_point started_;
  std::unique_ptr<Process> process_;
};

// otlpd on a config written to `dir`/otlpd.yaml, its log (stderr) in `dir`/otlpd.log. The
// constructor returns once otlpd logs that it is running.
class Otlpd {
 public:
  Otlpd(const fs::path& dir, const std::string& config) : log_path_(dir / "otlpd.log") {
    write_file(dir / "otlpd.yaml", config);
    process_ = std::make_unique<Process>(OTLPD_BINARY, std::vector<std::string>{"--config", (dir / "otlpd.yaml").string()},
                                         log_path_);
    // main.cc logs "otlpd VERSION running N pipeline(s) ..." once every receiver listens.
    const bool running = poll_until(
        [&] { return process_->exited() || log().find(" pipeline(s) on ") != std::string::npos; }, Millis(15000));
    INFO(config);
    INFO(log());
    REQUIRE(running);
    REQUIRE(!process_->exited());
  }

  pid_t pid() const { return process_->pid(); }
  std::string log() const { return read_file(log_path_); }
  void signal(int sig) { process_->signal(sig); }

  // Peak RSS in KiB, read now if otlpd is running (VmHWM only grows), else the last one read.
  uint64_t peak_rss_kib() {
    if (!process_->exited()) peak_kib_ = std::max(peak_kib_, fault::peak_rss_kib(process_->pid()));
    return peak_kib_;
  }

  // SIGTERM, then waits up to `timeout` for the exit, reading the peak RSS until then. Returns the
  // exit code (nullopt: still running) and records how long the exit took.
  std::optional<int> terminate(Millis timeout) {
    const auto t0 = SteadyClock::now();
    peak_rss_kib();
    process_->signal(SIGTERM);
    poll_until(
        [&] {
          peak_rss_kib();
          return process_->exited().has_value();
        },
        timeout);
    shutdown_seconds_ = seconds_since(t0);
    return process_->exited();
  }
  double shutdown_seconds() const { return shutdown_seconds_; }

  // SIGKILL, as a crash or the OOM killer would: no drain, no exit totals. Waits for the exit.
  void kill() {
    process_->signal(SIGKILL);
    REQUIRE(process_->wait_exit(Millis(10000)));
  }

  // The sum of the totals otlpd logged at exit (`total NAME{K=V,...} = N`) named `name` whose
  // labels include `labels` (other labels, such as pipeline, may be present), e.g.
  // total("otlpd_exporter_send_failed_items", {{"exporter", "otlp"}}); 0 when none was logged
  // (log_totals leaves out zeros).
  uint64_t total(const std::string& name, const std::map<std::string, std::string>& labels) const {
    uint64_t sum = 0;
    std::istringstream lines(log());
    std::string line;
    const std::string marker = "] total " + name + "{";
    while (std::getline(lines, line)) {
      const size_t at = line.find(marker);
      if (at == std::string::npos) continue;
      const size_t open = at + marker.size();
      const size_t close = line.find("} = ", open);
      if (close == std::string::npos) continue;
      std::map<std::string, std::string> have;
      std::istringstream pairs(line.substr(open, close - open));
      std::string pair;
      while (std::getline(pairs, pair, ',')) {
        const size_t eq = pair.find('=');
        if (eq != std::string::npos) have[pair.substr(0, eq)] = pair.substr(eq + 1);
      }
      const bool match = std::all_of(labels.begin(), labels.end(), [&](const auto& kv) {
        auto it = have.find(kv.first);
        return it != have.end() && it->second == kv.second;
      });
      if (match) sum += std::stoull(line.substr(close + 4));
    }
    return sum;
  }

 private:
  fs::path log_path_;
  std::unique_ptr<Process> process_;
  uint64_t peak_kib_ = 0;
  double shutdown_seconds_ = 0;
};

// A RESULT without the sink's per-signal breakdown (every test here sends traces only), for messages.
inline std::string brief(json result) {
  result.erase("signals");
  return result.dump();
}

// The lines of a file of item ids in hex (otlpd-loadgen send --acked-file, sink --ids-file).
inline std::vector<std::string> read_ids(const fs::path& path) {
  std::vector<std::string> ids;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) ids.push_back(line);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

// The ids of `wanted` that are not in `have` (both sorted).
inline std::vector<std::string> missing_ids(const std::vector<std::string>& wanted,
                                            const std::vector<std::string>& have) {
  std::vector<std::string> missing;
  std::set_difference(wanted.begin(), wanted.end(), have.begin(), have.end(), std::back_inserter(missing));
  return missing;
}

// A JSON count as an integer (RESULT fields; absent: 0).
inline uint64_t count(const json& j, const std::string& key) {
  return j.contains(key) ? j.at(key).get<uint64_t>() : 0;
}

}  // namespace fault

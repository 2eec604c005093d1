// SystemdNotifier: tells systemd how otlpd is doing over the sd_notify protocol — one datagram of
// "KEY=VALUE" lines to the unix socket named by $NOTIFY_SOCKET (a leading '@' names an abstract
// socket). Without $NOTIFY_SOCKET (not started by systemd with Type=notify) every call does nothing.
// Written here rather than linking libsystemd: the protocol is a sendto().
//
// StatusReporter: while otlpd runs, a thread of its own sends WATCHDOG=1 at half of
// $WATCHDOG_USEC (when systemd asks for it) and a STATUS= line with the items accepted per second
// and the sending queues' fill, read from the telemetry counters.
//
// Threads: notify() may be called from any thread. StatusReporter is started and stopped from the
// main thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace otlpd {

class Telemetry;

class SystemdNotifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID.
  static SystemdNotifier from_environment();

  bool enabled() const { return !socket_path_.empty(); }
  // Sends `message` ("READY=1", "STOPPING=1", "STATUS=..."); false when disabled or on error.
  bool notify(std::string_view message) const;
  // How often systemd expects WATCHDOG=1; zero when it does not.
  std::chrono::microseconds watchdog_interval() const { return watchdog_; }

 private:
  std::string socket_path_;
  std::chrono::microseconds watchdog_{0};
};

class StatusReporter {
 public:
  StatusReporter(const SystemdNotifier& notifier, const Telemetry& telemetry);
  ~StatusReporter();  // stops
  void start();
  void stop();

  // "accepting 1234 items/s; sending queues 5/2000 batches" from two readings `seconds` apart.
  static std::string status_line(const Telemetry& telemetry, uint64_t accepted_before, double seconds);
  // Items accepted by every receiver so far.
  static uint64_t accepted_items(const Telemetry& telemetry);

 private:
  void run();

  const SystemdNotifier& notifier_;
  const Telemetry& telemetry_;
  std::chrono::milliseconds period_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace otlpd

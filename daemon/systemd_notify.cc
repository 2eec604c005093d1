#include "daemon/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <pthread.h>

#include "pipeline/telemetry.h"

namespace otlpd {

namespace {
constexpr std::chrono::milliseconds kStatusPeriod{5000};
}  // namespace

SystemdNotifier SystemdNotifier::from_environment() {
  SystemdNotifier n;
  if (const char* path = std::getenv("NOTIFY_SOCKET"); path && (path[0] == '/' || path[0] == '@')) {
    n.socket_path_ = path;
  }
  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  // WATCHDOG_PID names the process the watchdog is for; a child that inherited it is not.
  const bool for_us = !pid || std::strtoll(pid, nullptr, 10) == static_cast<long long>(getpid());
  if (usec && for_us) n.watchdog_ = std::chrono::microseconds(std::strtoll(usec, nullptr, 10));
  if (n.watchdog_.count() < 0) n.watchdog_ = {};
  return n;
}

bool SystemdNotifier::notify(std::string_view message) const {
  if (!enabled()) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, socket_path_.data(), socket_path_.size());
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_path_.size());
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const ssize_t sent = ::sendto(fd, message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len);
  ::close(fd);
  return sent == static_cast<ssize_t>(message.size());
}

StatusReporter::StatusReporter(const SystemdNotifier& notifier, const Telemetry& telemetry)
    : notifier_(notifier), telemetry_(telemetry), period_(kStatusPeriod) {
  if (notifier.watchdog_interval().count() > 0) {
    auto half = std::chrono::duration_cast<std::chrono::milliseconds>(notifier.watchdog_interval() / 2);
    period_ = std::clamp(half, std::chrono::milliseconds(1), kStatusPeriod);
  }
}

StatusReporter::~StatusReporter() { stop(); }

void StatusReporter::start() {
  if (!notifier_.enabled() || thread_.joinable()) return;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "otlpd-notify");
    run();
  });
}

void StatusReporter::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t StatusReporter::accepted_items(const Telemetry& telemetry) {
  uint64_t total = 0;
  for (const auto& s : telemetry.snapshot()) {
    if (s.name == "otlpd_receiver_accepted_items") total += s.value;
  }
  return total;
}

std::string StatusReporter::status_line(const Telemetry& telemetry, uint64_t accepted_before, double seconds) {
  uint64_t accepted = 0, queued = 0, capacity = 0;
  for (const auto& s : telemetry.snapshot()) {
    if (s.name == "otlpd_receiver_accepted_items") accepted += s.value;
    if (s.name == "otlpd_exporter_queue_size") queued += s.value;
    if (s.name == "otlpd_exporter_queue_capacity") capacity += s.value;
  }
  const auto rate = seconds > 0 ? static_cast<uint64_t>(static_cast<double>(accepted - accepted_before) / seconds) : 0;
  return "accepting " + std::to_string(rate) + " items/s; sending queues " + std::to_string(queued) + "/" +
         std::to_string(capacity);
}

void StatusReporter::run() {
  auto last = std::chrono::steady_clock::now();
  uint64_t last_accepted = accepted_items(telemetry_);
  auto next_status = last + kStatusPeriod;
  std::unique_lock lock(mu_);
  while (!wake_.wait_for(lock, period_, [&] { return stopping_; })) {
    if (notifier_.watchdog_interval().count() > 0) notifier_.notify("WATCHDOG=1");
    const auto now = std::chrono::steady_clock::now();
    if (now < next_status) continue;
    const double seconds = std::chrono::duration<double>(now - last).count();
    notifier_.notify("STATUS=" + status_line(telemetry_, last_accepted, seconds));
    last = now;
    last_accepted = accepted_items(telemetry_);
    next_status = now + kStatusPeriod;
  }
}

}  // namespace otlpd

// The health_check extension: an HTTP endpoint answering whether otlpd is healthy, like the
// Collector's health_check extension (200 when healthy, 503 when not, a small JSON body).
//
// Three parts, each with one job:
//  - HealthState: the service's phase (starting, running, reloading, stopping). The main thread
//    sets it as the service goes through its life; the server reads it. Thread-safe.
//  - evaluate_health() and render_health(): pure functions deciding health from the phase, the
//    config and a Telemetry snapshot, and writing the JSON body.
//  - HealthServer: an AdminServer (see admin_server.h) answering GET and HEAD on config.path.
//
// Exporter failures come from two gauges every QueuedExporter keeps per exporter and signal
// (labels exporter=<id>, signal=<signal>): otlpd_exporter_consecutive_failures (failed send
// attempts since the last success) and otlpd_exporter_failing_since_timestamp_seconds (unix time
// of the first of them; 0 when not failing).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "config/service_config.h"
#include "daemon/admin_server.h"
#include "pipeline/component.h"
#include "pipeline/status.h"
#include "pipeline/telemetry.h"

namespace otlpd {

enum class HealthPhase { starting, running, reloading, stopping };

// Written by the main thread, read by the server's strand.
class HealthState {
 public:
  void set_phase(HealthPhase phase) { phase_.store(phase, std::memory_order_relaxed); }
  HealthPhase phase() const { return phase_.load(std::memory_order_relaxed); }

 private:
  std::atomic<HealthPhase> phase_{HealthPhase::starting};
};

struct HealthReport {
  bool healthy = false;
  // "starting", "running" (healthy), "reloading", "stopping", or "exporter failing".
  std::string status;
  // The exporters failing for too long, as "<exporter> (<signal>)", sorted.
  std::vector<std::string> failing_exporters;
};

// Unhealthy unless `phase` is running. When running and config.check_exporters: unhealthy while
// some exporter has failed at least exporter_failure_threshold times in a row and has been
// failing for longer than exporter_failure_interval at `now`.
HealthReport evaluate_health(HealthPhase phase, const HealthCheckConfig& config,
                             const std::vector<Telemetry::Sample>& samples, std::chrono::system_clock::time_point now);

// The JSON body, e.g. {"status":"running","healthy":true,"upSince":"2026-12-01T11:00:00Z",
// "uptime":"12.5s","failing_exporters":[]}: upSince in UTC to the second, uptime in seconds to
// the tenth (both rounded down).
std::string render_health(const HealthReport& report, std::chrono::system_clock::time_point up_since,
                          std::chrono::milliseconds uptime);

inline constexpr const char* kHealthContentType = "application/json";

// Threads and ownership: as AdminServer's. It keeps a copy of the config; the HealthState and the
// Telemetry are read from the server's strand and must outlive the threads running the
// io_context. start(), port(), url() and stop() are called from one control thread.
class HealthServer {
 public:
  // Listens at config.endpoint (port 0 picks a free port). `process_start` is what uptime counts
  // from. Destroying it stops it if the owner did not (while the io_context still runs).
  HealthServer(boost::asio::io_context& io, const HealthCheckConfig& config, const HealthState& state,
               const Telemetry& telemetry, Clock::time_point process_start = Clock::now());

  // Binds and listens; an error Status naming the endpoint when it fails (see AdminServer).
  Status start();
  // The bound port and "http://HOST:PORT" + config.path, valid after a successful start().
  uint16_t port() const;
  std::string url() const;
  // Closes the listener and every connection. Idempotent.
  void stop();

 private:
  const std::string path_;
  AdminServer server_;
};

}  // namespace otlpd

// Daemon: one run of otlpd, from start to stop with configuration reloads in between: the I/O
// threads, the pipelines (Graph), otlpd's own endpoints (self-metrics, health_check extensions)
// and what it tells systemd (READY, RELOADING, STOPPING, STATUS, WATCHDOG).
//
// Threads: every method is called from the main thread, the one waiting for signals. The Daemon
// owns everything it starts; stop() (or the destructor) stops it all.
#pragma once

#include <memory>
#include <vector>

#include "config/service_config.h"
#include "config/sources.h"
#include "daemon/health.h"
#include "daemon/systemd_notify.h"
#include "pipeline/component.h"
#include "pipeline/telemetry.h"

namespace otlpd {

class Graph;
class IoPool;
class MetricsServer;
struct BatchPools;
struct Host;

class Daemon {
 public:
  // `sources` is what a reload reads again; `process_start` is what uptime counts from.
  Daemon(config::Sources sources, const Registry& registry, Clock::time_point process_start);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Starts the health endpoints (answering "starting"), the pipelines, then self-metrics; tells
  // systemd READY=1. False, logged and undone, when any of it cannot start.
  bool start(std::shared_ptr<const ServiceConfig> config);

  // Reads the sources again and moves the running pipelines to the result (Graph::reload): an
  // invalid config or one that cannot start is logged with its errors and the running config
  // stays. Tells systemd RELOADING=1 and then READY=1. True when the new config runs.
  bool reload();

  // Drains and stops everything within the config's shutdown_timeout; logs the run's totals.
  // Tells systemd STOPPING=1. Idempotent.
  void stop();

  const ServiceConfig& config() const { return *config_; }
  const Telemetry& telemetry() const { return telemetry_; }

 private:
  // Starts the endpoints `next` asks for that differ from those running, stopping the ones they
  // replace; false (logged) when one cannot start (it is tried again at the next reload).
  bool start_endpoints(const ServiceConfig& next);
  void apply_log_level(const ServiceConfig& next);
  std::string running_status() const;

  const config::Sources sources_;
  const Registry& registry_;
  const Clock::time_point process_start_;
  std::shared_ptr<const ServiceConfig> config_;
  const SystemdNotifier notifier_;

  Telemetry telemetry_;
  std::unique_ptr<BatchPools> pools_;
  std::unique_ptr<IoPool> io_;
  std::unique_ptr<Host> host_;
  std::unique_ptr<Graph> graph_;
  HealthState health_;
  // What runs, which a reload compares the new config with.
  std::unique_ptr<MetricsServer> metrics_;
  std::string metrics_address_;
  struct HealthEndpoint {
    HealthCheckConfig config;
    std::unique_ptr<HealthServer> server;
  };
  std::vector<HealthEndpoint> health_servers_;
  std::unique_ptr<StatusReporter> status_reporter_;
  bool running_ = false;
};

}  // namespace otlpd

#include "daemon/daemon.h"

#include <algorithm>
#include <ctime>
#include <thread>

#include <spdlog/spdlog.h>

#include "daemon/io_pool.h"
#include "daemon/metrics_server.h"
#include "pipeline/buffer_pool.h"
#include "pipeline/graph.h"
#include "pipeline/host.h"

namespace otlpd {

namespace {

size_t io_threads(const ServiceConfig& config) {
  return config.worker_threads > 0 ? static_cast<size_t>(config.worker_threads)
                                   : std::max(1u, std::thread::hardware_concurrency());
}

// The health_check extensions that run: those listed in service.extensions.
std::vector<HealthCheckConfig> enabled_health_checks(const ServiceConfig& config) {
  std::vector<HealthCheckConfig> out;
  for (const auto& id : config.extensions) {
    auto it = config.health_checks.find(id);
    if (it != config.health_checks.end()) out.push_back(it->second);
  }
  return out;
}

// For RELOADING=1: systemd (253 and later) matches it with the reload it asked for by this.
std::string monotonic_usec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::to_string(static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000);
}

// The port of a "host:port" address.
std::string port_of(const std::string& address) {
  const size_t colon = address.rfind(':');
  return colon == std::string::npos ? "" : address.substr(colon + 1);
}

// Starts the server `make` returns, listening on `address`. When it cannot start while
// `in_the_way` (a server it replaces, listening on `old_address`) holds the same port, that one is
// stopped (and reset) first and the start tried again: a short gap for that endpoint. Null, and
// logged, when it cannot start.
template <typename Server, typename Make>
std::unique_ptr<Server> start_server(Make make, const std::string& address, std::unique_ptr<Server>& in_the_way,
                                     const std::string& old_address, const std::string& what,
                                     const std::string& config_key) {
  std::unique_ptr<Server> server = make();
  Status s = server->start();
  if (!s.is_ok() && in_the_way && port_of(address) != "0" && port_of(address) == port_of(old_address)) {
    in_the_way->stop();
    in_the_way.reset();
    server = make();
    s = server->start();
  }
  if (!s.is_ok()) {
    spdlog::critical("cannot serve {} on {}{}: {}", what, address, config_key, s.message());
    return nullptr;
  }
  spdlog::info("{} on {}", what, server->url());
  return server;
}

// What the run carried, so an operator can see at a glance whether anything was refused or lost.
void log_totals(const Telemetry& telemetry) {
  for (const auto& sample : telemetry.snapshot()) {
    if (sample.value == 0) continue;
    std::string labels;
    for (const auto& [k, v] : sample.labels) labels += (labels.empty() ? "" : ",") + k + "=" + v;
    spdlog::info("total {}{{{}}} = {}", sample.name, labels, sample.value);
  }
}

}  // namespace

Daemon::Daemon(config::Sources sources, const Registry& registry, Clock::time_point process_start)
    : sources_(std::move(sources)),
      registry_(registry),
      process_start_(process_start),
      notifier_(SystemdNotifier::from_environment()) {}

Daemon::~Daemon() { stop(); }

std::string Daemon::running_status() const {
  return "running " + std::to_string(config_->pipelines.size()) + " pipeline(s)";
}

bool Daemon::start(std::shared_ptr<const ServiceConfig> config) {
  config_ = std::move(config);
  const size_t threads = io_threads(*config_);
  pools_ = std::make_unique<BatchPools>(telemetry_);
  io_ = std::make_unique<IoPool>(threads);
  host_ = std::make_unique<Host>(Host{io_->io(), telemetry_, pools_.get(), threads});
  running_ = true;
  // The health endpoints first, so a probe sees "starting" (503) rather than nothing.
  health_.set_phase(HealthPhase::starting);
  if (!start_endpoints(*config_)) {
    stop();
    return false;
  }
  Status status;
  graph_ = Graph::build(config_, registry_, *host_, &status);
  if (!graph_) {
    spdlog::critical("cannot build pipelines: {}", status.to_string());
    stop();
    return false;
  }
  status = graph_->start();
  if (!status.is_ok()) {
    spdlog::critical("cannot start: {}", status.message());
    graph_.reset();
    stop();
    return false;
  }
  health_.set_phase(HealthPhase::running);
  spdlog::info("otlpd {} running {} pipeline(s) on {} I/O thread(s)", OTLPD_VERSION, config_->pipelines.size(), threads);
  notifier_.notify("READY=1\nSTATUS=" + running_status());
  status_reporter_ = std::make_unique<StatusReporter>(notifier_, telemetry_);  // pings go on through the drain
  status_reporter_->start();
  return true;
}

bool Daemon::start_endpoints(const ServiceConfig& next) {
  bool ok = true;
  // Self-metrics: a taken port is an error, as with the Collector.
  if (next.metrics_address != metrics_address_ || (!metrics_ && !next.metrics_address.empty())) {
    std::unique_ptr<MetricsServer> fresh;
    if (!next.metrics_address.empty()) {
      fresh = start_server<MetricsServer>(
          [&] { return std::make_unique<MetricsServer>(io_->io(), next.metrics_address, telemetry_, process_start_); },
          next.metrics_address, metrics_, metrics_address_, "self-metrics",
          " (service.telemetry.metrics.address)");
      ok = fresh != nullptr;
    }
    if (ok) {
      if (metrics_) metrics_->stop();
      metrics_ = std::move(fresh);
      metrics_address_ = next.metrics_address;
    }
  }

  // Health checks: those whose config is unchanged keep running; new ones start before the ones
  // they replace stop, unless one of those holds the port.
  std::vector<HealthEndpoint> previous = std::move(health_servers_);
  health_servers_.clear();
  for (const auto& check : enabled_health_checks(next)) {
    auto same = std::find_if(previous.begin(), previous.end(),
                             [&](const HealthEndpoint& e) { return e.server && e.config == check; });
    if (same != previous.end()) {
      health_servers_.push_back(std::move(*same));
      continue;
    }
    auto same_port = std::find_if(previous.begin(), previous.end(), [&](const HealthEndpoint& e) {
      return e.server && port_of(e.config.endpoint) == port_of(check.endpoint);
    });
    std::unique_ptr<HealthServer> none;
    std::unique_ptr<HealthServer>& in_the_way = same_port != previous.end() ? same_port->server : none;
    auto server = start_server<HealthServer>(
        [&] { return std::make_unique<HealthServer>(io_->io(), check, health_, telemetry_, process_start_); },
        check.endpoint, in_the_way, same_port != previous.end() ? same_port->config.endpoint : "", "health check",
        "");
    if (server) {
      health_servers_.push_back({check, std::move(server)});
    } else {
      ok = false;
    }
  }
  for (auto& e : previous) {
    if (e.server) e.server->stop();
  }
  return ok;
}

void Daemon::apply_log_level(const ServiceConfig& next) {
  spdlog::set_level(spdlog::level::from_str(next.log_level));
}

bool Daemon::reload() {
  if (!running_) return false;
  notifier_.notify("RELOADING=1\nMONOTONIC_USEC=" + monotonic_usec() + "\nSTATUS=reloading the configuration");
  health_.set_phase(HealthPhase::reloading);
  std::string names;
  for (const auto& f : sources_.files) names += (names.empty() ? "" : ", ") + f;
  spdlog::info("reloading the configuration from {}", names);

  bool reloaded = false;
  std::string note;  // what went wrong, for systemd's status line
  auto next = std::make_shared<ServiceConfig>();
  config::Errors errors;
  if (!load_service_config(sources_, registry_, next.get(), &errors)) {
    note = " (the last reload failed: the configuration is invalid)";
    spdlog::error("the new configuration has {} error(s); the running one stays:", errors.size());
    for (const auto& e : errors.list()) spdlog::error("  {}{}{}", e.path, e.path.empty() ? "" : ": ", e.message);
  } else {
    if (next->worker_threads != config_->worker_threads) {
      spdlog::warn("service.runtime.worker_threads changed; it takes effect when otlpd restarts");
    }
    Graph::Changes changes;
    Status s = graph_->reload(next, Clock::now() + next->shutdown_timeout, &changes);
    if (!s.is_ok()) {
      note = " (the last reload failed: the configuration cannot start)";
      spdlog::error("the new configuration cannot start; the running one stays: {}", s.message());
    } else {
      for (const auto& name : changes.started) spdlog::info("reload: started {}", name);
      for (const auto& name : changes.stopped) spdlog::info("reload: draining and stopping {}", name);
      spdlog::info("reload: kept {} component(s) running unchanged, started {}, stopping {}", changes.kept.size(),
                   changes.started.size(), changes.stopped.size());
      apply_log_level(*next);
      // A failure is logged; the pipelines run the new config regardless.
      if (!start_endpoints(*next)) note = " (an endpoint of the new configuration cannot start)";
      config_ = std::move(next);
      reloaded = true;
    }
  }
  health_.set_phase(HealthPhase::running);
  notifier_.notify("READY=1\nSTATUS=" + running_status() + note);
  return reloaded;
}

void Daemon::stop() {
  if (!running_) return;
  running_ = false;
  health_.set_phase(HealthPhase::stopping);
  notifier_.notify("STOPPING=1\nSTATUS=draining");
  if (graph_) {
    spdlog::info("draining (up to {} ms)", config_->shutdown_timeout.count());
    graph_->shutdown(Clock::now() + config_->shutdown_timeout);
  }
  // Served through the drain so it can be watched; stopped while the I/O threads still run,
  // since stop() waits for them.
  if (metrics_) metrics_->stop();
  for (auto& e : health_servers_) e.server->stop();
  if (status_reporter_) status_reporter_->stop();
  io_->stop();
  if (graph_) {
    log_totals(telemetry_);
    spdlog::info("stopped");
  }
  graph_.reset();
}

}  // namespace otlpd

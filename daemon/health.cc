#include "daemon/health.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

namespace otlpd {

namespace {

using SystemClock = std::chrono::system_clock;

// Kept by QueuedExporter (exporters/common/queued_exporter.h).
constexpr std::string_view kConsecutiveFailures = "otlpd_exporter_consecutive_failures";
constexpr std::string_view kFailingSince = "otlpd_exporter_failing_since_timestamp_seconds";

const char* phase_status(HealthPhase phase) {
  switch (phase) {
    case HealthPhase::starting: return "starting";
    case HealthPhase::running: return "running";
    case HealthPhase::reloading: return "reloading";
    case HealthPhase::stopping: return "stopping";
  }
  return "unknown";
}

// "otlp/backend (traces)".
std::string exporter_name(const Telemetry::Labels& labels) {
  auto exporter = labels.find("exporter");
  auto signal = labels.find("signal");
  std::string name = exporter != labels.end() ? exporter->second : "";
  if (signal != labels.end()) name += " (" + signal->second + ")";
  return name;
}

// "2026-12-01T11:00:00Z".
std::string utc_text(SystemClock::time_point t) {
  const std::time_t seconds = SystemClock::to_time_t(std::chrono::floor<std::chrono::seconds>(t));
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[32];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

// "12.5s".
std::string uptime_text(std::chrono::milliseconds uptime) {
  const int64_t ms = std::max<int64_t>(uptime.count(), 0);
  return std::to_string(ms / 1000) + "." + std::to_string(ms % 1000 / 100) + "s";
}

AdminRoutes health_routes(const HealthCheckConfig& config, const HealthState& state, const Telemetry& telemetry,
                          Clock::time_point process_start) {
  // Wall-clock time of the start, fixed now so every answer names the same instant.
  const auto up_since =
      SystemClock::now() - std::chrono::duration_cast<SystemClock::duration>(Clock::now() - process_start);
  AdminRoutes routes;
  routes[config.path] = [config, &state, &telemetry, process_start, up_since] {
    HealthReport report = evaluate_health(state.phase(), config, telemetry.snapshot(), SystemClock::now());
    const auto uptime = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - process_start);
    // no-store: a cached answer would hide a change of health from whoever polls through a proxy.
    return AdminReply{report.healthy ? 200u : 503u, kHealthContentType, render_health(report, up_since, uptime),
                      {{"Cache-Control", "no-store"}}};
  };
  return routes;
}

}  // namespace

HealthReport evaluate_health(HealthPhase phase, const HealthCheckConfig& config,
                             const std::vector<Telemetry::Sample>& samples, SystemClock::time_point now) {
  if (phase != HealthPhase::running) return {false, phase_status(phase), {}};
  HealthReport report{true, phase_status(phase), {}};
  if (!config.check_exporters) return report;

  struct Failures {
    uint64_t count = 0;
    uint64_t since = 0;  // unix seconds; 0: not failing
  };
  std::map<Telemetry::Labels, Failures> exporters;  // the two gauges of one exporter share labels
  for (const auto& s : samples) {
    if (s.name == kConsecutiveFailures) exporters[s.labels].count = s.value;
    if (s.name == kFailingSince) exporters[s.labels].since = s.value;
  }
  const auto threshold = static_cast<uint64_t>(std::max<int64_t>(config.exporter_failure_threshold, 0));
  for (const auto& [labels, failures] : exporters) {
    if (failures.since == 0 || failures.count < threshold) continue;
    const SystemClock::time_point since{std::chrono::seconds(failures.since)};
    if (now - since > config.exporter_failure_interval) report.failing_exporters.push_back(exporter_name(labels));
  }
  if (!report.failing_exporters.empty()) {
    std::sort(report.failing_exporters.begin(), report.failing_exporters.end());
    report.healthy = false;
    report.status = "exporter failing";
  }
  return report;
}

std::string render_health(const HealthReport& report, SystemClock::time_point up_since,
                          std::chrono::milliseconds uptime) {
  nlohmann::ordered_json body;  // ordered: the keys in the order documented
  body["status"] = report.status;
  body["healthy"] = report.healthy;
  body["upSince"] = utc_text(up_since);
  body["uptime"] = uptime_text(uptime);
  body["failing_exporters"] = report.failing_exporters;
  // Invalid UTF-8 in an exporter id becomes U+FFFD instead of throwing.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

HealthServer::HealthServer(boost::asio::io_context& io, const HealthCheckConfig& config, const HealthState& state,
                           const Telemetry& telemetry, Clock::time_point process_start)
    : path_(config.path),
      server_(io, config.endpoint, health_routes(config, state, telemetry, process_start),
              "not found; otlpd answers health checks at " + config.path) {}

Status HealthServer::start() { return server_.start(); }

uint16_t HealthServer::port() const { return server_.port(); }

std::string HealthServer::url() const { return server_.url(path_); }

void HealthServer::stop() { server_.stop(); }

}  // namespace otlpd

// ServiceConfig: a whole otlpd config file, parsed and validated against the component registry.
//
// Layout is the OpenTelemetry Collector's: top-level `receivers`, `processors`, `exporters`,
// `extensions`, `service` (with `pipelines`, `telemetry`, `runtime`). Loading reports every error
// at once, each with its YAML path. Used once at start-up from the main thread.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/errors.h"
#include "config/sources.h"
#include "extensions/bearertokenauth/bearer_token.h"
#include "pipeline/registry.h"
#include "pipeline/storage.h"

namespace otlpd {

struct ComponentEntry {
  ComponentId id;
  ComponentConfigPtr config;
  // The component's YAML in canonical form (env expanded): a reload keeps a running component
  // whose fingerprint did not change.
  std::string fingerprint;
  // The extensions it uses (a file_storage for its queue, a bearertokenauth): a change in one of
  // them restarts it on reload too.
  std::vector<std::string> extensions;
};

// An `extensions: health_check[/name]` entry: an HTTP endpoint answering whether otlpd is healthy.
struct HealthCheckConfig {
  std::string endpoint = "127.0.0.1:13133";  // host:port; port 0 picks a free one (logged)
  std::string path = "/";
  // check_collector_pipeline: unhealthy while an exporter's sends have failed, with no success in
  // between, for longer than `interval` and at least `exporter_failure_threshold` times.
  bool check_exporters = true;
  std::chrono::milliseconds exporter_failure_interval{300000};
  int64_t exporter_failure_threshold = 5;

  bool operator==(const HealthCheckConfig&) const = default;
};

struct PipelineConfig {
  std::string name;  // "traces" or "traces/backend"
  Signal signal = Signal::traces;
  std::vector<ComponentId> receivers;
  std::vector<ComponentId> processors;  // in order
  std::vector<ComponentId> exporters;
};

struct ServiceConfig {
  // Keyed by the id as written ("otlp/backend").
  std::map<std::string, ComponentEntry> receivers;
  std::map<std::string, ComponentEntry> processors;
  std::map<std::string, ComponentEntry> exporters;
  std::vector<PipelineConfig> pipelines;
  // Keyed by id as written ("file_storage", "file_storage/queues").
  FileStorages file_storages;
  // Keyed by id as written ("health_check"); only those listed in service.extensions run.
  std::map<std::string, HealthCheckConfig> health_checks;
  // Keyed by id as written ("bearertokenauth"); components name them in `auth.authenticator`.
  BearerTokens bearer_tokens;
  // Every extension's YAML in canonical form, by id.
  std::map<std::string, std::string> extension_fingerprints;
  // service.extensions: the extensions that run, in order.
  std::vector<std::string> extensions;
  std::string log_level = "info";  // service.telemetry.logs.level: debug, info, warn, error
  // service.telemetry.metrics: where Prometheus text of otlpd's own metrics is served; empty with
  // `level: none` (no endpoint). "host:port"; port 0 picks a free one (logged).
  std::string metrics_address = "127.0.0.1:8888";
  // service.shutdown_timeout: how long SIGTERM/SIGINT may take to drain batches and queues.
  std::chrono::milliseconds shutdown_timeout{30000};
  int64_t worker_threads = 0;      // service.runtime.worker_threads; 0 = number of cores
};

// Parses YAML text. Returns false (and fills `errors`) when anything is wrong.
bool parse_service_config(std::string_view yaml, const Registry& registry, ServiceConfig* out,
                          config::Errors* errors);
// The same from a YAML tree (merged sources); env references in it are expanded in place.
bool parse_service_config_tree(YAML::Node root, const Registry& registry, ServiceConfig* out,
                               config::Errors* errors);
// Reads, merges (see sources.h) and parses; an unreadable file is an error too.
bool load_service_config(const config::Sources& sources, const Registry& registry, ServiceConfig* out,
                         config::Errors* errors);

}  // namespace otlpd

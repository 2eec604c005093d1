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
#include "pipeline/registry.h"
#include "pipeline/storage.h"

namespace otlpd {

struct ComponentEntry {
  ComponentId id;
  ComponentConfigPtr config;
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

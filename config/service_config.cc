#include "config/service_config.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "config/env.h"
#include "config/node.h"
#include "config/sources.h"

namespace otlpd {

namespace {

// Parses one `receivers:`/`processors:`/`exporters:` section.
template <typename FactoryT, typename Lookup>
void parse_components(config::Node section, Lookup lookup, const char* kind,
                      std::map<std::string, ComponentEntry>* out) {
  for (auto& [key, node] : section.entries()) {
    ComponentId id;
    if (!ComponentId::parse(key, &id)) {
      node.error_here(std::string("invalid ") + kind + " id (expected type or type/name)");
      continue;
    }
    const FactoryT* factory = lookup(id.type);
    if (!factory) {
      node.error_here(std::string("unknown ") + kind + " type \"" + id.type + "\"");
      continue;
    }
    std::string fingerprint = node.fingerprint();
    ComponentConfigPtr config = factory->parse(node);
    out->emplace(key, ComponentEntry{id, std::move(config), std::move(fingerprint), {}});
  }
}

// Reads a pipeline's list of component ids, checking each is defined.
void read_ids(config::Node& pipeline, const char* key, const std::map<std::string, ComponentEntry>& defined,
              const char* kind, std::vector<ComponentId>* out) {
  std::vector<std::string> names;
  pipeline.read(key, names);
  std::set<std::string> seen;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string item_path = std::string(key) + "[" + std::to_string(i) + "]";
    auto it = defined.find(names[i]);
    if (it == defined.end()) {
      pipeline.error(item_path, std::string("references ") + kind + " \"" + names[i] + "\" which is not configured");
      continue;
    }
    if (!seen.insert(names[i]).second) {
      pipeline.error(item_path, std::string(kind) + " \"" + names[i] + "\" is listed twice");
      continue;
    }
    out->push_back(it->second.id);
  }
}

void parse_pipelines(config::Node section, ServiceConfig* out) {
  auto pipelines = section.is_null() ? decltype(section.entries()){} : section.entries();
  if (pipelines.empty()) {
    section.error_here("at least one pipeline is required");
    return;
  }
  for (auto& [name, node] : pipelines) {
    ComponentId id;
    auto signal = ComponentId::parse(name, &id) ? otlp::parse_signal(id.type) : std::nullopt;
    if (!signal) {
      node.error_here("pipeline name must be traces, metrics or logs, optionally followed by /name");
      continue;
    }
    PipelineConfig p;
    p.name = name;
    p.signal = *signal;
    read_ids(node, "receivers", out->receivers, "receiver", &p.receivers);
    read_ids(node, "processors", out->processors, "processor", &p.processors);
    read_ids(node, "exporters", out->exporters, "exporter", &p.exporters);
    if (p.receivers.empty()) node.error("receivers", "at least one receiver is required");
    if (p.exporters.empty()) node.error("exporters", "at least one exporter is required");
    node.finish();
    out->pipelines.push_back(std::move(p));
  }
}

void parse_health_check(config::Node& node, HealthCheckConfig* out) {
  node.read("endpoint", out->endpoint);
  if (out->endpoint.rfind(':') == std::string::npos) node.error("endpoint", "expected host:port");
  node.read("path", out->path);
  if (out->path.empty() || out->path[0] != '/') node.error("path", "must start with /");
  config::Node pipeline = node.child("check_collector_pipeline");
  pipeline.read("enabled", out->check_exporters);
  pipeline.read_duration("interval", out->exporter_failure_interval);
  if (out->exporter_failure_interval.count() <= 0) pipeline.error("interval", "must be positive");
  pipeline.read("exporter_failure_threshold", out->exporter_failure_threshold);
  pipeline.check_range("exporter_failure_threshold", out->exporter_failure_threshold, 1, 1000000);
  pipeline.finish();
  node.finish();
}

void parse_bearer_token(config::Node& node, BearerTokenSettings* out) {
  node.read("header", out->header);
  node.read("scheme", out->scheme);
  node.read("token", out->token);
  node.read("filename", out->filename);
  if (out->header.empty()) node.error("header", "must not be empty");
  // Half-configured authentication must not quietly let everything in.
  if (out->token.empty() && out->filename.empty()) node.error_here("token or filename is required");
  if (!out->token.empty() && !out->filename.empty()) node.error_here("set only one of token and filename");
  node.finish();
}

void parse_extensions(config::Node section, ServiceConfig* out) {
  for (auto& [key, node] : section.entries()) {
    ComponentId id;
    const bool parsed = ComponentId::parse(key, &id);
    out->extension_fingerprints[key] = node.fingerprint();
    if (parsed && id.type == "health_check") {
      parse_health_check(node, &out->health_checks[key]);
      continue;
    }
    if (parsed && id.type == "bearertokenauth") {
      parse_bearer_token(node, &out->bearer_tokens[key]);
      continue;
    }
    if (!parsed || id.type != "file_storage") {
      node.error_here("unknown extension type (otlpd has: bearertokenauth, file_storage, health_check)");
      continue;
    }
    FileStorageSettings storage;
    node.read("directory", storage.directory);
    node.read("create_directory", storage.create_directory);
    node.read("fsync", storage.fsync);
    node.read_duration("fsync_interval", storage.fsync_interval);
    if (storage.directory.empty()) node.error("directory", "must not be empty");
    node.finish();
    out->file_storages.emplace(key, std::move(storage));
  }
}

// An exporter's `sending_queue.storage` is either a file_storage extension id or a directory; an
// id must name a configured extension. (The exporter factories read the value; only the whole
// config knows which extensions exist.) Records on each exporter's entry which one it names.
void check_storage_references(const YAML::Node& exporters, ServiceConfig& config, config::Errors* errors) {
  if (!exporters || !exporters.IsMap()) return;
  for (const auto& entry : exporters) {
    const YAML::Node& exporter = entry.second;
    if (!exporter.IsMap() || !exporter["sending_queue"] || !exporter["sending_queue"].IsMap()) continue;
    const YAML::Node storage = exporter["sending_queue"]["storage"];
    if (!storage || !storage.IsScalar()) continue;
    if (!is_storage_extension_id(storage.Scalar())) continue;
    auto entry_it = config.exporters.find(entry.first.as<std::string>());
    if (entry_it != config.exporters.end()) entry_it->second.extensions.push_back(storage.Scalar());
    if (!config.file_storages.count(storage.Scalar())) {
      errors->add("exporters." + entry.first.as<std::string>() + ".sending_queue.storage",
                  "extension \"" + storage.Scalar() + "\" is not configured under extensions");
    }
  }
}

// `auth: {authenticator: <id>}` at `path` must name a bearertokenauth extension that runs (is
// listed in service.extensions): authentication that is only half there must not quietly let
// everything in. Records it on `entry`.
void check_authenticator(const YAML::Node& auth, const std::string& path, ServiceConfig& config, ComponentEntry& entry,
                         config::Errors* errors) {
  if (!auth || !auth.IsMap() || !auth["authenticator"] || !auth["authenticator"].IsScalar()) return;
  const std::string id = auth["authenticator"].Scalar();
  if (!config.bearer_tokens.count(id)) {
    errors->add(path + ".auth.authenticator", "extension \"" + id + "\" is not a configured bearertokenauth extension");
  } else if (std::find(config.extensions.begin(), config.extensions.end(), id) == config.extensions.end()) {
    errors->add(path + ".auth.authenticator", "extension \"" + id + "\" is not listed in service.extensions");
  } else {
    entry.extensions.push_back(id);
  }
}

void check_authenticators(const YAML::Node& root, ServiceConfig& config, config::Errors* errors) {
  const YAML::Node receivers = root["receivers"];
  if (receivers && receivers.IsMap()) {
    for (const auto& r : receivers) {
      const std::string id = r.first.as<std::string>();
      auto entry = config.receivers.find(id);
      const YAML::Node protocols = r.second.IsMap() ? r.second["protocols"] : YAML::Node();
      if (entry == config.receivers.end() || !protocols || !protocols.IsMap()) continue;
      for (const auto& p : protocols) {
        if (!p.second.IsMap()) continue;
        check_authenticator(p.second["auth"], "receivers." + id + ".protocols." + p.first.as<std::string>(), config,
                            entry->second, errors);
      }
    }
  }
  const YAML::Node exporters = root["exporters"];
  if (exporters && exporters.IsMap()) {
    for (const auto& e : exporters) {
      const std::string id = e.first.as<std::string>();
      auto entry = config.exporters.find(id);
      if (entry == config.exporters.end() || !e.second.IsMap()) continue;
      check_authenticator(e.second["auth"], "exporters." + id, config, entry->second, errors);
    }
  }
}

void parse_service(config::Node service, ServiceConfig* out) {
  if (service.is_null()) {
    service.error_here("required");
    return;
  }
  std::vector<std::string> extensions;
  service.read("extensions", extensions);
  for (size_t i = 0; i < extensions.size(); ++i) {
    if (!out->file_storages.count(extensions[i]) && !out->health_checks.count(extensions[i]) &&
        !out->bearer_tokens.count(extensions[i])) {
      service.error("extensions[" + std::to_string(i) + "]", "extension \"" + extensions[i] + "\" is not configured");
    }
  }
  out->extensions = extensions;
  service.read_duration("shutdown_timeout", out->shutdown_timeout);
  if (out->shutdown_timeout.count() <= 0) service.error("shutdown_timeout", "must be positive");

  config::Node telemetry = service.child("telemetry");
  config::Node logs = telemetry.child("logs");
  logs.read_enum("level", out->log_level,
                 {{"debug", std::string("debug")},
                  {"info", std::string("info")},
                  {"warn", std::string("warn")},
                  {"error", std::string("error")}});
  logs.finish();
  config::Node metrics = telemetry.child("metrics");
  bool metrics_on = true;
  metrics.read_enum("level", metrics_on, {{"none", false}, {"basic", true}, {"normal", true}, {"detailed", true}});
  metrics.read("address", out->metrics_address);
  if (!metrics_on) {
    out->metrics_address.clear();
  } else if (out->metrics_address.rfind(':') == std::string::npos) {
    metrics.error("address", "expected host:port");
  }
  metrics.finish();
  telemetry.finish();

  config::Node runtime = service.child("runtime");
  runtime.read("worker_threads", out->worker_threads);
  runtime.check_range("worker_threads", out->worker_threads, 0, 256);
  runtime.finish();

  parse_pipelines(service.child("pipelines"), out);
  service.finish();
}

}  // namespace

bool parse_service_config(std::string_view yaml, const Registry& registry, ServiceConfig* out,
                          config::Errors* errors) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    errors->add("", std::string("invalid YAML: ") + e.what());
    return false;
  }
  return parse_service_config_tree(root, registry, out, errors);
}

bool parse_service_config_tree(YAML::Node root, const Registry& registry, ServiceConfig* out,
                               config::Errors* errors) {
  if (!root || root.IsNull()) {
    errors->add("", "the config is empty");
    return false;
  }
  if (!config::check_shape(root, "", errors)) return false;
  config::expand_env_tree(root, "", *errors);
  config::Node top(root, "", errors);
  if (!errors->empty()) return false;

  parse_components<ReceiverFactory>(
      top.child("receivers"), [&](const std::string& t) { return registry.receiver(t); }, "receiver", &out->receivers);
  parse_components<ProcessorFactory>(
      top.child("processors"), [&](const std::string& t) { return registry.processor(t); }, "processor",
      &out->processors);
  parse_components<ExporterFactory>(
      top.child("exporters"), [&](const std::string& t) { return registry.exporter(t); }, "exporter", &out->exporters);
  parse_extensions(top.child("extensions"), out);
  parse_service(top.child("service"), out);
  check_storage_references(root["exporters"], *out, errors);
  check_authenticators(root, *out, errors);
  top.finish();
  return errors->empty();
}

bool load_service_config(const config::Sources& sources, const Registry& registry, ServiceConfig* out,
                         config::Errors* errors) {
  YAML::Node root;
  if (!config::load_sources(sources, &root, errors)) return false;
  return parse_service_config_tree(root, registry, out, errors);
}

}  // namespace otlpd

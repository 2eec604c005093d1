#include "config/service_config.h"

#include <fstream>
#include <set>
#include <sstream>

#include "config/env.h"
#include "config/node.h"

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
    ComponentConfigPtr config = factory->parse(node);
    out->emplace(key, ComponentEntry{id, std::move(config)});
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
  if (section.is_null()) {
    section.error_here("at least one pipeline is required");
    return;
  }
  for (auto& [name, node] : section.entries()) {
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

void parse_service(config::Node service, ServiceConfig* out) {
  if (service.is_null()) {
    service.error_here("required");
    return;
  }
  std::vector<std::string> extensions;
  service.read("extensions", extensions);
  for (const auto& e : extensions) service.error("extensions", "extension \"" + e + "\" is not configured");

  config::Node telemetry = service.child("telemetry");
  config::Node logs = telemetry.child("logs");
  logs.read_enum("level", out->log_level,
                 {{"debug", std::string("debug")},
                  {"info", std::string("info")},
                  {"warn", std::string("warn")},
                  {"error", std::string("error")}});
  logs.finish();
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
  if (!root || root.IsNull()) {
    errors->add("", "the config is empty");
    return false;
  }
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
  // No extension types exist yet: any configured one is reported rather than ignored.
  for (auto& [key, node] : top.child("extensions").entries()) node.error_here("unknown extension type");
  parse_service(top.child("service"), out);
  top.finish();
  return errors->empty();
}

bool load_service_config(const std::string& path, const Registry& registry, ServiceConfig* out,
                         config::Errors* errors) {
  std::ifstream in(path);
  if (!in) {
    errors->add("", "cannot read config file " + path);
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  return parse_service_config(text.str(), registry, out, errors);
}

}  // namespace otlpd

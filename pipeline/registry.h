// Component factories and the registry that finds them by kind and type name.
//
// A factory parses its component's config (reporting every error with its YAML path) and creates
// instances. The registry is filled once at start-up by register_builtins() (no static
// registration) and is read-only afterwards, so lookups need no lock.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/node.h"
#include "pipeline/component.h"
#include "pipeline/consumer.h"
#include "pipeline/host.h"
#include "pipeline/telemetry.h"

namespace otlpd {

// Where a receiver delivers each signal; null for a signal no pipeline takes from it.
struct ReceiverConsumers {
  ConsumerPtr traces, metrics, logs;

  Consumer* get(Signal s) const {
    switch (s) {
      case Signal::traces: return traces.get();
      case Signal::metrics: return metrics.get();
      case Signal::logs: return logs.get();
    }
    return nullptr;
  }
};

class Receiver : public Component {};
using ReceiverPtr = std::unique_ptr<Receiver>;

// A processor consumes what its pipeline gives it and passes results to `next`.
class Processor : public Consumer, public Component {};

// The telemetry labels of a processor: its id, signal and pipeline.
inline Telemetry::Labels processor_labels(const ComponentId& id, Signal signal, const Host& host) {
  Telemetry::Labels labels{{"processor", id.str()}, {"signal", std::string(otlp::signal_name(signal))}};
  if (!host.pipeline.empty()) labels["pipeline"] = host.pipeline;
  return labels;
}
using ProcessorPtr = std::shared_ptr<Processor>;

// An exporter delivers batches out of otlpd. consume() only enqueues; delivery is asynchronous.
class Exporter : public Consumer, public Component {
 public:
  // Where its persistent queue lives; empty when it keeps its queue in memory. Two instances
  // (an old config's and a new one's) cannot share it.
  virtual std::string queue_directory() const { return {}; }
};
using ExporterPtr = std::shared_ptr<Exporter>;

class Factory {
 public:
  virtual ~Factory() = default;
  virtual std::string_view type() const = 0;
  // One line for `otlpd components`.
  virtual std::string_view description() const { return ""; }
  // Reads `node` (null when written as `type:` alone) into a config with defaults, reporting
  // errors into node.errors() and calling node.finish() for unknown keys.
  virtual ComponentConfigPtr parse(config::Node& node) const = 0;
};

class ReceiverFactory : public Factory {
 public:
  virtual ReceiverPtr create(const ComponentId& id, const ComponentConfig& config, ReceiverConsumers next,
                             Host& host) const = 0;
};

class ProcessorFactory : public Factory {
 public:
  virtual ProcessorPtr create(const ComponentId& id, const ComponentConfig& config, Signal signal,
                              ConsumerPtr next, Host& host) const = 0;
};

class ExporterFactory : public Factory {
 public:
  virtual ExporterPtr create(const ComponentId& id, const ComponentConfig& config, Signal signal,
                             Host& host) const = 0;
};

class Registry {
 public:
  void add(std::unique_ptr<ReceiverFactory> f) { receivers_[std::string(f->type())] = std::move(f); }
  void add(std::unique_ptr<ProcessorFactory> f) { processors_[std::string(f->type())] = std::move(f); }
  void add(std::unique_ptr<ExporterFactory> f) { exporters_[std::string(f->type())] = std::move(f); }

  // Every registered type of a kind, by name.
  std::vector<const Factory*> receivers() const { return all(receivers_); }
  std::vector<const Factory*> processors() const { return all(processors_); }
  std::vector<const Factory*> exporters() const { return all(exporters_); }

  const ReceiverFactory* receiver(std::string_view type) const { return find(receivers_, type); }
  const ProcessorFactory* processor(std::string_view type) const { return find(processors_, type); }
  const ExporterFactory* exporter(std::string_view type) const { return find(exporters_, type); }

 private:
  template <typename F>
  static std::vector<const Factory*> all(const std::map<std::string, std::unique_ptr<F>, std::less<>>& m) {
    std::vector<const Factory*> out;
    for (const auto& [name, factory] : m) out.push_back(factory.get());
    return out;
  }
  template <typename F>
  static const F* find(const std::map<std::string, std::unique_ptr<F>, std::less<>>& m, std::string_view type) {
    auto it = m.find(type);
    return it == m.end() ? nullptr : it->second.get();
  }

  std::map<std::string, std::unique_ptr<ReceiverFactory>, std::less<>> receivers_;
  std::map<std::string, std::unique_ptr<ProcessorFactory>, std::less<>> processors_;
  std::map<std::string, std::unique_ptr<ExporterFactory>, std::less<>> exporters_;
};

}  // namespace otlpd

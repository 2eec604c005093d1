#include "pipeline/graph.h"

#include <map>

#include <spdlog/spdlog.h>

#include "config/service_config.h"
#include "pipeline/fanout.h"

namespace otlpd {

namespace {
ConsumerPtr fan_out_or_single(std::vector<FanOut::Target> targets) {
  if (targets.size() == 1) return targets[0].consumer;
  return std::make_shared<FanOut>(std::move(targets));
}
}  // namespace

std::unique_ptr<Graph> Graph::build(const ServiceConfig& config, const Registry& registry, Host& host, Status* error) {
  auto graph = std::unique_ptr<Graph>(new Graph());
  std::map<std::pair<std::string, Signal>, ExporterPtr> exporters;
  // Per receiver id and signal: the first consumer of each pipeline that takes from it.
  std::map<std::string, std::map<Signal, std::vector<FanOut::Target>>> receiver_targets;

  for (const auto& pipeline : config.pipelines) {
    const std::string signal_name(otlp::signal_name(pipeline.signal));
    std::vector<FanOut::Target> exporter_targets;
    for (const auto& id : pipeline.exporters) {
      auto key = std::make_pair(id.str(), pipeline.signal);
      auto it = exporters.find(key);
      if (it == exporters.end()) {
        const auto& entry = config.exporters.at(id.str());
        ExporterPtr e = registry.exporter(id.type)->create(id, *entry.config, pipeline.signal, host);
        if (!e) {
          *error = Status::invalid_argument("exporter " + id.str() + " does not support " + signal_name);
          return nullptr;
        }
        it = exporters.emplace(key, e).first;
        graph->exporters_.push_back({"exporter " + id.str() + " (" + signal_name + ")", e});
      }
      exporter_targets.push_back({"exporter " + id.str(), it->second});
    }
    ConsumerPtr next = fan_out_or_single(std::move(exporter_targets));

    Host& pipeline_host = graph->pipeline_hosts_.emplace_back(host);
    pipeline_host.pipeline = pipeline.name;
    std::vector<Named> chain;
    for (auto it = pipeline.processors.rbegin(); it != pipeline.processors.rend(); ++it) {
      const auto& entry = config.processors.at(it->str());
      ProcessorPtr p = registry.processor(it->type)->create(*it, *entry.config, pipeline.signal, next, pipeline_host);
      if (!p) {
        *error = Status::invalid_argument("processor " + it->str() + " does not support " + signal_name);
        return nullptr;
      }
      chain.insert(chain.begin(), {"processor " + it->str() + " (pipeline " + pipeline.name + ")", p});
      next = p;
    }
    for (auto& n : chain) graph->processors_.push_back(std::move(n));

    for (const auto& id : pipeline.receivers) {
      receiver_targets[id.str()][pipeline.signal].push_back({"pipeline " + pipeline.name, next});
    }
  }

  for (auto& [id_text, by_signal] : receiver_targets) {
    const auto& entry = config.receivers.at(id_text);
    ReceiverConsumers consumers;
    for (auto& [signal, targets] : by_signal) {
      ConsumerPtr c = fan_out_or_single(std::move(targets));
      switch (signal) {
        case Signal::traces: consumers.traces = c; break;
        case Signal::metrics: consumers.metrics = c; break;
        case Signal::logs: consumers.logs = c; break;
      }
    }
    ReceiverPtr r = registry.receiver(entry.id.type)->create(entry.id, *entry.config, consumers, host);
    if (!r) {
      *error = Status::invalid_argument("receiver " + id_text + " could not be created");
      return nullptr;
    }
    graph->receivers_.push_back({"receiver " + id_text, std::shared_ptr<Component>(std::move(r))});
  }
  return graph;
}

Status Graph::start() {
  std::vector<Named*> order;
  for (auto& n : exporters_) order.push_back(&n);
  for (auto& n : processors_) order.push_back(&n);
  for (auto& n : receivers_) order.push_back(&n);
  for (auto* n : order) {
    Status s = n->component->start();
    if (!s.is_ok()) {
      Status failed = Status::internal(n->name + ": " + s.message());
      shutdown(Clock::now() + std::chrono::seconds(5));
      return failed;
    }
    ++started_;
  }
  return Status::ok();
}

void Graph::shutdown(Clock::time_point deadline) {
  // started_ counts a prefix of the start order: exporters_, processors_, receivers_.
  auto stop = [&](std::vector<Named>& list, size_t offset, Clock::time_point by) {
    for (size_t i = 0; i < list.size() && offset + i < started_; ++i) {
      spdlog::debug("stopping {}", list[i].name);
      list[i].component->shutdown(by);
    }
  };
  // Receivers only finish requests already arriving: a quarter of the time, so a slow client
  // cannot use up the time the batch stages and exporters need to drain.
  const Clock::time_point receivers_by = std::min(deadline, Clock::now() + (deadline - Clock::now()) / 4);
  stop(receivers_, exporters_.size() + processors_.size(), receivers_by);
  stop(processors_, exporters_.size(), deadline);
  stop(exporters_, 0, deadline);
  started_ = 0;
}

}  // namespace otlpd

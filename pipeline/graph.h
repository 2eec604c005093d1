// Graph: the running components of a config, wired receivers -> processors -> exporters.
//
// One exporter instance per (exporter id, signal), shared by the pipelines of that signal. One
// processor instance per pipeline. One receiver instance per receiver id, delivering each signal
// to every pipeline that lists it. Built, started and shut down from the main thread.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/registry.h"

namespace otlpd {

struct ServiceConfig;

class Graph {
 public:
  // Creates every component; nothing runs until start(). Returns null and sets *error on failure.
  static std::unique_ptr<Graph> build(const ServiceConfig& config, const Registry& registry, Host& host,
                                      Status* error);

  // Starts exporters, then processors, then receivers; on failure shuts down what started.
  Status start();
  // Receivers first (no new data), then processors in pipeline order (they drain into exporters),
  // then exporters (they drain to their destinations). Everything by `deadline`.
  void shutdown(Clock::time_point deadline);

 private:
  struct Named {
    std::string name;  // "exporter otlp/backend (traces)"
    std::shared_ptr<Component> component;
  };
  std::deque<Host> pipeline_hosts_;  // the Host each pipeline's processors were given; outlives them
  std::vector<Named> exporters_;
  std::vector<Named> processors_;  // each pipeline's chain, first processor first
  std::vector<Named> receivers_;
  size_t started_ = 0;  // how many of exporters_+processors_+receivers_ are running
};

}  // namespace otlpd

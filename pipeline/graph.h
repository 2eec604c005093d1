// Graph: the running components of a config, wired receivers -> processors -> exporters, and the
// move from one config to the next (a reload).
//
// One exporter instance per (exporter id, signal), shared by the pipelines of that signal. One
// processor instance per pipeline. One receiver instance per receiver id, delivering each signal
// to every pipeline that lists it. Every edge goes through a Link (pipeline/link.h), so a reload
// can keep a component running and rewire what feeds it and what it feeds.
//
// A reload keeps every component whose config (and, for a processor, the kind of stage after it)
// is unchanged: its queue, connections and listening sockets are untouched. It creates and starts
// the new and changed ones first, then switches the Links over, then drains and stops the old
// ones in the background, so what they accepted is delivered as the old config said. Exceptions,
// where two instances cannot run side by side:
//  - a changed receiver that cannot start next to the old one (the same port) is started once
//    the old one stopped: a short moment in which that port refuses connections;
//  - a changed exporter whose persistent queue stays in the same directory is started once the old
//    one stopped and released the directory; it then replays what the old one left there.
// When anything fails to start, the reload is undone (what was stopped early is started again)
// and the old config keeps running.
//
// Threads: build, start, reload and shutdown are called from one control thread (the daemon's
// main thread). Components given up by a reload are shut down on a thread of their own, one
// reload's after the previous one's; shutdown() waits for those too.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/link.h"
#include "pipeline/registry.h"

namespace otlpd {

struct ServiceConfig;

class Graph {
 public:
  // What a reload did, by component name ("exporter otlp/backend (traces)").
  struct Changes {
    std::vector<std::string> kept, started, stopped;
  };

  // Creates every component of `config`; nothing runs until start(). Returns null and sets
  // *error on failure. `host` is copied; what it refers to must outlive the graph.
  static std::unique_ptr<Graph> build(std::shared_ptr<const ServiceConfig> config, const Registry& registry,
                                      const Host& host, Status* error);
  ~Graph();

  // Starts exporters, then processors, then receivers; on failure shuts down what started.
  Status start();

  // Moves the running graph to `config` (see the header comment). Components given up are
  // drained until `drain_deadline`. On error nothing changed. `changes` may be null.
  Status reload(std::shared_ptr<const ServiceConfig> config, Clock::time_point drain_deadline, Changes* changes);

  // Receivers first (no new data), then processors in pipeline order (they drain into exporters),
  // then exporters (they drain to their destinations). Everything by `deadline`, including what
  // earlier reloads are still draining.
  void shutdown(Clock::time_point deadline);

 private:
  enum class Kind { exporter, processor, receiver };
  struct Instance {
    std::shared_ptr<Component> component;
    ConsumerPtr consumer;  // the same object as a Consumer; null for receivers
  };
  // One running component, shared between consecutive configs while it is kept.
  struct Part {
    Kind kind = Kind::exporter;
    std::string name;         // "processor batch (pipeline traces)": the identity across configs
    std::string fingerprint;  // equal fingerprints: the running instance can be kept
    bool running = false;     // instance started and not stopped
    std::string queue_directory;  // an exporter's persistent queue; empty: in memory
    // Exporters: what every pipeline of this config sends to; it points at `instance`.
    std::shared_ptr<Link> input;
    // Processors: the Link to the next stage. Receivers: one per signal (traces, metrics, logs),
    // null for a signal no pipeline takes from it.
    std::vector<std::shared_ptr<Link>> outputs;
    // What create() refers to: the config entry and the Host the component was given.
    std::shared_ptr<const ServiceConfig> config;
    std::shared_ptr<Host> host;
    std::function<Instance()> create;  // a fresh instance of the same config (reload fallbacks)
    Instance instance;                 // last: destroyed before what it refers to
  };
  using PartPtr = std::shared_ptr<Part>;
  // Parts in start order: exporters, processors (each pipeline's chain, first first), receivers.
  struct Parts {
    std::vector<PartPtr> exporters, processors, receivers;
    // Where each Link must point under this config; applied by commit().
    std::vector<std::pair<std::shared_ptr<Link>, ConsumerPtr>> edges;
    PartPtr find(Kind kind, const std::string& name) const;
    std::vector<PartPtr> all() const;
  };

  Graph(const Registry& registry, const Host& host) : registry_(registry), host_(host) {}
  // The parts of `config`, reusing current_'s where the fingerprint matches.
  bool plan(std::shared_ptr<const ServiceConfig> config, Parts* next, Status* error);
  // Starts next's new parts; on failure stops those it started and returns the error.
  Status start_new(const Parts& next);
  // Stops `old` (draining until `deadline`) so `replacement` can take its place; for an exporter,
  // also waits until the old instance let go of its queue's directory. Returns whether it did
  // in time.
  bool stop_early(const PartPtr& old, const PartPtr& replacement, Clock::time_point deadline);
  // After start_new() failed: lets go of next's new parts and starts again, as fresh instances,
  // the current parts stop_early() stopped.
  void undo(Parts next);
  // Points every Link of `next` where it belongs, makes it current, and returns the parts given up.
  std::vector<PartPtr> commit(Parts next);
  // Shuts `parts` down on a thread of their own, after what earlier reloads gave up.
  void retire(std::vector<PartPtr> parts, Clock::time_point deadline);
  // Shuts running `parts` down: receivers (by `receivers_by`), processors in pipeline order,
  // exporters; `before_exporters` runs between processors and exporters.
  static void stop_parts(const std::vector<PartPtr>& parts, Clock::time_point receivers_by,
                         Clock::time_point deadline, const std::function<void()>& before_exporters = {});

  const Registry& registry_;
  const Host host_;
  Parts current_;
  Parts pending_;  // built but not started yet (between build() and start())
  std::vector<PartPtr> stopped_early_;  // current parts stopped by the reload under way
  std::thread retiring_;  // the last reload's retirement; it waits for the one before it
};

}  // namespace otlpd

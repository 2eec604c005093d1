#include "pipeline/graph.h"

#include <algorithm>
#include <map>

#include <spdlog/spdlog.h>

#include "config/service_config.h"
#include "pipeline/fanout.h"

namespace otlpd {

namespace {

// How long a receiver stopped so that its replacement can take its place may take to finish the
// requests under way (clients retry what it refuses meanwhile), and how long an old instance may
// take to let go of what its replacement needs.
constexpr std::chrono::seconds kStopEarlyTime{5};
// How long an exporter with a persistent queue may go on sending before its replacement takes
// over: what it has not sent by then is on disk, and the replacement sends it.
constexpr std::chrono::seconds kPersistentHandOverTime{1};

ConsumerPtr fan_out_or_single(std::vector<FanOut::Target> targets) {
  if (targets.size() == 1) return targets[0].consumer;
  return std::make_shared<FanOut>(std::move(targets));
}

size_t signal_index(Signal s) { return static_cast<size_t>(s); }

// A component reads the extensions it uses (its queue's file_storage, its bearertokenauth) at
// creation: a change in one of them restarts it.
std::string fingerprint_of(const ServiceConfig& config, const ComponentEntry& entry) {
  std::string out = entry.fingerprint;
  for (const auto& id : entry.extensions) {
    auto it = config.extension_fingerprints.find(id);
    out += "|" + id + ":" + (it == config.extension_fingerprints.end() ? "" : it->second);
  }
  return out;
}

// Waits (bounded) until every instance in `instances` is gone, so what it held is free.
bool wait_released(const std::vector<std::weak_ptr<Component>>& instances, Clock::time_point deadline) {
  auto released = [&] {
    return std::all_of(instances.begin(), instances.end(), [](const auto& w) { return w.expired(); });
  };
  while (!released() && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return released();
}

}  // namespace

Graph::PartPtr Graph::Parts::find(Kind kind, const std::string& name) const {
  const auto& list = kind == Kind::exporter ? exporters : kind == Kind::processor ? processors : receivers;
  for (const auto& part : list) {
    if (part->name == name) return part;
  }
  return nullptr;
}

std::vector<Graph::PartPtr> Graph::Parts::all() const {
  std::vector<PartPtr> out(exporters);
  out.insert(out.end(), processors.begin(), processors.end());
  out.insert(out.end(), receivers.begin(), receivers.end());
  return out;
}

std::unique_ptr<Graph> Graph::build(std::shared_ptr<const ServiceConfig> config, const Registry& registry,
                                    const Host& host, Status* error) {
  std::unique_ptr<Graph> graph(new Graph(registry, host));
  if (!graph->plan(std::move(config), &graph->pending_, error)) return nullptr;
  return graph;
}

Graph::~Graph() {
  if (retiring_.joinable()) retiring_.join();
}

bool Graph::plan(std::shared_ptr<const ServiceConfig> config, Parts* next, Status* error) {
  auto new_part = [&](Kind kind, const std::string& name, std::string fingerprint, const std::string& pipeline) {
    auto part = std::make_shared<Part>();
    part->kind = kind;
    part->name = name;
    part->fingerprint = std::move(fingerprint);
    part->config = config;
    part->host = std::make_shared<Host>(host_);
    part->host->storages = &config->file_storages;
    part->host->bearer_tokens = &config->bearer_tokens;
    part->host->pipeline = pipeline;
    return part;
  };
  // Per receiver id and signal: the first stage of each pipeline that takes from it.
  std::map<std::string, std::map<Signal, std::vector<FanOut::Target>>> receiver_targets;

  for (const auto& pipeline : config->pipelines) {
    const Signal signal = pipeline.signal;
    const std::string signal_name(otlp::signal_name(signal));
    std::vector<FanOut::Target> exporter_targets;
    for (const auto& id : pipeline.exporters) {
      const std::string name = "exporter " + id.str() + " (" + signal_name + ")";
      PartPtr part = next->find(Kind::exporter, name);  // another pipeline of the signal made it
      if (!part) {
        const ComponentEntry& entry = config->exporters.at(id.str());
        const std::string fingerprint = fingerprint_of(*config, entry);
        PartPtr old = current_.find(Kind::exporter, name);
        if (old && old->fingerprint == fingerprint) {
          part = old;
        } else {
          part = new_part(Kind::exporter, name, fingerprint, "");
          const ExporterFactory* factory = registry_.exporter(id.type);
          part->create = [factory, id, &entry, signal, host = part->host.get()] {
            ExporterPtr e = factory->create(id, *entry.config, signal, *host);
            return Instance{e, e};
          };
          part->instance = part->create();
          if (!part->instance.component) {
            *error = Status::invalid_argument("exporter " + id.str() + " does not support " + signal_name);
            return false;
          }
          part->queue_directory = std::static_pointer_cast<Exporter>(part->instance.consumer)->queue_directory();
          // A Link of its own, so the stages planned around it see what it is (persisting,
          // never waiting); the old instance's Link is pointed at it on commit, for whatever
          // still holds that one.
          part->input = std::make_shared<Link>(part->instance.consumer);
          if (old) next->edges.push_back({old->input, part->instance.consumer});
        }
        next->exporters.push_back(part);
      }
      exporter_targets.push_back({"exporter " + id.str(), part->input});
    }
    ConsumerPtr downstream = fan_out_or_single(std::move(exporter_targets));

    std::vector<PartPtr> chain;
    for (auto it = pipeline.processors.rbegin(); it != pipeline.processors.rend(); ++it) {
      const ComponentId id = *it;
      const std::string name = "processor " + id.str() + " (pipeline " + pipeline.name + ")";
      const ComponentEntry& entry = config->processors.at(id.str());
      // A stage settles at creation how it hands on (at once to a persisting queue, from the
      // caller's thread to a never-waiting one): a change there restarts it too.
      const std::string fingerprint = entry.fingerprint + (downstream->persists() ? "|persists" : "") +
                                      (downstream->never_waits() ? "|never_waits" : "");
      PartPtr part = current_.find(Kind::processor, name);
      if (part && part->fingerprint == fingerprint) {
        next->edges.push_back({part->outputs[0], downstream});
      } else {
        part = new_part(Kind::processor, name, fingerprint, pipeline.name);
        part->outputs.push_back(std::make_shared<Link>(downstream));
        ProcessorPtr p = registry_.processor(id.type)->create(id, *entry.config, signal, part->outputs[0], *part->host);
        if (!p) {
          *error = Status::invalid_argument("processor " + id.str() + " does not support " + signal_name);
          return false;
        }
        part->instance = Instance{p, p};
      }
      chain.insert(chain.begin(), part);
      downstream = part->instance.consumer;
    }
    next->processors.insert(next->processors.end(), chain.begin(), chain.end());

    for (const auto& id : pipeline.receivers) {
      receiver_targets[id.str()][signal].push_back({"pipeline " + pipeline.name, downstream});
    }
  }

  for (auto& [id_text, by_signal] : receiver_targets) {
    const ComponentEntry& entry = config->receivers.at(id_text);
    const std::string name = "receiver " + id_text;
    std::string fingerprint = fingerprint_of(*config, entry) + "|signals";  // it serves only the signals it feeds
    std::vector<ConsumerPtr> heads(3);
    for (auto& [signal, targets] : by_signal) {
      fingerprint += ":" + std::string(otlp::signal_name(signal));
      heads[signal_index(signal)] = fan_out_or_single(std::move(targets));
    }
    PartPtr part = current_.find(Kind::receiver, name);
    if (part && part->fingerprint == fingerprint) {
      for (size_t i = 0; i < heads.size(); ++i) {
        if (heads[i]) next->edges.push_back({part->outputs[i], heads[i]});
      }
    } else {
      part = new_part(Kind::receiver, name, fingerprint, "");
      for (const auto& head : heads) part->outputs.push_back(head ? std::make_shared<Link>(head) : nullptr);
      ReceiverConsumers consumers;
      consumers.traces = part->outputs[signal_index(Signal::traces)];
      consumers.metrics = part->outputs[signal_index(Signal::metrics)];
      consumers.logs = part->outputs[signal_index(Signal::logs)];
      const ReceiverFactory* factory = registry_.receiver(entry.id.type);
      part->create = [factory, &entry, consumers, host = part->host.get()] {
        std::shared_ptr<Component> r = factory->create(entry.id, *entry.config, consumers, *host);
        return Instance{r, nullptr};
      };
      part->instance = part->create();
      if (!part->instance.component) {
        *error = Status::invalid_argument("receiver " + id_text + " could not be created");
        return false;
      }
    }
    next->receivers.push_back(part);
  }
  return true;
}

bool Graph::stop_early(const PartPtr& old, const PartPtr& replacement, Clock::time_point deadline) {
  spdlog::info("stopping {} so that its new config can take its place", old->name);
  old->instance.component->shutdown(deadline);
  old->running = false;
  stopped_early_.push_back(old);
  if (old->kind != Kind::exporter) return true;
  // Upstream stages now meet the replacement, which refuses (retryably) until it started. The
  // queue's directory is free once the old instance is gone; a send finishing late may hold it a
  // little longer.
  old->input->retarget(replacement->instance.consumer);
  std::vector<std::weak_ptr<Component>> gone{old->instance.component};
  old->instance = {};
  return wait_released(gone, deadline + kStopEarlyTime);
}

Status Graph::start_new(const Parts& next) {
  std::vector<PartPtr> started;
  Status failure;
  for (const PartPtr& part : next.all()) {
    if (part->running) continue;  // kept from the running config
    const PartPtr old = current_.find(part->kind, part->name);
    // Two persistent queues cannot share a directory: the old one goes first (keeping on disk
    // what it holds, which the new one replays).
    if (old && old->running && part->kind == Kind::exporter && !old->queue_directory.empty() &&
        old->queue_directory == part->queue_directory &&
        !stop_early(old, part, Clock::now() + kPersistentHandOverTime)) {
      failure = Status::internal(old->name + " did not release its persistent queue in time");
      break;
    }
    Status s = part->instance.component->start();
    if (!s.is_ok() && old && old->running && part->kind == Kind::receiver) {
      // Most likely the old instance holds the port: stop it and start a fresh new one.
      spdlog::info("{} cannot start next to its old instance ({}); restarting it", part->name, s.message());
      stop_early(old, part, Clock::now() + kStopEarlyTime);
      part->instance = part->create();
      s = part->instance.component->start();
    }
    if (!s.is_ok()) {
      failure = Status::internal(part->name + ": " + s.message());
      break;
    }
    part->running = true;
    started.push_back(part);
  }
  if (!failure.is_ok()) {
    const Clock::time_point deadline = Clock::now() + kStopEarlyTime;
    stop_parts(started, deadline, deadline);
  }
  return failure;
}

void Graph::undo(Parts next) {
  // The new instances go first, so what they hold (a port, a queue's directory) is free again.
  std::vector<std::weak_ptr<Component>> replacements;
  for (const PartPtr& part : next.all()) {
    if (!part->running && part->instance.component) replacements.push_back(part->instance.component);
  }
  for (const PartPtr& old : stopped_early_) {
    if (old->input) old->input->retarget(nullptr);  // refuses until the old one runs again
  }
  next = Parts{};
  if (!wait_released(replacements, Clock::now() + kStopEarlyTime)) {
    spdlog::warn("the instances of the failed reload are slow to let go of what they hold");
  }
  for (const PartPtr& old : stopped_early_) {
    old->instance = old->create();
    Status s = old->instance.component ? old->instance.component->start() : Status::internal("cannot be created");
    if (old->input) old->input->retarget(old->instance.consumer);
    if (s.is_ok()) {
      old->running = true;
      spdlog::info("started {} again", old->name);
    } else {
      spdlog::error("cannot start {} again after the failed reload: {}", old->name, s.message());
    }
  }
  stopped_early_.clear();
}

std::vector<Graph::PartPtr> Graph::commit(Parts next) {
  // In plan order: exporters' inputs, then each chain's Links last stage first, then receivers'
  // outputs, so data never reaches a new stage before what is after it is in place.
  for (auto& [link, target] : next.edges) link->retarget(target);
  std::vector<PartPtr> given_up;
  const auto kept = next.all();
  for (const PartPtr& part : current_.all()) {
    if (std::find(kept.begin(), kept.end(), part) == kept.end()) given_up.push_back(part);
  }
  current_ = std::move(next);
  current_.edges.clear();  // applied; holding the targets would keep given-up stages alive
  stopped_early_.clear();
  return given_up;
}

Status Graph::start() {
  Parts next = std::move(pending_);
  pending_ = Parts{};
  Status s = start_new(next);
  if (s.is_ok()) commit(std::move(next));
  return s;
}

Status Graph::reload(std::shared_ptr<const ServiceConfig> config, Clock::time_point drain_deadline,
                     Changes* changes) {
  Parts next;
  Status error;
  if (!plan(std::move(config), &next, &error)) return error;
  Changes planned;
  for (const PartPtr& part : next.all()) (part->running ? planned.kept : planned.started).push_back(part->name);
  Status s = start_new(next);
  if (!s.is_ok()) {
    undo(std::move(next));
    return s;
  }
  std::vector<PartPtr> given_up = commit(std::move(next));
  for (const PartPtr& part : given_up) planned.stopped.push_back(part->name);
  if (changes) *changes = std::move(planned);
  retire(std::move(given_up), drain_deadline);
  return Status::ok();
}

void Graph::stop_parts(const std::vector<PartPtr>& parts, Clock::time_point receivers_by, Clock::time_point deadline,
                       const std::function<void()>& before_exporters) {
  auto stop = [&](Kind kind, Clock::time_point by) {
    for (const PartPtr& part : parts) {  // processors in their order: each chain first stage first
      if (part->kind != kind || !part->running) continue;
      spdlog::debug("stopping {}", part->name);
      part->instance.component->shutdown(by);
      part->running = false;
    }
  };
  stop(Kind::receiver, receivers_by);
  stop(Kind::processor, deadline);
  if (before_exporters) before_exporters();
  stop(Kind::exporter, deadline);
}

void Graph::retire(std::vector<PartPtr> parts, Clock::time_point deadline) {
  if (parts.empty()) return;
  // After the previous reload's: its old stages may still drain into exporters this one gives up.
  retiring_ = std::thread([previous = std::move(retiring_), parts = std::move(parts), deadline]() mutable {
    if (previous.joinable()) previous.join();
    stop_parts(parts, deadline, deadline);
    spdlog::info("the components a reload replaced have stopped");
  });
}

void Graph::shutdown(Clock::time_point deadline) {
  // Receivers only finish requests already arriving: a quarter of the time, so a slow client
  // cannot use up the time the batch stages and exporters need to drain. Stages that reloads
  // replaced finish draining into the exporters before those stop.
  const Clock::time_point receivers_by = std::min(deadline, Clock::now() + (deadline - Clock::now()) / 4);
  stop_parts(current_.all(), receivers_by, deadline, [&] {
    if (retiring_.joinable()) retiring_.join();
  });
}

}  // namespace otlpd

#include "pipeline/graph.h"

#include <algorithm>
#include <map>

#include <spdlog/spdlog.h>

#include "config/service_config.h"
#include "pipeline/fanout.h"

namespace otlpd {

namespace {

// How long a receiver stopped so that its replacement can take its place may take to finish the
// requests under way (clients retry what it refuses meanwhile).
constexpr std::chrono::seconds kStopEarlyTime{5};
// How long an exporter with a persistent queue may go on sending before its replacement takes
// over: what it has not sent by then is on disk, and the replacement sends it.
constexpr std::chrono::seconds kPersistentHandOverTime{1};

ConsumerPtr fan_out_or_single(std::vector<FanOut::Target> targets) {
  if (targets.size() == 1) return targets[0].consumer;
  return std::make_shared<FanOut>(std::move(targets));
}

size_t signal_index(Signal s) { return static_cast<size_t>(s); }

// Exporters read their file_storage extension at creation: a change there restarts them.
std::string storages_fingerprint(const FileStorages& storages) {
  std::string out;
  for (const auto& [id, s] : storages) {
    out += "|" + id + ":" + s.directory + ":" + std::to_string(s.create_directory) + ":" + std::to_string(s.fsync) +
           ":" + std::to_string(s.fsync_interval.count());
  }
  return out;
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
  for (auto& t : retiring_) t.join();
}

bool Graph::plan(std::shared_ptr<const ServiceConfig> config, Parts* next, Status* error) {
  const std::string storages = storages_fingerprint(config->file_storages);
  auto new_part = [&](Kind kind, const std::string& name, std::string fingerprint, const std::string& pipeline) {
    auto part = std::make_shared<Part>();
    part->kind = kind;
    part->name = name;
    part->fingerprint = std::move(fingerprint);
    part->config = config;
    part->host = std::make_shared<Host>(host_);
    part->host->storages = &config->file_storages;
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
        const std::string fingerprint = entry.fingerprint + storages;
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
          part->persists = part->instance.consumer->persists();
          part->input = old ? old->input : std::make_shared<Link>(part->instance.consumer);
          next->edges.push_back({part->input, part->instance.consumer});
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
    std::string fingerprint = entry.fingerprint + "|signals";  // a receiver serves only the signals it feeds
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
      ReceiverConsumers consumers;
      for (size_t i = 0; i < heads.size(); ++i) {
        part->outputs.push_back(heads[i] ? std::make_shared<Link>(heads[i]) : nullptr);
      }
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
  // Upstream stages now meet the replacement, which refuses (retryably) until it started.
  old->input->retarget(replacement->instance.consumer);
  // The queue's directory is free once the old instance is gone; a send finishing late may
  // hold it a little longer.
  std::weak_ptr<Component> gone = old->instance.component;
  old->instance = {};
  const Clock::time_point released_by = deadline + kStopEarlyTime;
  while (!gone.expired() && Clock::now() < released_by) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return gone.expired();
}

void Graph::restore_stopped_early() {
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

Status Graph::start_new(const Parts& next) {
  std::vector<PartPtr> started;
  Status failure;
  for (const PartPtr& part : next.all()) {
    if (part->running) continue;  // kept from the running config
    const PartPtr old = current_.find(part->kind, part->name);
    // Two persistent queues cannot share a directory: the old one goes first (keeping on disk
    // what it holds, which the new one replays).
    if (old && old->running && part->kind == Kind::exporter && old->persists &&
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
  if (failure.is_ok()) return failure;
  // Undo in reverse order (receivers first), so what the new parts took is handed on.
  for (auto it = started.rbegin(); it != started.rend(); ++it) {
    (*it)->instance.component->shutdown(Clock::now() + kStopEarlyTime);
    (*it)->running = false;
  }
  restore_stopped_early();
  return failure;
}

std::vector<Graph::PartPtr> Graph::commit(Parts next) {
  // Exporters' inputs first, then processors' and receivers' outputs (in that order in
  // `edges`), so data never reaches a new stage before what is after it is in place.
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
  if (changes) {
    for (const PartPtr& part : next.all()) (part->running ? changes->kept : changes->started).push_back(part->name);
  }
  Status s = start_new(next);
  if (!s.is_ok()) {
    if (changes) *changes = Changes{};
    return s;
  }
  std::vector<PartPtr> given_up = commit(std::move(next));
  if (changes) {
    for (const PartPtr& part : given_up) changes->stopped.push_back(part->name);
  }
  retire(std::move(given_up), drain_deadline);
  return Status::ok();
}

void Graph::retire(std::vector<PartPtr> parts, Clock::time_point deadline) {
  if (parts.empty()) return;
  // Receivers, then processors (each chain first stage first, as start order has them), then
  // exporters, as at shutdown.
  std::stable_partition(parts.begin(), parts.end(), [](const PartPtr& p) { return p->kind == Kind::receiver; });
  retiring_.emplace_back([parts = std::move(parts), deadline] {
    for (const PartPtr& part : parts) {
      if (!part->running) continue;
      spdlog::debug("draining {}", part->name);
      part->instance.component->shutdown(deadline);
      part->running = false;
    }
    spdlog::info("the components a reload replaced have stopped");
  });
}

void Graph::shutdown(Clock::time_point deadline) {
  // Receivers only finish requests already arriving: a quarter of the time, so a slow client
  // cannot use up the time the batch stages and exporters need to drain.
  const Clock::time_point receivers_by = std::min(deadline, Clock::now() + (deadline - Clock::now()) / 4);
  for (const PartPtr& part : current_.receivers) {
    if (part->running) part->instance.component->shutdown(receivers_by);
  }
  for (const PartPtr& part : current_.processors) {
    if (part->running) part->instance.component->shutdown(deadline);
  }
  for (const PartPtr& part : current_.exporters) {
    if (part->running) part->instance.component->shutdown(deadline);
  }
  for (const PartPtr& part : current_.all()) part->running = false;
  for (auto& t : retiring_) t.join();
  retiring_.clear();
}

}  // namespace otlpd

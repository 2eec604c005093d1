// Graph wiring with test-registered components: one receiver feeding several pipelines, fan-out
// to several exporters, and a stuck exporter that costs the others nothing beyond its own queue.
#include <algorithm>
#include <catch2/catch.hpp>

#include "config/service_config.h"
#include "exporters/common/queued_exporter.h"
#include "pipeline/batch_processor.h"
#include "pipeline/graph.h"
#include "support/test_support.h"

using namespace otlpd;
using namespace otlpd::test;

namespace {

// Everything the test components report to the test.
struct Probe {
  std::mutex mu;
  ReceiverConsumers consumers;                           // what the graph gave the receiver
  std::map<std::string, std::vector<BatchPtr>> sent;     // exporter "id/signal" -> delivered batches
  std::vector<Sender::Done> held;                        // completions of the stuck exporter
  bool unstuck = false;                                  // from now on the stuck exporter delivers
  std::vector<std::string> events;                       // start/shutdown order

  size_t sent_count(const std::string& key) {
    std::lock_guard lock(mu);
    return sent[key].size();
  }
};

class CaptureReceiver : public Receiver {
 public:
  CaptureReceiver(Probe& probe, std::string id, bool fail) : probe_(probe), id_(std::move(id)), fail_(fail) {}
  Status start() override {
    std::lock_guard lock(probe_.mu);
    if (fail_) return Status::internal("cannot listen");
    probe_.events.push_back("start receiver " + id_);
    return Status::ok();
  }
  void shutdown(Clock::time_point) override {
    std::lock_guard lock(probe_.mu);
    probe_.events.push_back("stop receiver " + id_);
  }

 private:
  Probe& probe_;
  std::string id_;
  bool fail_;
};

struct CaptureConfig : ComponentConfig {
  bool fail = false;  // start() fails
};

class CaptureReceiverFactory : public ReceiverFactory {
 public:
  explicit CaptureReceiverFactory(Probe& probe) : probe_(probe) {}
  std::string_view type() const override { return "capture"; }
  ComponentConfigPtr parse(config::Node& node) const override {
    auto c = std::make_unique<CaptureConfig>();
    node.read("fail", c->fail);
    node.finish();
    return c;
  }
  ReceiverPtr create(const ComponentId& id, const ComponentConfig& config, ReceiverConsumers next, Host&) const override {
    std::lock_guard lock(probe_.mu);
    if (id.name.empty()) probe_.consumers = next;
    return std::make_unique<CaptureReceiver>(probe_, id.str(), static_cast<const CaptureConfig&>(config).fail);
  }

 private:
  Probe& probe_;
};

// `record` delivers at once; `stuck` never completes until the test releases it.
class ProbeSender : public Sender {
 public:
  ProbeSender(Probe& probe, std::string key, bool stuck) : probe_(probe), key_(std::move(key)), stuck_(stuck) {}
  void send(BatchPtr batch, Clock::time_point, Done done) override {
    std::unique_lock lock(probe_.mu);
    if (stuck_ && !probe_.unstuck) {
      probe_.held.push_back(std::move(done));
      return;
    }
    probe_.sent[key_].push_back(std::move(batch));
    lock.unlock();
    done(Status::ok());
  }

 private:
  Probe& probe_;
  std::string key_;
  bool stuck_;
};

struct ProbeExporterConfig : ComponentConfig {
  ExporterSettings exporter;
};

class ProbeExporterFactory : public ExporterFactory {
 public:
  ProbeExporterFactory(Probe& probe, std::string type, bool stuck) : probe_(probe), type_(std::move(type)), stuck_(stuck) {}
  std::string_view type() const override { return type_; }
  ComponentConfigPtr parse(config::Node& node) const override {
    auto c = std::make_unique<ProbeExporterConfig>();
    c->exporter.parse(node);
    node.finish();
    return c;
  }
  ExporterPtr create(const ComponentId& id, const ComponentConfig& config, Signal signal, Host& host) const override {
    const auto& c = static_cast<const ProbeExporterConfig&>(config);
    std::string key = id.str() + "/" + std::string(otlp::signal_name(signal));
    return std::make_shared<QueuedExporter>(id, signal, c.exporter, std::make_unique<ProbeSender>(probe_, key, stuck_),
                                            host);
  }

 private:
  Probe& probe_;
  std::string type_;
  bool stuck_;
};

const char* kConfig = R"(
receivers:
  capture:
processors:
  batch:
    schedule_delay: 1h
    max_export_batch_size: 10
exporters:
  record:
  record/second:
  stuck:
    sending_queue: {num_consumers: 1, queue_size: 2}
service:
  pipelines:
    traces:
      receivers: [capture]
      exporters: [record, stuck]
    traces/second:
      receivers: [capture]
      processors: [batch]
      exporters: [record/second]
    logs:
      receivers: [capture]
      exporters: [record]
)";

struct GraphFixture {
  GraphFixture() {
    registry.add(std::make_unique<CaptureReceiverFactory>(probe));
    registry.add(std::make_unique<BatchProcessorFactory>());
    registry.add(std::make_unique<ProbeExporterFactory>(probe, "record", false));
    registry.add(std::make_unique<ProbeExporterFactory>(probe, "stuck", true));
    config::Errors errors;
    REQUIRE(parse_service_config(kConfig, registry, config.get(), &errors));
    Status error;
    graph = Graph::build(config, registry, host, &error);
    REQUIRE(graph);
    REQUIRE(graph->start().is_ok());
  }
  ~GraphFixture() {
    std::vector<Sender::Done> held;
    {
      std::lock_guard lock(probe.mu);
      held.swap(probe.held);
      probe.unstuck = true;
    }
    for (auto& done : held) done(Status::ok());
    graph->shutdown(Clock::now() + 2s);
  }

  Probe probe;
  IoThreads threads{2};
  Telemetry telemetry;
  Host host{threads.io(), telemetry};
  Registry registry;
  std::shared_ptr<ServiceConfig> config = std::make_shared<ServiceConfig>();
  std::unique_ptr<Graph> graph;
};

}  // namespace

TEST_CASE("one receiver feeds every pipeline of a signal, and only those", "[graph]") {
  GraphFixture f;
  REQUIRE(f.probe.consumers.traces);
  REQUIRE(f.probe.consumers.logs);
  CHECK_FALSE(f.probe.consumers.metrics);

  auto request = make_traces_request(1, 1, 10, 1);
  REQUIRE(f.probe.consumers.traces->consume(request.batch()).is_ok());
  REQUIRE(wait_until([&] { return f.probe.sent_count("record/traces") == 1 && f.probe.sent_count("record/second/traces") == 1; }));
  std::lock_guard lock(f.probe.mu);
  CHECK(span_ids_in(f.probe.sent["record/traces"][0]->payload) == iota_ids(1, 10));
  // The batch processor of traces/second cut a full batch of 10: the same spans.
  CHECK(span_ids_in(f.probe.sent["record/second/traces"][0]->payload) == iota_ids(1, 10));
  CHECK(f.probe.sent["record/logs"].empty());
}

TEST_CASE("a stuck exporter refuses beyond its queue while the others keep receiving", "[graph]") {
  GraphFixture f;
  for (uint64_t i = 0; i < 10; ++i) {
    // Each request is accepted: at least one exporter of the pipeline took it.
    REQUIRE(f.probe.consumers.traces->consume(make_traces_request(1, 1, 3, 1 + 3 * i).batch()).is_ok());
  }
  REQUIRE(wait_until([&] { return f.probe.sent_count("record/traces") == 10; }));
  // stuck: one send in flight, two queued, seven refused (3 spans each).
  REQUIRE(wait_until([&] {
    std::lock_guard lock(f.probe.mu);
    return f.probe.held.size() == 1;
  }));
  CHECK(f.telemetry.value("otlpd_exporter_enqueue_failed_items", {{"exporter", "stuck"}, {"signal", "traces"}}) == 21);
  CHECK(f.telemetry.value("otlpd_exporter_enqueue_failed_items", {{"exporter", "record"}, {"signal", "traces"}}) == 0);
}

TEST_CASE("start order is exporters first; shutdown stops receivers first", "[graph]") {
  GraphFixture f;
  f.graph->shutdown(Clock::now() + 2s);
  std::lock_guard lock(f.probe.mu);
  CHECK(f.probe.events == std::vector<std::string>{"start receiver capture", "stop receiver capture"});
}

namespace {

// kConfig with each (from, to) replacement applied to its text, parsed.
std::shared_ptr<const ServiceConfig> edited_config(GraphFixture& f,
                                                   const std::vector<std::pair<std::string, std::string>>& edits) {
  std::string text = kConfig;
  for (const auto& [from, to] : edits) {
    const size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
  }
  auto config = std::make_shared<ServiceConfig>();
  config::Errors errors;
  INFO(text);
  REQUIRE(parse_service_config(text, f.registry, config.get(), &errors));
  return config;
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

}  // namespace

TEST_CASE("a reload adding an exporter keeps every running component and rewires the pipeline", "[graph][reload]") {
  GraphFixture f;
  ReceiverConsumers running = f.probe.consumers;  // what the receiver was given at start
  auto next = edited_config(f, {{"  record/second:\n", "  record/third:\n  record/second:\n"},
                                {"      exporters: [record, stuck]", "      exporters: [record, stuck, record/third]"}});
  Graph::Changes changes;
  REQUIRE(f.graph->reload(next, Clock::now() + 2s, &changes).is_ok());
  CHECK(changes.started == std::vector<std::string>{"exporter record/third (traces)"});
  CHECK(changes.stopped.empty());
  CHECK(contains(changes.kept, "receiver capture"));
  CHECK(contains(changes.kept, "exporter stuck (traces)"));
  CHECK(contains(changes.kept, "processor batch (pipeline traces/second)"));
  {
    std::lock_guard lock(f.probe.mu);
    CHECK(f.probe.events == std::vector<std::string>{"start receiver capture"});  // never restarted
  }
  // The receiver's consumer, unchanged, now also reaches the new exporter.
  REQUIRE(running.traces->consume(make_traces_request(1, 1, 4, 100).batch()).is_ok());
  REQUIRE(wait_until([&] { return f.probe.sent_count("record/third/traces") == 1; }));
  REQUIRE(wait_until([&] { return f.probe.sent_count("record/traces") == 1; }));
  std::lock_guard lock(f.probe.mu);
  CHECK(span_ids_in(f.probe.sent["record/third/traces"][0]->payload) == iota_ids(100, 4));
}

TEST_CASE("a reload changing a batch size replaces the stage, and the old stage delivers what it held",
          "[graph][reload]") {
  GraphFixture f;
  ReceiverConsumers running = f.probe.consumers;
  // 7 spans wait in traces/second's batch stage (schedule_delay 1h, batches of 10).
  REQUIRE(running.traces->consume(make_traces_request(1, 1, 7, 1).batch()).is_ok());
  REQUIRE(wait_until([&] { return f.probe.sent_count("record/traces") == 1; }));
  CHECK(f.probe.sent_count("record/second/traces") == 0);

  Graph::Changes changes;
  auto next = edited_config(f, {{"max_export_batch_size: 10", "max_export_batch_size: 3"}});
  REQUIRE(f.graph->reload(next, Clock::now() + 2s, &changes).is_ok());
  CHECK(changes.started == std::vector<std::string>{"processor batch (pipeline traces/second)"});
  CHECK(changes.stopped == std::vector<std::string>{"processor batch (pipeline traces/second)"});
  // The old stage drained into the exporter it had: the 7 spans arrive.
  REQUIRE(wait_until([&] { return f.probe.sent_count("record/second/traces") == 1; }));
  // New data goes through the new stage: 6 spans leave as two batches of 3.
  REQUIRE(running.traces->consume(make_traces_request(1, 1, 6, 50).batch()).is_ok());
  REQUIRE(wait_until([&] { return f.probe.sent_count("record/second/traces") == 3; }));
  std::lock_guard lock(f.probe.mu);
  CHECK(span_ids_in(f.probe.sent["record/second/traces"][0]->payload) == iota_ids(1, 7));
  // The two batches of 3 leave together, and the exporter may send them in either order.
  std::vector<decltype(iota_ids(50, 3))> later = {span_ids_in(f.probe.sent["record/second/traces"][1]->payload),
                                                  span_ids_in(f.probe.sent["record/second/traces"][2]->payload)};
  std::sort(later.begin(), later.end());
  CHECK(later == std::vector<decltype(iota_ids(50, 3))>{iota_ids(50, 3), iota_ids(53, 3)});
}

TEST_CASE("a reload that cannot start is undone and the running config goes on", "[graph][reload]") {
  GraphFixture f;
  ReceiverConsumers running = f.probe.consumers;
  auto next = edited_config(f, {{"  capture:\n", "  capture:\n  capture/bad: {fail: true}\n"},
                                {"    logs:\n", "    metrics:\n      receivers: [capture/bad]\n      exporters: [record]\n    logs:\n"}});
  Graph::Changes changes;
  Status s = f.graph->reload(next, Clock::now() + 2s, &changes);
  CHECK(s.message() == "receiver capture/bad: cannot listen");
  CHECK(changes.started.empty());
  // The running graph is untouched: same receiver consumer, same exporters.
  REQUIRE(running.traces->consume(make_traces_request(1, 1, 2, 1).batch()).is_ok());
  REQUIRE(wait_until([&] { return f.probe.sent_count("record/traces") == 1; }));
  std::lock_guard lock(f.probe.mu);
  CHECK(f.probe.events == std::vector<std::string>{"start receiver capture"});
}

TEST_CASE("a reload removing a pipeline stops its components and nothing else", "[graph][reload]") {
  GraphFixture f;
  auto next = edited_config(f, {{"    logs:\n      receivers: [capture]\n      exporters: [record]\n", ""}});
  Graph::Changes changes;
  REQUIRE(f.graph->reload(next, Clock::now() + 2s, &changes).is_ok());
  // The receiver fed logs too: it serves other signals now, so it is replaced.
  CHECK(changes.started == std::vector<std::string>{"receiver capture"});
  std::vector<std::string> stopped = changes.stopped;
  std::sort(stopped.begin(), stopped.end());
  CHECK(stopped == std::vector<std::string>{"exporter record (logs)", "receiver capture"});
  REQUIRE(wait_until([&] {
    std::lock_guard lock(f.probe.mu);
    return f.probe.events.size() == 3;
  }));
  std::lock_guard lock(f.probe.mu);
  CHECK(f.probe.events ==
        std::vector<std::string>{"start receiver capture", "start receiver capture", "stop receiver capture"});
  CHECK_FALSE(f.probe.consumers.logs);
  CHECK(f.probe.consumers.traces);
}

TEST_CASE("a reload removing a pipeline drains its batch stage into its exporter before that stops",
          "[graph][reload]") {
  GraphFixture f;
  ReceiverConsumers running = f.probe.consumers;
  REQUIRE(running.traces->consume(make_traces_request(1, 1, 7, 1).batch()).is_ok());  // 7 wait in the batch stage
  auto next = edited_config(
      f, {{"    traces/second:\n      receivers: [capture]\n      processors: [batch]\n      exporters: [record/second]\n", ""}});
  Graph::Changes changes;
  REQUIRE(f.graph->reload(next, Clock::now() + 2s, &changes).is_ok());
  std::vector<std::string> stopped = changes.stopped;
  std::sort(stopped.begin(), stopped.end());
  CHECK(stopped == std::vector<std::string>{"exporter record/second (traces)", "processor batch (pipeline traces/second)"});
  REQUIRE(wait_until([&] { return f.probe.sent_count("record/second/traces") == 1; }));
  std::lock_guard lock(f.probe.mu);
  CHECK(span_ids_in(f.probe.sent["record/second/traces"][0]->payload) == iota_ids(1, 7));
}

TEST_CASE("a reload that makes an exporter block restarts the batch stage before it, which settles that at creation",
          "[graph][reload]") {
  GraphFixture f;
  auto next = edited_config(f, {{"  record/second:\n", "  record/second: {sending_queue: {block_on_overflow: true}}\n"}});
  Graph::Changes changes;
  REQUIRE(f.graph->reload(next, Clock::now() + 2s, &changes).is_ok());
  std::vector<std::string> started = changes.started;
  std::sort(started.begin(), started.end());
  CHECK(started == std::vector<std::string>{"exporter record/second (traces)", "processor batch (pipeline traces/second)"});
  CHECK(contains(changes.kept, "receiver capture"));
}

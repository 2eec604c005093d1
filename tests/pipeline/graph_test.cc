// Graph wiring with test-registered components: one receiver feeding several pipelines, fan-out
// to several exporters, and a stuck exporter that costs the others nothing beyond its own queue.
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
  CaptureReceiver(Probe& probe, std::string id) : probe_(probe), id_(std::move(id)) {}
  Status start() override {
    std::lock_guard lock(probe_.mu);
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
};

struct EmptyConfig : ComponentConfig {};

class CaptureReceiverFactory : public ReceiverFactory {
 public:
  explicit CaptureReceiverFactory(Probe& probe) : probe_(probe) {}
  std::string_view type() const override { return "capture"; }
  ComponentConfigPtr parse(config::Node& node) const override {
    node.finish();
    return std::make_unique<EmptyConfig>();
  }
  ReceiverPtr create(const ComponentId& id, const ComponentConfig&, ReceiverConsumers next, Host&) const override {
    std::lock_guard lock(probe_.mu);
    probe_.consumers = next;
    return std::make_unique<CaptureReceiver>(probe_, id.str());
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
    REQUIRE(parse_service_config(kConfig, registry, &config, &errors));
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
  ServiceConfig config;
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

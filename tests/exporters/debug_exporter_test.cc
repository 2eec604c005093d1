#include <catch2/catch.hpp>

#include "config/node.h"
#include "exporters/debug/debug_exporter.h"
#include "support/test_support.h"

using namespace otlpd;
using namespace otlpd::test;

namespace {

Batch traces_batch() {
  pb::ExportTraceServiceRequest req;
  auto* span = req.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(std::string("\x5b\x8e\xff\xf7\x98\x03\x81\x03\xd2\x69\xb6\x33\x81\x3f\xc6\x0c", 16));
  span->set_span_id(std::string("\xee\xe1\x9b\x7e\xc3\xc1\xb1\x74", 8));
  span->set_name("GET /users");
  span->set_kind(opentelemetry::proto::trace::v1::Span::SPAN_KIND_SERVER);
  span->set_start_time_unix_nano(1000);
  span->set_end_time_unix_nano(1250);
  auto* a = span->add_attributes();
  a->set_key("http.status_code");
  a->mutable_value()->set_int_value(200);
  return Batch{Signal::traces, req.SerializeAsString(), 1};
}

}  // namespace

TEST_CASE("debug basic prints one line per batch with its counts", "[debug]") {
  Batch b = traces_batch();
  std::string out;
  REQUIRE(render_debug(DebugExporterConfig::Verbosity::basic, b, &out));
  CHECK(out == "Traces batch: 1 spans, " + std::to_string(b.payload.size()) + " bytes\n");
}

TEST_CASE("debug normal prints one line per item", "[debug]") {
  std::string out;
  REQUIRE(render_debug(DebugExporterConfig::Verbosity::normal, traces_batch(), &out));
  CHECK(out.substr(out.find('\n') + 1) ==
        "span GET /users trace_id=5b8efff798038103d269b633813fc60c span_id=eee19b7ec3c1b174 kind=2 duration_ns=250 "
        "status=0 attributes={http.status_code=200}\n");

  auto metrics = make_metrics_request(MetricKind::sum, 1, 3);
  Batch mb{Signal::metrics, metrics.bytes, metrics.items};
  std::string mout;
  REQUIRE(render_debug(DebugExporterConfig::Verbosity::normal, mb, &mout));
  CHECK(std::count(mout.begin(), mout.end(), '\n') == 1 + 3);

  auto logs = make_logs_request(1, 4);
  Batch lb{Signal::logs, logs.bytes, logs.items};
  std::string lout;
  REQUIRE(render_debug(DebugExporterConfig::Verbosity::normal, lb, &lout));
  CHECK(std::count(lout.begin(), lout.end(), '\n') == 1 + 4);
}

TEST_CASE("debug detailed prints every field", "[debug]") {
  std::string out;
  REQUIRE(render_debug(DebugExporterConfig::Verbosity::detailed, traces_batch(), &out));
  CHECK(out.find("name: \"GET /users\"") != std::string::npos);
  CHECK(out.find("start_time_unix_nano: 1000") != std::string::npos);
  CHECK(out.find("end_time_unix_nano: 1250") != std::string::npos);
  CHECK(out.find("kind: SPAN_KIND_SERVER") != std::string::npos);
  CHECK(out.find("int_value: 200") != std::string::npos);
}

TEST_CASE("debug refuses a batch that does not decode", "[debug]") {
  Batch bad{Signal::traces, std::string("\x0a\x05\xff\xff", 4), 1};
  std::string out;
  CHECK_FALSE(render_debug(DebugExporterConfig::Verbosity::normal, bad, &out));
}

TEST_CASE("debug config: verbosity values and unknown keys", "[debug]") {
  DebugExporterFactory factory;
  config::Errors errors;
  config::Node node(YAML::Load("verbosity: normal"), "exporters.debug", &errors);
  auto config = factory.parse(node);
  CHECK(errors.empty());
  CHECK(static_cast<DebugExporterConfig&>(*config).verbosity == DebugExporterConfig::Verbosity::normal);
  config::Errors bad;
  config::Node bad_node(YAML::Load("verbosity: chatty\nsampling_initial: 5"), "exporters.debug", &bad);
  factory.parse(bad_node);
  REQUIRE(bad.size() == 2);
  CHECK(bad.list()[0].path == "exporters.debug.verbosity");
  CHECK(bad.list()[1].path == "exporters.debug.sampling_initial");
  CHECK(bad.list()[1].message == "unknown key");
}

// Tests for the OTLP/JSON codec (otlp/json_codec.h).
#include "otlp/json_codec.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <numbers>
#include <string>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace {

using namespace otlpd::otlp;
namespace pb = google::protobuf;
using TraceRequest = opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using MetricsRequest = opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest;
using LogsRequest = opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest;
using opentelemetry::proto::common::v1::AnyValue;
using opentelemetry::proto::common::v1::KeyValue;
using opentelemetry::proto::trace::v1::Span;

// Canonical OTLP/JSON as the codec writes it: fields in .proto declaration order, defaults
// omitted. Each of these must survive JSON -> proto -> JSON byte for byte.
const std::string kTraceJson =
    R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}],)"
    R"("droppedAttributesCount":1},"scopeSpans":[{"scope":{"name":"lib","version":"1.2.3","attributes":[)"
    R"({"key":"k","value":{"boolValue":true}}],"droppedAttributesCount":2},"spans":[{)"
    R"("traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","traceState":"k=v",)"
    R"("parentSpanId":"eee19b7ec3c1b173","flags":769,"name":"GET /cart","kind":2,)"
    R"("startTimeUnixNano":"1700000000000000001","endTimeUnixNano":"18446744073709551615","attributes":[)"
    R"({"key":"s","value":{"stringValue":"x"}},)"
    R"({"key":"b","value":{"boolValue":false}},)"
    R"({"key":"i","value":{"intValue":"-42"}},)"
    R"({"key":"i0","value":{"intValue":"0"}},)"
    R"({"key":"imax","value":{"intValue":"9223372036854775807"}},)"
    R"({"key":"d","value":{"doubleValue":3.14}},)"
    R"({"key":"d2","value":{"doubleValue":2.0}},)"
    R"({"key":"dz","value":{"doubleValue":0.0}},)"
    R"({"key":"dexp","value":{"doubleValue":1e+300}},)"
    R"({"key":"nan","value":{"doubleValue":"NaN"}},)"
    R"({"key":"inf","value":{"doubleValue":"Infinity"}},)"
    R"({"key":"ninf","value":{"doubleValue":"-Infinity"}},)"
    R"({"key":"a","value":{"arrayValue":{"values":[{"stringValue":"x"},{"intValue":"1"},)"
    R"({"arrayValue":{"values":[{"boolValue":true}]}},{"arrayValue":{}}]}}},)"
    R"({"key":"kv","value":{"kvlistValue":{"values":[{"key":"inner","value":{"kvlistValue":{"values":[)"
    R"({"key":"deep","value":{"doubleValue":1.5}}]}}}]}}},)"
    R"({"key":"bytes","value":{"bytesValue":"AQID/w=="}},)"
    R"({"key":"empty","value":{}}],)"
    R"("droppedAttributesCount":3,"events":[{"timeUnixNano":"1700000000000000500","name":"exception",)"
    R"("attributes":[{"key":"exception.message","value":{"stringValue":"boom \"quoted\"\n\t\\ \u0001 é €"}}],)"
    R"("droppedAttributesCount":4}],"droppedEventsCount":5,"links":[{)"
    R"("traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"1112131415161718","traceState":"a=b",)"
    R"("attributes":[{"key":"l","value":{"intValue":"1"}}],"droppedAttributesCount":6,"flags":256}],)"
    R"("droppedLinksCount":7,"status":{"message":"failed","code":2}}],)"
    R"("schemaUrl":"https://opentelemetry.io/schemas/1.21.0"}],"schemaUrl":"https://example.com/r"}]})";

const std::string kMetricsJson =
    R"({"resourceMetrics":[{"resource":{"attributes":[{"key":"host","value":{"stringValue":"h1"}}]},)"
    R"("scopeMetrics":[{"scope":{"name":"meter"},"metrics":[)"
    // gauge with exemplars (ids as hex), int and double points
    R"({"name":"g","description":"a gauge","unit":"1","gauge":{"dataPoints":[{)"
    R"("attributes":[{"key":"k","value":{"intValue":"7"}}],"startTimeUnixNano":"1","timeUnixNano":"2",)"
    R"("asDouble":0.25,"exemplars":[{"filteredAttributes":[{"key":"f","value":{"stringValue":"v"}}],)"
    R"("timeUnixNano":"3","asInt":"-9223372036854775808","spanId":"0102030405060708",)"
    R"("traceId":"0102030405060708090a0b0c0d0e0f10"}],"flags":1},{"timeUnixNano":"4","asInt":"0"}]},)"
    R"("metadata":[{"key":"m","value":{"stringValue":"x"}}]},)"
    // sum
    R"({"name":"s","sum":{"dataPoints":[{"timeUnixNano":"5","asInt":"9223372036854775807"}],)"
    R"("aggregationTemporality":2,"isMonotonic":true}},)"
    // histogram: optional sum/min/max set (min to 0.0, which must still be written) and absent
    R"({"name":"h","unit":"ms","histogram":{"dataPoints":[{"startTimeUnixNano":"1","timeUnixNano":"2",)"
    R"("count":"6","sum":12.5,"bucketCounts":["1","2","3"],"explicitBounds":[1.0,5.0],"exemplars":[{)"
    R"("timeUnixNano":"2","asDouble":4.5,"spanId":"1112131415161718",)"
    R"("traceId":"2122232425262728292a2b2c2d2e2f30"}],"min":0.0,"max":9.75},)"
    R"({"timeUnixNano":"3","count":"1"}],"aggregationTemporality":1}},)"
    // exponential histogram
    R"({"name":"eh","exponentialHistogram":{"dataPoints":[{"attributes":[{"key":"e","value":{"boolValue":true}}],)"
    R"("startTimeUnixNano":"1","timeUnixNano":"2","count":"10","sum":-3.5,"scale":-2,"zeroCount":"1",)"
    R"("positive":{"offset":-3,"bucketCounts":["1","0","18446744073709551615"]},"negative":{"bucketCounts":["0"]},)"
    R"("flags":1,"exemplars":[{"timeUnixNano":"7","asInt":"3"}],"min":-1.0,"max":100.0,"zeroThreshold":1e-09}],)"
    R"("aggregationTemporality":2}},)"
    // summary
    R"({"name":"sm","summary":{"dataPoints":[{"startTimeUnixNano":"1","timeUnixNano":"2","count":"4","sum":10.0,)"
    R"("quantileValues":[{"value":1.0},{"quantile":0.5,"value":2.5},{"quantile":1.0,"value":4.0}]}]}})"
    R"(]}]}]})";

const std::string kLogsJson =
    R"({"resourceLogs":[{"resource":{},"scopeLogs":[{"scope":{"name":"logger"},"logRecords":[{)"
    R"("timeUnixNano":"1700000000000000000","observedTimeUnixNano":"1700000000000000001","severityNumber":17,)"
    R"("severityText":"ERROR","body":{"kvlistValue":{"values":[{"key":"msg","value":{"stringValue":"hello"}},)"
    R"({"key":"n","value":{"intValue":"5"}}]}},"attributes":[{"key":"a","value":{"bytesValue":"AA=="}}],)"
    R"("droppedAttributesCount":1,"flags":1,"traceId":"5b8efff798038103d269b633813fc60c",)"
    R"("spanId":"eee19b7ec3c1b174","eventName":"app.login"},{"body":{"stringValue":"plain"}}]}],)"
    R"("schemaUrl":"s"}]})";

std::string to_json(const pb::Message& msg) {
  std::string out;
  message_to_json(msg, &out);
  return out;
}

template <typename M>
M parse(std::string_view json) {
  M msg;
  const std::string error = json_to_message(json, msg);
  INFO(json);
  REQUIRE(error == "");
  return msg;
}

template <typename M>
std::string parse_error(std::string_view json) {
  M msg;
  return json_to_message(json, msg);
}

std::string bytes_from_hex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  return out;
}

// A request whose only span carries `span_fields` (JSON object members, without braces).
std::string span_json(std::string_view span_fields) {
  return R"({"resourceSpans":[{"scopeSpans":[{"spans":[{)" + std::string(span_fields) + "}]}]}]}";
}

// A request with one span attribute whose value is `value` (a JSON AnyValue).
std::string attribute_json(std::string_view value) {
  return span_json(R"("attributes":[{"key":"k","value":)" + std::string(value) + "}]");
}

constexpr std::string_view kSpanPath = "resourceSpans[0].scopeSpans[0].spans[0]";

std::string nested_arrays(int depth, std::string_view innermost = R"({"intValue":"1"})") {
  std::string s;
  for (int i = 0; i < depth; ++i) s += R"({"arrayValue":{"values":[)";
  s += innermost;
  for (int i = 0; i < depth; ++i) s += "]}}";
  return s;
}

// A span with every field set, built through the generated API.
TraceRequest full_trace_request() {
  TraceRequest req;
  auto* rs = req.add_resource_spans();
  auto* attr = rs->mutable_resource()->add_attributes();
  attr->set_key("service.name");
  attr->mutable_value()->set_string_value("svc");
  rs->set_schema_url("https://example.com/r");
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("lib");
  Span* span = ss->add_spans();
  span->set_trace_id(bytes_from_hex("5b8efff798038103d269b633813fc60c"));
  span->set_span_id(bytes_from_hex("eee19b7ec3c1b174"));
  span->set_parent_span_id(bytes_from_hex("00000000000000ff"));
  span->set_trace_state("rojo=00f067aa0ba902b7");
  span->set_flags(0x301);
  span->set_name("op");
  span->set_kind(Span::SPAN_KIND_CONSUMER);
  span->set_start_time_unix_nano(1700000000000000001ULL);
  span->set_end_time_unix_nano(std::numeric_limits<uint64_t>::max());
  auto add = [&](const std::string& key) {
    KeyValue* kv = span->add_attributes();
    kv->set_key(key);
    return kv->mutable_value();
  };
  add("str")->set_string_value("line1\nline2\x01\x1f\"\\/ ünï");
  add("bool")->set_bool_value(false);
  add("int_min")->set_int_value(std::numeric_limits<int64_t>::min());
  add("int_max")->set_int_value(std::numeric_limits<int64_t>::max());
  add("int_zero")->set_int_value(0);
  add("pi")->set_double_value(std::numbers::pi);
  add("tenth")->set_double_value(0.1);
  add("neg_zero")->set_double_value(-0.0);
  add("max")->set_double_value(std::numeric_limits<double>::max());
  add("denorm")->set_double_value(std::numeric_limits<double>::denorm_min());
  add("nan")->set_double_value(std::numeric_limits<double>::quiet_NaN());
  add("inf")->set_double_value(-std::numeric_limits<double>::infinity());
  add("bytes")->set_bytes_value(std::string("\x00\xff\xfe\x01\x02", 5));
  add("bytes1")->set_bytes_value("a");
  add("bytes_empty")->set_bytes_value("");
  AnyValue* arr = add("array");
  arr->mutable_array_value()->add_values()->set_string_value("x");
  arr->mutable_array_value()->add_values()->mutable_kvlist_value()->add_values()->set_key(
      "only_key");
  AnyValue* kvl = add("kvlist");
  KeyValue* inner = kvl->mutable_kvlist_value()->add_values();
  inner->set_key("nested");
  inner->mutable_value()->mutable_array_value()->add_values()->set_int_value(-1);
  span->set_dropped_attributes_count(4294967295U);
  Span::Event* ev = span->add_events();
  ev->set_time_unix_nano(5);
  ev->set_name("ev");
  ev->add_attributes()->set_key("e");
  ev->set_dropped_attributes_count(1);
  span->set_dropped_events_count(2);
  Span::Link* link = span->add_links();
  link->set_trace_id(bytes_from_hex("0102030405060708090a0b0c0d0e0f10"));
  link->set_span_id(bytes_from_hex("1112131415161718"));
  link->set_trace_state("a=b");
  link->add_attributes()->set_key("l");
  link->set_dropped_attributes_count(3);
  link->set_flags(0x100);
  span->set_dropped_links_count(9);
  span->mutable_status()->set_message("bad");
  span->mutable_status()->set_code(opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
  return req;
}

}  // namespace

TEST_CASE("canonical OTLP/JSON round-trips byte for byte", "[json_codec]") {
  SECTION("traces") {
    const auto req = parse<TraceRequest>(kTraceJson);
    CHECK(to_json(req) == kTraceJson);
  }
  SECTION("metrics") {
    const auto req = parse<MetricsRequest>(kMetricsJson);
    CHECK(to_json(req) == kMetricsJson);
  }
  SECTION("logs") {
    const auto req = parse<LogsRequest>(kLogsJson);
    CHECK(to_json(req) == kLogsJson);
  }
}

TEST_CASE("parsed values land in the right proto fields", "[json_codec]") {
  SECTION("traces") {
    const auto req = parse<TraceRequest>(kTraceJson);
    const Span& span = req.resource_spans(0).scope_spans(0).spans(0);
    CHECK(span.trace_id() == bytes_from_hex("5b8efff798038103d269b633813fc60c"));
    CHECK(span.span_id() == bytes_from_hex("eee19b7ec3c1b174"));
    CHECK(span.parent_span_id() == bytes_from_hex("eee19b7ec3c1b173"));
    CHECK(span.flags() == 769);
    CHECK(span.kind() == Span::SPAN_KIND_SERVER);
    CHECK(span.start_time_unix_nano() == 1700000000000000001ULL);
    CHECK(span.end_time_unix_nano() == std::numeric_limits<uint64_t>::max());
    CHECK(span.attributes(1).value().value_case() == AnyValue::kBoolValue);
    CHECK(span.attributes(2).value().int_value() == -42);
    CHECK(span.attributes(3).value().value_case() == AnyValue::kIntValue);
    CHECK(span.attributes(5).value().double_value() == 3.14);
    CHECK(std::isnan(span.attributes(9).value().double_value()));
    CHECK(span.attributes(10).value().double_value() == std::numeric_limits<double>::infinity());
    CHECK(span.attributes(13)
              .value()
              .kvlist_value()
              .values(0)
              .value()
              .kvlist_value()
              .values(0)
              .key() == "deep");
    CHECK(span.attributes(14).value().bytes_value() == std::string("\x01\x02\x03\xff", 4));
    CHECK(span.attributes(15).value().value_case() == AnyValue::VALUE_NOT_SET);
    CHECK(span.events(0).attributes(0).value().string_value() == "boom \"quoted\"\n\t\\ \x01 é €");
    CHECK(span.status().code() == opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
  }
  SECTION("metrics") {
    const auto req = parse<MetricsRequest>(kMetricsJson);
    const auto& metrics = req.resource_metrics(0).scope_metrics(0).metrics();
    REQUIRE(metrics.size() == 5);
    CHECK(metrics[0].gauge().data_points(0).exemplars(0).as_int() ==
          std::numeric_limits<int64_t>::min());
    CHECK(metrics[0].gauge().data_points(0).exemplars(0).span_id() ==
          bytes_from_hex("0102030405060708"));
    CHECK(metrics[1].sum().is_monotonic());
    const auto& hp = metrics[2].histogram().data_points(0);
    CHECK(hp.has_sum());
    CHECK(hp.has_min());
    CHECK(hp.min() == 0.0);
    CHECK(!metrics[2].histogram().data_points(1).has_sum());
    CHECK(!metrics[2].histogram().data_points(1).has_max());
    const auto& ep = metrics[3].exponential_histogram().data_points(0);
    CHECK(ep.scale() == -2);
    CHECK(ep.positive().offset() == -3);
    CHECK(ep.positive().bucket_counts(2) == std::numeric_limits<uint64_t>::max());
    CHECK(ep.zero_threshold() == 1e-9);
    CHECK(metrics[4].summary().data_points(0).quantile_values_size() == 3);
  }
  SECTION("logs") {
    const auto req = parse<LogsRequest>(kLogsJson);
    const auto& rec = req.resource_logs(0).scope_logs(0).log_records(0);
    CHECK(rec.severity_number() == opentelemetry::proto::logs::v1::SEVERITY_NUMBER_ERROR);
    CHECK(rec.body().kvlist_value().values(1).value().int_value() == 5);
    CHECK(rec.trace_id() == bytes_from_hex("5b8efff798038103d269b633813fc60c"));
    CHECK(rec.flags() == 1);
    CHECK(rec.event_name() == "app.login");
    CHECK(req.resource_logs(0).has_resource());
  }
}

TEST_CASE("proto -> JSON -> proto is lossless", "[json_codec]") {
  SECTION("traces built through the generated API") {
    const TraceRequest req = full_trace_request();
    const std::string json = to_json(req);
    INFO(json);
    CHECK(json.find(R"("traceId":"5b8efff798038103d269b633813fc60c")") != std::string::npos);
    CHECK(json.find(R"("spanId":"eee19b7ec3c1b174")") != std::string::npos);
    CHECK(json.find(R"("parentSpanId":"00000000000000ff")") != std::string::npos);
    CHECK(json.find(R"("endTimeUnixNano":"18446744073709551615")") != std::string::npos);
    CHECK(json.find(R"("kind":5)") != std::string::npos);
    CHECK(json.find(R"("code":2)") != std::string::npos);
    CHECK(json.find(R"({"intValue":"-9223372036854775808"})") != std::string::npos);
    CHECK(json.find(R"({"intValue":"0"})") != std::string::npos);
    CHECK(json.find(R"({"boolValue":false})") != std::string::npos);
    CHECK(json.find(R"({"doubleValue":-0.0})") != std::string::npos);
    CHECK(json.find(R"({"doubleValue":"NaN"})") != std::string::npos);
    CHECK(json.find(R"({"doubleValue":"-Infinity"})") != std::string::npos);
    CHECK(json.find(R"({"bytesValue":"AP/+AQI="})") != std::string::npos);
    CHECK(json.find(R"({"bytesValue":"YQ=="})") != std::string::npos);
    CHECK(json.find(R"({"bytesValue":""})") != std::string::npos);
    CHECK(json.find(R"("line1\nline2\u0001\u001f\"\\/ ünï")") != std::string::npos);
    CHECK(json.find(R"("droppedAttributesCount":4294967295)") != std::string::npos);
    CHECK(json.find('\n') == std::string::npos);
    CHECK(nlohmann::json::accept(json));

    TraceRequest back;
    REQUIRE(json_to_message(json, back) == "");
    // Byte comparison rather than MessageDifferencer: NaN != NaN for the differencer.
    CHECK(back.SerializeAsString() == req.SerializeAsString());
    const Span& span = back.resource_spans(0).scope_spans(0).spans(0);
    CHECK(std::signbit(span.attributes(7).value().double_value()));  // -0.0 kept its sign
  }
  SECTION("metrics and logs, through the request helpers") {
    for (auto [signal, json] :
         {std::pair{Signal::metrics, kMetricsJson}, std::pair{Signal::logs, kLogsJson}}) {
      std::string proto;
      REQUIRE(request_json_to_proto(signal, json, &proto) == "");
      std::string json_again;
      REQUIRE(request_proto_to_json(signal, proto, &json_again) == "");
      CHECK(json_again == json);
      std::string proto_again;
      REQUIRE(request_json_to_proto(signal, json_again, &proto_again) == "");
      CHECK(proto_again == proto);
    }
  }
  SECTION("doubles keep full precision") {
    for (double d : {0.1, 1.0 / 3.0, 1e300, -2.5e-308, 5e-324, 123456789012345680.0, 1e21,
                     9007199254740993.0}) {
      LogsRequest req;
      req.add_resource_logs()
          ->add_scope_logs()
          ->add_log_records()
          ->mutable_body()
          ->set_double_value(d);
      LogsRequest back;
      REQUIRE(json_to_message(to_json(req), back) == "");
      CHECK(back.resource_logs(0).scope_logs(0).log_records(0).body().double_value() == d);
    }
  }
}

TEST_CASE("request helpers", "[json_codec]") {
  SECTION("JSON -> protobuf bytes -> JSON, appending to the output") {
    std::string proto = "prefix";
    REQUIRE(request_json_to_proto(Signal::traces, kTraceJson, &proto) == "");
    REQUIRE(proto.rfind("prefix", 0) == 0);
    TraceRequest parsed;
    REQUIRE(parsed.ParseFromString(proto.substr(6)));
    CHECK(parsed.resource_spans(0).scope_spans(0).spans(0).name() == "GET /cart");

    std::string json = "x";
    REQUIRE(request_proto_to_json(Signal::traces, proto.substr(6), &json) == "");
    CHECK(json == "x" + kTraceJson);
  }
  SECTION("malformed protobuf is an error and leaves the output alone") {
    std::string out = "keep";
    const std::string error = request_proto_to_json(Signal::logs, "\xff\xff\xff\xff", &out);
    CHECK(error.find("malformed protobuf") != std::string::npos);
    CHECK(out == "keep");
  }
  SECTION("bad JSON is an error and leaves the output alone") {
    std::string out = "keep";
    CHECK(request_json_to_proto(Signal::metrics, R"({"resourceMetrics":5})", &out) ==
          "resourceMetrics: expected array, got number");
    CHECK(out == "keep");
  }
  SECTION("empty protobuf is an empty request") {
    std::string out;
    CHECK(request_proto_to_json(Signal::traces, "", &out) == "");
    CHECK(out == "{}");
  }
}

TEST_CASE("lenient input forms", "[json_codec]") {
  SECTION("empty object is an empty request") {
    for (auto json : {"{}", " { } ", R"({"resourceSpans":[]})", R"({"resourceSpans":null})"}) {
      const auto req = parse<TraceRequest>(json);
      CHECK(req.ByteSizeLong() == 0);
      CHECK(to_json(req) == "{}");
    }
  }
  SECTION("64-bit integers as strings and as numbers") {
    const auto req = parse<TraceRequest>(span_json(
        R"("startTimeUnixNano":1700000000,"endTimeUnixNano":18446744073709551615,)"
        R"("attributes":[{"key":"a","value":{"intValue":-5}},{"key":"b","value":{"intValue":"-9223372036854775808"}},)"
        R"({"key":"c","value":{"intValue":1e3}},{"key":"d","value":{"intValue":9223372036854775807}}])"));
    const Span& span = req.resource_spans(0).scope_spans(0).spans(0);
    CHECK(span.start_time_unix_nano() == 1700000000ULL);
    CHECK(span.end_time_unix_nano() == std::numeric_limits<uint64_t>::max());
    CHECK(span.attributes(0).value().int_value() == -5);
    CHECK(span.attributes(1).value().int_value() == std::numeric_limits<int64_t>::min());
    CHECK(span.attributes(2).value().int_value() == 1000);
    CHECK(span.attributes(3).value().int_value() == std::numeric_limits<int64_t>::max());
    CHECK(to_json(span).find(R"("startTimeUnixNano":"1700000000")") != std::string::npos);
  }
  SECTION("32-bit integers as strings, doubles as strings") {
    const auto req = parse<TraceRequest>(span_json(
        R"("droppedAttributesCount":"12","flags":"4294967295",)"
        R"("attributes":[{"key":"a","value":{"doubleValue":"2.5"}},{"key":"b","value":{"doubleValue":7}}])"));
    const Span& span = req.resource_spans(0).scope_spans(0).spans(0);
    CHECK(span.dropped_attributes_count() == 12);
    CHECK(span.flags() == 4294967295U);
    CHECK(span.attributes(0).value().double_value() == 2.5);
    CHECK(span.attributes(1).value().double_value() == 7.0);
  }
  SECTION("enums as integers and as names") {
    CHECK(parse<TraceRequest>(span_json(R"("kind":3)"))
              .resource_spans(0)
              .scope_spans(0)
              .spans(0)
              .kind() == Span::SPAN_KIND_CLIENT);
    CHECK(parse<TraceRequest>(span_json(R"("kind":"SPAN_KIND_PRODUCER")"))
              .resource_spans(0)
              .scope_spans(0)
              .spans(0)
              .kind() == Span::SPAN_KIND_PRODUCER);
    const auto req =
        parse<TraceRequest>(span_json(R"("kind":42,"status":{"code":"STATUS_CODE_OK"})"));
    const Span& span = req.resource_spans(0).scope_spans(0).spans(0);
    CHECK(span.kind() == 42);  // proto3 enums are open
    CHECK(span.status().code() == opentelemetry::proto::trace::v1::Status::STATUS_CODE_OK);
    CHECK(to_json(span) == R"({"kind":42,"status":{"code":1}})");
    const auto logs = parse<LogsRequest>(
        R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"SEVERITY_NUMBER_WARN"}]}]}]})");
    CHECK(logs.resource_logs(0).scope_logs(0).log_records(0).severity_number() == 13);
    const auto metrics = parse<MetricsRequest>(
        R"({"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA"}}]}]}]})");
    CHECK(metrics.resource_metrics(0).scope_metrics(0).metrics(0).sum().aggregation_temporality() ==
          1);
  }
  SECTION("snake_case keys") {
    const std::string snake =
        R"({"resource_spans":[{"schema_url":"u","scope_spans":[{"spans":[{"trace_id":"5b8efff798038103d269b633813fc60c",)"
        R"("span_id":"eee19b7ec3c1b174","parent_span_id":"eee19b7ec3c1b173","trace_state":"t",)"
        R"("start_time_unix_nano":"1","end_time_unix_nano":2,"dropped_attributes_count":3,)"
        R"("attributes":[{"key":"k","value":{"kvlist_value":{"values":[{"key":"x","value":{"string_value":"y"}}]}}},)"
        R"({"key":"b","value":{"bytes_value":"AQ=="}},{"key":"i","value":{"int_value":"1"}}],)"
        R"("events":[{"time_unix_nano":"4"}],"dropped_events_count":5,)"
        R"("links":[{"trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"1112131415161718"}],"dropped_links_count":6}]}]}]})";
    const std::string camel =
        R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",)"
        R"("spanId":"eee19b7ec3c1b174","traceState":"t","parentSpanId":"eee19b7ec3c1b173",)"
        R"("startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[)"
        R"({"key":"k","value":{"kvlistValue":{"values":[{"key":"x","value":{"stringValue":"y"}}]}}},)"
        R"({"key":"b","value":{"bytesValue":"AQ=="}},{"key":"i","value":{"intValue":"1"}}],)"
        R"("droppedAttributesCount":3,"events":[{"timeUnixNano":"4"}],"droppedEventsCount":5,)"
        R"("links":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"1112131415161718"}],)"
        R"("droppedLinksCount":6}]}],"schemaUrl":"u"}]})";
    CHECK(to_json(parse<TraceRequest>(snake)) == camel);
  }
  SECTION("missing fields get defaults") {
    const auto req = parse<TraceRequest>(span_json(R"("name":"only")"));
    const Span& span = req.resource_spans(0).scope_spans(0).spans(0);
    CHECK(span.name() == "only");
    CHECK(span.trace_id().empty());
    CHECK(span.start_time_unix_nano() == 0);
    CHECK(!span.has_status());
    CHECK(!req.resource_spans(0).has_resource());
    CHECK(to_json(req) == span_json(R"("name":"only")"));
  }
  SECTION("unknown fields are ignored, however nested") {
    const std::string deep_unknown = std::string(100000, '[') + std::string(100000, ']');
    const auto req = parse<TraceRequest>(
        R"({"future":{"a":[1,{"b":null}]},"resourceSpans":[{"newThing":1,"scopeSpans":[{"spans":[{"name":"n","extra":"x","deep":)" +
        deep_unknown + R"(}]}]}],"zzz":true})");
    CHECK(to_json(req) == span_json(R"("name":"n")"));
  }
  SECTION("null means absent") {
    const auto req = parse<TraceRequest>(span_json(
        R"("traceId":null,"name":null,"status":null,"kind":null,"attributes":null,"startTimeUnixNano":null)"));
    CHECK(req.resource_spans(0).scope_spans(0).spans(0).ByteSizeLong() == 0);
    CHECK(to_json(parse<TraceRequest>(attribute_json(R"({"stringValue":null,"intValue":"3"})"))) ==
          attribute_json(R"({"intValue":"3"})"));
  }
  SECTION("ids: empty string is empty bytes, uppercase hex accepted") {
    const auto req = parse<TraceRequest>(
        span_json(R"("traceId":"","spanId":"EEE19B7EC3C1B174","parentSpanId":"")"));
    const Span& span = req.resource_spans(0).scope_spans(0).spans(0);
    CHECK(span.trace_id().empty());
    CHECK(span.span_id() == bytes_from_hex("eee19b7ec3c1b174"));
    CHECK(to_json(span) == R"({"spanId":"eee19b7ec3c1b174"})");
  }
  SECTION("base64 without padding and URL-safe alphabet") {
    for (auto [in, bytes] :
         {std::pair{"AQID_w", "\x01\x02\x03\xff"}, std::pair{"AQID-w==", "\x01\x02\x03\xfb"},
          std::pair{"YWI", "ab"}, std::pair{"YWJj", "abc"}}) {
      const auto req =
          parse<TraceRequest>(attribute_json(R"({"bytesValue":")" + std::string(in) + R"("})"));
      CHECK(req.resource_spans(0).scope_spans(0).spans(0).attributes(0).value().bytes_value() ==
            bytes);
    }
  }
  SECTION("nesting up to the limit is fine") {
    // Request, ResourceSpans, ScopeSpans, Span, KeyValue, AnyValue = 6 levels, +2 per array.
    const int max_arrays = (kMaxJsonDepth - 6) / 2;
    parse<TraceRequest>(attribute_json(nested_arrays(max_arrays)));
    std::string proto;
    REQUIRE(request_json_to_proto(Signal::traces, attribute_json(nested_arrays(max_arrays)),
                                  &proto) == "");
    std::string json;
    REQUIRE(request_proto_to_json(Signal::traces, proto, &json) == "");
    CHECK(json == attribute_json(nested_arrays(max_arrays)));
    CHECK(parse_error<TraceRequest>(attribute_json(nested_arrays(max_arrays + 1))) != "");
  }
}

TEST_CASE("errors name the JSON path", "[json_codec]") {
  const std::string span = std::string(kSpanPath);
  SECTION("the example from the API comment") {
    const std::string json =
        R"({"resourceSpans":[{"scopeSpans":[{"spans":[{},{},{"traceId":"5b8efff798038103d269b633813fc60"}]}]}]})";
    CHECK(parse_error<TraceRequest>(json) ==
          "resourceSpans[0].scopeSpans[0].spans[2].traceId: expected 32 hex characters, got 31");
  }
  SECTION("invalid JSON") {
    for (auto json : {"", "{", R"({"resourceSpans":[)", "{} x", "{'a':1}", R"({"a":01})", "nul",
                      R"({"a":"\ud800"})", "{\"a\":\"\xff\"}", "{\"a\":\"\x01\"}"}) {
      INFO(json);
      CHECK(parse_error<TraceRequest>(json).rfind("invalid JSON: ", 0) == 0);
    }
  }
  SECTION("wrong JSON types") {
    CHECK(parse_error<TraceRequest>("[]") == "expected object, got array");
    CHECK(parse_error<TraceRequest>("null") == "expected object, got null");
    CHECK(parse_error<TraceRequest>(R"({"resourceSpans":{}})") ==
          "resourceSpans: expected array, got object");
    CHECK(parse_error<TraceRequest>(R"({"resourceSpans":[5]})") ==
          "resourceSpans[0]: expected object, got number");
    CHECK(parse_error<TraceRequest>(span_json(R"("name":5)")) ==
          span + ".name: expected string, got number");
    CHECK(parse_error<TraceRequest>(span_json(R"("status":"ok")")) ==
          span + ".status: expected object, got string");
    CHECK(parse_error<TraceRequest>(span_json(R"("droppedLinksCount":true)")) ==
          span + ".droppedLinksCount: expected integer, got boolean");
    CHECK(parse_error<TraceRequest>(span_json(R"("startTimeUnixNano":[1])")) ==
          span + ".startTimeUnixNano: expected integer, got array");
    CHECK(parse_error<TraceRequest>(span_json(R"("traceId":5)")) ==
          span + ".traceId: expected string, got number");
    CHECK(parse_error<TraceRequest>(span_json(R"("kind":{})")) ==
          span + ".kind: expected enum integer or name, got object");
    CHECK(parse_error<TraceRequest>(attribute_json(R"({"boolValue":"true"})")) ==
          span + ".attributes[0].value.boolValue: expected boolean, got string");
    CHECK(parse_error<TraceRequest>(attribute_json(R"({"doubleValue":true})")) ==
          span + ".attributes[0].value.doubleValue: expected number, got boolean");
    CHECK(parse_error<TraceRequest>(attribute_json(R"({"doubleValue":"fast"})")) ==
          span + ".attributes[0].value.doubleValue: expected a number, got string \"fast\"");
    CHECK(parse_error<TraceRequest>(attribute_json(R"({"doubleValue":"inf"})")) ==
          span + ".attributes[0].value.doubleValue: expected a number, got string \"inf\"");
    CHECK(parse_error<TraceRequest>(attribute_json(R"({"intValue":"12a"})")) ==
          span + ".attributes[0].value.intValue: expected an integer, got string \"12a\"");
    CHECK(parse_error<TraceRequest>(attribute_json(R"({"intValue":""})")) ==
          span + ".attributes[0].value.intValue: expected an integer, got string \"\"");
    CHECK(parse_error<TraceRequest>(attribute_json(R"({"intValue":1.5})")) ==
          span + ".attributes[0].value.intValue: expected an integer, got 1.5");
    CHECK(parse_error<TraceRequest>(span_json(R"("attributes":[null])")) ==
          span + ".attributes[0]: null is not allowed in an array");
  }
  SECTION("bad ids") {
    CHECK(parse_error<TraceRequest>(span_json(R"("traceId":"5b8efff798038103d269b633813fc60g")")) ==
          span + ".traceId: invalid hex character at offset 31");
    CHECK(parse_error<TraceRequest>(span_json(R"("spanId":"xee19b7ec3c1b174")")) ==
          span + ".spanId: invalid hex character at offset 0");
    CHECK(parse_error<TraceRequest>(span_json(R"("spanId":"eee19b7ec3c1b1741234")")) ==
          span + ".spanId: expected 16 hex characters, got 20");
    CHECK(parse_error<TraceRequest>(span_json(R"("parentSpanId":"ab")")) ==
          span + ".parentSpanId: expected 16 hex characters, got 2");
    CHECK(parse_error<TraceRequest>(
              span_json(R"("links":[{"traceId":"5b8efff798038103d269b633813fc60c00"}])")) ==
          span + ".links[0].traceId: expected 32 hex characters, got 34");
    CHECK(
        parse_error<TraceRequest>(span_json(R"("traceId":"5b8efff798038103d269b633813fc60c=")")) ==
        span + ".traceId: expected 32 hex characters, got 33");
    CHECK(parse_error<LogsRequest>(
              R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[{"span_id":"0102"}]}]}]})") ==
          "resourceLogs[0].scopeLogs[0].logRecords[0].span_id: expected 16 hex characters, got 4");
    CHECK(
        parse_error<MetricsRequest>(
            R"({"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"exemplars":[{"traceId":"zz"}]}]}}]}]}]})") ==
        "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].exemplars[0].traceId: "
        "expected 32 hex characters, got 2");
  }
  SECTION("bad base64") {
    CHECK(parse_error<TraceRequest>(attribute_json(R"({"bytesValue":"!!!!"})")) ==
          span + ".attributes[0].value.bytesValue: invalid base64 character at offset 0");
    CHECK(parse_error<TraceRequest>(attribute_json(R"({"bytesValue":"QUJDR"})")) ==
          span + ".attributes[0].value.bytesValue: invalid base64 length");
    CHECK(parse_error<TraceRequest>(attribute_json(R"({"bytesValue":"Q==="})")) != "");
  }
  SECTION("numbers out of range") {
    CHECK(parse_error<TraceRequest>(span_json(R"("droppedAttributesCount":4294967296)")) ==
          span + ".droppedAttributesCount: out of range for uint32: 4294967296");
    CHECK(parse_error<TraceRequest>(span_json(R"("droppedAttributesCount":-1)")) ==
          span + ".droppedAttributesCount: out of range for uint32: -1");
    CHECK(parse_error<TraceRequest>(span_json(R"("flags":"4294967296")")) ==
          span + ".flags: out of range for fixed32: \"4294967296\"");
    CHECK(parse_error<TraceRequest>(span_json(R"("startTimeUnixNano":"18446744073709551616")")) ==
          span + ".startTimeUnixNano: out of range for fixed64: \"18446744073709551616\"");
    CHECK(parse_error<TraceRequest>(span_json(R"("startTimeUnixNano":18446744073709551616)")) ==
          span + ".startTimeUnixNano: out of range for fixed64: 1.8446744073709552e+19");
    CHECK(parse_error<TraceRequest>(span_json(R"("startTimeUnixNano":"-1")")) ==
          span + ".startTimeUnixNano: out of range for fixed64: \"-1\"");
    CHECK(parse_error<TraceRequest>(span_json(R"("startTimeUnixNano":-1)")) ==
          span + ".startTimeUnixNano: out of range for fixed64: -1");
    CHECK(parse_error<TraceRequest>(attribute_json(R"({"intValue":"9223372036854775808"})")) ==
          span + ".attributes[0].value.intValue: out of range for int64: \"9223372036854775808\"");
    CHECK(parse_error<TraceRequest>(attribute_json(R"({"intValue":9223372036854775808})")) ==
          span + ".attributes[0].value.intValue: out of range for int64: 9223372036854775808");
    CHECK(parse_error<TraceRequest>(attribute_json(R"({"intValue":-1e19})")) ==
          span + ".attributes[0].value.intValue: out of range for int64: -1e+19");
    CHECK(parse_error<TraceRequest>(span_json(R"("kind":2147483648)")) ==
          span + ".kind: out of range for enum: 2147483648");
    CHECK(parse_error<TraceRequest>(attribute_json(R"({"doubleValue":1e400})"))
              .rfind("invalid JSON: ", 0) == 0);
  }
  SECTION("bad enum names") {
    CHECK(parse_error<TraceRequest>(span_json(R"("kind":"SPAN_KIND_BOGUS")")) ==
          span +
              ".kind: unknown value \"SPAN_KIND_BOGUS\" for enum "
              "opentelemetry.proto.trace.v1.Span.SpanKind");
    CHECK(parse_error<TraceRequest>(span_json(R"("kind":"server")")) != "");
  }
  SECTION("ambiguous input") {
    CHECK(parse_error<TraceRequest>(attribute_json(R"({"stringValue":"a","intValue":"1"})")) ==
          span +
              ".attributes[0].value.stringValue: more than one member of oneof \"value\" is set");
    CHECK(parse_error<TraceRequest>(
              span_json(R"("traceId":"5b8efff798038103d269b633813fc60c","trace_id":"")")) ==
          span + ".trace_id: field also given as \"traceId\"");
  }
  SECTION("too deep nesting is refused, not a crash") {
    const std::string expected_suffix = ": nesting deeper than 64 levels";
    for (int depth : {30, 1000, 10000}) {
      const std::string error = parse_error<TraceRequest>(attribute_json(nested_arrays(depth)));
      INFO(depth);
      CHECK(error.size() > expected_suffix.size());
      CHECK(error.substr(error.size() - expected_suffix.size()) == expected_suffix);
      CHECK(error.rfind(span + ".attributes[0].value.arrayValue.values[0].arrayValue", 0) == 0);
    }
    std::string kvlist;
    for (int i = 0; i < 10000; ++i) kvlist += R"({"kvlistValue":{"values":[{"key":"k","value":)";
    kvlist += "{}";
    for (int i = 0; i < 10000; ++i) kvlist += "}]}}";
    std::string out;
    const std::string error = request_json_to_proto(
        Signal::logs,
        R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":)" + kvlist + "}]}]}]}", &out);
    CHECK(error.substr(error.size() - expected_suffix.size()) == expected_suffix);
    CHECK(out.empty());
  }
}

TEST_CASE("output is always valid JSON", "[json_codec]") {
  SECTION("control characters are escaped") {
    LogsRequest req;
    req.add_resource_logs()->add_scope_logs()->add_log_records()->mutable_body()->set_string_value(
        std::string("a\0b\x7f\b\f\r\t\x1b", 9));
    CHECK(to_json(req) ==
          R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"a\u0000b)"
          "\x7f"
          R"(\b\f\r\t\u001b"}}]}]}]})");
  }
  SECTION("malformed UTF-8 is replaced with U+FFFD") {
    Span span;
    span.set_name(
        "ok\xff"
        "x\xc3"
        "\xe2\x82"
        "end\xed\xa0\x80!\xf4\x90\x80\x80\xc0\xaf\xf0\x9f\x98\x80");
    CHECK(to_json(span) ==
          "{\"name\":\"ok\xEF\xBF\xBDx\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
          "end\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD!"
          "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xf0\x9f\x98\x80"
          "\"}");
    CHECK(nlohmann::json::accept(to_json(span)));
  }
  SECTION("message_to_json appends") {
    std::string out = "{\"prefix\":1} ";
    Span span;
    span.set_name("n");
    message_to_json(span, &out);
    CHECK(out == R"({"prefix":1} {"name":"n"})");
  }
}

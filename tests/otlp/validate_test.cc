// decodes_as_request against protobuf's parser on hand-made edge cases (the fuzz target
// fuzz_validate checks the same agreement on random inputs).
#include <catch2/catch.hpp>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/validate.h"
#include "otlp/wire.h"

using namespace otlpd::otlp;
namespace col = opentelemetry::proto::collector;

namespace {

std::string field(uint32_t number, const std::string& inner) {
  std::string out;
  append_tag(&out, number, 2);
  append_varint(&out, inner.size());
  return out + inner;
}

// A traces request with one span holding `span_body`.
std::string traces_with_span(const std::string& span_body) { return field(1, field(2, field(2, span_body))); }

bool protobuf_accepts_traces(const std::string& bytes) {
  col::trace::v1::ExportTraceServiceRequest r;
  return r.ParseFromString(bytes);
}

}  // namespace

TEST_CASE("valid requests of every signal are accepted", "[validate]") {
  col::trace::v1::ExportTraceServiceRequest t;
  auto* span = t.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_name("\xe2\x82\xac uro");
  span->add_attributes()->mutable_value()->mutable_kvlist_value()->add_values()->set_key("k");
  CHECK(decodes_as_request(Signal::traces, t.SerializeAsString()));
  col::metrics::v1::ExportMetricsServiceRequest m;
  auto* dp = m.add_resource_metrics()->add_scope_metrics()->add_metrics()->mutable_histogram()->add_data_points();
  dp->add_bucket_counts(3);
  dp->add_explicit_bounds(1.5);
  CHECK(decodes_as_request(Signal::metrics, m.SerializeAsString()));
  col::logs::v1::ExportLogsServiceRequest l;
  l.add_resource_logs()->add_scope_logs()->add_log_records()->mutable_body()->set_bytes_value("\xff\xfe");
  CHECK(decodes_as_request(Signal::logs, l.SerializeAsString()));  // bytes need not be UTF-8
  CHECK(decodes_as_request(Signal::traces, ""));
}

TEST_CASE("the validator rejects exactly what protobuf rejects", "[validate]") {
  struct Case {
    const char* what;
    std::string bytes;
    bool valid;
  };
  std::string deep_value;  // AnyValue nested through array values
  for (int i = 0; i < 120; ++i) deep_value = field(5, field(1, deep_value));
  std::string shallow_value;
  for (int i = 0; i < 10; ++i) shallow_value = field(5, field(1, shallow_value));
  std::string group;  // an unknown group field 20 holding a varint, then its end tag
  append_tag(&group, 20, 3);
  append_tag(&group, 1, 0);
  append_varint(&group, 7);
  append_tag(&group, 20, 4);
  std::string stray_end;
  append_tag(&stray_end, 20, 4);
  std::string padded_tag("\xaa\x80\x80\x80\x80\x00", 6);  // field 5 as a 6-byte varint
  const std::vector<Case> cases = {
      {"invalid UTF-8 in a span name", traces_with_span(field(5, "\xff")), false},
      {"overlong UTF-8", traces_with_span(field(5, "\xc0\xaf")), false},
      {"a surrogate in UTF-8", traces_with_span(field(5, "\xed\xa0\x80")), false},
      {"invalid UTF-8 in a nested attribute key", traces_with_span(field(9, field(1, "\xfe"))), false},
      {"bytes field with any content", traces_with_span(field(1, "\xff\xff")), true},
      {"a broken nested KeyValue", traces_with_span(field(9, std::string("\x0a\x05" "ab", 4))), false},
      {"unknown fields", traces_with_span(field(99, "anything")), true},
      {"an unknown group", traces_with_span(group), true},
      {"a stray end-group tag", traces_with_span(stray_end), false},
      {"a known string sent as a varint", traces_with_span(std::string("\x28\x01", 2)), true},
      {"a 6-byte tag", traces_with_span(padded_tag + std::string("\x01", 1)), false},
      {"values nested 10 deep", traces_with_span(field(9, field(2, shallow_value))), true},
      {"values nested past the recursion limit", traces_with_span(field(9, field(2, deep_value))), false},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    CHECK(protobuf_accepts_traces(c.bytes) == c.valid);
    CHECK(decodes_as_request(Signal::traces, c.bytes) == c.valid);
  }
}

TEST_CASE("packed repeated fields are checked like protobuf does", "[validate]") {
  auto histogram_with = [](const std::string& point_body) {
    return field(1, field(2, field(2, field(9, field(1, point_body)))));
  };
  auto protobuf_accepts = [](const std::string& bytes) {
    col::metrics::v1::ExportMetricsServiceRequest r;
    return r.ParseFromString(bytes);
  };
  const std::string good = histogram_with(field(6, std::string(16, '\x01')));
  const std::string bad = histogram_with(field(6, std::string(12, '\x01')));  // not a multiple of 8
  CHECK(protobuf_accepts(good));
  CHECK(decodes_as_request(Signal::metrics, good));
  CHECK_FALSE(protobuf_accepts(bad));
  CHECK_FALSE(decodes_as_request(Signal::metrics, bad));
}

TEST_CASE("check_request validates and counts in one pass, with count_items' framing rules", "[validate]") {
  col::metrics::v1::ExportMetricsServiceRequest m;
  auto* sm = m.add_resource_metrics()->add_scope_metrics();
  for (int i = 0; i < 3; ++i) sm->add_metrics()->mutable_gauge()->add_data_points()->set_as_int(i);
  auto* h = sm->add_metrics()->mutable_histogram();
  h->add_data_points()->add_exemplars()->set_as_int(1);  // exemplars are not items
  h->add_data_points();
  sm->add_metrics()->mutable_summary()->add_data_points();
  const CheckResult metrics = check_request(Signal::metrics, m.SerializeAsString());
  CHECK(metrics.ok);
  CHECK(metrics.items == 6);
  CHECK(count_items(Signal::metrics, m.SerializeAsString()).items == 6);

  std::string group;  // an unknown group: protobuf skips it, count_items refuses it at the envelope levels
  append_tag(&group, 20, 3);
  append_tag(&group, 20, 4);
  std::string span_as_varint;  // ScopeSpans.spans (2) sent as a varint
  append_tag(&span_as_varint, 2, 0);
  append_varint(&span_as_varint, 1);
  struct Case {
    const char* what;
    std::string bytes;
    bool ok;
    size_t items;
  };
  const std::vector<Case> cases = {
      {"two spans", field(1, field(2, field(2, "") + field(2, field(5, "a")))), true, 2},
      {"an empty request", "", true, 0},
      {"a group inside a span", traces_with_span(group), false, 0},
      {"a group inside an attribute", traces_with_span(field(9, group)), true, 1},
      {"spans field as a varint", field(1, field(2, span_as_varint)), false, 0},
      {"invalid UTF-8 in a span", traces_with_span(field(5, "\xff")), false, 0},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    const CheckResult r = check_request(Signal::traces, c.bytes);
    const WalkResult walk = count_items(Signal::traces, c.bytes);
    CHECK(r.ok == c.ok);
    CHECK(r.ok == (walk.ok && decodes_as_request(Signal::traces, c.bytes)));
    if (c.ok) {
      CHECK(r.items == c.items);
      CHECK(walk.items == c.items);
    }
  }
}

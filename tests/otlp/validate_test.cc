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

// The KeyValue / AnyValue fast paths take only the common layout (key then one scalar value,
// one-byte keys and lengths, ASCII) and leave everything else to the generic walk. Each case
// here sits on or just past an edge of that layout; all must get protobuf's verdict, and
// check_request must equal count_items && decodes_as_request.
namespace {

std::string varint_field(uint32_t number, uint64_t v) {
  std::string out;
  append_tag(&out, number, 0);
  append_varint(&out, v);
  return out;
}

std::string fixed64_field(uint32_t number, const std::string& eight_bytes) {
  std::string out;
  append_tag(&out, number, 1);
  return out + eight_bytes;
}

// A KeyValue holding `value` (AnyValue bytes) under key `key`.
std::string kv(const std::string& key, const std::string& value) { return field(1, key) + field(2, value); }

// A traces request whose one span has the given serialized KeyValues as attributes (field 9).
std::string span_with_attributes(const std::vector<std::string>& kvs) {
  std::string body = field(5, "span");
  for (const auto& k : kvs) body += field(9, k);
  return traces_with_span(body);
}

// A logs request whose one record has body `any_value` (field 5).
std::string log_with_body(const std::string& any_value) { return field(1, field(2, field(2, field(5, any_value)))); }

template <typename Request>
bool protobuf_accepts(const std::string& bytes) {
  Request r;
  return r.ParseFromString(bytes);
}

bool protobuf_accepts(Signal signal, const std::string& bytes) {
  switch (signal) {
    case Signal::traces: return protobuf_accepts<col::trace::v1::ExportTraceServiceRequest>(bytes);
    case Signal::metrics: return protobuf_accepts<col::metrics::v1::ExportMetricsServiceRequest>(bytes);
    case Signal::logs: return protobuf_accepts<col::logs::v1::ExportLogsServiceRequest>(bytes);
  }
  return false;
}

// Checks both functions against protobuf and count_items; returns protobuf's verdict.
bool check_agreement(Signal signal, const std::string& bytes) {
  const bool expected = protobuf_accepts(signal, bytes);
  CHECK(decodes_as_request(signal, bytes) == expected);
  const WalkResult walk = count_items(signal, bytes);
  const CheckResult r = check_request(signal, bytes);
  CHECK(r.ok == (walk.ok && expected));
  if (r.ok) CHECK(r.items == walk.items);
  return expected;
}

// AnyValue scalars, as protobuf writes them.
std::string string_value(const std::string& s) { return field(1, s); }
std::string bool_value(bool b) { return varint_field(2, b ? 1 : 0); }
std::string int_value(int64_t i) { return varint_field(3, static_cast<uint64_t>(i)); }
std::string double_value() { return fixed64_field(4, std::string("\x00\x00\x00\x00\x00\x00\xf0\x3f", 8)); }
std::string bytes_value(const std::string& b) { return field(7, b); }

}  // namespace

TEST_CASE("KeyValue and AnyValue layouts off the fast path get protobuf's verdict", "[validate]") {
  struct Case {
    const char* what;
    std::string bytes;
    bool valid;
  };
  const std::string long_text(200, 'x');  // needs a two-byte length
  const std::string ten_byte_int = std::string("\x18", 1) + std::string(9, '\xff') + std::string("\x01", 1);
  const std::string eleven_byte_int = std::string("\x18", 1) + std::string(10, '\xff') + std::string("\x01", 1);
  const std::string padded_key_length = std::string("\x0a\x81\x00", 3) + "k" + field(2, int_value(1));
  const std::vector<Case> cases = {
      {"every scalar type", span_with_attributes({kv("s", string_value("v")), kv("b", bool_value(true)),
                                                  kv("i", int_value(70000)), kv("d", double_value()),
                                                  kv("y", bytes_value("\xff\x00"))}), true},
      {"an empty key and an empty string", span_with_attributes({kv("", string_value(""))}), true},
      {"a negative int (ten-byte varint)", span_with_attributes({kv("i", int_value(-1))}), true},
      {"a ten-byte varint ending high", span_with_attributes({kv("i", ten_byte_int)}), true},
      {"an eleven-byte varint", span_with_attributes({kv("i", eleven_byte_int)}), false},
      {"a truncated varint", span_with_attributes({kv("i", std::string("\x18\x80", 2))}), false},
      {"a truncated double", span_with_attributes({kv("d", std::string("\x21\x00\x00\x00", 4))}), false},
      {"value before key", span_with_attributes({field(2, int_value(1)) + field(1, "k")}), true},
      {"a duplicated key", span_with_attributes({field(1, "a") + kv("b", int_value(1))}), true},
      {"a duplicated value", span_with_attributes({kv("k", int_value(1)) + field(2, string_value("x"))}), true},
      {"a duplicated invalid value", span_with_attributes({kv("k", int_value(1)) + field(2, string_value("\xff"))}),
       false},
      {"an unknown field in a KeyValue", span_with_attributes({kv("k", int_value(1)) + varint_field(7, 3)}), true},
      {"an unknown field in an AnyValue", span_with_attributes({kv("k", int_value(1) + field(9, "\xff"))}), true},
      {"two value fields in an AnyValue", span_with_attributes({kv("k", string_value("a") + int_value(2))}), true},
      {"two values, the second invalid", span_with_attributes({kv("k", int_value(2) + string_value("\xc3"))}),
       false},
      {"an empty AnyValue", span_with_attributes({kv("k", "")}), true},
      {"no value", span_with_attributes({field(1, "k")}), true},
      {"an empty KeyValue", span_with_attributes({""}), true},
      {"a key sent as a varint", span_with_attributes({varint_field(1, 5) + field(2, int_value(1))}), true},
      {"a string value sent as a varint", span_with_attributes({kv("k", varint_field(1, 5))}), true},
      {"an int value sent length-delimited", span_with_attributes({kv("k", field(3, "ab"))}), true},
      {"a bool value sent as fixed64", span_with_attributes({kv("k", fixed64_field(2, std::string(8, '\xff')))}),
       true},
      {"a padded key length", span_with_attributes({padded_key_length}), true},
      {"a long key", span_with_attributes({kv(long_text, int_value(1))}), true},
      {"a long string value", span_with_attributes({kv("k", string_value(long_text))}), true},
      {"a long value, invalid at its end", span_with_attributes({kv("k", string_value(long_text + "\xe2"))}), false},
      {"a string length past its AnyValue", span_with_attributes({kv("k", std::string("\x0a\x05" "ab", 4))}), false},
      {"a value length past its KeyValue", span_with_attributes({std::string("\x0a\x01k\x12\x05\x10\x01", 7)}),
       false},
      {"invalid UTF-8 in a key", span_with_attributes({kv("ke\xffy", int_value(1))}), false},
      {"invalid UTF-8 in a string value", span_with_attributes({kv("k", string_value("va\x80lue"))}), false},
      {"an overlong form in a value", span_with_attributes({kv("k", string_value("\xc1\xbf"))}), false},
      {"a surrogate in a key", span_with_attributes({kv("\xed\xb0\x80", string_value("v"))}), false},
      {"valid UTF-8 in key and value", span_with_attributes({kv("cl\xc3\xa9", string_value("\xe2\x82\xac\xf0\x9f\x98\x80"))}),
       true},
      {"invalid UTF-8 in bytes", span_with_attributes({kv("k", bytes_value("\xff\xfe"))}), true},
      {"scalars in an array", span_with_attributes({kv("a", field(5, field(1, int_value(1)) + field(1, string_value("x"))))}),
       true},
      {"invalid UTF-8 in an array element", span_with_attributes({kv("a", field(5, field(1, string_value("\xff"))))}),
       false},
      {"a kvlist", span_with_attributes({kv("l", field(6, field(1, kv("in", bool_value(false)))))}), true},
      {"invalid UTF-8 in a kvlist key", span_with_attributes({kv("l", field(6, field(1, kv("\xff", int_value(1)))))}),
       false},
      {"a group inside an AnyValue", span_with_attributes({kv("k", std::string("\x1b\x1c", 2))}), true},
      {"a stray end-group inside a KeyValue", span_with_attributes({kv("k", int_value(1)) + std::string("\x0c", 1)}),
       false},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    CHECK(check_agreement(Signal::traces, c.bytes) == c.valid);
  }
}

TEST_CASE("AnyValue bodies off the fast path get protobuf's verdict", "[validate]") {
  struct Case {
    const char* what;
    std::string body;
    bool valid;
  };
  const std::vector<Case> cases = {
      {"a string", string_value("hello"), true},
      {"an int", int_value(1234567), true},
      {"a double", double_value(), true},
      {"bytes", bytes_value("\x80"), true},
      {"empty", "", true},
      {"invalid UTF-8", string_value("caf\xc3"), false},
      {"non-ASCII UTF-8", string_value("caf\xc3\xa9"), true},
      {"two values", string_value("a") + bool_value(true), true},
      {"an unknown field", int_value(1) + varint_field(12, 1), true},
      {"a long string", string_value(std::string(300, 'b')), true},
      {"a truncated string", std::string("\x0a\x09" "abc", 5), false},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    CHECK(check_agreement(Signal::logs, log_with_body(c.body)) == c.valid);
  }
}

TEST_CASE("nested arrays and kvlists around the recursion limit", "[validate]") {
  // A span attribute's KeyValue sits at depth 4 (request 0, resource 1, scope 2, span 3), its
  // AnyValue at 5. An array wrapper adds two levels (ArrayValue, AnyValue), a kvlist wrapper
  // three (KeyValueList, KeyValue, AnyValue), so mixing them puts the innermost KeyValue and
  // AnyValue at every depth around the limit of 100, for every scalar kind.
  const std::vector<std::string> scalars = {string_value("x"), int_value(300), double_value(), ""};
  size_t accepted = 0, refused = 0;
  for (const std::string& scalar : scalars) {
    for (int kvlists = 0; kvlists <= 32; ++kvlists) {
      for (int arrays = 0; arrays <= 50; ++arrays) {
        const int depth = 5 + 2 * arrays + 3 * kvlists;  // of the innermost AnyValue
        if (depth < 96 || depth > 104) continue;
        std::string value = scalar;
        for (int i = 0; i < kvlists; ++i) value = field(6, field(1, kv("k", value)));
        for (int i = 0; i < arrays; ++i) value = field(5, field(1, value));
        INFO("arrays " << arrays << ", kvlists " << kvlists << ", innermost AnyValue at depth " << depth);
        const bool ok = check_agreement(Signal::traces, span_with_attributes({kv("k", value)}));
        CHECK(ok == (depth <= 100));
        ++(ok ? accepted : refused);
      }
    }
  }
  CHECK(accepted > 0);
  CHECK(refused > 0);
}

TEST_CASE("length prefixes longer than protobuf reads are refused", "[validate]") {
  // resource_spans with an empty message whose length is written in 6 bytes (padded zero), and in 5.
  const std::string six("\x0a\x80\x80\x80\x80\x80\x00", 7);
  const std::string five("\x0a\x80\x80\x80\x80\x00", 6);
  CHECK_FALSE(protobuf_accepts_traces(six));
  CHECK_FALSE(decodes_as_request(Signal::traces, six));
  CHECK_FALSE(check_request(Signal::traces, six).ok);
  CHECK(protobuf_accepts_traces(five));
  CHECK(decodes_as_request(Signal::traces, five));
  CHECK(check_request(Signal::traces, five).ok);
}

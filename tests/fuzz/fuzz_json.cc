// OTLP/JSON on arbitrary text: never crash; whatever is accepted converts to a request that walks
// cleanly and survives a protobuf -> JSON -> protobuf round trip byte for byte. Differential: the
// fast path (json_wire.h) accepts exactly what the slow path (json_to_message) accepts, and its
// bytes parse to the same message, in canonical encoding.
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "fuzz/fuzz_target.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/json_codec.h"
#include "otlp/json_wire.h"
#include "otlp/response.h"
#include "otlp/wire.h"

using namespace otlpd::otlp;

namespace {

// Prints the input (to reproduce) and which check failed, then aborts.
[[noreturn]] void fail(std::string_view json, const char* what) {
  std::fprintf(stderr, "%s on input of %zu bytes:\n", what, json.size());
  std::fwrite(json.data(), 1, json.size(), stderr);
  std::fputc('\n', stderr);
  std::abort();
}

// Aborts unless both paths accept or both refuse, with the same message when they accept.
// Messages are compared as re-serialized bytes (NaN-safe, and -0.0 differs from 0.0).
void check_fast_equals_slow(Signal signal, std::string_view json) {
  const auto slow = new_request(signal);
  const bool slow_ok = json_to_message(json, *slow).empty();
  std::string fast;
  const bool fast_ok = json_to_request_wire(signal, json, &fast);
  if (fast_ok != slow_ok) fail(json, fast_ok ? "only the fast path accepts" : "only the slow path accepts");
  if (!fast_ok) {
    if (!fast.empty()) fail(json, "output left after refusal");
    return;
  }
  const auto parsed = new_request(signal);
  if (!parsed->ParseFromString(fast)) fail(json, "fast path output does not parse");
  if (fast.size() != slow->ByteSizeLong()) fail(json, "fast path output is not canonical");
  if (parsed->SerializeAsString() != slow->SerializeAsString()) fail(json, "messages differ");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  for (Signal signal : {Signal::traces, Signal::metrics, Signal::logs}) {
    check_fast_equals_slow(signal, json);
    std::string proto;
    if (!request_json_to_proto(signal, json, &proto).empty()) continue;
    if (!count_items(signal, proto).ok) fail(json, "count_items refuses the output");
    std::string back_json, back_proto;
    if (!request_proto_to_json(signal, proto, &back_json).empty()) fail(json, "cannot render as JSON");
    if (!request_json_to_proto(signal, back_json, &back_proto).empty()) fail(json, "rendered JSON refused");
    // Field order follows the JSON text, so compare protobuf's own encodings of the two.
    const auto first = new_request(signal), second = new_request(signal);
    if (!first->ParseFromString(proto) || !second->ParseFromString(back_proto) ||
        first->SerializeAsString() != second->SerializeAsString()) {
      fail(json, "round trip changed the request");
    }
  }
  return 0;
}

std::vector<std::string> fuzz_seeds() {
  return {
      R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"a"}}]},)"
      R"("scopeSpans":[{"scope":{"name":"s"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",)"
      R"("spanId":"eee19b7ec3c1b174","name":"x","kind":2,"startTimeUnixNano":"1700000000000000000",)"
      R"("attributes":[{"key":"n","value":{"intValue":"5"}},{"key":"a","value":{"arrayValue":{"values":[{"doubleValue":1.5}]}}}],)"
      R"("status":{"code":2,"message":"bad"}}]}]}]})",
      R"({"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","sum":{"dataPoints":[{"asInt":"3",)"
      R"("timeUnixNano":"1"}],"aggregationTemporality":2,"isMonotonic":true}},{"name":"h","histogram":)"
      R"({"dataPoints":[{"count":"2","sum":3.5,"bucketCounts":["1","1"],"explicitBounds":[1]}]}}]}]}]})",
      R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1","severityNumber":9,)"
      R"("severityText":"INFO","body":{"kvlistValue":{"values":[{"key":"k","value":{"bytesValue":"AAE="}}]}},)"
      R"("traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}]})",
      // Spellings and shapes the fast path must treat exactly like the slow path.
      R"({"resource_spans":[{"scope_spans":[{"spans":[{"trace_id":"5B8EFFF798038103D269B633813FC60C",)"
      R"("kind":"SPAN_KIND_CLIENT","name":"a","name":"b","flags":1e2,"status":null,"x":[1e-400,{"y":"\u00e9"}],)"
      R"("attributes":[{"key":"k","value":{"string_value":"\ud83d\ude00","intValue":null}}]}]}]}]})",
      R"({"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"exponentialHistogram":{"dataPoints":[{"scale":-3,)"
      R"("zeroThreshold":-0.0,"sum":"NaN","min":0,"max":"-Infinity","positive":{"offset":"-1","bucketCounts":[1,"2"]}}],)"
      R"("aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA"}},{"summary":{"dataPoints":[{"quantileValues":[{}]}]}},)"
      R"({"gauge":{"dataPoints":[{"asDouble":-0,"exemplars":[{"as_int":-1,"span_id":""}]}]}}]}]}]})",
  };
}

// OTLP/JSON on arbitrary text: never crash; whatever is accepted converts to a request that walks
// cleanly and survives a protobuf -> JSON -> protobuf round trip byte for byte.
#include <cstdlib>

#include "fuzz/fuzz_target.h"
#include "otlp/json_codec.h"
#include "otlp/wire.h"

using namespace otlpd::otlp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  for (Signal signal : {Signal::traces, Signal::metrics, Signal::logs}) {
    std::string proto;
    if (!request_json_to_proto(signal, json, &proto).empty()) continue;
    if (!count_items(signal, proto).ok) std::abort();
    std::string back_json, back_proto;
    if (!request_proto_to_json(signal, proto, &back_json).empty()) std::abort();
    if (!request_json_to_proto(signal, back_json, &back_proto).empty()) std::abort();
    if (back_proto != proto) std::abort();
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
  };
}

// Micro benchmark of OTLP/JSON -> protobuf conversion on one core: items/s of the slow path
// (nlohmann DOM + protobuf reflection + serialize, what request_json_to_proto did before the fast
// path) and of request_json_to_proto (the json_wire fast path), on otlpd-loadgen's JSON payloads.
// Usage: otlpd-json-bench [seconds per measurement, default 2]
#include <google/protobuf/message.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "bench/loadgen/payload.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/json_codec.h"

namespace {

using namespace otlpd;
constexpr size_t kItemsPerRequest = 100;
constexpr size_t kRequests = 32;  // distinct requests cycled through (ids differ in each)

std::unique_ptr<google::protobuf::Message> new_request(otlp::Signal signal) {
  switch (signal) {
    case otlp::Signal::traces:
      return std::make_unique<opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest>();
    case otlp::Signal::metrics:
      return std::make_unique<opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest>();
    case otlp::Signal::logs:
      return std::make_unique<opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest>();
  }
  return nullptr;
}

// The conversion request_json_to_proto did before the fast path existed.
bool slow_path(otlp::Signal signal, const std::string& json, std::string* out) {
  const auto request = new_request(signal);
  return otlp::json_to_message(json, *request).empty() && request->AppendToString(out);
}

bool fast_path(otlp::Signal signal, const std::string& json, std::string* out) {
  return otlp::request_json_to_proto(signal, json, out).empty();
}

// Runs `convert` over the payloads for about `seconds`; returns items per second.
template <typename Convert>
double measure(otlp::Signal signal, const std::vector<std::string>& payloads, double seconds,
               Convert convert) {
  using Clock = std::chrono::steady_clock;
  std::string out;
  size_t requests = 0;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < deadline) {
    for (const std::string& json : payloads) {
      out.clear();
      if (!convert(signal, json, &out)) {
        std::fprintf(stderr, "conversion failed\n");
        std::exit(1);
      }
    }
    requests += payloads.size();
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  return static_cast<double>(requests * kItemsPerRequest) / elapsed;
}

const char* name_of(otlp::Signal signal) {
  switch (signal) {
    case otlp::Signal::traces: return "traces (spans/s)";
    case otlp::Signal::metrics: return "metrics (points/s)";
    case otlp::Signal::logs: return "logs (records/s)";
  }
  return "?";
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  for (otlp::Signal signal : {otlp::Signal::traces, otlp::Signal::metrics, otlp::Signal::logs}) {
    loadgen::PayloadOptions options;
    options.signal = signal;
    options.format = loadgen::Format::json;
    options.items_per_request = kItemsPerRequest;
    const loadgen::PayloadGenerator generator(options);
    std::vector<std::string> payloads(kRequests);
    size_t bytes = 0;
    for (size_t i = 0; i < kRequests; ++i) {
      generator.make(i, &payloads[i]);
      bytes += payloads[i].size();
    }
    // Both paths must agree before their speed means anything.
    for (const std::string& json : payloads) {
      std::string slow, fast;
      if (!slow_path(signal, json, &slow) || !fast_path(signal, json, &fast)) return 1;
      auto a = new_request(signal), b = new_request(signal);
      if (!a->ParseFromString(slow) || !b->ParseFromString(fast) ||
          a->SerializeAsString() != b->SerializeAsString()) {
        std::fprintf(stderr, "fast and slow paths disagree\n");
        return 1;
      }
    }
    const double slow = measure(signal, payloads, seconds, slow_path);
    const double fast = measure(signal, payloads, seconds, fast_path);
    std::printf("%-20s %zu items/request, %zu bytes/request: before (DOM + reflection) %.0f/s, "
                "after (request_json_to_proto) %.0f/s, x%.1f\n",
                name_of(signal), kItemsPerRequest, bytes / kRequests, slow, fast, fast / slow);
  }
  return 0;
}

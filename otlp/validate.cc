#include "otlp/validate.h"

#include <google/protobuf/arena.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace otlpd::otlp {

namespace {
template <typename Request>
bool parses(google::protobuf::Arena& arena, std::string_view bytes) {
  auto* message = google::protobuf::Arena::CreateMessage<Request>(&arena);
  return message->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}
}  // namespace

bool decodes_as_request(Signal signal, std::string_view request) {
  namespace col = opentelemetry::proto::collector;
  // One arena per thread, emptied after each request: no heap traffic per message object.
  thread_local google::protobuf::Arena arena;
  bool ok = false;
  switch (signal) {
    case Signal::traces: ok = parses<col::trace::v1::ExportTraceServiceRequest>(arena, request); break;
    case Signal::metrics: ok = parses<col::metrics::v1::ExportMetricsServiceRequest>(arena, request); break;
    case Signal::logs: ok = parses<col::logs::v1::ExportLogsServiceRequest>(arena, request); break;
  }
  arena.Reset();
  return ok;
}

}  // namespace otlpd::otlp

#include "otlp/response.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace otlpd::otlp {

namespace col = opentelemetry::proto::collector;

std::unique_ptr<google::protobuf::Message> new_request(Signal signal) {
  switch (signal) {
    case Signal::traces: return std::make_unique<col::trace::v1::ExportTraceServiceRequest>();
    case Signal::metrics: return std::make_unique<col::metrics::v1::ExportMetricsServiceRequest>();
    case Signal::logs: return std::make_unique<col::logs::v1::ExportLogsServiceRequest>();
  }
  return nullptr;
}

std::unique_ptr<google::protobuf::Message> new_response(Signal signal) {
  switch (signal) {
    case Signal::traces: return std::make_unique<col::trace::v1::ExportTraceServiceResponse>();
    case Signal::metrics: return std::make_unique<col::metrics::v1::ExportMetricsServiceResponse>();
    case Signal::logs: return std::make_unique<col::logs::v1::ExportLogsServiceResponse>();
  }
  return nullptr;
}

std::unique_ptr<google::protobuf::Message> make_response(Signal signal, const PartialSuccess& partial) {
  auto response = new_response(signal);
  if (partial.rejected == 0 && partial.message.empty()) return response;
  switch (signal) {
    case Signal::traces: {
      auto* p = static_cast<col::trace::v1::ExportTraceServiceResponse&>(*response).mutable_partial_success();
      p->set_rejected_spans(partial.rejected);
      p->set_error_message(partial.message);
      break;
    }
    case Signal::metrics: {
      auto* p = static_cast<col::metrics::v1::ExportMetricsServiceResponse&>(*response).mutable_partial_success();
      p->set_rejected_data_points(partial.rejected);
      p->set_error_message(partial.message);
      break;
    }
    case Signal::logs: {
      auto* p = static_cast<col::logs::v1::ExportLogsServiceResponse&>(*response).mutable_partial_success();
      p->set_rejected_log_records(partial.rejected);
      p->set_error_message(partial.message);
      break;
    }
  }
  return response;
}

PartialSuccess partial_success_of(Signal signal, const google::protobuf::Message& response) {
  switch (signal) {
    case Signal::traces: {
      const auto& p = static_cast<const col::trace::v1::ExportTraceServiceResponse&>(response).partial_success();
      return {p.rejected_spans(), p.error_message()};
    }
    case Signal::metrics: {
      const auto& p = static_cast<const col::metrics::v1::ExportMetricsServiceResponse&>(response).partial_success();
      return {p.rejected_data_points(), p.error_message()};
    }
    case Signal::logs: {
      const auto& p = static_cast<const col::logs::v1::ExportLogsServiceResponse&>(response).partial_success();
      return {p.rejected_log_records(), p.error_message()};
    }
  }
  return {};
}

}  // namespace otlpd::otlp

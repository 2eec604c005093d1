#include "exporters/debug/debug_exporter.h"

#include <mutex>

#include <google/protobuf/text_format.h>

#include "exporters/common/queued_exporter.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/wire.h"

namespace otlpd {

namespace {

namespace common = opentelemetry::proto::common::v1;
namespace col = opentelemetry::proto::collector;
namespace metrics = opentelemetry::proto::metrics::v1;

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

void append_value(const common::AnyValue& v, std::string* out);

void append_attributes(const google::protobuf::RepeatedPtrField<common::KeyValue>& attrs, std::string* out) {
  *out += '{';
  for (int i = 0; i < attrs.size(); ++i) {
    if (i) *out += ", ";
    *out += attrs[i].key();
    *out += '=';
    append_value(attrs[i].value(), out);
  }
  *out += '}';
}

void append_value(const common::AnyValue& v, std::string* out) {
  switch (v.value_case()) {
    case common::AnyValue::kStringValue: *out += v.string_value(); break;
    case common::AnyValue::kBoolValue: *out += v.bool_value() ? "true" : "false"; break;
    case common::AnyValue::kIntValue: *out += std::to_string(v.int_value()); break;
    case common::AnyValue::kDoubleValue: *out += std::to_string(v.double_value()); break;
    case common::AnyValue::kBytesValue: *out += hex(v.bytes_value()); break;
    case common::AnyValue::kArrayValue: {
      *out += '[';
      for (int i = 0; i < v.array_value().values_size(); ++i) {
        if (i) *out += ", ";
        append_value(v.array_value().values(i), out);
      }
      *out += ']';
      break;
    }
    case common::AnyValue::kKvlistValue: append_attributes(v.kvlist_value().values(), out); break;
    case common::AnyValue::VALUE_NOT_SET: break;
  }
}

void render_traces(const col::trace::v1::ExportTraceServiceRequest& req, std::string* out) {
  for (const auto& rs : req.resource_spans()) {
    for (const auto& ss : rs.scope_spans()) {
      for (const auto& span : ss.spans()) {
        *out += "span " + span.name() + " trace_id=" + hex(span.trace_id()) + " span_id=" + hex(span.span_id());
        if (!span.parent_span_id().empty()) *out += " parent_span_id=" + hex(span.parent_span_id());
        *out += " kind=" + std::to_string(span.kind()) +
                " duration_ns=" + std::to_string(span.end_time_unix_nano() - span.start_time_unix_nano()) +
                " status=" + std::to_string(span.status().code()) + " attributes=";
        append_attributes(span.attributes(), out);
        *out += '\n';
      }
    }
  }
}

template <typename Points>
void render_number_points(const std::string& name, const Points& points, std::string* out) {
  for (const auto& p : points) {
    *out += "metric " + name + " value=";
    *out += p.value_case() == metrics::NumberDataPoint::kAsInt ? std::to_string(p.as_int())
                                                               : std::to_string(p.as_double());
    *out += " attributes=";
    append_attributes(p.attributes(), out);
    *out += '\n';
  }
}

template <typename Points>
void render_distribution_points(const std::string& name, const Points& points, std::string* out) {
  for (const auto& p : points) {
    *out += "metric " + name + " count=" + std::to_string(p.count()) + " sum=" + std::to_string(p.sum()) +
            " attributes=";
    append_attributes(p.attributes(), out);
    *out += '\n';
  }
}

void render_metrics(const col::metrics::v1::ExportMetricsServiceRequest& req, std::string* out) {
  for (const auto& rm : req.resource_metrics()) {
    for (const auto& sm : rm.scope_metrics()) {
      for (const auto& m : sm.metrics()) {
        switch (m.data_case()) {
          case metrics::Metric::kGauge: render_number_points(m.name(), m.gauge().data_points(), out); break;
          case metrics::Metric::kSum: render_number_points(m.name(), m.sum().data_points(), out); break;
          case metrics::Metric::kHistogram:
            render_distribution_points(m.name(), m.histogram().data_points(), out);
            break;
          case metrics::Metric::kExponentialHistogram:
            render_distribution_points(m.name(), m.exponential_histogram().data_points(), out);
            break;
          case metrics::Metric::kSummary: render_distribution_points(m.name(), m.summary().data_points(), out); break;
          case metrics::Metric::DATA_NOT_SET: break;
        }
      }
    }
  }
}

void render_logs(const col::logs::v1::ExportLogsServiceRequest& req, std::string* out) {
  for (const auto& rl : req.resource_logs()) {
    for (const auto& sl : rl.scope_logs()) {
      for (const auto& log : sl.log_records()) {
        *out += "log severity=" + std::to_string(log.severity_number());
        if (!log.severity_text().empty()) *out += " " + log.severity_text();
        *out += " body=";
        append_value(log.body(), out);
        *out += " attributes=";
        append_attributes(log.attributes(), out);
        *out += '\n';
      }
    }
  }
}

template <typename Request>
bool render_request(DebugExporterConfig::Verbosity verbosity, const std::string& payload,
                    void (*per_item)(const Request&, std::string*), std::string* out) {
  Request req;
  if (!req.ParseFromString(payload)) return false;
  if (verbosity == DebugExporterConfig::Verbosity::detailed) {
    std::string text;
    google::protobuf::TextFormat::PrintToString(req, &text);
    *out += text;
  } else {
    per_item(req, out);
  }
  return true;
}

class DebugSender : public Sender {
 public:
  DebugSender(DebugExporterConfig::Verbosity verbosity, std::FILE* out) : verbosity_(verbosity), out_(out) {}

  void send(BatchPtr batch, Clock::time_point, Done done) override {
    std::string text;
    if (!render_debug(verbosity_, *batch, &text)) {
      done(Status::invalid_argument("batch does not decode as OTLP"));
      return;
    }
    static std::mutex write_mu;  // one batch's lines stay together on the shared stream
    {
      std::lock_guard lock(write_mu);
      std::fwrite(text.data(), 1, text.size(), out_);
      std::fflush(out_);
    }
    done(Status::ok());
  }

 private:
  const DebugExporterConfig::Verbosity verbosity_;
  std::FILE* out_;
};

}  // namespace

bool render_debug(DebugExporterConfig::Verbosity verbosity, const Batch& batch, std::string* out) {
  std::string signal(otlp::signal_name(batch.signal));
  signal[0] = static_cast<char>(std::toupper(signal[0]));
  *out += signal + " batch: " + std::to_string(batch.items) + " " + std::string(otlp::item_name(batch.signal)) + ", " +
          std::to_string(batch.payload.size()) + " bytes\n";
  if (verbosity == DebugExporterConfig::Verbosity::basic) return true;
  switch (batch.signal) {
    case Signal::traces:
      return render_request<col::trace::v1::ExportTraceServiceRequest>(verbosity, batch.payload, render_traces, out);
    case Signal::metrics:
      return render_request<col::metrics::v1::ExportMetricsServiceRequest>(verbosity, batch.payload, render_metrics,
                                                                           out);
    case Signal::logs:
      return render_request<col::logs::v1::ExportLogsServiceRequest>(verbosity, batch.payload, render_logs, out);
  }
  return false;
}

ComponentConfigPtr DebugExporterFactory::parse(config::Node& node) const {
  auto config = std::make_unique<DebugExporterConfig>();
  node.read_enum("verbosity", config->verbosity,
                 {{"basic", DebugExporterConfig::Verbosity::basic},
                  {"normal", DebugExporterConfig::Verbosity::normal},
                  {"detailed", DebugExporterConfig::Verbosity::detailed}});
  config->exporter.parse(node);
  node.finish();
  return config;
}

ExporterPtr DebugExporterFactory::create(const ComponentId& id, const ComponentConfig& config, Signal signal,
                                         Host& host) const {
  const auto& c = static_cast<const DebugExporterConfig&>(config);
  // One consumer: console output is ordered.
  ExporterSettings settings = c.exporter;
  settings.queue.num_consumers = 1;
  return std::make_shared<QueuedExporter>(id, signal, settings, std::make_unique<DebugSender>(c.verbosity, out_), host);
}

}  // namespace otlpd

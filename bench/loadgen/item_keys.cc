#include "bench/loadgen/item_keys.h"

#include <initializer_list>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace otlpd::loadgen {

namespace col = opentelemetry::proto::collector;

bool item_keys(otlp::Signal signal, const std::string& request, std::vector<std::string>* keys) {
  auto add = [&](char tag, std::initializer_list<std::string_view> parts) {
    std::string key(1, tag);
    for (std::string_view p : parts) key.append(p);
    keys->push_back(std::move(key));
  };
  auto time_bytes = [](uint64_t t) { return std::string(reinterpret_cast<const char*>(&t), sizeof t); };
  switch (signal) {
    case otlp::Signal::traces: {
      col::trace::v1::ExportTraceServiceRequest req;
      if (!req.ParseFromString(request)) return false;
      for (const auto& rs : req.resource_spans()) {
        for (const auto& ss : rs.scope_spans()) {
          for (const auto& span : ss.spans()) add('t', {span.trace_id(), span.span_id()});
        }
      }
      return true;
    }
    case otlp::Signal::logs: {
      col::logs::v1::ExportLogsServiceRequest req;
      if (!req.ParseFromString(request)) return false;
      for (const auto& rl : req.resource_logs()) {
        for (const auto& sl : rl.scope_logs()) {
          for (const auto& rec : sl.log_records()) add('l', {rec.trace_id(), rec.span_id()});
        }
      }
      return true;
    }
    case otlp::Signal::metrics: {
      col::metrics::v1::ExportMetricsServiceRequest req;
      if (!req.ParseFromString(request)) return false;
      for (const auto& rm : req.resource_metrics()) {
        for (const auto& sm : rm.scope_metrics()) {
          for (const auto& m : sm.metrics()) {
            for (const auto& p : m.gauge().data_points()) add('m', {time_bytes(p.time_unix_nano())});
            for (const auto& p : m.sum().data_points()) add('m', {time_bytes(p.time_unix_nano())});
            for (const auto& p : m.histogram().data_points()) add('m', {time_bytes(p.time_unix_nano())});
            for (const auto& p : m.exponential_histogram().data_points()) add('m', {time_bytes(p.time_unix_nano())});
            for (const auto& p : m.summary().data_points()) add('m', {time_bytes(p.time_unix_nano())});
          }
        }
      }
      return true;
    }
  }
  return false;
}

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

}  // namespace otlpd::loadgen

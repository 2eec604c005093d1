// otlp::decodes_as_request must agree with protobuf's own parser on every input: it decides what
// the receivers accept without decoding, so a difference either lets through data a decoding
// exporter would fail on, or refuses data protobuf accepts. otlp::check_request, the receivers'
// one-pass form, must equal count_items && decodes_as_request, with count_items' item count.
#include <cstdio>
#include <cstdlib>

#include <google/protobuf/stubs/logging.h>

#include "fuzz/fuzz_target.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/validate.h"
#include "otlp/wire.h"

using namespace otlpd::otlp;
namespace col = opentelemetry::proto::collector;

namespace {
template <typename Request>
bool protobuf_accepts(const uint8_t* data, size_t size) {
  Request r;
  return r.ParseFromArray(data, static_cast<int>(size));
}

// Prints the input that disagrees, so it can become a unit test case.
[[noreturn]] void disagree(const char* signal, bool ours, const uint8_t* data, size_t size) {
  std::fprintf(stderr, "%s: validator says %d, protobuf the opposite, on:", signal, ours);
  for (size_t i = 0; i < size; ++i) std::fprintf(stderr, " %02x", data[i]);
  std::fprintf(stderr, "\n");
  std::abort();
}

template <typename Request>
void check(Signal signal, const uint8_t* data, size_t size) {
  bool ours = decodes_as_request(signal, std::string_view(reinterpret_cast<const char*>(data), size));
  if (ours != protobuf_accepts<Request>(data, size)) disagree(signal_name(signal).data(), ours, data, size);
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const WalkResult walk = count_items(signal, bytes);
  const CheckResult one_pass = check_request(signal, bytes);
  if (one_pass.ok != (walk.ok && ours) || (one_pass.ok && one_pass.items != walk.items)) {
    std::fprintf(stderr, "%s: check_request ok=%d items=%zu, count_items ok=%d items=%zu, decodes=%d on:",
                 signal_name(signal).data(), one_pass.ok, one_pass.items, walk.ok, walk.items, ours);
    for (size_t i = 0; i < size; ++i) std::fprintf(stderr, " %02x", data[i]);
    std::fprintf(stderr, "\n");
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // protobuf logs every invalid UTF-8 string it meets; that is expected here.
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;
  check<col::trace::v1::ExportTraceServiceRequest>(Signal::traces, data, size);
  check<col::metrics::v1::ExportMetricsServiceRequest>(Signal::metrics, data, size);
  check<col::logs::v1::ExportLogsServiceRequest>(Signal::logs, data, size);
  return 0;
}

std::vector<std::string> fuzz_seeds() {
  col::trace::v1::ExportTraceServiceRequest traces;
  auto* rs = traces.add_resource_spans();
  auto* kv = rs->mutable_resource()->add_attributes();
  kv->set_key("service.name");
  kv->mutable_value()->set_string_value("caf\xc3\xa9");
  auto* span = rs->add_scope_spans()->add_spans();
  span->set_name("GET /");
  span->set_trace_id(std::string(16, '\x01'));
  span->add_events()->set_name("e");
  span->add_links()->set_trace_state("k=v");
  auto* nested = span->add_attributes()->mutable_value()->mutable_array_value()->add_values();
  nested->mutable_kvlist_value()->add_values()->set_key("inner");
  span->mutable_status()->set_message("err");

  col::metrics::v1::ExportMetricsServiceRequest metrics;
  auto* sm = metrics.add_resource_metrics()->add_scope_metrics();
  auto* h = sm->add_metrics()->mutable_histogram()->add_data_points();
  h->add_bucket_counts(1);
  h->add_bucket_counts(2);
  h->add_explicit_bounds(0.5);
  h->add_exemplars()->set_span_id(std::string(8, '\x02'));
  auto* e = sm->add_metrics()->mutable_exponential_histogram()->add_data_points();
  e->mutable_positive()->add_bucket_counts(300);
  e->set_scale(-3);
  sm->add_metrics()->mutable_summary()->add_data_points()->add_quantile_values()->set_value(1);
  sm->add_metrics()->mutable_gauge()->add_data_points()->set_as_int(-5);

  col::logs::v1::ExportLogsServiceRequest logs;
  auto* lr = logs.add_resource_logs()->add_scope_logs()->add_log_records();
  lr->mutable_body()->set_string_value("hello");
  lr->set_severity_text("INFO");
  lr->set_event_name("ev");
  // Attributes of every shape the KeyValue / AnyValue fast paths take or hand back.
  col::trace::v1::ExportTraceServiceRequest attributes;
  auto* attrs = attributes.add_resource_spans()->add_scope_spans()->add_spans()->mutable_attributes();
  attrs->Add()->mutable_value()->set_bool_value(true);
  auto* with_key = attrs->Add();
  with_key->set_key("http.status_code");
  with_key->mutable_value()->set_int_value(-1);
  attrs->Add()->mutable_value()->set_int_value(60000);
  attrs->Add()->mutable_value()->set_double_value(2.5);
  attrs->Add()->mutable_value()->set_bytes_value("\xff\x80");
  attrs->Add()->mutable_value()->set_string_value(std::string(150, 'v'));
  attrs->Add()->set_key("k\xc3\xa9");
  attrs->Add()->mutable_value()->mutable_kvlist_value()->add_values()->mutable_value()->set_string_value("x");
  auto* array = attrs->Add()->mutable_value()->mutable_array_value();
  array->add_values()->set_int_value(7);
  array->add_values()->set_string_value("\xe2\x82\xac");

  col::logs::v1::ExportLogsServiceRequest int_body;
  int_body.add_resource_logs()->add_scope_logs()->add_log_records()->mutable_body()->set_int_value(300);
  return {traces.SerializeAsString(), metrics.SerializeAsString(), logs.SerializeAsString(),
          attributes.SerializeAsString(), int_body.SerializeAsString()};
}

// count_items and split_items on arbitrary bytes: never crash, and every accepted request splits
// into valid pieces holding exactly its items.
#include <cstdlib>

#include "fuzz/fuzz_target.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/wire.h"

using namespace otlpd::otlp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t max = 1 + data[0] % 7;
  std::string_view request(reinterpret_cast<const char*>(data) + 1, size - 1);
  for (Signal signal : {Signal::traces, Signal::metrics, Signal::logs}) {
    WalkResult walk = count_items(signal, request);
    if (!walk.ok) {
      if (walk.error.empty()) std::abort();
      continue;
    }
    std::vector<Piece> pieces;
    split_items(signal, request, max, max, &pieces);
    size_t total = 0;
    for (const auto& p : pieces) {
      WalkResult again = count_items(signal, p.bytes);
      if (!again.ok || again.items != p.items || p.items > max || p.items == 0) std::abort();
      total += p.items;
    }
    if (total != walk.items) std::abort();
  }
  return 0;
}

std::vector<std::string> fuzz_seeds() {
  namespace col = opentelemetry::proto::collector;
  col::trace::v1::ExportTraceServiceRequest traces;
  for (int r = 0; r < 2; ++r) {
    auto* rs = traces.add_resource_spans();
    rs->mutable_resource()->add_attributes()->set_key("service.name");
    for (int s = 0; s < 2; ++s) {
      auto* ss = rs->add_scope_spans();
      ss->mutable_scope()->set_name("scope");
      for (int i = 0; i < 3; ++i) ss->add_spans()->set_name("span");
    }
  }
  col::metrics::v1::ExportMetricsServiceRequest metrics;
  auto* m = metrics.add_resource_metrics()->add_scope_metrics()->add_metrics();
  m->set_name("m");
  for (int i = 0; i < 5; ++i) m->mutable_sum()->add_data_points()->set_as_int(i);
  return {std::string(1, '\x02') + traces.SerializeAsString(), std::string(1, '\x03') + metrics.SerializeAsString()};
}

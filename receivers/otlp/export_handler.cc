#include "receivers/otlp/export_handler.h"

#include <spdlog/spdlog.h>

#include "otlp/validate.h"
#include "otlp/wire.h"

namespace otlpd {

ExportHandler::ExportHandler(ComponentId receiver, ReceiverConsumers consumers, Telemetry& telemetry,
                             BatchPools* pools)
    : id_(std::move(receiver)), consumers_(std::move(consumers)), pools_(pools) {
  for (Transport t : {Transport::grpc, Transport::http}) {
    for (Signal s : {Signal::traces, Signal::metrics, Signal::logs}) {
      Telemetry::Labels labels{{"receiver", id_.str()},
                               {"transport", t == Transport::grpc ? "grpc" : "http"},
                               {"signal", std::string(otlp::signal_name(s))}};
      counters(t, s) = Counters{&telemetry.counter("otlpd_receiver_accepted_items", labels),
                                &telemetry.counter("otlpd_receiver_refused_items", labels),
                                &telemetry.counter("otlpd_receiver_rejected_items", labels),
                                &telemetry.counter("otlpd_receiver_malformed_requests", labels)};
    }
  }
}

Status ExportHandler::handle(Transport transport, Signal signal, std::string&& request) {
  Consumer* consumer = consumers_.get(signal);
  if (!consumer) {
    return Status::not_found("receiver " + id_.str() + " feeds no " + std::string(otlp::signal_name(signal)) +
                             " pipeline");
  }
  Counters& c = counters(transport, signal);
  const otlp::CheckResult check = otlp::check_request(signal, request);
  if (!check.ok) {
    c.malformed->add(1);
    // The slow walk only for refused requests, to say where they break.
    otlp::WalkResult walk = otlp::count_items(signal, request);
    std::string error = walk.ok ? "an item does not decode (bad nested field or invalid UTF-8)" : walk.error;
    spdlog::debug("receiver {}: malformed {} request: {}", id_.str(), otlp::signal_name(signal), error);
    return Status::invalid_argument("malformed " + std::string(otlp::signal_name(signal)) + " request: " + error);
  }
  const size_t items = check.items;
  BatchPtr batch = pools_ ? make_pooled_batch(pools_->batch_objects, pools_->request_buffers, signal,
                                              std::move(request), items)
                          : make_batch(signal, std::move(request), items);
  Status s = consumer->consume(std::move(batch));
  if (s.is_ok()) {
    c.accepted->add(items - s.rejected_items());
    c.rejected->add(s.rejected_items());
  } else {
    c.refused->add(items);
  }
  return s;
}

}  // namespace otlpd

// ExportHandler: what both OTLP transports do with a decoded-from-the-wire request body: check its
// framing, count its items, wrap it as a Batch and offer it to the signal's pipelines.
//
// Thread-safe; called from gRPC callback threads and HTTP I/O threads. Counters (labels
// receiver, transport, signal): otlpd_receiver_accepted_items, otlpd_receiver_refused_items,
// otlpd_receiver_rejected_items (partial success), otlpd_receiver_malformed_requests.
#pragma once

#include <string>

#include "pipeline/buffer_pool.h"
#include "pipeline/registry.h"
#include "pipeline/telemetry.h"

namespace otlpd {

enum class Transport { grpc, http };

class ExportHandler {
 public:
  // `pools` (may be null) provides the batch objects and takes request buffers back.
  ExportHandler(ComponentId receiver, ReceiverConsumers consumers, Telemetry& telemetry, BatchPools* pools);

  // Whether some pipeline takes `signal` from this receiver.
  bool serves(Signal signal) const { return consumers_.get(signal) != nullptr; }
  // `request` is a serialized Export<Signal>ServiceRequest.
  Status handle(Transport transport, Signal signal, std::string&& request);

 private:
  struct Counters {
    Counter* accepted;
    Counter* refused;
    Counter* rejected;
    Counter* malformed;
  };
  Counters& counters(Transport t, Signal s) { return counters_[static_cast<int>(t)][static_cast<int>(s)]; }

  const ComponentId id_;
  const ReceiverConsumers consumers_;
  BatchPools* const pools_;
  Counters counters_[2][3];
};

}  // namespace otlpd

// Export<Signal>ServiceRequest/Response messages by signal. Responses are shared by receivers
// (which build one) and exporters (which read the one a server sent): they differ per signal only
// in the name of the rejected-items field. Pure functions: safe from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <google/protobuf/message.h>

#include "otlp/signal.h"

namespace otlpd::otlp {

struct PartialSuccess {
  int64_t rejected = 0;  // rejected_spans, rejected_data_points or rejected_log_records
  std::string message;
};

// An empty Export<Signal>ServiceRequest, for the components that decode a batch.
std::unique_ptr<google::protobuf::Message> new_request(Signal signal);
// An empty Export<Signal>ServiceResponse (meaning full success).
std::unique_ptr<google::protobuf::Message> new_response(Signal signal);
// A response carrying `partial`; empty when nothing was rejected.
std::unique_ptr<google::protobuf::Message> make_response(Signal signal, const PartialSuccess& partial);
// The partial_success of a response made by new_response(signal).
PartialSuccess partial_success_of(Signal signal, const google::protobuf::Message& response);

}  // namespace otlpd::otlp

// Fast OTLP/JSON -> protobuf conversion: the text of an Export<Signal>ServiceRequest in,
// serialized protobuf wire bytes out, in one pass and without protobuf message objects or a
// JSON DOM. A validating JSON reader walks tables of the OTLP schema and writes each field's wire
// encoding as soon as its value is read.
//
// Contract: accepts exactly the inputs otlp::json_to_message accepts (same JSON grammar as
// nlohmann::json, same OTLP/JSON leniencies and refusals, see json_codec.h) and produces the same
// message. Encoding is canonical (minimal varints, exact lengths, no default-valued implicit
// fields), but fields appear in input order rather than field-number order, so the bytes can
// differ from protobuf's serializer while parsing to an identical message.
// It gives no error detail: on refusal, run json_to_message for a message naming the JSON path.
//
// Thread-safety: pure function, no shared mutable state; call from any thread concurrently.
// No exception escapes (allocation failure is reported as a refusal).
#pragma once

#include <string>
#include <string_view>

#include "otlp/signal.h"

namespace otlpd::otlp {

// Appends the serialized Export<signal>ServiceRequest that `json` encodes to *out and returns
// true, or returns false and leaves *out as it was.
bool json_to_request_wire(Signal signal, std::string_view json, std::string* out);

}  // namespace otlpd::otlp

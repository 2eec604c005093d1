// OTLP/JSON codec: converts OTLP protobuf messages to and from the OTLP "JSON Protobuf Encoding".
//
// That encoding is the proto3 JSON mapping with these OTLP-specific differences:
//   - trace_id, span_id and parent_span_id bytes fields are lowercase hex strings, not base64;
//   - enums are written as integers (names are still accepted on input);
//   - unknown fields are ignored on input; snake_case keys are accepted besides lowerCamelCase.
// 64-bit integers are written as decimal strings, NaN/Infinity/-Infinity as strings, fields
// holding their default value are omitted (set oneof members and proto3 `optional` fields are
// always written). Input nesting deeper than kMaxJsonDepth messages is refused.
//
// Thread-safety: all functions are pure (no shared mutable state) and may be called from any
// thread concurrently. No exception escapes the functions that return an error string.
#pragma once

#include <google/protobuf/message.h>

#include <string>
#include <string_view>

#include "otlp/signal.h"

namespace otlpd::otlp {

// Maximum message nesting accepted by json_to_message (the root message is level 1). AnyValue
// can recurse, so hostile input could otherwise nest without bound.
inline constexpr int kMaxJsonDepth = 64;

// Parses OTLP/JSON into `msg` (any OTLP message type, via protobuf reflection); `msg` is cleared
// first. Returns "" on success, else an error naming the JSON path, e.g.
// "resourceSpans[0].scopeSpans[0].spans[2].traceId: expected 32 hex characters, got 31".
// On error `msg` holds a partial result.
std::string json_to_message(std::string_view json, google::protobuf::Message& msg);

// Renders `msg` as OTLP/JSON on one line (no trailing newline), appended to *out.
// Invalid UTF-8 in string fields is replaced by U+FFFD so the output is always valid JSON.
void message_to_json(const google::protobuf::Message& msg, std::string* out);

// Convenience for Export<Signal>ServiceRequest: OTLP/JSON in, serialized protobuf bytes appended
// to *out. Returns "" or an error message; *out is unchanged on error. Converts with the one-pass
// fast path (json_wire.h; fields in JSON order, canonical encoding) and runs json_to_message only
// for the error message of a refused input.
std::string request_json_to_proto(Signal signal, std::string_view json, std::string* out);

// Serialized Export<Signal>ServiceRequest bytes in, one line of OTLP/JSON appended to *out.
// Returns "" or an error message (e.g. malformed protobuf); *out is unchanged on error.
std::string request_proto_to_json(Signal signal, std::string_view proto, std::string* out);

}  // namespace otlpd::otlp

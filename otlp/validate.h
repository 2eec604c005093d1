// Full validation of a serialized OTLP export request without decoding it: would protobuf's own
// parser accept it? Walks every nested message of the OTLP schema (framing, packed fields, the
// recursion limit) and checks every string field is valid UTF-8, as proto3 requires.
//
// The receivers run it after otlp::count_items (which names where framing breaks), so nothing
// that a decoding component (debug, JSON file or otlphttp) would fail on can enter a batch and
// spoil other clients' data. Pure function: safe from any thread, no allocation.
#pragma once

#include <string_view>

#include "otlp/signal.h"

namespace otlpd::otlp {

bool decodes_as_request(Signal signal, std::string_view request);

}  // namespace otlpd::otlp

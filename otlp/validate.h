// Full validation of a serialized OTLP export request: does protobuf's own parser accept it
// (every nested message framed correctly, strings valid UTF-8, as proto3 requires)?
//
// The receivers run it after otlp::count_items (which names where framing breaks), so nothing
// that a decoding component (debug, JSON file or otlphttp) would fail on can enter a batch and
// spoil other clients' data. Thread-safe: each thread reuses its own arena.
#pragma once

#include <string_view>

#include "otlp/signal.h"

namespace otlpd::otlp {

bool decodes_as_request(Signal signal, std::string_view request);

}  // namespace otlpd::otlp

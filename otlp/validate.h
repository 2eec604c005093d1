// Full validation of a serialized OTLP export request without decoding it: would protobuf's own
// parser accept it? Walks every nested message of the OTLP schema (framing, packed fields, the
// recursion limit) and checks every string field is valid UTF-8, as proto3 requires.
//
// Receivers call check_request, one pass that both validates and counts the items, so nothing a
// decoding component (debug, JSON file or otlphttp) would fail on can enter a batch and spoil
// other clients' data. Pure functions: safe from any thread, no allocation.
#pragma once

#include <cstddef>
#include <string_view>

#include "otlp/signal.h"

namespace otlpd::otlp {

// Exactly protobuf's verdict on parsing `request` as an Export<Signal>ServiceRequest.
bool decodes_as_request(Signal signal, std::string_view request);

struct CheckResult {
  bool ok = false;
  size_t items = 0;  // when ok: what otlp::count_items would count
};

// ok == (count_items(signal, request).ok && decodes_as_request(signal, request)), with the item
// count, in one walk. It carries no error text: on failure, count_items names where framing
// breaks (or, if it passes, the request holds a field protobuf would refuse).
CheckResult check_request(Signal signal, std::string_view request);

}  // namespace otlpd::otlp

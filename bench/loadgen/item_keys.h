// Item identities: what tells one span, data point or log record made by otlpd-loadgen send from
// another (see payload.h), so the sink can count duplicates and a test can check that every item
// the client had acknowledged arrived.
//   span        't' + trace_id + span_id
//   log record  'l' + trace_id + span_id
//   data point  'm' + time_unix_nano (8 bytes, host order)
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "otlp/signal.h"

namespace otlpd::loadgen {

// Appends the identities of a serialized Export<Signal>ServiceRequest's items to *keys; false
// when it does not parse.
bool item_keys(otlp::Signal signal, const std::string& request, std::vector<std::string>* keys);

// Lower-case hex, for writing identities to a text file (one per line).
std::string hex(std::string_view bytes);

}  // namespace otlpd::loadgen

// Command line of otlpd-loadgen: parses `send ...` and `sink ...` arguments into options.
// Pure functions (no I/O besides building messages): safe from any thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "bench/loadgen/sender.h"
#include "bench/loadgen/sink.h"

namespace otlpd::loadgen {

// "10s", "500ms", "2m", "1.5s", or a bare number of seconds.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text);

// Each returns "" on success or a message naming the bad argument.
std::string parse_send_args(const std::vector<std::string>& args, SendOptions* out);
std::string parse_sink_args(const std::vector<std::string>& args, SinkOptions* out);

std::string usage();

}  // namespace otlpd::loadgen

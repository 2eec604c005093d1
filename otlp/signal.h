// The three OTLP signals and their names. Header-only; safe from any thread.
#pragma once

#include <optional>
#include <string_view>

namespace otlpd::otlp {

enum class Signal { traces, metrics, logs };

constexpr std::string_view signal_name(Signal s) {
  switch (s) {
    case Signal::traces: return "traces";
    case Signal::metrics: return "metrics";
    case Signal::logs: return "logs";
  }
  return "unknown";
}

// What one item of a signal is called in counters and messages.
constexpr std::string_view item_name(Signal s) {
  switch (s) {
    case Signal::traces: return "spans";
    case Signal::metrics: return "data points";
    case Signal::logs: return "log records";
  }
  return "items";
}

inline std::optional<Signal> parse_signal(std::string_view name) {
  if (name == "traces") return Signal::traces;
  if (name == "metrics") return Signal::metrics;
  if (name == "logs") return Signal::logs;
  return std::nullopt;
}

}  // namespace otlpd::otlp

// PayloadGenerator: realistic serialized OTLP export requests for the load generator.
//
// All the protobuf work happens in the constructor, before a run's clock starts: it builds a few
// template requests (variants) of exactly `items_per_request` items each, serializes them as
// protobuf or OTLP/JSON, and records where each per-item identifier sits in the bytes. make()
// then copies one template and patches those bytes in place (trace ids, span ids, parent span
// ids; for metrics and logs the point/record timestamp), so every item of every request is
// unique and derived from a counter, and nothing is serialized during the run.
//
// Identifiers for request number r, item i (global item g = r * items_per_request + i):
//   span_id(g)   = big-endian (g + 1) XOR a seed-derived mask (top bit set, so never zero)
//   trace_id(t)  = 8 seed-derived bytes, then big-endian (t + 1), t = the global trace number
//   time(g)      = base_time_ns + g * 1000 (metric points, log records)
// Traces hold up to kSpansPerTrace consecutive spans of a request; span k > 0 of a trace has
// span (k - 1) / 2 of the same trace as its parent (a small tree), span 0 is the root.
// Contents (names, attribute values) depend on `seed`; timestamps start at the wall-clock time of
// construction.
//
// Ownership and threads: immutable after construction; make() is const and may be called from
// any number of threads at once. The constructor throws std::runtime_error if it cannot lay out
// the identifiers (not expected to happen).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "otlp/signal.h"

namespace otlpd::loadgen {

enum class Format { protobuf, json };

struct PayloadOptions {
  otlp::Signal signal = otlp::Signal::traces;
  Format format = Format::protobuf;
  size_t items_per_request = 100;  // spans, metric data points or log records per request (>= 1)
  uint64_t seed = 1;               // same seed, same payloads
  size_t variants = 8;             // distinct templates rotated per request (content variety)
};

inline constexpr size_t kSpansPerTrace = 5;

class PayloadGenerator {
 public:
  explicit PayloadGenerator(const PayloadOptions& options);

  // Replaces *out with request number `index` (serialized Export<Signal>ServiceRequest).
  void make(uint64_t index, std::string* out) const;

  const PayloadOptions& options() const { return options_; }
  size_t items_per_request() const { return options_.items_per_request; }
  // Average serialized size of one request, in bytes.
  size_t average_bytes() const;

  // The identifiers make() writes (exposed for tests).
  std::string span_id(uint64_t global_item) const;   // 8 bytes
  std::string trace_id(uint64_t global_trace) const;  // 16 bytes
  uint64_t time_ns(uint64_t global_item) const;

 private:
  enum class Kind : uint8_t { trace_id, span_id, parent_span_id, time };
  struct Site {
    size_t offset;   // where the value starts in the template
    Kind kind;
    uint32_t local;  // item index inside the request (trace_id: the trace index inside the request)
  };
  struct Template {
    std::string bytes;
    std::vector<Site> sites;
  };

  bool build_variant(uint64_t variant_seed, Template* out) const;
  void patch(Template const& t, uint64_t index, std::string* out) const;

  PayloadOptions options_;
  uint64_t span_mask_ = 0;
  uint64_t trace_hi_ = 0;
  uint64_t base_time_ns_ = 0;
  size_t traces_per_request_ = 0;
  std::vector<Template> templates_;
};

}  // namespace otlpd::loadgen

// Wire-format helpers for serialized OTLP export requests. No message objects are built.
//
// A request is `repeated Resource<X> = 1`; each Resource<X> holds `repeated Scope<X> = 2`, each of
// which holds the items (`spans = 2`, `log_records = 2`, or `metrics = 2` whose data points sit one
// level further down). These functions walk tags and lengths only, checking that every length
// stays inside its parent, down to the items. Pure functions: safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "otlp/signal.h"

namespace otlpd::otlp {

struct WalkResult {
  bool ok = true;
  size_t items = 0;    // spans, metric data points or log records
  std::string error;   // when !ok: what was malformed and where (e.g. "resource_spans[1]: length 900 exceeds 12 remaining bytes")
};

// Counts the items of a serialized Export<Signal>ServiceRequest and checks its framing.
WalkResult count_items(Signal signal, std::string_view request);

// Cuts `request` into requests of at most `max_items` items each, in order, appended to `out`.
// The first piece holds at most `first_max_items` (to top up a partly filled batch; pass max_items
// otherwise). Pieces repeat the resource and scope (and metric) envelope of the items they carry.
// `request` must have passed count_items(). Items are never reordered or lost; empty envelopes
// (a resource with no items) are not carried.
struct Piece {
  std::string bytes;
  size_t items = 0;
};
void split_items(Signal signal, std::string_view request, size_t first_max_items, size_t max_items,
                 std::vector<Piece>* out);

// split_items with its scratch buffers kept between calls, so splitting in steady state allocates
// nothing. Not thread-safe: one per caller (a batch processor keeps one under its lock).
class Splitter {
 public:
  Splitter();
  ~Splitter();
  // The pieces stay valid until the next call.
  std::span<const Piece> split(Signal signal, std::string_view request, size_t first_max_items, size_t max_items);

 private:
  struct Scratch;
  std::unique_ptr<Scratch> scratch_;
};

// Low-level: protobuf varint encoding, used by code that writes envelopes by hand.
void append_varint(std::string* out, uint64_t v);
void append_tag(std::string* out, uint32_t field, uint32_t wire_type);

}  // namespace otlpd::otlp

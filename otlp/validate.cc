#include "otlp/validate.h"

#include <array>
#include <cstdint>
#include <cstring>

namespace otlpd::otlp {

namespace {

// How a known field's value is checked. Anything else (unknown fields, or a known field sent with
// another wire type, which protobuf keeps as unknown) only has to be well framed.
enum class Kind : uint8_t { varint, fixed64, fixed32, string, bytes, message, packed_fixed64, packed_varint };

enum MessageType : uint8_t {
  kTraceRequest, kMetricsRequest, kLogsRequest,
  kResource, kScope, kKeyValue, kAnyValue, kArrayValue, kKeyValueList,
  kResourceSpans, kScopeSpans, kSpan, kEvent, kLink, kSpanStatus,
  kResourceMetrics, kScopeMetrics, kMetric, kGauge, kSum, kHistogram, kExpHistogram, kSummary,
  kNumberPoint, kHistogramPoint, kExpHistogramPoint, kBuckets, kSummaryPoint, kQuantile, kExemplar,
  kResourceLogs, kScopeLogs, kLogRecord,
  kNone,
};

struct Field {
  uint32_t number;
  Kind kind;
  MessageType type = kNone;  // for Kind::message
};

struct Schema {
  const Field* fields;
  size_t count;
};

using K = Kind;
// Field numbers and types of the OTLP protos in otlp/proto.
constexpr Field kTraceRequestFields[] = {{1, K::message, kResourceSpans}};
constexpr Field kMetricsRequestFields[] = {{1, K::message, kResourceMetrics}};
constexpr Field kLogsRequestFields[] = {{1, K::message, kResourceLogs}};
constexpr Field kResourceFields[] = {{1, K::message, kKeyValue}, {2, K::varint}};
constexpr Field kScopeFields[] = {{1, K::string}, {2, K::string}, {3, K::message, kKeyValue}, {4, K::varint}};
constexpr Field kKeyValueFields[] = {{1, K::string}, {2, K::message, kAnyValue}};
constexpr Field kAnyValueFields[] = {{1, K::string},  {2, K::varint}, {3, K::varint},
                                     {4, K::fixed64}, {5, K::message, kArrayValue},
                                     {6, K::message, kKeyValueList}, {7, K::bytes}};
constexpr Field kArrayValueFields[] = {{1, K::message, kAnyValue}};
constexpr Field kKeyValueListFields[] = {{1, K::message, kKeyValue}};
constexpr Field kResourceSpansFields[] = {{1, K::message, kResource}, {2, K::message, kScopeSpans}, {3, K::string}};
constexpr Field kScopeSpansFields[] = {{1, K::message, kScope}, {2, K::message, kSpan}, {3, K::string}};
constexpr Field kSpanFields[] = {{1, K::bytes},   {2, K::bytes},   {3, K::string},  {4, K::bytes},
                                 {16, K::fixed32}, {5, K::string}, {6, K::varint},  {7, K::fixed64},
                                 {8, K::fixed64}, {9, K::message, kKeyValue}, {10, K::varint},
                                 {11, K::message, kEvent}, {12, K::varint}, {13, K::message, kLink},
                                 {14, K::varint}, {15, K::message, kSpanStatus}};
constexpr Field kEventFields[] = {{1, K::fixed64}, {2, K::string}, {3, K::message, kKeyValue}, {4, K::varint}};
constexpr Field kLinkFields[] = {{1, K::bytes}, {2, K::bytes}, {3, K::string}, {4, K::message, kKeyValue},
                                 {5, K::varint}, {6, K::fixed32}};
constexpr Field kSpanStatusFields[] = {{2, K::string}, {3, K::varint}};
constexpr Field kResourceMetricsFields[] = {{1, K::message, kResource}, {2, K::message, kScopeMetrics},
                                            {3, K::string}};
constexpr Field kScopeMetricsFields[] = {{1, K::message, kScope}, {2, K::message, kMetric}, {3, K::string}};
constexpr Field kMetricFields[] = {{1, K::string}, {2, K::string}, {3, K::string},
                                   {5, K::message, kGauge}, {7, K::message, kSum},
                                   {9, K::message, kHistogram}, {10, K::message, kExpHistogram},
                                   {11, K::message, kSummary}, {12, K::message, kKeyValue}};
constexpr Field kGaugeFields[] = {{1, K::message, kNumberPoint}};
constexpr Field kSumFields[] = {{1, K::message, kNumberPoint}, {2, K::varint}, {3, K::varint}};
constexpr Field kHistogramFields[] = {{1, K::message, kHistogramPoint}, {2, K::varint}};
constexpr Field kExpHistogramFields[] = {{1, K::message, kExpHistogramPoint}, {2, K::varint}};
constexpr Field kSummaryFields[] = {{1, K::message, kSummaryPoint}};
constexpr Field kNumberPointFields[] = {{7, K::message, kKeyValue}, {2, K::fixed64}, {3, K::fixed64},
                                        {4, K::fixed64}, {6, K::fixed64}, {5, K::message, kExemplar},
                                        {8, K::varint}};
constexpr Field kHistogramPointFields[] = {{9, K::message, kKeyValue}, {2, K::fixed64}, {3, K::fixed64},
                                           {4, K::fixed64}, {5, K::fixed64}, {6, K::packed_fixed64},
                                           {7, K::packed_fixed64}, {8, K::message, kExemplar},
                                           {10, K::varint}, {11, K::fixed64}, {12, K::fixed64}};
constexpr Field kExpHistogramPointFields[] = {{1, K::message, kKeyValue}, {2, K::fixed64}, {3, K::fixed64},
                                              {4, K::fixed64}, {5, K::fixed64}, {6, K::varint},
                                              {7, K::fixed64}, {8, K::message, kBuckets},
                                              {9, K::message, kBuckets}, {10, K::varint},
                                              {11, K::message, kExemplar}, {12, K::fixed64},
                                              {13, K::fixed64}, {14, K::fixed64}};
constexpr Field kBucketsFields[] = {{1, K::varint}, {2, K::packed_varint}};
constexpr Field kSummaryPointFields[] = {{7, K::message, kKeyValue}, {2, K::fixed64}, {3, K::fixed64},
                                         {4, K::fixed64}, {5, K::fixed64}, {6, K::message, kQuantile},
                                         {8, K::varint}};
constexpr Field kQuantileFields[] = {{1, K::fixed64}, {2, K::fixed64}};
constexpr Field kExemplarFields[] = {{7, K::message, kKeyValue}, {2, K::fixed64}, {3, K::fixed64},
                                     {6, K::fixed64}, {4, K::bytes}, {5, K::bytes}};
constexpr Field kResourceLogsFields[] = {{1, K::message, kResource}, {2, K::message, kScopeLogs}, {3, K::string}};
constexpr Field kScopeLogsFields[] = {{1, K::message, kScope}, {2, K::message, kLogRecord}, {3, K::string}};
constexpr Field kLogRecordFields[] = {{1, K::fixed64}, {11, K::fixed64}, {2, K::varint}, {3, K::string},
                                      {5, K::message, kAnyValue}, {6, K::message, kKeyValue},
                                      {7, K::varint}, {8, K::fixed32}, {9, K::bytes}, {10, K::bytes},
                                      {12, K::string}};

template <size_t N>
constexpr Schema schema(const Field (&fields)[N]) {
  return {fields, N};
}

constexpr Schema kSchemas[] = {
    schema(kTraceRequestFields), schema(kMetricsRequestFields), schema(kLogsRequestFields),
    schema(kResourceFields), schema(kScopeFields), schema(kKeyValueFields), schema(kAnyValueFields),
    schema(kArrayValueFields), schema(kKeyValueListFields),
    schema(kResourceSpansFields), schema(kScopeSpansFields), schema(kSpanFields), schema(kEventFields),
    schema(kLinkFields), schema(kSpanStatusFields),
    schema(kResourceMetricsFields), schema(kScopeMetricsFields), schema(kMetricFields), schema(kGaugeFields),
    schema(kSumFields), schema(kHistogramFields), schema(kExpHistogramFields), schema(kSummaryFields),
    schema(kNumberPointFields), schema(kHistogramPointFields), schema(kExpHistogramPointFields),
    schema(kBucketsFields), schema(kSummaryPointFields), schema(kQuantileFields), schema(kExemplarFields),
    schema(kResourceLogsFields), schema(kScopeLogsFields), schema(kLogRecordFields),
};
static_assert(sizeof(kSchemas) / sizeof(kSchemas[0]) == kNone, "one schema per message type");

// The messages otlp::count_items walks (requests, envelopes down to the items, and the items):
// check_request applies its stricter framing to them, so one pass decides both.
constexpr bool is_framing_level(MessageType t) {
  switch (t) {
    case kTraceRequest: case kMetricsRequest: case kLogsRequest:
    case kResourceSpans: case kScopeSpans: case kSpan:
    case kResourceMetrics: case kScopeMetrics: case kMetric:
    case kGauge: case kSum: case kHistogram: case kExpHistogram: case kSummary:
    case kNumberPoint: case kHistogramPoint: case kExpHistogramPoint: case kSummaryPoint:
    case kResourceLogs: case kScopeLogs: case kLogRecord:
      return true;
    default:
      return false;
  }
}

constexpr bool is_item(MessageType t) {
  return t == kSpan || t == kLogRecord || t == kNumberPoint || t == kHistogramPoint || t == kExpHistogramPoint ||
         t == kSummaryPoint;
}

// Field lookup by number, one row per message type: every OTLP field number is at most 16, so a
// direct index replaces a search on the hot path.
constexpr uint32_t kMaxFieldNumber = 16;
struct Slot {
  bool known = false;
  Kind kind = Kind::varint;
  MessageType type = kNone;
};
using FieldTable = std::array<std::array<Slot, kMaxFieldNumber + 1>, kNone>;

constexpr FieldTable make_field_table() {
  FieldTable table{};
  for (size_t t = 0; t < kNone; ++t) {
    for (size_t i = 0; i < kSchemas[t].count; ++i) {
      const Field& f = kSchemas[t].fields[i];
      table[t][f.number] = Slot{true, f.kind, f.type};
    }
  }
  return table;
}
constexpr FieldTable kFieldTable = make_field_table();

// protobuf's default recursion limit.
constexpr int kMaxDepth = 100;

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kStartGroup = 3, kEndGroup = 4, kFixed32 = 5 };

class Cursor {
 public:
  Cursor(const uint8_t* p, const uint8_t* end) : p_(p), end_(end) {}
  bool done() const { return p_ == end_; }

  bool varint(uint64_t* out) {
    if (p_ != end_ && *p_ < 0x80) {  // most varints are one byte
      *out = *p_++;
      return true;
    }
    uint64_t v = 0;
    for (int i = 0; i < 10; ++i) {
      if (p_ == end_) return false;
      uint8_t b = *p_++;
      v |= uint64_t(b & 0x7f) << (7 * i);
      if (!(b & 0x80)) {
        *out = v;
        return true;
      }
    }
    return false;
  }
  // A field key: protobuf reads it as a varint of at most 5 bytes and keeps the low 32 bits.
  // `wide` tells whether bits above those 32 were set (otlp::count_items refuses such keys).
  bool tag(uint32_t* number, uint32_t* wire, bool* wide) {
    if (p_ != end_ && *p_ < 0x80) {
      const uint8_t b = *p_++;
      if ((b >> 3) == 0) return false;
      *number = b >> 3;
      *wire = b & 7;
      *wide = false;
      return true;
    }
    uint64_t v = 0;
    for (int i = 0; i < 5; ++i) {
      if (p_ == end_) return false;
      uint8_t b = *p_++;
      v |= uint64_t(b & 0x7f) << (7 * i);
      if (!(b & 0x80)) {
        const auto low = static_cast<uint32_t>(v);
        if ((low >> 3) == 0) return false;
        *number = low >> 3;
        *wire = low & 7;
        *wide = (v >> 32) != 0;
        return true;
      }
    }
    return false;
  }
  // A length prefix, read as protobuf does: a varint of at most 5 bytes below 2 GiB.
  bool length(uint64_t* out) {
    if (p_ != end_ && *p_ < 0x80) {
      *out = *p_++;
      return true;
    }
    uint64_t v = 0;
    for (int i = 0; i < 5; ++i) {
      if (p_ == end_) return false;
      const uint8_t b = *p_++;
      if (i == 4 && b >= 8) return false;
      v |= uint64_t(b & 0x7f) << (7 * i);
      if (!(b & 0x80)) {
        *out = v;
        return v <= 0x7fffffff - 16;  // protobuf's own bound (INT_MAX less its slop bytes)
      }
    }
    return false;
  }
  // Consumes `byte` if it is next.
  bool take(uint8_t byte) {
    if (p_ == end_ || *p_ != byte) return false;
    ++p_;
    return true;
  }
  // A length-delimited value: its length varint, then that many bytes.
  bool delimited(Cursor* out) {
    uint64_t len;
    return length(&len) && slice(len, out);
  }
  bool skip(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) return false;
    p_ += n;
    return true;
  }
  bool slice(uint64_t len, Cursor* out) {
    if (len > static_cast<uint64_t>(end_ - p_)) return false;
    *out = Cursor(p_, p_ + len);
    p_ += len;
    return true;
  }
  const uint8_t* begin() const { return p_; }
  const uint8_t* end() const { return end_; }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// Attribute keys and values are mostly short ASCII: this settles them without the UTF-8 decoder,
// in whole-word loads (overlapping at the tail) rather than a byte loop.
inline uint64_t load64(const uint8_t* p) {
  uint64_t word;
  std::memcpy(&word, p, 8);
  return word;
}
inline uint32_t load32(const uint8_t* p) {
  uint32_t word;
  std::memcpy(&word, p, 4);
  return word;
}
inline bool all_ascii(const uint8_t* p, const uint8_t* end) {
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  const size_t n = static_cast<size_t>(end - p);
  if (n > 16) {
    uint64_t high = load64(end - 16) | load64(end - 8);
    for (; end - p > 16; p += 16) high |= load64(p) | load64(p + 8);
    return (high & kHigh) == 0;
  }
  if (n >= 8) return ((load64(p) | load64(end - 8)) & kHigh) == 0;
  if (n >= 4) return ((load32(p) | load32(end - 4)) & 0x80808080u) == 0;
  if (n == 0) return true;
  return ((p[0] | p[n / 2] | p[n - 1]) & 0x80) == 0;  // covers every byte of 1 to 3
}

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF (what proto3 requires).
bool valid_utf8(const uint8_t* p, const uint8_t* end) {
  while (p < end) {
    // Attribute keys and values are mostly ASCII: eight bytes at a time.
    while (end - p >= 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      if (word & 0x8080808080808080ull) break;
      p += 8;
    }
    if (p == end) break;
    uint8_t c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    size_t n;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      n = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (static_cast<size_t>(end - p) < n) return false;
    for (size_t i = 1; i < n; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return false;
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    p += n;
  }
  return true;
}

bool valid_string(Cursor c) { return all_ascii(c.begin(), c.end()) || valid_utf8(c.begin(), c.end()); }

// Skips an unknown group up to its matching end tag.
bool skip_group(Cursor& c, uint32_t number, int depth) {
  if (depth > kMaxDepth) return false;
  while (!c.done()) {
    uint32_t field, wire;
    bool wide;
    if (!c.tag(&field, &wire, &wide)) return false;
    if (wire == kEndGroup) return field == number;
    uint64_t v;
    switch (wire) {
      case kVarint: if (!c.varint(&v)) return false; break;
      case kFixed64: if (!c.skip(8)) return false; break;
      case kFixed32: if (!c.skip(4)) return false; break;
      case kLengthDelimited: {
        Cursor inner(nullptr, nullptr);
        if (!c.length(&v) || !c.slice(v, &inner)) return false;
        break;
      }
      case kStartGroup: if (!skip_group(c, field, depth + 1)) return false; break;
      default: return false;
    }
  }
  return false;  // no end tag
}

bool valid_packed(Kind kind, Cursor c) {
  if (kind == Kind::packed_fixed64) return (c.end() - c.begin()) % 8 == 0;
  uint64_t v;
  while (!c.done()) {
    if (!c.varint(&v)) return false;
  }
  return true;
}

// What to do with a field, decided once per (message type, key) ahead of time for keys below 256:
// one-byte keys (field numbers 1-15) are nearly every key in OTLP, and two-byte keys ending in
// 0x01 (field numbers 16-31, like Span.flags) index the same table by their first byte, which
// equals the key's value. The hot loop is one table load and a switch; other keys take the
// general path.
enum class Op : uint8_t {
  fail, varint, fixed64, fixed32, group, skip_bytes, string, message, item, packed_fixed64, packed_varint,
  key_value, any_value,  // messages with a fast path for their common layout (most messages in OTLP)
};
struct Step {
  Op op = Op::fail;
  MessageType type = kNone;  // Op::message, Op::item
};
constexpr uint32_t kTableKeys = 256;
using StepTable = std::array<std::array<Step, kTableKeys>, kNone>;

// kCounting: also apply otlp::count_items' framing rules to the levels it walks (no groups, no
// keys wider than 32 bits, envelope children must be length-delimited) and count the items.
constexpr Step step_for(size_t type, uint32_t key, bool counting) {
  const uint32_t number = key >> 3, wire = key & 7;
  if (number == 0) return {Op::fail};
  const Slot f = number <= kMaxFieldNumber ? kFieldTable[type][number] : Slot{};
  const bool framing = counting && is_framing_level(static_cast<MessageType>(type));
  const bool child = f.known && f.kind == Kind::message && is_framing_level(f.type);
  if (framing && child && wire != kLengthDelimited) return {Op::fail};
  switch (wire) {
    case kVarint: return {Op::varint};
    case kFixed64: return {Op::fixed64};
    case kFixed32: return {Op::fixed32};
    case kStartGroup: return {framing ? Op::fail : Op::group};
    case kLengthDelimited:
      if (!f.known) return {Op::skip_bytes};
      switch (f.kind) {
        case Kind::string: return {Op::string};
        case Kind::message:
          if (counting && is_item(f.type)) return {Op::item, f.type};
          if (f.type == kKeyValue) return {Op::key_value, f.type};
          if (f.type == kAnyValue) return {Op::any_value, f.type};
          return {Op::message, f.type};
        case Kind::packed_fixed64: return {Op::packed_fixed64};
        case Kind::packed_varint: return {Op::packed_varint};
        default: return {Op::skip_bytes};
      }
    default: return {Op::fail};  // a stray end-group key, or wire types 6 and 7
  }
}

constexpr StepTable make_step_table(bool counting) {
  StepTable table{};
  for (size_t t = 0; t < kNone; ++t) {
    for (uint32_t key = 0; key < kTableKeys; ++key) table[t][key] = step_for(t, key, counting);
  }
  return table;
}
constexpr StepTable kLenientSteps = make_step_table(false);
constexpr StepTable kCountingSteps = make_step_table(true);

// A key the table does not cover: field numbers above 31, or a padded encoding.
Step general_step(MessageType type, uint32_t number, uint32_t wire, bool wide, bool counting) {
  if (counting && is_framing_level(type) && wide) return {Op::fail};
  const Slot* f = number <= kMaxFieldNumber && kFieldTable[type][number].known ? &kFieldTable[type][number] : nullptr;
  if (!f) {
    const bool framing = counting && is_framing_level(type);
    switch (wire) {
      case kVarint: return {Op::varint};
      case kFixed64: return {Op::fixed64};
      case kFixed32: return {Op::fixed32};
      case kStartGroup: return {framing ? Op::fail : Op::group};
      case kLengthDelimited: return {Op::skip_bytes};
      default: return {Op::fail};
    }
  }
  return step_for(type, (number << 3) | wire, counting);
}

// KeyValue, AnyValue, ArrayValue and KeyValueList hold no item and no level count_items walks, so
// checking them is the same in both modes: their fast paths below need no mode and no counter.
constexpr bool same_in_both_modes(MessageType t) {
  for (size_t key = 0; key < kTableKeys; ++key) {
    const Step a = kLenientSteps[t][key], b = kCountingSteps[t][key];
    if (a.op != b.op || a.type != b.type) return false;
  }
  return !is_framing_level(t);
}
static_assert(same_in_both_modes(kKeyValue) && same_in_both_modes(kAnyValue) && same_in_both_modes(kArrayValue) &&
              same_in_both_modes(kKeyValueList));

template <bool kCounting>
bool valid_message(MessageType type, Cursor c, int depth, size_t* items);

// The generic walk of a KeyValue-subtree message (see same_in_both_modes).
bool valid_subtree_message(MessageType type, Cursor c, int depth) {
  size_t unused = 0;
  return valid_message<false>(type, c, depth, &unused);
}

// An AnyValue holding one scalar (string, bool, int, double or bytes) with one-byte tag, and
// nothing else. Sets *valid to protobuf's verdict and returns true; returns false for any other
// layout (arrays, kvlists, repeated or unknown fields, empty), left to the generic walk.
bool scalar_any_value(Cursor c, bool* valid) {
  if (c.done()) return false;
  const uint8_t key = *c.begin();
  c.skip(1);
  Cursor value(nullptr, nullptr);
  uint64_t v;
  switch (key) {
    case 0x0a:  // string_value
      if (!c.delimited(&value) || !c.done()) return false;
      *valid = valid_string(value);
      return true;
    case 0x3a:  // bytes_value
      if (!c.delimited(&value) || !c.done()) return false;
      break;
    case 0x10:  // bool_value
    case 0x18:  // int_value
      if (!c.varint(&v) || !c.done()) return false;
      break;
    case 0x21:  // double_value
      if (!c.skip(8) || !c.done()) return false;
      break;
    default:
      return false;
  }
  *valid = true;
  return true;
}

// Same verdict as valid_message(kAnyValue, c, depth), without the table walk for scalars.
bool any_value(Cursor c, int depth) {
  if (depth > kMaxDepth) return false;
  bool valid;
  if (scalar_any_value(c, &valid)) return valid;
  return valid_subtree_message(kAnyValue, c, depth);
}

// Same verdict as valid_message(kKeyValue, c, depth). The common layout, key (1) then value (2)
// once each with one-byte tags, is checked field by field here; any other goes the generic way.
bool key_value(Cursor c, int depth) {
  if (depth > kMaxDepth) return false;
  Cursor key(nullptr, nullptr), value(nullptr, nullptr);
  const Cursor whole = c;
  if (!c.take(0x0a) || !c.delimited(&key) || !c.take(0x12) || !c.delimited(&value) || !c.done()) {
    return valid_subtree_message(kKeyValue, whole, depth);
  }
  return valid_string(key) && any_value(value, depth + 1);
}

// Accept-only shortcuts for the usual attribute shapes. They return true only for input the
// exact checks above accept, and false for anything unusual, invalid or not ASCII, which then goes
// to those exact checks: so they can never change a verdict, only skip work. They take messages
// shorter than 0x80 bytes only: then a length byte equal to the bytes left is below 0x80, a whole
// one-byte varint, and one compare checks both its encoding and its bounds.

// Whether [p, end) is exactly one varint (by Cursor::varint's rules).
inline bool is_one_varint(const uint8_t* p, const uint8_t* end) {
  Cursor c(p, end);
  uint64_t v;
  return c.varint(&v) && c.done();
}

// [p, end), 2 to 0x7f bytes, is an AnyValue of one scalar field with a one-byte key. *text is
// where its string value starts (the value runs to `end`), or `end` if it holds no string.
inline bool common_scalar(const uint8_t* p, const uint8_t* end, const uint8_t** text) {
  const size_t n = static_cast<size_t>(end - p);
  *text = end;
  switch (p[0]) {
    case 0x0a:  // string_value
      *text = p + 2;
      return p[1] == n - 2;
    case 0x3a:  // bytes_value
      return p[1] == n - 2;
    case 0x10:  // bool_value
    case 0x18:  // int_value
      return is_one_varint(p + 1, end);
    case 0x21:  // double_value
      return n == 9;
    default:
      return false;
  }
}

// An AnyValue at `depth` (LogRecord bodies, array elements) holding one ASCII or non-string scalar.
inline bool common_any_value(Cursor c, int depth) {
  const size_t n = static_cast<size_t>(c.end() - c.begin());
  const uint8_t* text;
  return depth <= kMaxDepth && n - 2 < 0x80 - 2 && common_scalar(c.begin(), c.end(), &text) &&
         all_ascii(text, c.end());
}

// A KeyValue at `depth`: key (1) then a common_scalar value (2), one-byte keys, ASCII. The bytes
// between key and string value (value key and lengths) are then below 0x80 too, so one ASCII scan
// from the key to the end covers both strings.
inline bool common_key_value(Cursor c, int depth) {
  const uint8_t *p = c.begin(), *end = c.end();
  const size_t n = static_cast<size_t>(end - p);
  // At least 0a <len> <key> 12 <len> <scalar key> <one byte>: 6 bytes besides the key.
  if (n - 6 >= 0x80 - 6 || depth + 1 > kMaxDepth || p[0] != 0x0a || p[1] + 6u > n) return false;
  const uint8_t* key = p + 2;
  const uint8_t* key_end = key + p[1];
  const uint8_t* value = key_end + 2;
  const uint8_t* text;
  if (key_end[0] != 0x12 || key_end[1] != end - value || !common_scalar(value, end, &text)) return false;
  return all_ascii(key, text == end ? key_end : end);
}

// Whether the key at `c` (first byte >= 0x80) is two bytes ending in 0x01: in the step table.
inline bool table_second_byte(const Cursor& c) { return c.end() - c.begin() >= 2 && c.begin()[1] == 0x01; }

template <bool kCounting>
bool valid_message(MessageType type, Cursor c, int depth, size_t* items) {
  if (depth > kMaxDepth) return false;
  const auto& steps = kCounting ? kCountingSteps[type] : kLenientSteps[type];
  while (!c.done()) {
    Step step;
    uint32_t number = 0;  // set by the general path only: field 0 is never valid
    const uint8_t first = *c.begin();
    if (first < 0x80 || table_second_byte(c)) {
      c.skip(first < 0x80 ? 1 : 2);
      step = steps[first];
    } else {
      uint32_t wire;
      bool wide;
      if (!c.tag(&number, &wire, &wide)) return false;
      step = general_step(type, number, wire, wide, kCounting);
    }
    uint64_t v;
    Cursor value(nullptr, nullptr);
    switch (step.op) {
      case Op::fail: return false;
      case Op::varint: if (!c.varint(&v)) return false; break;
      case Op::fixed64: if (!c.skip(8)) return false; break;
      case Op::fixed32: if (!c.skip(4)) return false; break;
      case Op::group: {
        if (number == 0) number = first >> 3;
        Cursor rest = c;  // a copy, so `c` itself can stay in registers
        if (!skip_group(rest, number, depth + 1)) return false;
        c = rest;
        break;
      }
      case Op::skip_bytes:
        if (!c.length(&v) || !c.slice(v, &value)) return false;
        break;
      case Op::string:
        if (!c.length(&v) || !c.slice(v, &value)) return false;
        if (!all_ascii(value.begin(), value.end()) && !valid_utf8(value.begin(), value.end())) return false;
        break;
      case Op::item:
        ++*items;
        [[fallthrough]];
      case Op::message:
        if (!c.length(&v) || !c.slice(v, &value) || !valid_message<kCounting>(step.type, value, depth + 1, items)) {
          return false;
        }
        break;
      case Op::key_value:
        // Attributes are serialized one after another: the whole run is checked here, without
        // a dispatch per attribute (only one-byte keys repeat this way; OTLP has no other).
        do {
          if (!c.delimited(&value)) return false;
          if (!common_key_value(value, depth + 1) && !key_value(value, depth + 1)) return false;
        } while (first < 0x80 && c.take(first));
        break;
      case Op::any_value:
        if (!c.delimited(&value)) return false;
        if (!common_any_value(value, depth + 1) && !any_value(value, depth + 1)) return false;
        break;
      case Op::packed_fixed64:
      case Op::packed_varint:
        if (!c.length(&v) || !c.slice(v, &value)) return false;
        if (!valid_packed(step.op == Op::packed_fixed64 ? Kind::packed_fixed64 : Kind::packed_varint, value)) {
          return false;
        }
        break;
    }
  }
  return true;
}

MessageType request_type(Signal signal) {
  switch (signal) {
    case Signal::traces: return kTraceRequest;
    case Signal::metrics: return kMetricsRequest;
    case Signal::logs: return kLogsRequest;
  }
  return kTraceRequest;
}

Cursor cursor_of(std::string_view bytes) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  return Cursor(p, p + bytes.size());
}

}  // namespace

bool decodes_as_request(Signal signal, std::string_view request) {
  size_t unused = 0;
  return valid_message<false>(request_type(signal), cursor_of(request), 0, &unused);
}

CheckResult check_request(Signal signal, std::string_view request) {
  CheckResult result;
  result.ok = valid_message<true>(request_type(signal), cursor_of(request), 0, &result.items);
  if (!result.ok) result.items = 0;
  return result;
}

}  // namespace otlpd::otlp

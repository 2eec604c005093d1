#include "otlp/validate.h"

#include <cstdint>

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

// protobuf's default recursion limit.
constexpr int kMaxDepth = 100;

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kStartGroup = 3, kEndGroup = 4, kFixed32 = 5 };

class Cursor {
 public:
  Cursor(const uint8_t* p, const uint8_t* end) : p_(p), end_(end) {}
  bool done() const { return p_ == end_; }

  bool varint(uint64_t* out) {
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
  bool tag(uint32_t* number, uint32_t* wire) {
    uint32_t v = 0;
    for (int i = 0; i < 5; ++i) {
      if (p_ == end_) return false;
      uint8_t b = *p_++;
      v |= uint32_t(b & 0x7f) << (7 * i);
      if (!(b & 0x80)) {
        if ((v >> 3) == 0) return false;
        *number = v >> 3;
        *wire = v & 7;
        return true;
      }
    }
    return false;
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

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF (what proto3 requires).
bool valid_utf8(const uint8_t* p, const uint8_t* end) {
  while (p < end) {
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

const Field* find(const Schema& s, uint32_t number) {
  for (size_t i = 0; i < s.count; ++i) {
    if (s.fields[i].number == number) return &s.fields[i];
  }
  return nullptr;
}

bool valid_message(MessageType type, Cursor c, int depth);

// Skips an unknown group up to its matching end tag.
bool skip_group(Cursor& c, uint32_t number, int depth) {
  if (depth > kMaxDepth) return false;
  while (!c.done()) {
    uint32_t field, wire;
    if (!c.tag(&field, &wire)) return false;
    if (wire == kEndGroup) return field == number;
    uint64_t v;
    switch (wire) {
      case kVarint: if (!c.varint(&v)) return false; break;
      case kFixed64: if (!c.skip(8)) return false; break;
      case kFixed32: if (!c.skip(4)) return false; break;
      case kLengthDelimited: {
        Cursor inner(nullptr, nullptr);
        if (!c.varint(&v) || !c.slice(v, &inner)) return false;
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

bool valid_message(MessageType type, Cursor c, int depth) {
  if (depth > kMaxDepth) return false;
  const Schema& s = kSchemas[type];
  while (!c.done()) {
    uint32_t number, wire;
    if (!c.tag(&number, &wire)) return false;
    const Field* f = find(s, number);
    uint64_t v;
    switch (wire) {
      case kVarint: if (!c.varint(&v)) return false; break;
      case kFixed64: if (!c.skip(8)) return false; break;
      case kFixed32: if (!c.skip(4)) return false; break;
      case kStartGroup: if (!skip_group(c, number, depth + 1)) return false; break;
      case kLengthDelimited: {
        Cursor value(nullptr, nullptr);
        if (!c.varint(&v) || !c.slice(v, &value)) return false;
        if (!f) break;
        if (f->kind == Kind::string && !valid_utf8(value.begin(), value.end())) return false;
        if (f->kind == Kind::message && !valid_message(f->type, value, depth + 1)) return false;
        if ((f->kind == Kind::packed_fixed64 || f->kind == Kind::packed_varint) && !valid_packed(f->kind, value)) {
          return false;
        }
        break;
      }
      default: return false;  // a stray end-group tag, or wire types 6 and 7
    }
  }
  return true;
}

}  // namespace

bool decodes_as_request(Signal signal, std::string_view request) {
  const auto* p = reinterpret_cast<const uint8_t*>(request.data());
  Cursor c(p, p + request.size());
  switch (signal) {
    case Signal::traces: return valid_message(kTraceRequest, c, 0);
    case Signal::metrics: return valid_message(kMetricsRequest, c, 0);
    case Signal::logs: return valid_message(kLogsRequest, c, 0);
  }
  return false;
}

}  // namespace otlpd::otlp

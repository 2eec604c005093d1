// OTLP/JSON -> protobuf wire bytes in one pass (see json_wire.h for the contract).
//
// A hand-written reader rather than a SIMD JSON library: equivalence with json_to_message
// (nlohmann::json underneath) needs every byte validated the way nlohmann does, including values
// of unknown fields that are only skipped (number overflow, escapes, UTF-8, control characters,
// nesting without a depth limit, a NUL byte ending the input), and "last duplicate key wins".
//
// Semantics mirrored from json_to_message, which reads a DOM whose objects hold the last value of
// each key: a known, non-null field is converted; an invalid value does not stop the reader at
// once (a later duplicate key may replace it), it marks the member invalid and the object is
// judged when it closes. Results: ok, invalid (well-formed JSON the slow path refuses) or syntax
// (not JSON: nothing can rescue the input, so reading stops).
#include "otlp/json_wire.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <exception>
#include <utility>

#include "otlp/json_codec.h"
#include "otlp/json_digits.h"

namespace otlpd::otlp {
namespace {

// ---------------------------------------------------------------------------------------------
// Schema tables
// ---------------------------------------------------------------------------------------------

// How a field's JSON value becomes wire bytes.
enum class Type : uint8_t {
  string, bytes, trace_id, span_id,                      // length-delimited
  boolean, enumeration, int64, uint32, sint32, uint64,  // varint
  fixed32, fixed64, sfixed64, float64,                   // fixed width
  message,
};

enum Msg : uint8_t {
  kTraceRequest, kMetricsRequest, kLogsRequest,
  kResource, kScope, kKeyValue, kAnyValue, kArrayValue, kKeyValueList,
  kResourceSpans, kScopeSpans, kSpan, kEvent, kLink, kSpanStatus,
  kResourceMetrics, kScopeMetrics, kMetric, kGauge, kSum, kHistogram, kExpHistogram, kSummary,
  kNumberPoint, kHistogramPoint, kExpHistogramPoint, kBuckets, kSummaryPoint, kQuantile, kExemplar,
  kResourceLogs, kScopeLogs, kLogRecord,
  kMsgCount,
};

enum EnumId : uint8_t { kSpanKind, kStatusCode, kTemporality, kSeverity, kNoEnum };

// Field flags. Every OTLP message has at most one real oneof, so one bit names it.
constexpr uint8_t kRepeated = 1;
constexpr uint8_t kOptional = 2;  // proto3 `optional`: explicit presence
constexpr uint8_t kOneof = 4;     // member of the message's oneof: explicit presence

struct Field {
  std::string_view json_name;   // lowerCamelCase
  std::string_view proto_name;  // snake_case; equal to json_name for one-word names
  uint32_t number;
  Type type;
  uint8_t flags = 0;
  uint8_t target = 0;  // Msg for Type::message, EnumId for Type::enumeration
};

using T = Type;
constexpr Field kTraceRequestFields[] = {{"resourceSpans", "resource_spans", 1, T::message, kRepeated, kResourceSpans}};
constexpr Field kMetricsRequestFields[] = {
    {"resourceMetrics", "resource_metrics", 1, T::message, kRepeated, kResourceMetrics}};
constexpr Field kLogsRequestFields[] = {{"resourceLogs", "resource_logs", 1, T::message, kRepeated, kResourceLogs}};
constexpr Field kResourceFields[] = {
    {"attributes", "attributes", 1, T::message, kRepeated, kKeyValue},
    {"droppedAttributesCount", "dropped_attributes_count", 2, T::uint32}};
constexpr Field kScopeFields[] = {
    {"name", "name", 1, T::string},
    {"version", "version", 2, T::string},
    {"attributes", "attributes", 3, T::message, kRepeated, kKeyValue},
    {"droppedAttributesCount", "dropped_attributes_count", 4, T::uint32}};
constexpr Field kKeyValueFields[] = {{"key", "key", 1, T::string}, {"value", "value", 2, T::message, 0, kAnyValue}};
constexpr Field kAnyValueFields[] = {
    {"stringValue", "string_value", 1, T::string, kOneof},
    {"boolValue", "bool_value", 2, T::boolean, kOneof},
    {"intValue", "int_value", 3, T::int64, kOneof},
    {"doubleValue", "double_value", 4, T::float64, kOneof},
    {"arrayValue", "array_value", 5, T::message, kOneof, kArrayValue},
    {"kvlistValue", "kvlist_value", 6, T::message, kOneof, kKeyValueList},
    {"bytesValue", "bytes_value", 7, T::bytes, kOneof}};
constexpr Field kArrayValueFields[] = {{"values", "values", 1, T::message, kRepeated, kAnyValue}};
constexpr Field kKeyValueListFields[] = {{"values", "values", 1, T::message, kRepeated, kKeyValue}};
constexpr Field kResourceSpansFields[] = {
    {"resource", "resource", 1, T::message, 0, kResource},
    {"scopeSpans", "scope_spans", 2, T::message, kRepeated, kScopeSpans},
    {"schemaUrl", "schema_url", 3, T::string}};
constexpr Field kScopeSpansFields[] = {
    {"scope", "scope", 1, T::message, 0, kScope},
    {"spans", "spans", 2, T::message, kRepeated, kSpan},
    {"schemaUrl", "schema_url", 3, T::string}};
constexpr Field kSpanFields[] = {
    {"traceId", "trace_id", 1, T::trace_id},
    {"spanId", "span_id", 2, T::span_id},
    {"traceState", "trace_state", 3, T::string},
    {"parentSpanId", "parent_span_id", 4, T::span_id},
    {"flags", "flags", 16, T::fixed32},
    {"name", "name", 5, T::string},
    {"kind", "kind", 6, T::enumeration, 0, kSpanKind},
    {"startTimeUnixNano", "start_time_unix_nano", 7, T::fixed64},
    {"endTimeUnixNano", "end_time_unix_nano", 8, T::fixed64},
    {"attributes", "attributes", 9, T::message, kRepeated, kKeyValue},
    {"droppedAttributesCount", "dropped_attributes_count", 10, T::uint32},
    {"events", "events", 11, T::message, kRepeated, kEvent},
    {"droppedEventsCount", "dropped_events_count", 12, T::uint32},
    {"links", "links", 13, T::message, kRepeated, kLink},
    {"droppedLinksCount", "dropped_links_count", 14, T::uint32},
    {"status", "status", 15, T::message, 0, kSpanStatus}};
constexpr Field kEventFields[] = {
    {"timeUnixNano", "time_unix_nano", 1, T::fixed64},
    {"name", "name", 2, T::string},
    {"attributes", "attributes", 3, T::message, kRepeated, kKeyValue},
    {"droppedAttributesCount", "dropped_attributes_count", 4, T::uint32}};
constexpr Field kLinkFields[] = {
    {"traceId", "trace_id", 1, T::trace_id},
    {"spanId", "span_id", 2, T::span_id},
    {"traceState", "trace_state", 3, T::string},
    {"attributes", "attributes", 4, T::message, kRepeated, kKeyValue},
    {"droppedAttributesCount", "dropped_attributes_count", 5, T::uint32},
    {"flags", "flags", 6, T::fixed32}};
constexpr Field kSpanStatusFields[] = {
    {"message", "message", 2, T::string}, {"code", "code", 3, T::enumeration, 0, kStatusCode}};
constexpr Field kResourceMetricsFields[] = {
    {"resource", "resource", 1, T::message, 0, kResource},
    {"scopeMetrics", "scope_metrics", 2, T::message, kRepeated, kScopeMetrics},
    {"schemaUrl", "schema_url", 3, T::string}};
constexpr Field kScopeMetricsFields[] = {
    {"scope", "scope", 1, T::message, 0, kScope},
    {"metrics", "metrics", 2, T::message, kRepeated, kMetric},
    {"schemaUrl", "schema_url", 3, T::string}};
constexpr Field kMetricFields[] = {
    {"name", "name", 1, T::string},
    {"description", "description", 2, T::string},
    {"unit", "unit", 3, T::string},
    {"gauge", "gauge", 5, T::message, kOneof, kGauge},
    {"sum", "sum", 7, T::message, kOneof, kSum},
    {"histogram", "histogram", 9, T::message, kOneof, kHistogram},
    {"exponentialHistogram", "exponential_histogram", 10, T::message, kOneof, kExpHistogram},
    {"summary", "summary", 11, T::message, kOneof, kSummary},
    {"metadata", "metadata", 12, T::message, kRepeated, kKeyValue}};
constexpr Field kGaugeFields[] = {{"dataPoints", "data_points", 1, T::message, kRepeated, kNumberPoint}};
constexpr Field kSumFields[] = {
    {"dataPoints", "data_points", 1, T::message, kRepeated, kNumberPoint},
    {"aggregationTemporality", "aggregation_temporality", 2, T::enumeration, 0, kTemporality},
    {"isMonotonic", "is_monotonic", 3, T::boolean}};
constexpr Field kHistogramFields[] = {
    {"dataPoints", "data_points", 1, T::message, kRepeated, kHistogramPoint},
    {"aggregationTemporality", "aggregation_temporality", 2, T::enumeration, 0, kTemporality}};
constexpr Field kExpHistogramFields[] = {
    {"dataPoints", "data_points", 1, T::message, kRepeated, kExpHistogramPoint},
    {"aggregationTemporality", "aggregation_temporality", 2, T::enumeration, 0, kTemporality}};
constexpr Field kSummaryFields[] = {{"dataPoints", "data_points", 1, T::message, kRepeated, kSummaryPoint}};
constexpr Field kNumberPointFields[] = {
    {"attributes", "attributes", 7, T::message, kRepeated, kKeyValue},
    {"startTimeUnixNano", "start_time_unix_nano", 2, T::fixed64},
    {"timeUnixNano", "time_unix_nano", 3, T::fixed64},
    {"asDouble", "as_double", 4, T::float64, kOneof},
    {"asInt", "as_int", 6, T::sfixed64, kOneof},
    {"exemplars", "exemplars", 5, T::message, kRepeated, kExemplar},
    {"flags", "flags", 8, T::uint32}};
constexpr Field kHistogramPointFields[] = {
    {"attributes", "attributes", 9, T::message, kRepeated, kKeyValue},
    {"startTimeUnixNano", "start_time_unix_nano", 2, T::fixed64},
    {"timeUnixNano", "time_unix_nano", 3, T::fixed64},
    {"count", "count", 4, T::fixed64},
    {"sum", "sum", 5, T::float64, kOptional},
    {"bucketCounts", "bucket_counts", 6, T::fixed64, kRepeated},
    {"explicitBounds", "explicit_bounds", 7, T::float64, kRepeated},
    {"exemplars", "exemplars", 8, T::message, kRepeated, kExemplar},
    {"flags", "flags", 10, T::uint32},
    {"min", "min", 11, T::float64, kOptional},
    {"max", "max", 12, T::float64, kOptional}};
constexpr Field kExpHistogramPointFields[] = {
    {"attributes", "attributes", 1, T::message, kRepeated, kKeyValue},
    {"startTimeUnixNano", "start_time_unix_nano", 2, T::fixed64},
    {"timeUnixNano", "time_unix_nano", 3, T::fixed64},
    {"count", "count", 4, T::fixed64},
    {"sum", "sum", 5, T::float64, kOptional},
    {"scale", "scale", 6, T::sint32},
    {"zeroCount", "zero_count", 7, T::fixed64},
    {"positive", "positive", 8, T::message, 0, kBuckets},
    {"negative", "negative", 9, T::message, 0, kBuckets},
    {"flags", "flags", 10, T::uint32},
    {"exemplars", "exemplars", 11, T::message, kRepeated, kExemplar},
    {"min", "min", 12, T::float64, kOptional},
    {"max", "max", 13, T::float64, kOptional},
    {"zeroThreshold", "zero_threshold", 14, T::float64}};
constexpr Field kBucketsFields[] = {
    {"offset", "offset", 1, T::sint32}, {"bucketCounts", "bucket_counts", 2, T::uint64, kRepeated}};
constexpr Field kSummaryPointFields[] = {
    {"attributes", "attributes", 7, T::message, kRepeated, kKeyValue},
    {"startTimeUnixNano", "start_time_unix_nano", 2, T::fixed64},
    {"timeUnixNano", "time_unix_nano", 3, T::fixed64},
    {"count", "count", 4, T::fixed64},
    {"sum", "sum", 5, T::float64},
    {"quantileValues", "quantile_values", 6, T::message, kRepeated, kQuantile},
    {"flags", "flags", 8, T::uint32}};
constexpr Field kQuantileFields[] = {{"quantile", "quantile", 1, T::float64}, {"value", "value", 2, T::float64}};
constexpr Field kExemplarFields[] = {
    {"filteredAttributes", "filtered_attributes", 7, T::message, kRepeated, kKeyValue},
    {"timeUnixNano", "time_unix_nano", 2, T::fixed64},
    {"asDouble", "as_double", 3, T::float64, kOneof},
    {"asInt", "as_int", 6, T::sfixed64, kOneof},
    {"spanId", "span_id", 4, T::span_id},
    {"traceId", "trace_id", 5, T::trace_id}};
constexpr Field kResourceLogsFields[] = {
    {"resource", "resource", 1, T::message, 0, kResource},
    {"scopeLogs", "scope_logs", 2, T::message, kRepeated, kScopeLogs},
    {"schemaUrl", "schema_url", 3, T::string}};
constexpr Field kScopeLogsFields[] = {
    {"scope", "scope", 1, T::message, 0, kScope},
    {"logRecords", "log_records", 2, T::message, kRepeated, kLogRecord},
    {"schemaUrl", "schema_url", 3, T::string}};
constexpr Field kLogRecordFields[] = {
    {"timeUnixNano", "time_unix_nano", 1, T::fixed64},
    {"observedTimeUnixNano", "observed_time_unix_nano", 11, T::fixed64},
    {"severityNumber", "severity_number", 2, T::enumeration, 0, kSeverity},
    {"severityText", "severity_text", 3, T::string},
    {"body", "body", 5, T::message, 0, kAnyValue},
    {"attributes", "attributes", 6, T::message, kRepeated, kKeyValue},
    {"droppedAttributesCount", "dropped_attributes_count", 7, T::uint32},
    {"flags", "flags", 8, T::fixed32},
    {"traceId", "trace_id", 9, T::trace_id},
    {"spanId", "span_id", 10, T::span_id},
    {"eventName", "event_name", 12, T::string}};

// Per-object bookkeeping uses one bit per field.
constexpr size_t kMaxFields = 16;

struct Schema {
  const Field* fields;
  uint8_t count;
  uint8_t length_width;  // bytes reserved for the length prefix: a guess of the usual size, so
                         // large envelopes rarely need their body moved once it is known
  uint32_t oneof_mask;   // bits of the oneof members
};

template <size_t N>
constexpr Schema schema(const Field (&fields)[N], uint8_t length_width = 1) {
  static_assert(N <= kMaxFields);
  uint32_t mask = 0;
  for (size_t i = 0; i < N; ++i) {
    if (fields[i].flags & kOneof) mask |= 1u << i;
  }
  return {fields, static_cast<uint8_t>(N), length_width, mask};
}

constexpr Schema kSchemas[] = {
    schema(kTraceRequestFields), schema(kMetricsRequestFields), schema(kLogsRequestFields),
    schema(kResourceFields), schema(kScopeFields), schema(kKeyValueFields), schema(kAnyValueFields),
    schema(kArrayValueFields), schema(kKeyValueListFields),
    schema(kResourceSpansFields, 3), schema(kScopeSpansFields, 3), schema(kSpanFields, 2),
    schema(kEventFields), schema(kLinkFields), schema(kSpanStatusFields),
    schema(kResourceMetricsFields, 3), schema(kScopeMetricsFields, 3), schema(kMetricFields, 2),
    schema(kGaugeFields, 2), schema(kSumFields, 2), schema(kHistogramFields, 2),
    schema(kExpHistogramFields, 2), schema(kSummaryFields, 2),
    schema(kNumberPointFields), schema(kHistogramPointFields, 2), schema(kExpHistogramPointFields, 2),
    schema(kBucketsFields), schema(kSummaryPointFields, 2), schema(kQuantileFields), schema(kExemplarFields),
    schema(kResourceLogsFields, 3), schema(kScopeLogsFields, 3), schema(kLogRecordFields, 2),
};
static_assert(std::size(kSchemas) == kMsgCount, "one schema per message type");

// Enum value names, indexed by number (every OTLP enum used by a field numbers 0..n-1).
constexpr std::string_view kSpanKindNames[] = {
    "SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",      "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"};
constexpr std::string_view kStatusCodeNames[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"};
constexpr std::string_view kTemporalityNames[] = {
    "AGGREGATION_TEMPORALITY_UNSPECIFIED", "AGGREGATION_TEMPORALITY_DELTA",
    "AGGREGATION_TEMPORALITY_CUMULATIVE"};
constexpr std::string_view kSeverityNames[] = {
    "SEVERITY_NUMBER_UNSPECIFIED", "SEVERITY_NUMBER_TRACE",  "SEVERITY_NUMBER_TRACE2",
    "SEVERITY_NUMBER_TRACE3",      "SEVERITY_NUMBER_TRACE4", "SEVERITY_NUMBER_DEBUG",
    "SEVERITY_NUMBER_DEBUG2",      "SEVERITY_NUMBER_DEBUG3", "SEVERITY_NUMBER_DEBUG4",
    "SEVERITY_NUMBER_INFO",        "SEVERITY_NUMBER_INFO2",  "SEVERITY_NUMBER_INFO3",
    "SEVERITY_NUMBER_INFO4",       "SEVERITY_NUMBER_WARN",   "SEVERITY_NUMBER_WARN2",
    "SEVERITY_NUMBER_WARN3",       "SEVERITY_NUMBER_WARN4",  "SEVERITY_NUMBER_ERROR",
    "SEVERITY_NUMBER_ERROR2",      "SEVERITY_NUMBER_ERROR3", "SEVERITY_NUMBER_ERROR4",
    "SEVERITY_NUMBER_FATAL",       "SEVERITY_NUMBER_FATAL2", "SEVERITY_NUMBER_FATAL3",
    "SEVERITY_NUMBER_FATAL4"};

struct EnumNames {
  const std::string_view* names;
  size_t count;
};
constexpr EnumNames kEnums[] = {
    {kSpanKindNames, std::size(kSpanKindNames)},
    {kStatusCodeNames, std::size(kStatusCodeNames)},
    {kTemporalityNames, std::size(kTemporalityNames)},
    {kSeverityNames, std::size(kSeverityNames)},
};

// ---------------------------------------------------------------------------------------------
// Wire encoding
// ---------------------------------------------------------------------------------------------

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

WireType wire_type(Type t) {
  switch (t) {
    case T::fixed32: return kFixed32;
    case T::fixed64: case T::sfixed64: case T::float64: return kFixed64;
    case T::string: case T::bytes: case T::trace_id: case T::span_id: case T::message: return kLen;
    default: return kVarint;
  }
}

constexpr size_t varint_size(uint64_t v) {
  return static_cast<size_t>(std::bit_width(v | 1) + 6) / 7;
}

// Output buffer over the caller's string: bytes are written past `pos_` into storage grown in
// large steps, and the string is cut to the written size at the end.
class Out {
 public:
  explicit Out(std::string& s, size_t expected) : s_(s), start_(s.size()), pos_(s.size()) {
    s_.resize(start_ + expected + 64);
  }

  size_t pos() const { return pos_; }
  char* at(size_t i) { return s_.data() + i; }

  // Room for n more bytes; returns where they go.
  char* room(size_t n) {
    if (s_.size() - pos_ < n) s_.resize(std::max(s_.size() * 2, pos_ + n));
    return s_.data() + pos_;
  }

  void byte(uint8_t b) { *room(1) = static_cast<char>(b), ++pos_; }

  void varint(uint64_t v) {
    char* p = room(10);
    char* q = p;
    while (v >= 0x80) {
      *q++ = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    *q++ = static_cast<char>(v);
    pos_ += static_cast<size_t>(q - p);
  }

  void tag(uint32_t number, WireType wire) { varint(uint64_t{number} << 3 | wire); }

  void fixed(uint64_t v, size_t width) {
    char* p = room(8);
    for (size_t i = 0; i < width; ++i) p[i] = static_cast<char>(v >> (8 * i));
    pos_ += width;
  }

  void bytes(const char* data, size_t n) {
    std::memcpy(room(n), data, n);
    pos_ += n;
  }

  // Reserves `width` bytes for a length prefix; returns the mark that close_length takes.
  size_t open_length(size_t width) {
    room(width);
    pos_ += width;
    return pos_ - width;
  }

  // Writes the length of everything after the prefix at `mark`, moving the body when the
  // reserved width was not the minimal varint size (canonical encoding).
  void close_length(size_t mark, size_t width) {
    const size_t body = mark + width;
    const size_t len = pos_ - body;
    const size_t need = varint_size(len);
    if (need != width) {
      room(need);  // may reallocate: take pointers afterwards
      std::memmove(at(mark + need), at(body), len);
      pos_ = mark + need + len;
    }
    char* p = at(mark);
    uint64_t v = len;
    while (v >= 0x80) {
      *p++ = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    *p = static_cast<char>(v);
  }

  // Removes [begin, end) (a value replaced by a later duplicate key).
  void erase(size_t begin, size_t end) {
    std::memmove(at(begin), at(end), pos_ - end);
    pos_ -= end - begin;
  }

  void advance(size_t n) { pos_ += n; }  // after writing n bytes at room()
  void truncate(size_t pos) { pos_ = pos; }
  void commit() { s_.resize(pos_); }
  void rollback() { s_.resize(start_); }

 private:
  std::string& s_;
  size_t start_;
  size_t pos_;
};

// ---------------------------------------------------------------------------------------------
// Value conversions, mirroring JsonReader in json_codec.cc
// ---------------------------------------------------------------------------------------------

// A JSON number as nlohmann classifies it: unsigned or signed integer when it has no fraction or
// exponent and fits 64 bits, else floating (parsed with strtod; overflow is a parse error).
struct Number {
  enum Kind : uint8_t { kUnsigned, kSigned, kFloating } kind = kUnsigned;
  uint64_t u = 0;
  int64_t i = 0;
  double d = 0;
};

// One scalar JSON value (containers are skipped and only reported).
struct Scalar {
  enum Kind : uint8_t { kString, kNumber, kTrue, kFalse, kNull, kContainer } kind = kNull;
  std::string_view str;
  Number num;
};

template <typename I>
bool to_integer(const Scalar& s, I& out) {
  if (s.kind == Scalar::kNumber) {
    const Number& n = s.num;
    if (n.kind == Number::kUnsigned) {
      if (!std::in_range<I>(n.u)) return false;
      out = static_cast<I>(n.u);
      return true;
    }
    if (n.kind == Number::kSigned) {
      if (!std::in_range<I>(n.i)) return false;
      out = static_cast<I>(n.i);
      return true;
    }
    const double v = n.d;
    if (v != std::trunc(v)) return false;
    const double lo = static_cast<double>(std::numeric_limits<I>::min());
    const double hi = std::ldexp(1.0, std::numeric_limits<I>::digits);
    if (!(v >= lo && v < hi)) return false;
    out = static_cast<I>(v);
    return true;
  }
  if (s.kind != Scalar::kString) return false;
  const char* end = s.str.data() + s.str.size();
  const auto [ptr, ec] = std::from_chars(s.str.data(), end, out);
  return ec == std::errc() && ptr == end && !s.str.empty();
}

bool to_double(const Scalar& s, double& out) {
  if (s.kind == Scalar::kNumber) {
    const Number& n = s.num;
    // As nlohmann's get<double>: integers convert from their integer value ("-0" gives +0.0).
    out = n.kind == Number::kUnsigned ? static_cast<double>(n.u)
          : n.kind == Number::kSigned ? static_cast<double>(n.i)
                                      : n.d;
    return true;
  }
  if (s.kind != Scalar::kString) return false;
  if (s.str == "NaN") {
    out = std::numeric_limits<double>::quiet_NaN();
  } else if (s.str == "Infinity") {
    out = std::numeric_limits<double>::infinity();
  } else if (s.str == "-Infinity") {
    out = -std::numeric_limits<double>::infinity();
  } else {
    const char* end = s.str.data() + s.str.size();
    const auto [ptr, ec] = std::from_chars(s.str.data(), end, out);
    if (ec != std::errc() || ptr != end || s.str.empty() || !std::isfinite(out)) return false;
  }
  return true;
}

bool to_enum(const Scalar& s, EnumId id, int32_t& out) {
  if (s.kind == Scalar::kString) {
    const EnumNames& e = kEnums[id];
    for (size_t i = 0; i < e.count; ++i) {
      if (e.names[i] == s.str) {
        out = static_cast<int32_t>(i);
        return true;
      }
    }
    return false;
  }
  return s.kind == Scalar::kNumber && to_integer(s, out);  // proto3 enums are open
}

// The wire value of a varint or fixed-width field (0 for the default value; for doubles, the
// bit pattern, so -0.0 is not a default, as protobuf's serializer decides).
bool to_wire_bits(const Field& f, const Scalar& s, uint64_t& bits) {
  switch (f.type) {
    case T::boolean:
      if (s.kind != Scalar::kTrue && s.kind != Scalar::kFalse) return false;
      bits = s.kind == Scalar::kTrue;
      return true;
    case T::enumeration: {
      int32_t v = 0;
      if (!to_enum(s, static_cast<EnumId>(f.target), v)) return false;
      bits = static_cast<uint64_t>(int64_t{v});  // negative int32 varints are sign-extended
      return true;
    }
    case T::sint32: {
      int32_t v = 0;
      if (!to_integer(s, v)) return false;
      bits = (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31);  // zigzag
      return true;
    }
    case T::uint32: case T::fixed32: {
      uint32_t v = 0;
      if (!to_integer(s, v)) return false;
      bits = v;
      return true;
    }
    case T::int64: case T::sfixed64: {
      int64_t v = 0;
      if (!to_integer(s, v)) return false;
      bits = static_cast<uint64_t>(v);
      return true;
    }
    case T::uint64: case T::fixed64: {
      uint64_t v = 0;
      if (!to_integer(s, v)) return false;
      bits = v;
      return true;
    }
    case T::float64: {
      double v = 0;
      if (!to_double(s, v)) return false;
      bits = std::bit_cast<uint64_t>(v);
      return true;
    }
    default:
      return false;
  }
}

// Decodes hex into `dst` (s.size() / 2 bytes); false on a non-hex character.
bool hex_decode(std::string_view s, char* dst) {
  for (size_t i = 0; i < s.size(); i += 2) {
    const int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
    if ((hi | lo) < 0) return false;
    dst[i / 2] = static_cast<char>(hi << 4 | lo);
  }
  return true;
}

// Base64 with optional padding, the way json_codec.cc strips it. Returns the text without padding
// and its decoded size, or false if the length is impossible.
bool base64_unpad(std::string_view& s, size_t& decoded_size) {
  if (s.size() % 4 == 0 && !s.empty() && s.back() == '=') s.remove_suffix(1);
  if (s.size() % 4 == 3 && !s.empty() && s.back() == '=') s.remove_suffix(1);
  if (s.size() % 4 == 1) return false;
  decoded_size = s.size() * 6 / 8;
  return true;
}

bool base64_decode(std::string_view s, char* dst) {
  uint32_t bits = 0;
  int nbits = 0;
  for (char c : s) {
    const int v = base64_value(c);
    if (v < 0) return false;
    bits = (bits << 6 | static_cast<uint32_t>(v)) & 0xFFFFFF;
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      *dst++ = static_cast<char>(bits >> nbits & 0xFF);
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

enum class Res : uint8_t { ok, invalid, syntax };

// The members seen so far in one JSON object. Spelling 0 is the lowerCamelCase key, 1 the
// snake_case key (only for fields where they differ). Ranges are where each member's bytes are.
struct Frame {
  uint32_t present[2] = {0, 0};  // key seen (any value, null included)
  uint32_t nonnull[2] = {0, 0};  // last value for the key is not null
  uint32_t bad[2] = {0, 0};      // last value for the key was refused
  size_t begin[2][kMaxFields];
  size_t end[2][kMaxFields];
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Well-formed UTF-8 sequence at p (lead byte >= 0x80): its length, or 0 if malformed, overlong,
// a surrogate or beyond U+10FFFF.
size_t utf8_length(const char* p, const char* end) {
  const auto b = [&](size_t k) -> unsigned {
    return p + k < end ? static_cast<unsigned char>(p[k]) : 0;
  };
  const unsigned lead = b(0);
  unsigned lo = 0x80, hi = 0xBF;
  size_t n;
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (b(1) < lo || b(1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (b(k) < 0x80 || b(k) > 0xBF) return 0;
  }
  return n;
}

void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | cp >> 6);
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | cp >> 12);
    s += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | cp >> 18);
    s += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
    s += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// True if any of the 8 bytes needs a closer look inside a string: '"', '\\', a control
// character or a non-ASCII byte.
bool needs_attention(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  const uint64_t quote = w ^ (kOnes * '"');
  const uint64_t backslash = w ^ (kOnes * '\\');
  const uint64_t has_quote = (quote - kOnes) & ~quote;
  const uint64_t has_backslash = (backslash - kOnes) & ~backslash;
  const uint64_t has_control = w - kOnes * 0x20;  // borrows into the high bit below 0x20
  return ((has_quote | has_backslash | has_control | w) & kHigh) != 0;
}

class Reader {
 public:
  Reader(std::string_view json, Out& out) : p_(json.data()), end_(json.data() + json.size()), out_(out) {}

  // The whole document: one request object and nothing else.
  bool read_request(Msg type) {
    skip_ws();
    if (peek() != '{') return false;
    if (read_object(kSchemas[type], 1) != Res::ok) return false;
    skip_ws();
    return p_ == end_;
  }

 private:
  // '\0' at the end: the input was cut at its first NUL byte, so it stands for "end" only.
  char peek() const { return p_ < end_ ? *p_ : '\0'; }

  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  bool consume(char c) {
    if (peek() != c) return false;
    ++p_;
    return true;
  }

  bool literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::memcmp(p_, word.data(), word.size()) != 0) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  // --- strings -------------------------------------------------------------------------------

  // A JSON string at p_ (on its quote). The view points into the input when there are no escapes,
  // else into scratch_, valid until the next string is read.
  bool read_string(std::string_view& out) {
    const char* start = ++p_;
    for (;;) {
      while (end_ - p_ >= 8) {
        uint64_t w;
        std::memcpy(&w, p_, 8);
        if (needs_attention(w)) break;
        p_ += 8;
      }
      if (p_ >= end_) return false;
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        out = std::string_view(start, static_cast<size_t>(p_ - start));
        ++p_;
        return true;
      }
      if (c == '\\') return read_escaped_string(start, out);
      if (c < 0x20) return false;  // control characters must be escaped
      if (c < 0x80) {
        ++p_;
      } else {
        const size_t n = utf8_length(p_, end_);
        if (n == 0) return false;
        p_ += n;
      }
    }
  }

  // Continues read_string from the first backslash, unescaping into scratch_.
  bool read_escaped_string(const char* start, std::string_view& out) {
    scratch_.assign(start, p_);
    for (;;) {
      if (p_ >= end_) return false;
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        out = scratch_;
        return true;
      }
      if (c == '\\') {
        if (!read_escape()) return false;
      } else if (c < 0x20) {
        return false;
      } else if (c < 0x80) {
        scratch_ += static_cast<char>(c);
        ++p_;
      } else {
        const size_t n = utf8_length(p_, end_);
        if (n == 0) return false;
        scratch_.append(p_, n);
        p_ += n;
      }
    }
  }

  // One escape sequence at p_ (on the backslash), appended to scratch_ as UTF-8.
  bool read_escape() {
    ++p_;
    switch (peek()) {
      case '"': scratch_ += '"'; break;
      case '\\': scratch_ += '\\'; break;
      case '/': scratch_ += '/'; break;
      case 'b': scratch_ += '\b'; break;
      case 'f': scratch_ += '\f'; break;
      case 'n': scratch_ += '\n'; break;
      case 'r': scratch_ += '\r'; break;
      case 't': scratch_ += '\t'; break;
      case 'u': return read_unicode_escape();
      default: return false;
    }
    ++p_;
    return true;
  }

  // \uXXXX at p_ (on the 'u'); surrogates must pair up, as nlohmann requires.
  bool read_unicode_escape() {
    uint32_t cp = 0;
    if (!read_hex4(cp)) return false;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return false;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      uint32_t low = 0;
      if (!consume('\\') || peek() != 'u' || !read_hex4(low)) return false;
      if (low < 0xDC00 || low > 0xDFFF) return false;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(scratch_, cp);
    return true;
  }

  // p_ on the 'u' of \uXXXX; leaves p_ after the digits.
  bool read_hex4(uint32_t& cp) {
    if (end_ - p_ < 5) return false;
    for (int i = 1; i <= 4; ++i) {
      const int v = hex_value(p_[i]);
      if (v < 0) return false;
      cp = cp << 4 | static_cast<uint32_t>(v);
    }
    p_ += 5;
    return true;
  }

  // --- numbers -------------------------------------------------------------------------------

  // A JSON number at p_ ('-' or a digit), classified as nlohmann does.
  bool read_number(Number& n) {
    const char* start = p_;
    const bool negative = *p_ == '-';
    if (negative) ++p_;
    if (!is_digit(peek())) return false;
    if (*p_ == '0') {
      ++p_;
    } else {
      while (is_digit(peek())) ++p_;
    }
    const char* int_end = p_;
    bool floating = false;
    if (peek() == '.') {
      ++p_;
      if (!is_digit(peek())) return false;
      while (is_digit(peek())) ++p_;
      floating = true;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++p_;
      if (peek() == '+' || peek() == '-') ++p_;
      if (!is_digit(peek())) return false;
      while (is_digit(peek())) ++p_;
      floating = true;
    }
    if (!floating && integer_value(start + negative, int_end, negative, n)) return true;
    n.kind = Number::kFloating;
    return floating_value(start, p_, n.d);
  }

  // Digits [b, e) as a 64-bit integer; false if they do not fit (nlohmann then uses a double).
  static bool integer_value(const char* b, const char* e, bool negative, Number& n) {
    uint64_t v = 0;
    for (const char* q = b; q < e; ++q) {
      const auto d = static_cast<uint64_t>(*q - '0');
      if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
      v = v * 10 + d;
    }
    if (!negative) {
      n.kind = Number::kUnsigned;
      n.u = v;
      return true;
    }
    if (v > uint64_t{1} << 63) return false;
    n.kind = Number::kSigned;
    n.i = static_cast<int64_t>(0 - v);
    return true;
  }

  // from_chars and strtod both round correctly; strtod (what nlohmann calls) settles the range
  // cases: underflow gives 0 or a denormal, overflow is refused.
  bool floating_value(const char* b, const char* e, double& d) {
    const auto [ptr, ec] = std::from_chars(b, e, d);
    if (ec == std::errc() && ptr == e && std::isfinite(d)) return true;
    scratch_.assign(b, e);
    d = std::strtod(scratch_.c_str(), nullptr);
    return std::isfinite(d);
  }

  // --- generic values --------------------------------------------------------------------------

  // Reads one value; containers are skipped (validated) and reported as kContainer.
  bool read_scalar(Scalar& s) {
    switch (peek()) {
      case '"': s.kind = Scalar::kString; return read_string(s.str);
      case 't': s.kind = Scalar::kTrue; return literal("true");
      case 'f': s.kind = Scalar::kFalse; return literal("false");
      case 'n': s.kind = Scalar::kNull; return literal("null");
      case '{': case '[': s.kind = Scalar::kContainer; return skip_value();
      default:
        s.kind = Scalar::kNumber;
        return (peek() == '-' || is_digit(peek())) && read_number(s.num);
    }
  }

  // Skips one value of any shape, validating it. Iterative: unknown fields may nest without
  // bound (nlohmann accepts any depth). stack_ holds the open containers.
  bool skip_value() {
    stack_.clear();
    for (;;) {
      skip_ws();
      const char c = peek();
      if (c == '{' || c == '[') {
        ++p_;
        skip_ws();
        if (!consume(c == '{' ? '}' : ']')) {
          stack_.push_back(c);
          if (c == '{' && !skip_key()) return false;
          continue;  // expecting the container's first value
        }
      } else {
        Scalar s;
        if (!read_scalar(s)) return false;
      }
      // A value is complete.
      if (stack_.empty()) return true;
      if (!next_in_skipped_container()) return false;
      if (stack_.empty()) return true;
    }
  }

  // After a value inside skipped containers: either consumes ',' (and the next key) so a value
  // follows, or closes containers until one continues or the outermost one is closed.
  bool next_in_skipped_container() {
    for (;;) {
      skip_ws();
      const char open = stack_.back();
      if (consume(',')) return open == '{' ? skip_key() : true;
      if (!consume(open == '{' ? '}' : ']')) return false;
      stack_.pop_back();
      if (stack_.empty()) return true;
    }
  }

  // `"key" :` inside a skipped object.
  bool skip_key() {
    skip_ws();
    std::string_view key;
    if (peek() != '"' || !read_string(key)) return false;
    skip_ws();
    return consume(':');
  }

  // --- objects -------------------------------------------------------------------------------

  // A JSON object at p_ holding message `m`; writes the message body.
  Res read_object(const Schema& m, int depth) {
    ++p_;  // '{'
    Frame frame;
    skip_ws();
    if (consume('}')) return Res::ok;
    for (;;) {
      skip_ws();
      std::string_view key;
      if (peek() != '"' || !read_string(key)) return Res::syntax;
      skip_ws();
      if (!consume(':')) return Res::syntax;
      skip_ws();
      int index = -1, spelling = 0;
      find_field(m, key, index, spelling);
      if (index < 0) {
        if (!skip_value()) return Res::syntax;  // unknown fields are ignored
      } else if (read_member(m, frame, index, spelling, depth) == Res::syntax) {
        return Res::syntax;
      }
      skip_ws();
      if (consume('}')) break;
      if (!consume(',')) return Res::syntax;
    }
    return judge(m, frame);
  }

  static void find_field(const Schema& m, std::string_view key, int& index, int& spelling) {
    for (int i = 0; i < m.count; ++i) {
      const Field& f = m.fields[i];
      if (key == f.json_name) {
        index = i;
        spelling = 0;
        return;
      }
      if (key == f.proto_name) {  // only reached when the names differ
        index = i;
        spelling = 1;
        return;
      }
    }
  }

  // One known member. The last value of a key wins, as in the slow path's DOM: an earlier one's
  // bytes are removed.
  Res read_member(const Schema& m, Frame& frame, int index, int spelling, int depth) {
    const uint32_t bit = 1u << index;
    if (frame.nonnull[spelling] & bit) drop_member(frame, index, spelling);
    frame.present[spelling] |= bit;
    if (peek() == 'n') return literal("null") ? Res::ok : Res::syntax;  // null: field absent
    frame.nonnull[spelling] |= bit;
    frame.begin[spelling][index] = out_.pos();
    const Res r = read_field(m.fields[index], depth);
    frame.end[spelling][index] = out_.pos();
    if (r == Res::invalid) frame.bad[spelling] |= bit;
    return r;
  }

  void drop_member(Frame& frame, int index, int spelling) {
    const uint32_t bit = 1u << index;
    const size_t b = frame.begin[spelling][index], e = frame.end[spelling][index];
    out_.erase(b, e);
    frame.nonnull[spelling] &= ~bit;
    frame.bad[spelling] &= ~bit;
    for (int s = 0; s < 2; ++s) {
      for (uint32_t rest = frame.nonnull[s]; rest != 0; rest &= rest - 1) {
        const int i = std::countr_zero(rest);
        if (frame.begin[s][i] >= e) {
          frame.begin[s][i] -= e - b;
          frame.end[s][i] -= e - b;
        }
      }
    }
  }

  // The object's verdict once all members are known, as json_to_message decides it.
  static Res judge(const Schema& m, const Frame& frame) {
    if ((frame.bad[0] | frame.bad[1]) != 0) return Res::invalid;
    // A snake_case key whose lowerCamelCase twin is also present (even as null) is refused.
    if ((frame.nonnull[1] & frame.present[0]) != 0) return Res::invalid;
    if (std::popcount((frame.nonnull[0] | frame.nonnull[1]) & m.oneof_mask) > 1) return Res::invalid;
    return Res::ok;
  }

  // --- fields --------------------------------------------------------------------------------

  // The non-null value of field f.
  Res read_field(const Field& f, int depth) {
    if (f.flags & kRepeated) return read_repeated(f, depth);
    if (f.type == T::message) return read_message(f, depth);
    Scalar s;
    if (!read_scalar(s)) return Res::syntax;
    return write_scalar(f, s, (f.flags & (kOneof | kOptional)) != 0) ? Res::ok : Res::invalid;
  }

  // Skips a value of the wrong shape: refused, unless it is not even JSON.
  Res refuse_value() { return skip_value() ? Res::invalid : Res::syntax; }

  // A message value (singular field or array element): tag, length, body.
  Res read_message(const Field& f, int depth) {
    if (peek() != '{' || depth + 1 > kMaxJsonDepth) return refuse_value();
    const Schema& m = kSchemas[f.target];
    out_.tag(f.number, kLen);
    const size_t mark = out_.open_length(m.length_width);
    const Res r = read_object(m, depth + 1);
    out_.close_length(mark, m.length_width);
    return r;
  }

  Res read_repeated(const Field& f, int depth) {
    if (peek() != '[') return refuse_value();
    ++p_;
    const bool packed = wire_type(f.type) != kLen;  // proto3 packs repeated scalars
    const size_t tag_pos = out_.pos();
    size_t mark = 0;
    if (packed) {
      out_.tag(f.number, kLen);
      mark = out_.open_length(1);
    }
    Res result = Res::ok;
    skip_ws();
    const bool empty = consume(']');
    while (!empty) {
      skip_ws();
      const Res r = read_element(f, packed, depth);
      if (r == Res::syntax) return r;
      if (r == Res::invalid) result = r;
      skip_ws();
      if (consume(']')) break;
      if (!consume(',')) return Res::syntax;
    }
    if (packed && empty) {
      out_.truncate(tag_pos);  // an empty repeated field is not written
    } else if (packed) {
      out_.close_length(mark, 1);
    }
    return result;
  }

  Res read_element(const Field& f, bool packed, int depth) {
    if (peek() == 'n') return literal("null") ? Res::invalid : Res::syntax;  // null not allowed
    if (f.type == T::message) return read_message(f, depth);
    Scalar s;
    if (!read_scalar(s)) return Res::syntax;
    if (!packed) return write_scalar(f, s, true) ? Res::ok : Res::invalid;
    uint64_t bits = 0;
    if (!to_wire_bits(f, s, bits)) return Res::invalid;
    write_raw(wire_type(f.type), bits);
    return Res::ok;
  }

  // Writes scalar field f; an implicit-presence field holding its default is left out.
  bool write_scalar(const Field& f, const Scalar& s, bool always) {
    const WireType wire = wire_type(f.type);
    if (wire == kLen) return write_length_delimited(f, s, always);
    uint64_t bits = 0;
    if (!to_wire_bits(f, s, bits)) return false;
    if (bits == 0 && !always) return true;
    out_.tag(f.number, wire);
    write_raw(wire, bits);
    return true;
  }

  void write_raw(WireType wire, uint64_t bits) {
    if (wire == kVarint) {
      out_.varint(bits);
    } else {
      out_.fixed(bits, wire == kFixed64 ? 8 : 4);
    }
  }

  // String, bytes (base64) and ids (hex) fields.
  bool write_length_delimited(const Field& f, const Scalar& s, bool always) {
    if (s.kind != Scalar::kString) return false;
    std::string_view text = s.str;
    size_t size = text.size();
    if (f.type == T::trace_id || f.type == T::span_id) {
      const size_t id_size = f.type == T::trace_id ? 16 : 8;
      if (!text.empty() && text.size() != 2 * id_size) return false;
      size = text.size() / 2;
    } else if (f.type == T::bytes && !base64_unpad(text, size)) {
      return false;
    }
    if (size == 0 && !always) {
      return true;  // "" is valid for every kind, and the default
    }
    out_.tag(f.number, kLen);
    out_.varint(size);
    char* dst = out_.room(size);
    bool ok = true;
    if (f.type == T::string) {
      std::memcpy(dst, text.data(), size);
    } else if (f.type == T::bytes) {
      ok = base64_decode(text, dst);
    } else {
      ok = hex_decode(text, dst);
    }
    if (ok) out_.advance(size);
    return ok;
  }

  const char* p_;
  const char* end_;
  Out& out_;
  std::string scratch_;  // unescaped strings, long numbers
  std::string stack_;    // open containers of skip_value
};

Msg request_type(Signal signal) {
  switch (signal) {
    case Signal::traces: return kTraceRequest;
    case Signal::metrics: return kMetricsRequest;
    case Signal::logs: return kLogsRequest;
  }
  return kMsgCount;
}

}  // namespace

bool json_to_request_wire(Signal signal, std::string_view json, std::string* out) {
  const Msg type = request_type(signal);
  if (type == kMsgCount) return false;
  // nlohmann reads a NUL byte outside strings as the end of input (inside a string it is an
  // error either way), and skips a UTF-8 byte order mark.
  if (const void* nul = std::memchr(json.data(), 0, json.size())) {
    json = json.substr(0, static_cast<size_t>(static_cast<const char*>(nul) - json.data()));
  }
  if (json.starts_with("\xEF\xBB\xBF")) json.remove_prefix(3);
  const size_t old_size = out->size();
  try {
    Out buffer(*out, json.size() / 2);
    Reader reader(json, buffer);
    if (!reader.read_request(type)) {
      buffer.rollback();
      return false;
    }
    buffer.commit();
    return true;
  } catch (const std::exception&) {  // std::bad_alloc, std::length_error
    out->resize(old_size);
    return false;
  }
}

}  // namespace otlpd::otlp

// Tests for the fast OTLP/JSON -> protobuf path (otlp/json_wire.h): it must accept exactly what
// json_to_message accepts and produce the same message, in canonical encoding. Each input is run
// through both; generated requests cover every field of every OTLP message in many JSON spellings,
// mutated ones probe the refusals.
#include "otlp/json_wire.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/field_comparator.h>
#include <google/protobuf/util/message_differencer.h>

#include <catch2/catch.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/json_codec.h"
#include "otlp/response.h"

namespace {

using namespace otlpd::otlp;
namespace pb = google::protobuf;
using FD = pb::FieldDescriptor;
using namespace std::string_literals;

constexpr Signal kSignals[] = {Signal::traces, Signal::metrics, Signal::logs};

std::string deterministic_bytes(const pb::Message& msg) {
  std::string out;
  pb::io::StringOutputStream stream(&out);
  pb::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  msg.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

std::string shorten(const std::string& s) { return s.size() > 3000 ? s.substr(0, 3000) + "..." : s; }

// Runs both paths on `json`. They must agree on acceptance; when accepting, the fast path's bytes
// must parse to the slow path's message and be exactly as long as protobuf's own encoding
// (canonical: minimal varints, exact lengths, no repeated or default fields). Returns acceptance;
// `must_accept` also checks that the input is accepted (with the slow path's error in the report).
bool check_agree(Signal signal, const std::string& json, bool must_accept = false) {
  INFO("json: " << shorten(json));
  const auto slow = new_request(signal);
  const std::string slow_error = json_to_message(json, *slow);
  const std::string prefix = "prefix";
  std::string fast = prefix;
  const bool fast_ok = json_to_request_wire(signal, json, &fast);
  INFO("slow path: " << (slow_error.empty() ? "ok" : slow_error));
  REQUIRE(fast_ok == slow_error.empty());
  if (must_accept) CHECK(fast_ok);

  std::string via_api = prefix;
  const std::string api_error = request_json_to_proto(signal, json, &via_api);
  CHECK(api_error == slow_error);  // on refusal, the slow path's error
  if (!fast_ok) {
    CHECK(fast == prefix);  // untouched on refusal
    CHECK(via_api == prefix);
    return false;
  }
  REQUIRE(fast.compare(0, prefix.size(), prefix) == 0);
  CHECK(via_api == fast);
  const std::string wire = fast.substr(prefix.size());
  const auto parsed = new_request(signal);
  REQUIRE(parsed->ParseFromString(wire));
  CHECK(wire.size() == slow->ByteSizeLong());

  pb::util::DefaultFieldComparator comparator;
  comparator.set_treat_nan_as_equal(true);
  pb::util::MessageDifferencer differencer;
  differencer.set_field_comparator(&comparator);
  std::string report;
  differencer.ReportDifferencesToString(&report);
  CHECK(differencer.Compare(*slow, *parsed));
  INFO(report);
  CHECK(report.empty());
  // Bit-exact too (the differencer treats -0.0 and 0.0 as equal).
  CHECK(deterministic_bytes(*parsed) == deterministic_bytes(*slow));
  return true;
}

// ---------------------------------------------------------------------------------------------
// Random requests
// ---------------------------------------------------------------------------------------------

class Random {
 public:
  explicit Random(uint64_t seed) : rng_(seed) {}
  uint64_t next() { return rng_(); }
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng_() % n); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  template <typename C>
  const auto& pick(const C& c) {
    return c[below(std::size(c))];
  }

 private:
  std::mt19937_64 rng_;
};

// Fills every kind of field with realistic and edge-case values, via reflection so that no field
// of any OTLP message is forgotten.
class Filler {
 public:
  explicit Filler(Random& rnd) : rnd_(rnd) {}

  void fill(pb::Message& msg, int depth) {
    const pb::Descriptor* d = msg.GetDescriptor();
    for (int i = 0; i < d->field_count(); ++i) {
      const FD* f = d->field(i);
      if (f->real_containing_oneof() != nullptr) continue;
      if (!rnd_.chance(depth <= 1 ? 1.0 : 0.6)) continue;
      if (f->is_repeated()) {
        const size_t n = f->message_type() ? rnd_.below(depth > 6 ? 2 : 4) + (depth <= 1) : rnd_.below(6);
        for (size_t k = 0; k < n; ++k) set(msg, f, true, depth);
      } else {
        set(msg, f, false, depth);
      }
    }
    for (int i = 0; i < d->real_oneof_decl_count(); ++i) {
      const pb::OneofDescriptor* o = d->oneof_decl(i)  /* real oneofs come first */;
      if (!rnd_.chance(0.9)) continue;
      const FD* f = o->field(static_cast<int>(rnd_.below(static_cast<size_t>(o->field_count()))));
      if (f->message_type() != nullptr && depth > 9) continue;  // AnyValue recursion
      set(msg, f, false, depth);
    }
  }

 private:
  void set(pb::Message& msg, const FD* f, bool add, int depth) {
    const pb::Reflection* r = msg.GetReflection();
    switch (f->cpp_type()) {
      case FD::CPPTYPE_INT32: {
        const int32_t v = pick_integer<int32_t>(
            {0, 1, -1, 300, -300, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()});
        return add ? r->AddInt32(&msg, f, v) : r->SetInt32(&msg, f, v);
      }
      case FD::CPPTYPE_UINT32: {
        const auto v = pick_integer<uint32_t>({0, 1, 127, 128, 16384, 4294967295});
        return add ? r->AddUInt32(&msg, f, v) : r->SetUInt32(&msg, f, v);
      }
      case FD::CPPTYPE_INT64: {
        const auto v = pick_integer<int64_t>(
            {0, 1, -1, 9007199254740993, std::numeric_limits<int64_t>::min(),
             std::numeric_limits<int64_t>::max()});
        return add ? r->AddInt64(&msg, f, v) : r->SetInt64(&msg, f, v);
      }
      case FD::CPPTYPE_UINT64: {
        const uint64_t v = pick_integer<uint64_t>({0, 1, 1700000000000000000, std::numeric_limits<uint64_t>::max()});
        return add ? r->AddUInt64(&msg, f, v) : r->SetUInt64(&msg, f, v);
      }
      case FD::CPPTYPE_DOUBLE: {
        const double v = pick_double();
        return add ? r->AddDouble(&msg, f, v) : r->SetDouble(&msg, f, v);
      }
      case FD::CPPTYPE_FLOAT:
        FAIL("OTLP has no float fields");
        return;
      case FD::CPPTYPE_BOOL: {
        const bool v = rnd_.chance(0.5);
        return add ? r->AddBool(&msg, f, v) : r->SetBool(&msg, f, v);
      }
      case FD::CPPTYPE_ENUM: {
        const pb::EnumDescriptor* e = f->enum_type();
        const int v = rnd_.chance(0.8) ? e->value(static_cast<int>(rnd_.below(static_cast<size_t>(e->value_count()))))->number()
                                       : rnd_.pick(std::array{-1, 99, 123456});  // open enums
        return add ? r->AddEnumValue(&msg, f, v) : r->SetEnumValue(&msg, f, v);
      }
      case FD::CPPTYPE_STRING: {
        std::string v = f->type() == FD::TYPE_STRING ? random_text() : random_bytes(f);
        return add ? r->AddString(&msg, f, std::move(v)) : r->SetString(&msg, f, std::move(v));
      }
      case FD::CPPTYPE_MESSAGE: {
        pb::Message* sub = add ? r->AddMessage(&msg, f) : r->MutableMessage(&msg, f);
        if (depth < 12) fill(*sub, depth + 1);
        return;
      }
    }
  }

  template <typename I>
  I pick_integer(std::initializer_list<I> interesting) {
    if (rnd_.chance(0.7)) return interesting.begin()[rnd_.below(interesting.size())];
    return static_cast<I>(rnd_.next() >> rnd_.below(64));
  }

  double pick_double() {
    constexpr double inf = std::numeric_limits<double>::infinity();
    static const double interesting[] = {0.0, -0.0, 1.5, -2.25, 2.0, 1e300, -1e-300, 5e-324, 0.1,
                                         123456789.0, 1e21, std::numeric_limits<double>::quiet_NaN(),
                                         inf, -inf, std::numeric_limits<double>::max()};
    if (rnd_.chance(0.7)) return rnd_.pick(interesting);
    return std::ldexp(static_cast<double>(rnd_.next() >> 11), static_cast<int>(rnd_.below(200)) - 100) *
           (rnd_.chance(0.5) ? 1 : -1);
  }

  std::string random_text() {
    static constexpr std::string_view pieces[] = {"a", "Z", " ", "checkout", "\"", "\\", "/", "\n", "\t",
                                                  std::string_view("\0", 1), "\x01", "\x1f", "\x7f",
                                         "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xEF\xBF\xBF",
                                         "\xF4\x8F\xBF\xBF", "\xEE\x80\x80", "http.method", "GET /cart"};
    std::string s;
    const size_t n = rnd_.below(8);
    for (size_t i = 0; i < n; ++i) s += rnd_.pick(pieces);
    return s;
  }

  std::string random_bytes(const FD* f) {
    size_t n = rnd_.below(7);
    if (f->name() == "trace_id") n = rnd_.chance(0.9) ? 16 : 0;
    if (f->name() == "span_id" || f->name() == "parent_span_id") n = rnd_.chance(0.9) ? 8 : 0;
    std::string s;
    for (size_t i = 0; i < n; ++i) s += static_cast<char>(rnd_.next());
    return s;
  }

  Random& rnd_;
};

// Renders a message as OTLP/JSON, choosing among the spellings json_to_message accepts, adding
// unknown members, explicit nulls and defaults, duplicate keys (the last one wins) and whitespace.
class Renderer {
 public:
  Renderer(Random& rnd, bool variations) : rnd_(rnd), variations_(variations) {}

  std::string render(const pb::Message& msg) {
    std::string out;
    message(msg, out);
    return out;
  }

 private:
  bool vary(double p) { return variations_ && rnd_.chance(p); }

  void ws(std::string& out) {
    static const char* const spaces[] = {" ", "\n", "\t", "\r\n  "};
    if (vary(0.05)) out += rnd_.pick(spaces);
  }

  void message(const pb::Message& msg, std::string& out) {
    const pb::Descriptor* d = msg.GetDescriptor();
    const pb::Reflection* r = msg.GetReflection();
    std::vector<std::string> members;
    for (int i = 0; i < d->field_count(); ++i) {
      const FD* f = d->field(i);
      const bool set = f->is_repeated() ? r->FieldSize(msg, f) > 0 : r->HasField(msg, f);
      if (set) {
        add_member(msg, f, members);
      } else {
        add_absent(f, members);
      }
    }
    if (vary(0.1)) members.push_back(quote(rnd_.pick(std::array{"future", "x-extra", "TraceId", "spanID"})) + ":" + unknown_value(0));
    for (size_t i = members.size(); i > 1; --i) std::swap(members[i - 1], members[rnd_.below(i)]);
    out += '{';
    for (size_t i = 0; i < members.size(); ++i) {
      if (i > 0) out += ',';
      ws(out);
      out += members[i];
      ws(out);
    }
    out += '}';
  }

  std::string key(const FD* f) {
    return quote(f->name() != f->json_name() && vary(0.3) ? f->name() : f->json_name());
  }

  void add_member(const pb::Message& msg, const FD* f, std::vector<std::string>& members) {
    std::string k = key(f);
    std::string value;
    if (f->is_repeated()) {
      value += '[';
      for (int i = 0; i < msg.GetReflection()->FieldSize(msg, f); ++i) {
        if (i > 0) value += ',';
        ws(value);
        field_value(msg, f, i, value);
      }
      value += ']';
    } else {
      field_value(msg, f, -1, value);
    }
    // An earlier duplicate of the key, any value: the last one wins. Kept in one member string so
    // the shuffle cannot reorder the pair.
    std::string member;
    if (vary(0.03)) member += k + ":" + rnd_.pick(std::array{"5", "\"x\"", "{}", "[1,{}]", "null", "[null]", "-1.5"}) + ",";
    member += k + ":" + value;
    // The snake_case twin given as null is fine when the lowerCamelCase key is the one used.
    if (f->name() != f->json_name() && k == quote(f->json_name()) && vary(0.03)) {
      member += "," + quote(f->name()) + ":null";
    }
    members.push_back(std::move(member));
  }

  // A field the message does not have: maybe an explicit null, or its default value when that
  // changes nothing (implicit presence).
  void add_absent(const FD* f, std::vector<std::string>& members) {
    if (vary(0.05)) {
      members.push_back(key(f) + ":null");
      return;
    }
    if (f->real_containing_oneof() != nullptr || f->has_presence() || !vary(0.05)) return;
    std::string v;
    if (f->is_repeated()) {
      v = "[]";
    } else {
      switch (f->cpp_type()) {
        case FD::CPPTYPE_STRING: v = "\"\""; break;
        case FD::CPPTYPE_BOOL: v = "false"; break;
        case FD::CPPTYPE_ENUM: v = vary(0.5) ? quote(f->enum_type()->value(0)->name()) : "0"; break;
        case FD::CPPTYPE_DOUBLE: v = rnd_.pick(std::array{"0", "0.0", "\"0\"", "0e5"}); break;
        default: v = rnd_.pick(std::array{"0", "\"0\"", "-0", "0.0", "\"-0\""}); break;
      }
      // unsigned fields refuse "-0" as a string
      if (v == "\"-0\"" && (f->cpp_type() == FD::CPPTYPE_UINT32 || f->cpp_type() == FD::CPPTYPE_UINT64)) v = "0";
    }
    members.push_back(key(f) + ":" + v);
  }

  void field_value(const pb::Message& msg, const FD* f, int index, std::string& out) {
    const pb::Reflection* r = msg.GetReflection();
    const bool rep = index >= 0;
    switch (f->cpp_type()) {
      case FD::CPPTYPE_INT32:
        return integer(rep ? r->GetRepeatedInt32(msg, f, index) : r->GetInt32(msg, f), false, out);
      case FD::CPPTYPE_UINT32:
        return integer(rep ? r->GetRepeatedUInt32(msg, f, index) : r->GetUInt32(msg, f), false, out);
      case FD::CPPTYPE_INT64:
        return integer(rep ? r->GetRepeatedInt64(msg, f, index) : r->GetInt64(msg, f), true, out);
      case FD::CPPTYPE_UINT64:
        return integer(rep ? r->GetRepeatedUInt64(msg, f, index) : r->GetUInt64(msg, f), true, out);
      case FD::CPPTYPE_DOUBLE:
        return floating(rep ? r->GetRepeatedDouble(msg, f, index) : r->GetDouble(msg, f), out);
      case FD::CPPTYPE_FLOAT:
        return;
      case FD::CPPTYPE_BOOL:
        out += (rep ? r->GetRepeatedBool(msg, f, index) : r->GetBool(msg, f)) ? "true" : "false";
        return;
      case FD::CPPTYPE_ENUM: {
        const int v = rep ? r->GetRepeatedEnumValue(msg, f, index) : r->GetEnumValue(msg, f);
        const pb::EnumValueDescriptor* e = f->enum_type()->FindValueByNumber(v);
        if (e != nullptr && vary(0.5)) {
          out += quote(e->name());
        } else {
          integer(v, false, out, /*quotable=*/false);  // a quoted number is no enum name
        }
        return;
      }
      case FD::CPPTYPE_STRING: {
        const std::string s = rep ? r->GetRepeatedString(msg, f, index) : r->GetString(msg, f);
        if (f->type() == FD::TYPE_STRING) return text(s, out);
        if (f->name() == "trace_id" || f->name() == "span_id" || f->name() == "parent_span_id") return hex(s, out);
        return base64(s, out);
      }
      case FD::CPPTYPE_MESSAGE:
        return message(rep ? r->GetRepeatedMessage(msg, f, index) : r->GetMessage(msg, f), out);
    }
  }

  template <typename I>
  void integer(I v, bool wide, std::string& out, bool quotable = true) {
    char buf[32];
    const std::string digits(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
    const bool as_string = quotable && (wide ? !vary(0.3) : vary(0.3));
    if (as_string) {
      out += quote(digits);
    } else if (vary(0.1) && std::cmp_greater(v, -1000000) && std::cmp_less(v, 1000000)) {
      out += digits + rnd_.pick(std::array{".0", "e0", ".00E+0"});  // an integral double
    } else {
      out += digits;
    }
  }

  void floating(double v, std::string& out) {
    if (std::isnan(v)) {
      out += "\"NaN\"";
      return;
    }
    if (std::isinf(v)) {
      out += v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
      return;
    }
    char buf[64];
    const bool scientific = vary(0.2);
    char* end = scientific ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific).ptr
                           : std::to_chars(buf, buf + sizeof buf, v).ptr;
    std::string s(buf, end);
    // "-0" is the integer 0 to nlohmann: write -0.0 so the sign survives.
    if (std::signbit(v) && v == 0 && !scientific) s = "-0.0";
    out += vary(0.2) ? quote(s) : s;
  }

  void hex(const std::string& s, std::string& out) {
    static const char lower[] = "0123456789abcdef", upper[] = "0123456789ABCDEF";
    const bool up = vary(0.3);
    out += '"';
    for (char c : s) {
      const auto b = static_cast<unsigned char>(c);
      out += (up ? upper : lower)[b >> 4];
      out += (up ? upper : lower)[b & 0xF];
    }
    out += '"';
  }

  void base64(const std::string& s, std::string& out) {
    static const char std_digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char url_digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char* digits = vary(0.3) ? url_digits : std_digits;
    const bool pad = !vary(0.3);
    out += '"';
    size_t i = 0;
    for (; i + 3 <= s.size(); i += 3) {
      const uint32_t v = static_cast<unsigned char>(s[i]) << 16 | static_cast<unsigned char>(s[i + 1]) << 8 |
                         static_cast<unsigned char>(s[i + 2]);
      for (int k = 18; k >= 0; k -= 6) out += digits[v >> k & 0x3F];
    }
    if (const size_t rest = s.size() - i; rest > 0) {
      uint32_t v = static_cast<unsigned char>(s[i]) << 16;
      if (rest == 2) v |= static_cast<unsigned char>(s[i + 1]) << 8;
      out += digits[v >> 18];
      out += digits[v >> 12 & 0x3F];
      if (rest == 2) out += digits[v >> 6 & 0x3F];
      if (pad) out += rest == 2 ? "=" : "==";
    }
    out += '"';
  }

  // A JSON string; escapes vary: \uXXXX for any character (surrogate pairs above the BMP), \/.
  void text(const std::string& s, std::string& out) {
    out += '"';
    for (size_t i = 0; i < s.size();) {
      const auto c = static_cast<unsigned char>(s[i]);
      const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      uint32_t cp = n == 1 ? c : c & (0xFF >> (n + 1));
      for (size_t k = 1; k < n; ++k) cp = cp << 6 | (static_cast<unsigned char>(s[i + k]) & 0x3F);
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c < 0x20 || vary(0.05)) {
        unicode_escape(cp, out);
      } else if (c == '/' && vary(0.5)) {
        out += "\\/";
      } else {
        out.append(s, i, n);
      }
      i += n;
    }
    out += '"';
  }

  void unicode_escape(uint32_t cp, std::string& out) {
    if (cp >= 0x10000) {
      cp -= 0x10000;
      unicode_escape(0xD800 + (cp >> 10), out);
      unicode_escape(0xDC00 + (cp & 0x3FF), out);
      return;
    }
    static const char lower[] = "0123456789abcdef", upper[] = "0123456789ABCDEF";
    const char* digits = vary(0.5) ? upper : lower;
    out += "\\u";
    for (int k = 12; k >= 0; k -= 4) out += digits[cp >> k & 0xF];
  }

  std::string unknown_value(int depth) {
    static const char* const scalars[] = {"1", "-0", "0.5e-3", "1e300", "123456789012345678901234567890",
                                          "1e-400", "true", "false", "null", "\"s\"", "\"\\ud83d\\ude00\"",
                                          "\"\xC3\xA9\"", "\"NaN\""};
    if (depth > 2 || rnd_.chance(0.5)) return rnd_.pick(scalars);
    std::string s = rnd_.chance(0.5) ? "[" : "{";
    const bool object = s == "{";
    const size_t n = rnd_.below(3);
    for (size_t i = 0; i < n; ++i) {
      if (i > 0) s += ',';
      if (object) s += "\"k" + std::to_string(i) + "\":";
      s += unknown_value(depth + 1);
    }
    s += object ? "}" : "]";
    return s;
  }

  static std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

  Random& rnd_;
  bool variations_;
};

std::string random_request_json(Signal signal, Random& rnd, bool variations) {
  const auto msg = new_request(signal);
  Filler(rnd).fill(*msg, 1);
  return Renderer(rnd, variations).render(*msg);
}

// Byte-level edits, like tests/fuzz/driver.cc, plus JSON-shaped insertions.
std::string mutate(std::string s, Random& rnd) {
  static const char* const snippets[] = {"null", ",", "\"", "{}", "[]", "\"name\":", ",\"name\":5",
                                         "1e400", "\\u", "\\ud800", "-", ".5", "\"intValue\":\"1\",",
                                         ",\"stringValue\":\"x\"", "\xff", "0", "]", "}", ":", "true"};
  const size_t edits = 1 + rnd.below(3);
  for (size_t e = 0; e < edits && !s.empty(); ++e) {
    const size_t at = rnd.below(s.size());
    switch (rnd.below(5)) {
      case 0: s[at] = static_cast<char>(s[at] ^ (1u << rnd.below(8))); break;
      case 1: s.erase(at, 1 + rnd.below(8)); break;
      case 2: s.insert(at, rnd.pick(snippets)); break;
      case 3: s.insert(at, s.substr(at, 1 + rnd.below(40))); break;
      case 4: s[at] = rnd.pick(std::array{'"', '{', '[', ',', ':', '0', 'n', ' ', '\\', '\0'}); break;
    }
  }
  return s;
}

// A request with one span attribute whose value is `value` (a JSON AnyValue).
std::string attribute_json(std::string_view value) {
  return R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":)" +
         std::string(value) + "}]}]}]}]}";
}

std::string span_json(std::string_view members) {
  return R"({"resourceSpans":[{"scopeSpans":[{"spans":[{)" + std::string(members) + "}]}]}]}";
}

std::string point_json(std::string_view metric_members) {
  return R"({"resourceMetrics":[{"scopeMetrics":[{"metrics":[{)" + std::string(metric_members) + "}]}]}]}";
}

std::string log_json(std::string_view members) {
  return R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[{)" + std::string(members) + "}]}]}]}";
}

// The request type an edge case is written for.
Signal target_signal(const std::string& json) {
  if (json.find("resourceMetrics") != std::string::npos) return Signal::metrics;
  if (json.find("resourceLogs") != std::string::npos) return Signal::logs;
  return Signal::traces;
}

TEST_CASE("generated requests of every signal: fast path equals slow path", "[json_wire]") {
  Random rnd(42);
  for (Signal signal : kSignals) {
    for (int i = 0; i < 300; ++i) {
      const bool variations = i % 4 != 0;  // some in canonical form, most with variations
      check_agree(signal, random_request_json(signal, rnd, variations), true);
    }
  }
}

TEST_CASE("mutated requests: accepted by both or refused by both", "[json_wire]") {
  Random rnd(7);
  size_t accepted = 0, refused = 0;
  for (int i = 0; i < 6000; ++i) {
    const Signal signal = kSignals[i % 3];
    const auto msg = new_request(signal);
    Filler(rnd).fill(*msg, 5);  // small requests, so edits matter
    const std::string json = mutate(Renderer(rnd, true).render(*msg), rnd);
    for (Signal as : kSignals) (check_agree(as, json) ? accepted : refused)++;
  }
  INFO(accepted << " accepted, " << refused << " refused");
  CHECK(accepted > 1000);
  CHECK(refused > 1000);
}

TEST_CASE("edge cases accepted by both", "[json_wire]") {
  const std::string accepted[] = {
      "{}",
      " \t\r\n{ } \n",
      "\xEF\xBB\xBF{}",                                       // byte order mark
      "{}\0garbage"s,                         // NUL ends the input, as in nlohmann
      R"({"resourceSpans":null})",
      R"({"resourceSpans":[]})",
      R"({"resourceSpans":[{}]})",
      R"({"resourceSpans":5,"resourceSpans":[{}]})",          // duplicate key: last wins
      R"({"resourceSpans":[{"scopeSpans":"x"}],"resourceSpans":[]})",
      R"({"resourceSpans":[{}],"resourceSpans":null})",
      R"({"resourceSpans":[{}],"resource_spans":null})",      // snake twin null: fine
      R"({"future":[1,{"a":[true,false,null,"\u00e9\ud83d\ude00"]}],"resourceSpans":[]})",
      R"({"x":123456789012345678901234567890,"y":1e-400,"z":-0.0e-5})",
      R"({"":1,"\u0072esourceSpans":[{"scope_spans":[{"spans":[{"name":"\u006e"}]}]}]})",  // escaped keys
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a","name":"b"}]}]}]})",
      span_json(R"("traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eEe19b7ec3c1b174","parentSpanId":"")"),
      span_json(R"("kind":"SPAN_KIND_SERVER","status":{"code":"STATUS_CODE_ERROR","message":""})"),
      span_json(R"("kind":-1,"flags":4294967295,"droppedAttributesCount":"7")"),
      span_json(R"("kind":2.0,"flags":1e3,"droppedAttributesCount":-0,"startTimeUnixNano":1.7e18)"),
      span_json(R"("startTimeUnixNano":"18446744073709551615","endTimeUnixNano":18446744073709551615)"),
      span_json(R"("startTimeUnixNano":"0","endTimeUnixNano":"000123")"),
      span_json(R"("name":"","traceState":null,"events":[],"links":[{}],"status":{})"),
      span_json(R"("traceId":"5b8efff798038103d269b633813fc60c","trace_id":null)"),
      attribute_json(R"({"intValue":"-9223372036854775808"})"),
      attribute_json(R"({"intValue":-9223372036854775808})"),
      attribute_json(R"({"intValue":9223372036854775807})"),
      attribute_json(R"({"intValue":"0"})"),
      attribute_json(R"({"intValue":1e18})"),
      attribute_json(R"({"doubleValue":-0})"),                 // integer zero: +0.0
      attribute_json(R"({"doubleValue":-0.0})"),
      attribute_json(R"({"doubleValue":"-0"})"),
      attribute_json(R"({"doubleValue":1e-400})"),
      attribute_json(R"({"doubleValue":4.9e-324})"),
      attribute_json(R"({"doubleValue":18446744073709551616})"),
      attribute_json(R"({"doubleValue":"1e308"})"),
      attribute_json(R"({"doubleValue":".5"})"),
      attribute_json(R"({"doubleValue":"5."})"),
      attribute_json(R"({"doubleValue":"NaN"})"),
      attribute_json(R"({"doubleValue":"-Infinity"})"),
      attribute_json(R"({"doubleValue":9007199254740993})"),
      attribute_json(R"({"boolValue":false})"),
      attribute_json(R"({"stringValue":""})"),
      attribute_json(R"({"bytesValue":""})"),
      attribute_json(R"({"bytesValue":"AQID_w"})"),
      attribute_json(R"({"bytesValue":"AQID-w=="})"),
      attribute_json(R"({"bytesValue":"YQ="})"),
      attribute_json(R"({"bytesValue":"YR=="})"),                 // non-zero padding bits
      attribute_json(R"({"arrayValue":{}})"),
      attribute_json(R"({"kvlistValue":{"values":[]}})"),
      attribute_json(R"({"stringValue":"a","intValue":null})"),  // null oneof member: absent
      attribute_json(R"({"stringValue":"\u0000\b\f\n\r\t\/\\\"\uFFFF\uDBFF\uDFFF"})"),
      attribute_json(R"({})"),
      point_json(R"("histogram":{"dataPoints":[{"sum":0,"min":-0.0,"max":"Infinity","bucketCounts":[],"explicitBounds":[0,-0.0,"NaN"]}]})"),
      point_json(R"("histogram":{"dataPoints":[{"sum":null,"min":null,"count":"1"}]})"),
      point_json(R"("exponentialHistogram":{"dataPoints":[{"scale":-2147483648,"zeroThreshold":-0.0,"positive":{"offset":"-5","bucketCounts":["0",1,"18446744073709551615"]},"negative":{}}],"aggregationTemporality":"AGGREGATION_TEMPORALITY_CUMULATIVE"})"),
      point_json(R"("sum":{"dataPoints":[{"asInt":"0","exemplars":[{"asDouble":0,"spanId":"","traceId":""}]}],"isMonotonic":false})"),
      point_json(R"("gauge":{"dataPoints":[{"as_double":1.5}]},"sum":null)"),
      point_json(R"("summary":{"dataPoints":[{"sum":-0.0,"quantileValues":[{},{"quantile":0.5,"value":1}]}]})"),
      log_json(R"("severityNumber":"SEVERITY_NUMBER_FATAL4","body":{},"flags":0,"eventName":"e")"),
      log_json(R"("body":{"kvlistValue":{"values":[{"key":"","value":{"arrayValue":{"values":[{}]}}}]}})"),
  };
  for (const std::string& json : accepted) {
    for (Signal signal : kSignals) {
      const bool ok = check_agree(signal, json);
      INFO(json);
      if (signal == target_signal(json)) CHECK(ok);
    }
  }
}

TEST_CASE("edge cases refused by both", "[json_wire]") {
  const std::string refused[] = {
      "",
      " ",
      "[]",
      "null",
      "\"x\"",
      "{} {}",
      "{}x",
      "{",
      "\xEF\xBB{}",
      "\0{}"s,
      R"({"a":1,})",
      R"({,"a":1})",
      R"({"a" 1})",
      R"({'a':1})",
      R"({"a":01})",
      R"({"a":1.})",
      R"({"a":-})",
      R"({"a":+1})",
      R"({"a":.5})",
      R"({"a":1e})",
      R"({"a":NaN})",
      R"({"a":tru})",
      R"({"a":nul})",
      R"({"a":1e400})",                                    // overflow, even in an unknown field
      R"({"a":-1e400})",
      "{\"a\":" + std::string(400, '9') + "}",             // integer too large even for a double
      R"({"a":[1,2}})",
      R"({"a":{"b":1]})",
      R"({"a":[1,]})",
      R"({"a":"\x"})",
      R"({"a":"\u12"})",
      R"({"a":"\ud800"})",
      R"({"a":"\ud800\u0041"})",
      R"({"a":"\udc00"})",
      "{\"a\":\"\x01\"}",
      "{\"a\":\"\xff\"}",
      "{\"a\":\"\xC0\x80\"}",                                 // overlong
      "{\"a\":\"\xED\xA0\x80\"}",                             // surrogate in UTF-8
      "{\"a\":\"\xF4\x90\x80\x80\"}",                         // beyond U+10FFFF
      "{\"\xff\":1}",
      "{\"a\":\"\0\"}"s,
      std::string(100000, '[') + std::string(99999, ']'),
      R"({"resourceSpans":{}})",
      R"({"resourceSpans":[null]})",
      R"({"resourceSpans":[1]})",
      R"({"resourceSpans":[{}],"resource_spans":[{}]})",
      R"({"resource_spans":[{}],"resourceSpans":null})",        // snake key beside its camel twin
      R"({"resourceSpans":[],"resourceSpans":5})",              // last duplicate wins, and is bad
      span_json(R"("traceId":"5b8efff798038103d269b633813fc60")"),
      span_json(R"("traceId":"5b8efff798038103d269b633813fc60g")"),
      span_json(R"("spanId":"eee19b7ec3c1b1")"),
      span_json(R"("traceId":5)"),
      span_json(R"("name":5)"),
      span_json(R"("name":["a"])"),
      span_json(R"("kind":"SERVER")"),
      span_json(R"("kind":"2")"),
      span_json(R"("kind":true)"),
      span_json(R"("kind":2147483648)"),
      span_json(R"("kind":1.5)"),
      span_json(R"("flags":-1)"),
      span_json(R"("flags":4294967296)"),
      span_json(R"("flags":"4294967296")"),
      span_json(R"("droppedAttributesCount":"-0")"),
      span_json(R"("droppedAttributesCount":"+1")"),
      span_json(R"("droppedAttributesCount":" 1")"),
      span_json(R"("droppedAttributesCount":"1.0")"),
      span_json(R"("droppedAttributesCount":"")"),
      span_json(R"("droppedAttributesCount":true)"),
      span_json(R"("startTimeUnixNano":"18446744073709551616")"),
      span_json(R"("startTimeUnixNano":18446744073709551616)"),
      span_json(R"("startTimeUnixNano":-1)"),
      span_json(R"("startTimeUnixNano":"0x10")"),
      span_json(R"("status":[])"),
      span_json(R"("status":"x")"),
      span_json(R"("events":{})"),
      span_json(R"("events":[{"name":1}])"),
      span_json(R"("links":[{}, null])"),
      span_json(R"("name":"ok","name":7)"),
      attribute_json(R"({"stringValue":"a","intValue":"1"})"),
      attribute_json(R"({"stringValue":"a","string_value":"b"})"),
      attribute_json(R"({"boolValue":"true"})"),
      attribute_json(R"({"boolValue":1})"),
      attribute_json(R"({"intValue":"9223372036854775808"})"),
      attribute_json(R"({"intValue":9223372036854775808})"),
      attribute_json(R"({"intValue":9.3e18})"),
      attribute_json(R"({"intValue":"1e3"})"),
      attribute_json(R"({"doubleValue":"nan"})"),
      attribute_json(R"({"doubleValue":"inf"})"),
      attribute_json(R"({"doubleValue":"Infinity "})"),
      attribute_json(R"({"doubleValue":"1e400"})"),
      attribute_json(R"({"doubleValue":"+1"})"),
      attribute_json(R"({"doubleValue":"0x10"})"),
      attribute_json(R"({"doubleValue":""})"),
      attribute_json(R"({"doubleValue":true})"),
      attribute_json(R"({"bytesValue":"A"})"),
      attribute_json(R"({"bytesValue":"A==="})"),
      attribute_json(R"({"bytesValue":"A=B="})"),
      attribute_json(R"({"bytesValue":"AB*="})"),
      attribute_json(R"({"bytesValue":"AB=="=})"),
      attribute_json(R"({"arrayValue":{"values":[null]}})"),
      attribute_json(R"({"arrayValue":[]})"),
      attribute_json(R"({"kvlistValue":{"values":[{"key":1}]}})"),
      point_json(R"("gauge":{},"sum":{})"),
      point_json(R"("gauge":{"dataPoints":[{"asDouble":1,"asInt":"1"}]})"),
      point_json(R"("histogram":{"dataPoints":[{"bucketCounts":[1,null]}]})"),
      point_json(R"("histogram":{"dataPoints":[{"bucketCounts":["1",-1]}]})"),
      point_json(R"("histogram":{"dataPoints":[{"explicitBounds":[1,"x"]}]})"),
      point_json(R"("histogram":{"dataPoints":[{"sum":"Inf"}]})"),
      point_json(R"("exponentialHistogram":{"dataPoints":[{"scale":2147483648}]})"),
      point_json(R"("exponentialHistogram":{"dataPoints":[{"positive":{"offset":1.5}}]})"),
      point_json(R"("sum":{"aggregationTemporality":"DELTA"})"),
      point_json(R"("sum":{"isMonotonic":null,"is_monotonic":0})"),
      log_json(R"("severityNumber":"SEVERITY_NUMBER_FATAL5")"),
      log_json(R"("body":"text")"),
      log_json(R"("traceId":"5b8efff798038103d269b633813fc60c5b")"),
  };
  for (const std::string& json : refused) {
    for (Signal signal : kSignals) {
      const bool ok = check_agree(signal, json);
      INFO(json);
      if (signal == target_signal(json)) CHECK(!ok);  // other requests may ignore the member
    }
  }
}

// AnyValue arrays nested `n` deep inside a span attribute.
std::string nested_arrays(int n) {
  std::string v = R"({"intValue":"1"})";
  for (int i = 0; i < n; ++i) v = R"({"arrayValue":{"values":[)" + v + "]}}";
  return v;
}

TEST_CASE("the nesting limit is the slow path's", "[json_wire]") {
  int accepted = 0;
  for (int n = 0; n < kMaxJsonDepth; ++n) accepted += check_agree(Signal::traces, attribute_json(nested_arrays(n)));
  CHECK(accepted == (kMaxJsonDepth - 6) / 2 + 1);  // 6 levels down to the AnyValue, +2 per array
  // Deep nesting inside an unknown field is fine, and refused inside a known one.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK(check_agree(Signal::traces, R"({"x":)" + deep + "}"));
  CHECK(!check_agree(Signal::traces, attribute_json(R"({"arrayValue":)" + deep + "}")));
}

TEST_CASE("duplicate keys: the last value wins, earlier ones are dropped", "[json_wire]") {
  const std::string span = R"({"name":"a","name":"b","kind":"bad","kind":3,"attributes":[{"key":"x"}],)"
                           R"("droppedAttributesCount":1,"attributes":[],"status":{"code":1},"status":null})";
  CHECK(check_agree(Signal::traces, R"({"resourceSpans":[{"scopeSpans":[{"spans":[)" + span + "]}]}]}"));
  std::string out;
  REQUIRE(json_to_request_wire(Signal::traces, R"({"resourceSpans":[{"scopeSpans":[{"spans":[)" + span + "]}]}]}",
                               &out));
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest req;
  REQUIRE(req.ParseFromString(out));
  const auto& s = req.resource_spans(0).scope_spans(0).spans(0);
  CHECK(s.name() == "b");
  CHECK(s.kind() == 3);
  CHECK(s.attributes_size() == 0);
  CHECK(s.dropped_attributes_count() == 1);
  CHECK(!s.has_status());
}

TEST_CASE("large bodies get exact multi-byte lengths", "[json_wire]") {
  // Sizes around the varint steps of the length prefixes (127/128, 16383/16384, 2^21).
  for (size_t n : {0, 100, 120, 126, 127, 128, 200, 16370, 16383, 16384, 20000, 2100000}) {
    CHECK(check_agree(Signal::logs, log_json(R"("body":{"stringValue":")" + std::string(n, 'x') + "\"}")));
    CHECK(check_agree(Signal::traces, span_json(R"("name":")" + std::string(n, 'y') + "\"")));
  }
}

}  // namespace

// OTLP/JSON codec. Input is parsed into an nlohmann::json DOM (its parser and destructor are
// iterative, so deep input cannot overflow the stack) and copied into the message by walking the
// descriptor with protobuf reflection. Output is written straight into the string, no DOM.
#include "otlp/json_codec.h"

#include <google/protobuf/descriptor.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <utility>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/json_digits.h"
#include "otlp/json_wire.h"
#include "otlp/response.h"

namespace otlpd::otlp {
namespace {

namespace pb = google::protobuf;
using FD = pb::FieldDescriptor;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

// OTLP writes these bytes fields as hex instead of base64. Returns the byte length the id must
// have when non-empty, or 0 for ordinary bytes fields.
size_t id_field_size(const FD* f) {
  if (f->type() != FD::TYPE_BYTES) return 0;
  const std::string& name = f->name();
  if (name == "trace_id") return 16;
  if (name == "span_id" || name == "parent_span_id") return 8;
  return 0;
}


// Length of the well-formed UTF-8 sequence starting at s[i] (non-ASCII lead byte), or 0 if it is
// malformed, overlong, a surrogate or beyond U+10FFFF.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) -> unsigned {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0;
  };
  const unsigned lead = byte(0);
  unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  size_t n;
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    if (lead == 0xE0) lo = 0xA0;  // overlong
    if (lead == 0xED) hi = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    if (lead == 0xF0) lo = 0x90;  // overlong
    if (lead == 0xF4) hi = 0x8F;  // > U+10FFFF
  } else {
    return 0;
  }
  if (byte(1) < lo || byte(1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (byte(k) < 0x80 || byte(k) > 0xBF) return 0;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// JSON -> message
// ---------------------------------------------------------------------------------------------

// Walks a parsed JSON document and a message descriptor in step. Every method returns false after
// recording the first error, prefixed with the JSON path of the offending value.
class JsonReader {
 public:
  // Returns "" on success, else the error.
  std::string read(const json& doc, pb::Message& msg) {
    read_message(doc, msg, 1);
    return std::move(error_);
  }

 private:
  // Appends one path component for the lifetime of the scope.
  class PathScope {
   public:
    PathScope(std::string& path, std::string_view key) : path_(path), size_(path.size()) {
      if (!path_.empty()) path_ += '.';
      path_ += key;
    }
    PathScope(std::string& path, size_t index) : path_(path), size_(path.size()) {
      path_ += '[';
      path_ += std::to_string(index);
      path_ += ']';
    }
    ~PathScope() { path_.resize(size_); }
    PathScope(const PathScope&) = delete;
    PathScope& operator=(const PathScope&) = delete;

   private:
    std::string& path_;
    size_t size_;
  };

  bool fail(std::string_view what) {
    error_ = path_.empty() ? std::string(what) : path_ + ": " + std::string(what);
    return false;
  }

  // A JSON value for an error message, cut short so hostile input cannot bloat the error.
  static std::string describe(const json& j) {
    std::string s = j.dump(-1, ' ', /*ensure_ascii=*/true);
    if (s.size() > 40) {
      s.resize(37);
      s += "...";
    }
    return s;
  }

  bool fail_type(std::string_view expected, const json& j) {
    return fail("expected " + std::string(expected) + ", got " + j.type_name());
  }

  // Accepts the lowerCamelCase JSON name and the original snake_case proto name.
  static const FD* find_field(const pb::Descriptor* d, const std::string& key) {
    const FD* f = d->FindFieldByName(key);
    return f != nullptr ? f : d->FindFieldByCamelcaseName(key);
  }

  bool read_message(const json& j, pb::Message& msg, int depth) {
    // AnyValue recurses; the limit keeps hostile input from exhausting the stack.
    if (depth > kMaxJsonDepth) {
      return fail("nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    if (!j.is_object()) return fail_type("object", j);
    const pb::Descriptor* d = msg.GetDescriptor();
    const pb::Reflection* r = msg.GetReflection();
    for (const auto& [key, value] : j.get_ref<const json::object_t&>()) {
      const FD* f = find_field(d, key);
      if (f == nullptr || value.is_null()) continue;  // unknown fields ignored; null = absent
      PathScope scope(path_, key);
      // Object keys are iterated sorted, not in document order, so "last one wins" would be
      // arbitrary: refuse the ambiguity instead.
      if (key != f->json_name() && j.contains(f->json_name())) {
        return fail("field also given as \"" + f->json_name() + "\"");
      }
      if (const pb::OneofDescriptor* o = f->real_containing_oneof();
          o != nullptr && r->HasOneof(msg, o)) {
        return fail("more than one member of oneof \"" + o->name() + "\" is set");
      }
      if (!read_field(value, msg, f, depth)) return false;
    }
    return true;
  }

  bool read_field(const json& j, pb::Message& msg, const FD* f, int depth) {
    if (f->is_map()) return fail("map fields are not supported");  // OTLP has none
    if (!f->is_repeated()) return read_value(j, msg, f, false, depth);
    if (!j.is_array()) return fail_type("array", j);
    for (size_t i = 0; i < j.size(); ++i) {
      PathScope scope(path_, i);
      if (j[i].is_null()) return fail("null is not allowed in an array");
      if (!read_value(j[i], msg, f, true, depth)) return false;
    }
    return true;
  }

  // Sets the singular field f, or appends to the repeated field f when `add` is true.
  bool read_value(const json& j, pb::Message& msg, const FD* f, bool add, int depth) {
    const pb::Reflection* r = msg.GetReflection();
    switch (f->cpp_type()) {
      case FD::CPPTYPE_INT32: {
        int32_t v = 0;
        if (!to_integer(j, f, v)) return false;
        add ? r->AddInt32(&msg, f, v) : r->SetInt32(&msg, f, v);
        return true;
      }
      case FD::CPPTYPE_INT64: {
        int64_t v = 0;
        if (!to_integer(j, f, v)) return false;
        add ? r->AddInt64(&msg, f, v) : r->SetInt64(&msg, f, v);
        return true;
      }
      case FD::CPPTYPE_UINT32: {
        uint32_t v = 0;
        if (!to_integer(j, f, v)) return false;
        add ? r->AddUInt32(&msg, f, v) : r->SetUInt32(&msg, f, v);
        return true;
      }
      case FD::CPPTYPE_UINT64: {
        uint64_t v = 0;
        if (!to_integer(j, f, v)) return false;
        add ? r->AddUInt64(&msg, f, v) : r->SetUInt64(&msg, f, v);
        return true;
      }
      case FD::CPPTYPE_DOUBLE: {
        double v = 0;
        if (!to_double(j, v)) return false;
        add ? r->AddDouble(&msg, f, v) : r->SetDouble(&msg, f, v);
        return true;
      }
      case FD::CPPTYPE_FLOAT: {
        double v = 0;
        if (!to_double(j, v)) return false;
        if (std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max()) {
          return fail("out of range for float: " + describe(j));
        }
        add ? r->AddFloat(&msg, f, static_cast<float>(v))
            : r->SetFloat(&msg, f, static_cast<float>(v));
        return true;
      }
      case FD::CPPTYPE_BOOL: {
        if (!j.is_boolean()) return fail_type("boolean", j);
        add ? r->AddBool(&msg, f, j.get<bool>()) : r->SetBool(&msg, f, j.get<bool>());
        return true;
      }
      case FD::CPPTYPE_ENUM: {
        int v = 0;
        if (!to_enum(j, f, v)) return false;
        add ? r->AddEnumValue(&msg, f, v) : r->SetEnumValue(&msg, f, v);
        return true;
      }
      case FD::CPPTYPE_STRING: {
        if (!j.is_string()) return fail_type("string", j);
        std::string v;
        if (!to_string_value(j.get_ref<const std::string&>(), f, v)) return false;
        add ? r->AddString(&msg, f, std::move(v)) : r->SetString(&msg, f, std::move(v));
        return true;
      }
      case FD::CPPTYPE_MESSAGE: {
        if (!j.is_object()) return fail_type("object", j);
        pb::Message* sub = add ? r->AddMessage(&msg, f) : r->MutableMessage(&msg, f);
        return read_message(j, *sub, depth + 1);
      }
    }
    return fail("unsupported field type");
  }

  // Any integer type from a JSON number or a decimal string (proto3 JSON allows both; OTLP
  // writes 64-bit values as strings because JSON numbers lose precision beyond 2^53).
  template <typename T>
  bool to_integer(const json& j, const FD* f, T& out) {
    auto out_of_range = [&] {
      return fail("out of range for " + std::string(f->type_name()) + ": " + describe(j));
    };
    if (j.is_number_unsigned()) {
      const auto v = j.get<uint64_t>();
      if (!std::in_range<T>(v)) return out_of_range();
      out = static_cast<T>(v);
      return true;
    }
    if (j.is_number_integer()) {
      const auto v = j.get<int64_t>();
      if (!std::in_range<T>(v)) return out_of_range();
      out = static_cast<T>(v);
      return true;
    }
    if (j.is_number_float()) {
      const auto v = j.get<double>();
      if (v != std::trunc(v)) return fail("expected an integer, got " + describe(j));
      // [min, 2^digits) is exactly representable as doubles for all integer types.
      const double lo = static_cast<double>(std::numeric_limits<T>::min());
      const double hi = std::ldexp(1.0, std::numeric_limits<T>::digits);
      if (!(v >= lo && v < hi)) return out_of_range();
      out = static_cast<T>(v);
      return true;
    }
    if (j.is_string()) {
      const std::string& s = j.get_ref<const std::string&>();
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
      // from_chars refuses a minus sign for unsigned types; that is a range error too.
      const bool negative_unsigned = !std::is_signed_v<T> && s.size() > 1 && s[0] == '-' &&
                                     s.find_first_not_of("0123456789", 1) == std::string::npos;
      if (ec == std::errc::result_out_of_range || negative_unsigned) return out_of_range();
      if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
        return fail("expected an integer, got string " + describe(j));
      }
      return true;
    }
    return fail_type("integer", j);
  }

  // A JSON number, or a string: "NaN", "Infinity", "-Infinity" (JSON has no literals for them)
  // or a decimal number.
  bool to_double(const json& j, double& out) {
    if (j.is_number()) {
      out = j.get<double>();
      return true;
    }
    if (!j.is_string()) return fail_type("number", j);
    const std::string& s = j.get_ref<const std::string&>();
    if (s == "NaN") {
      out = std::numeric_limits<double>::quiet_NaN();
    } else if (s == "Infinity") {
      out = std::numeric_limits<double>::infinity();
    } else if (s == "-Infinity") {
      out = -std::numeric_limits<double>::infinity();
    } else {
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
      // from_chars also takes "inf"/"nan" spellings, which JSON does not use.
      if (ec != std::errc() || end != s.data() + s.size() || s.empty() || !std::isfinite(out)) {
        return fail("expected a number, got string " + describe(j));
      }
    }
    return true;
  }

  // OTLP enums are written as integers; value names are accepted too.
  bool to_enum(const json& j, const FD* f, int& out) {
    if (!j.is_string()) {
      if (!j.is_number()) return fail_type("enum integer or name", j);
      int32_t v = 0;
      if (!to_integer(j, f, v)) return false;
      out = v;  // proto3 enums are open: unknown numbers are kept
      return true;
    }
    const pb::EnumValueDescriptor* v =
        f->enum_type()->FindValueByName(j.get_ref<const std::string&>());
    if (v == nullptr) {
      return fail("unknown value " + describe(j) + " for enum " + f->enum_type()->full_name());
    }
    out = v->number();
    return true;
  }

  bool to_string_value(const std::string& s, const FD* f, std::string& out) {
    if (f->type() == FD::TYPE_STRING) {
      out = s;  // the JSON parser has already rejected invalid UTF-8
      return true;
    }
    if (size_t id_size = id_field_size(f)) return hex_decode(s, id_size, out);
    return base64_decode(s, out);
  }

  // Trace and span ids: lowercase hex (uppercase accepted), exactly id_size bytes or empty.
  bool hex_decode(const std::string& s, size_t id_size, std::string& out) {
    if (!s.empty() && s.size() != 2 * id_size) {
      return fail("expected " + std::to_string(2 * id_size) + " hex characters, got " +
                  std::to_string(s.size()));
    }
    out.resize(s.size() / 2);
    for (size_t i = 0; i < s.size(); i += 2) {
      const int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
      if (hi < 0 || lo < 0) {
        return fail("invalid hex character at offset " + std::to_string(hi < 0 ? i : i + 1));
      }
      out[i / 2] = static_cast<char>(hi << 4 | lo);
    }
    return true;
  }

  // Padding is optional, as in the proto3 JSON mapping.
  bool base64_decode(std::string_view s, std::string& out) {
    if (s.size() % 4 == 0 && !s.empty() && s.back() == '=') s.remove_suffix(1);
    if (s.size() % 4 == 3 && !s.empty() && s.back() == '=') s.remove_suffix(1);
    if (s.size() % 4 == 1) return fail("invalid base64 length");
    out.clear();
    out.reserve(s.size() * 3 / 4);
    uint32_t bits = 0;
    int nbits = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const int v = base64_value(s[i]);
      if (v < 0) return fail("invalid base64 character at offset " + std::to_string(i));
      bits = (bits << 6 | static_cast<uint32_t>(v)) & 0xFFFFFF;
      nbits += 6;
      if (nbits >= 8) {
        nbits -= 8;
        out += static_cast<char>(bits >> nbits & 0xFF);
      }
    }
    return true;
  }

  std::string path_;
  std::string error_;
};

// nlohmann's messages start with "[json.exception.parse_error.101] "; the tag is noise to users.
std::string json_exception_message(const json::exception& e) {
  std::string_view what = e.what();
  if (!what.empty() && what.front() == '[') {
    if (size_t end = what.find("] "); end != std::string_view::npos) what.remove_prefix(end + 2);
  }
  return std::string(what);
}

// ---------------------------------------------------------------------------------------------
// message -> JSON
// ---------------------------------------------------------------------------------------------

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  void write_message(const pb::Message& msg) {
    const pb::Descriptor* d = msg.GetDescriptor();
    const pb::Reflection* r = msg.GetReflection();
    out_ += '{';
    bool first = true;
    // Declaration order, which follows the .proto file. HasField is false for implicit-presence
    // fields holding their default, which proto3 JSON omits; set oneof members and `optional`
    // fields report true even when zero, so they are written.
    for (int i = 0; i < d->field_count(); ++i) {
      const FD* f = d->field(i);
      if (f->is_repeated() ? r->FieldSize(msg, f) == 0 : !r->HasField(msg, f)) continue;
      if (!first) out_ += ',';
      first = false;
      out_ += '"';
      out_ += f->json_name();  // identifier characters only: no escaping needed
      out_ += "\":";
      write_field(msg, f);
    }
    out_ += '}';
  }

 private:
  void write_field(const pb::Message& msg, const FD* f) {
    if (!f->is_repeated()) {
      write_value(msg, f, -1);
      return;
    }
    out_ += '[';
    const int n = msg.GetReflection()->FieldSize(msg, f);
    for (int i = 0; i < n; ++i) {
      if (i > 0) out_ += ',';
      write_value(msg, f, i);
    }
    out_ += ']';
  }

  // Writes the singular field f (index < 0) or element `index` of the repeated field f.
  void write_value(const pb::Message& msg, const FD* f, int index) {
    const pb::Reflection* r = msg.GetReflection();
    const bool rep = index >= 0;
    switch (f->cpp_type()) {
      case FD::CPPTYPE_INT32:
        return write_number(rep ? r->GetRepeatedInt32(msg, f, index) : r->GetInt32(msg, f));
      case FD::CPPTYPE_UINT32:
        return write_number(rep ? r->GetRepeatedUInt32(msg, f, index) : r->GetUInt32(msg, f));
      case FD::CPPTYPE_INT64:
        return write_quoted_number(rep ? r->GetRepeatedInt64(msg, f, index) : r->GetInt64(msg, f));
      case FD::CPPTYPE_UINT64:
        return write_quoted_number(rep ? r->GetRepeatedUInt64(msg, f, index)
                                       : r->GetUInt64(msg, f));
      case FD::CPPTYPE_DOUBLE:
        return write_floating(rep ? r->GetRepeatedDouble(msg, f, index) : r->GetDouble(msg, f));
      case FD::CPPTYPE_FLOAT:
        return write_floating(rep ? r->GetRepeatedFloat(msg, f, index) : r->GetFloat(msg, f));
      case FD::CPPTYPE_BOOL:
        out_ += (rep ? r->GetRepeatedBool(msg, f, index) : r->GetBool(msg, f)) ? "true" : "false";
        return;
      case FD::CPPTYPE_ENUM:  // OTLP requires integers, not names
        return write_number(rep ? r->GetRepeatedEnumValue(msg, f, index) : r->GetEnumValue(msg, f));
      case FD::CPPTYPE_STRING: {
        std::string scratch;
        const std::string& s = rep ? r->GetRepeatedStringReference(msg, f, index, &scratch)
                                   : r->GetStringReference(msg, f, &scratch);
        if (f->type() == FD::TYPE_STRING) return write_string(s);
        if (id_field_size(f) != 0) return write_hex(s);
        return write_base64(s);
      }
      case FD::CPPTYPE_MESSAGE:
        return write_message(rep ? r->GetRepeatedMessage(msg, f, index) : r->GetMessage(msg, f));
    }
  }

  template <typename T>
  void write_number(T v) {
    char buf[24];
    out_.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
  }

  // 64-bit integers are strings: JSON readers commonly hold numbers as doubles.
  template <typename T>
  void write_quoted_number(T v) {
    out_ += '"';
    write_number(v);
    out_ += '"';
  }

  template <typename T>
  void write_floating(T v) {
    if (std::isnan(v)) {
      out_ += "\"NaN\"";
    } else if (std::isinf(v)) {
      out_ += v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    } else {
      // Shortest representation that parses back to the same value (of type T).
      char buf[32];
      char* end = std::to_chars(buf, buf + sizeof buf, v).ptr;
      out_.append(buf, end);
      // "-0" would read back as integer 0 and lose the sign; "-0.0" keeps it a double.
      if (std::string_view(buf, end).find_first_not_of("-0123456789") == std::string_view::npos) {
        out_ += ".0";
      }
    }
  }

  void write_hex(const std::string& s) {
    out_ += '"';
    for (char c : s) {
      const auto b = static_cast<unsigned char>(c);
      out_ += kHexDigits[b >> 4];
      out_ += kHexDigits[b & 0xF];
    }
    out_ += '"';
  }

  // Standard alphabet with padding, as the proto3 JSON mapping writes bytes.
  void write_base64(const std::string& s) {
    out_ += '"';
    size_t i = 0;
    for (; i + 3 <= s.size(); i += 3) {
      const uint32_t v = static_cast<unsigned char>(s[i]) << 16 |
                         static_cast<unsigned char>(s[i + 1]) << 8 |
                         static_cast<unsigned char>(s[i + 2]);
      out_ += kBase64Digits[v >> 18];
      out_ += kBase64Digits[v >> 12 & 0x3F];
      out_ += kBase64Digits[v >> 6 & 0x3F];
      out_ += kBase64Digits[v & 0x3F];
    }
    if (const size_t rest = s.size() - i; rest > 0) {
      uint32_t v = static_cast<unsigned char>(s[i]) << 16;
      if (rest == 2) v |= static_cast<unsigned char>(s[i + 1]) << 8;
      out_ += kBase64Digits[v >> 18];
      out_ += kBase64Digits[v >> 12 & 0x3F];
      out_ += rest == 2 ? kBase64Digits[v >> 6 & 0x3F] : '=';
      out_ += '=';
    }
    out_ += '"';
  }

  // Escapes quotes, backslashes and control characters; replaces malformed UTF-8 with U+FFFD so
  // the output is always valid JSON. Unescaped runs are copied in one append.
  void write_string(std::string_view s) {
    out_ += '"';
    size_t run = 0;  // start of the pending run of bytes that need no escaping
    size_t i = 0;
    while (i < s.size()) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
        ++i;
        continue;
      }
      if (c >= 0x80) {
        if (size_t n = utf8_sequence_length(s, i); n > 0) {
          i += n;
          continue;
        }
      }
      out_.append(s.substr(run, i - run));
      if (c >= 0x80) {
        out_ += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      } else {
        write_escape(static_cast<char>(c));
      }
      run = ++i;
    }
    out_.append(s.substr(run));
    out_ += '"';
  }

  void write_escape(char c) {
    switch (c) {
      case '"':
        out_ += "\\\"";
        return;
      case '\\':
        out_ += "\\\\";
        return;
      case '\b':
        out_ += "\\b";
        return;
      case '\f':
        out_ += "\\f";
        return;
      case '\n':
        out_ += "\\n";
        return;
      case '\r':
        out_ += "\\r";
        return;
      case '\t':
        out_ += "\\t";
        return;
      default:
        out_ += "\\u00";
        out_ += kHexDigits[(c >> 4) & 0xF];
        out_ += kHexDigits[c & 0xF];
    }
  }

  std::string& out_;
};

}  // namespace

std::string json_to_message(std::string_view text, pb::Message& msg) {
  try {
    msg.Clear();
    const json doc = json::parse(text.data(), text.data() + text.size());
    return JsonReader().read(doc, msg);
  } catch (const json::exception& e) {  // parse errors, including invalid UTF-8 in strings
    return "invalid JSON: " + json_exception_message(e);
  } catch (const std::exception& e) {  // std::bad_alloc
    return std::string("cannot convert JSON: ") + e.what();
  }
}

void message_to_json(const pb::Message& msg, std::string* out) {
  JsonWriter(*out).write_message(msg);
}

std::string request_json_to_proto(Signal signal, std::string_view json_text, std::string* out) {
  // The fast path accepts exactly what json_to_message accepts. Only a refusal runs the slow path,
  // for its error naming the JSON path; should the two ever disagree, the slow path's result wins.
  if (json_to_request_wire(signal, json_text, out)) return "";
  try {
    const std::unique_ptr<pb::Message> request = new_request(signal);
    if (request == nullptr) return "unknown signal";
    if (std::string error = json_to_message(json_text, *request); !error.empty()) return error;
    const size_t old_size = out->size();
    if (!request->AppendToString(out)) {
      out->resize(old_size);
      return "cannot serialize " + request->GetTypeName();
    }
    return "";
  } catch (const std::exception& e) {
    return std::string("cannot convert JSON to protobuf: ") + e.what();
  }
}

std::string request_proto_to_json(Signal signal, std::string_view proto, std::string* out) {
  const size_t old_size = out->size();
  try {
    const std::unique_ptr<pb::Message> request = new_request(signal);
    if (request == nullptr) return "unknown signal";
    if (proto.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
        !request->ParseFromArray(proto.data(), static_cast<int>(proto.size()))) {
      return "malformed protobuf: cannot parse " + request->GetTypeName();
    }
    message_to_json(*request, out);
    return "";
  } catch (const std::exception& e) {
    out->resize(old_size);
    return std::string("cannot convert protobuf to JSON: ") + e.what();
  }
}

}  // namespace otlpd::otlp

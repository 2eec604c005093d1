// Digit alphabets of OTLP/JSON: lowercase hex for trace and span ids, base64 for other bytes.
// Shared by the JSON decoder to messages (json_codec) and the one to wire bytes (json_wire).
#pragma once

namespace otlpd::otlp {

inline constexpr char kHexDigits[] = "0123456789abcdef";
inline constexpr char kBase64Digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// A hex digit's value (either case), or -1.
inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A base64 digit's value in the standard or the URL-safe alphabet (the proto3 JSON mapping takes
// both), or -1.
inline int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

}  // namespace otlpd::otlp

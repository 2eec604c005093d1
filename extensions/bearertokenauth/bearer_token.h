// The `bearertokenauth` extension, as the Collector configures it:
//
//   extensions:
//     bearertokenauth: {token: "${env:OTLPD_TOKEN}"}      # or filename: /etc/otlpd/token
//   receivers:
//     otlp: {protocols: {grpc: {auth: {authenticator: bearertokenauth}}}}
//   exporters:
//     otlp: {endpoint: backend:4317, auth: {authenticator: bearertokenauth}}
//
// A receiver refuses a request whose `header` is not exactly "<scheme> <token>" (401 /
// UNAUTHENTICATED, before its body is read); an exporter sends that header with every request.
// A token file is read at start and again whenever it changes (checked at most once a second),
// so a token is rotated by rewriting the file. The token is compared in constant time and never
// logged or echoed.
//
// Threads: BearerToken is created on the control thread; accepts() and header_value() are called
// from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "config/node.h"
#include "pipeline/status.h"

namespace otlpd {

struct BearerTokenSettings {
  std::string header = "Authorization";
  std::string scheme = "Bearer";
  std::string token;     // inline, or
  std::string filename;  // a file holding it (surrounding whitespace ignored)

  bool operator==(const BearerTokenSettings&) const = default;
};

// Configured bearertokenauth extensions by id as written ("bearertokenauth", "bearertokenauth/x").
using BearerTokens = std::map<std::string, BearerTokenSettings>;

class BearerToken {
 public:
  // Reads the token (from the file, when one is named). Null, and *error naming the file, when it
  // cannot be read or is empty.
  static std::shared_ptr<BearerToken> open(const BearerTokenSettings& settings, Status* error);

  // The header's name in lowercase (gRPC metadata keys are lowercase; HTTP compares without case).
  const std::string& header() const { return header_; }
  const std::string& scheme() const { return settings_.scheme; }
  // Whether `value` (the header's value; empty when absent) is exactly "<scheme> <token>". The
  // time taken depends on the expected value's length only, not on where `value` differs.
  bool accepts(std::string_view value) const;
  // "<scheme> <token>", for an exporter's requests.
  std::string header_value() const;

 private:
  explicit BearerToken(const BearerTokenSettings& settings);
  // The expected header value, re-reading the file when it changed (at most once a second).
  std::shared_ptr<const std::string> expected() const;
  bool read_file(std::string* token, Status* error) const;

  const BearerTokenSettings settings_;
  const std::string header_;
  mutable std::mutex mu_;  // guards expected_, file_stamp_
  mutable std::shared_ptr<const std::string> expected_;
  mutable std::string file_stamp_;                    // mtime and size when last read
  mutable std::atomic<int64_t> next_check_ms_{0};     // steady-clock ms of the next file check
};

// Constant-time comparison: as long as `expected`, whatever `given` is.
bool constant_time_equal(std::string_view given, std::string_view expected);

// Reads a component's `auth: {authenticator: <id>}` into *authenticator (left empty when there is
// no `auth`). The config loader checks that the id names a running bearertokenauth extension.
void read_authenticator(config::Node& node, std::string* authenticator);

// The settings `authenticator` names in `tokens` (the Host's bearer_tokens; may be null); null
// when it names none.
const BearerTokenSettings* find_bearer_token(const BearerTokens* tokens, const std::string& authenticator);

}  // namespace otlpd

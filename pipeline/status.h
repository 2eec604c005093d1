// Status: the outcome of handing data to a component, and its mapping to gRPC and HTTP.
//
// Cheap to copy when OK (no allocation). Thread-safe as a value type. One place maps a Status to the
// codes a receiver answers with, and maps an exporter's response back to a Status.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace otlpd {

class Status {
 public:
  enum class Code {
    ok,
    invalid_argument,    // malformed data: the client must not retry it
    not_found,
    too_large,           // request bigger than a configured limit
    unsupported,         // content type or encoding otlpd does not speak
    unavailable,         // temporarily refused (full queue, shutting down): retry later
    resource_exhausted,  // the peer asked us to slow down: retry later
    deadline_exceeded,
    internal,
  };

  Status() = default;
  static Status ok() { return Status(); }
  // Accepted, but `rejected` items were not kept (counted, reported as OTLP partial_success).
  static Status partial(uint64_t rejected, std::string message) {
    Status s;
    s.rejected_items_ = rejected;
    s.message_ = std::move(message);
    return s;
  }
  static Status invalid_argument(std::string m) { return Status(Code::invalid_argument, std::move(m)); }
  static Status not_found(std::string m) { return Status(Code::not_found, std::move(m)); }
  static Status too_large(std::string m) { return Status(Code::too_large, std::move(m)); }
  static Status unsupported(std::string m) { return Status(Code::unsupported, std::move(m)); }
  static Status unavailable(std::string m, std::chrono::milliseconds retry_after = kDefaultRetryAfter) {
    Status s(Code::unavailable, std::move(m));
    s.retry_after_ = retry_after;
    return s;
  }
  static Status resource_exhausted(std::string m, std::chrono::milliseconds retry_after = kDefaultRetryAfter) {
    Status s(Code::resource_exhausted, std::move(m));
    s.retry_after_ = retry_after;
    return s;
  }
  // Refused because the component is not running (starting, or stopping: a reload replaced it).
  // Retryable; a fan-out passes it back even when other targets took the data, since the data
  // would otherwise miss this target's pipeline.
  static Status not_running(std::string m) {
    Status s = unavailable(std::move(m));
    s.not_running_ = true;
    return s;
  }
  static Status deadline_exceeded(std::string m) { return Status(Code::deadline_exceeded, std::move(m)); }
  static Status internal(std::string m) { return Status(Code::internal, std::move(m)); }

  bool is_ok() const { return code_ == Code::ok; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  uint64_t rejected_items() const { return rejected_items_; }
  bool not_running() const { return not_running_; }
  // How long a refused client should wait before retrying; zero when not a refusal.
  std::chrono::milliseconds retry_after() const { return retry_after_; }
  // Whether sending the same data again later may succeed.
  bool retryable() const {
    return code_ == Code::unavailable || code_ == Code::resource_exhausted || code_ == Code::deadline_exceeded;
  }
  std::string to_string() const;

  static constexpr std::chrono::milliseconds kDefaultRetryAfter{1000};

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}

  Code code_ = Code::ok;
  std::string message_;
  uint64_t rejected_items_ = 0;
  std::chrono::milliseconds retry_after_{0};
  bool not_running_ = false;
};

// gRPC status code numbers (grpc::StatusCode values) for a Status.
int grpc_code(const Status& s);
// HTTP status for a Status (200, 400, 404, 413, 415, 429, 503, 500).
int http_status(const Status& s);
// What an exporter makes of its peer's answer. Retryable per the OTLP specification: gRPC
// UNAVAILABLE, RESOURCE_EXHAUSTED (with RetryInfo), DEADLINE_EXCEEDED, ABORTED, CANCELLED, OUT_OF_RANGE,
// DATA_LOSS; HTTP 429, 502, 503, 504. `retry_after` is the server's hint, zero if none.
Status status_from_grpc(int code, std::string message, std::chrono::milliseconds retry_after = {});
Status status_from_http(int status, std::string message, std::chrono::milliseconds retry_after = {});

}  // namespace otlpd

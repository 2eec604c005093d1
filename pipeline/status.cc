#include "pipeline/status.h"

namespace otlpd {

namespace {
// grpc::StatusCode numbers, spelled out so this file needs no gRPC headers.
enum GrpcCode {
  kGrpcOk = 0, kGrpcCancelled = 1, kGrpcInvalidArgument = 3, kGrpcDeadlineExceeded = 4, kGrpcNotFound = 5,
  kGrpcResourceExhausted = 8, kGrpcAborted = 10, kGrpcOutOfRange = 11, kGrpcUnimplemented = 12,
  kGrpcInternal = 13, kGrpcUnavailable = 14, kGrpcDataLoss = 15,
};

const char* code_name(Status::Code c) {
  switch (c) {
    case Status::Code::ok: return "OK";
    case Status::Code::invalid_argument: return "invalid argument";
    case Status::Code::not_found: return "not found";
    case Status::Code::too_large: return "too large";
    case Status::Code::unsupported: return "unsupported";
    case Status::Code::unavailable: return "unavailable";
    case Status::Code::resource_exhausted: return "resource exhausted";
    case Status::Code::deadline_exceeded: return "deadline exceeded";
    case Status::Code::internal: return "internal";
  }
  return "unknown";
}
}  // namespace

std::string Status::to_string() const {
  std::string s = code_name(code_);
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

int grpc_code(const Status& s) {
  switch (s.code()) {
    case Status::Code::ok: return kGrpcOk;
    case Status::Code::invalid_argument: return kGrpcInvalidArgument;
    case Status::Code::not_found: return kGrpcNotFound;
    case Status::Code::too_large: return kGrpcResourceExhausted;
    case Status::Code::unsupported: return kGrpcUnimplemented;
    case Status::Code::unavailable: return kGrpcUnavailable;
    case Status::Code::resource_exhausted: return kGrpcResourceExhausted;
    case Status::Code::deadline_exceeded: return kGrpcDeadlineExceeded;
    case Status::Code::internal: return kGrpcInternal;
  }
  return kGrpcInternal;
}

int http_status(const Status& s) {
  switch (s.code()) {
    case Status::Code::ok: return 200;
    case Status::Code::invalid_argument: return 400;
    case Status::Code::not_found: return 404;
    case Status::Code::too_large: return 413;
    case Status::Code::unsupported: return 415;
    case Status::Code::unavailable: return 503;
    case Status::Code::resource_exhausted: return 429;
    case Status::Code::deadline_exceeded: return 504;
    case Status::Code::internal: return 500;
  }
  return 500;
}

Status status_from_grpc(int code, std::string message, std::chrono::milliseconds retry_after) {
  switch (code) {
    case kGrpcOk: return Status::ok();
    case kGrpcResourceExhausted:
      // Only retryable when the server says when (OTLP spec: RetryInfo present).
      if (retry_after.count() > 0) return Status::resource_exhausted(std::move(message), retry_after);
      return Status::too_large(std::move(message));
    case kGrpcUnavailable:
    case kGrpcCancelled:
    case kGrpcAborted:
    case kGrpcOutOfRange:
    case kGrpcDataLoss:
      return Status::unavailable(std::move(message), retry_after);
    case kGrpcDeadlineExceeded: return Status::deadline_exceeded(std::move(message));
    case kGrpcInvalidArgument: return Status::invalid_argument(std::move(message));
    case kGrpcNotFound: return Status::not_found(std::move(message));
    case kGrpcUnimplemented: return Status::unsupported(std::move(message));
    default: return Status::internal(std::move(message));
  }
}

Status status_from_http(int status, std::string message, std::chrono::milliseconds retry_after) {
  if (status >= 200 && status < 300) return Status::ok();
  switch (status) {
    case 429: return Status::resource_exhausted(std::move(message), retry_after);
    case 502:
    case 503: return Status::unavailable(std::move(message), retry_after);
    case 504: return Status::deadline_exceeded(std::move(message));
    case 404: return Status::not_found(std::move(message));
    case 413: return Status::too_large(std::move(message));
    case 415: return Status::unsupported(std::move(message));
    default:
      if (status >= 400 && status < 500) return Status::invalid_argument(std::move(message));
      return Status::internal(std::move(message));
  }
}

}  // namespace otlpd

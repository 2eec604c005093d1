// GrpcTransport: sends serialized OTLP requests over gRPC with grpc::GenericStub (callback API,
// raw ByteBuffer: the payload bytes are handed to gRPC as they are, never re-serialized).
//
// One channel per connection, each forced onto its own TCP connection (local subchannel pool).
// Ownership and threads: see transport.h; `done` runs on gRPC's callback threads.
// Classification: OK -> ok (partial_success read from the response); DEADLINE_EXCEEDED,
// CANCELLED, and UNAVAILABLE without status details (a transport failure rather than a server's
// refusal, which carries RetryInfo) -> failed; any other code -> refused with that code.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/generic/generic_stub.h>

#include "bench/loadgen/transport.h"
#include "otlp/signal.h"


namespace otlpd::loadgen {

struct GrpcClientOptions {
  std::string endpoint;  // host:port
  otlp::Signal signal = otlp::Signal::traces;
  size_t connections = 1;
  bool gzip = false;
  std::chrono::milliseconds timeout{10000};  // per request
};

class GrpcTransport : public Transport {
 public:
  explicit GrpcTransport(GrpcClientOptions options);
  ~GrpcTransport() override;
  bool start(std::string* error) override;
  void send(size_t conn, std::string payload, Done done) override;
  void shutdown() override;

 private:
  GrpcClientOptions options_;
  std::string method_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs_;
};

}  // namespace otlpd::loadgen

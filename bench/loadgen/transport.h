// Transport: how the sender's driver hands one serialized request to a protocol client.
//
// Ownership and threads: the driver thread calls send(); the transport owns the payload from then
// on and calls `done` exactly once per send(), from one of its own threads (gRPC callback threads
// or the HTTP client's I/O threads). shutdown() is called once, after every `done` has run or the
// drain deadline passed; after it returns no `done` call runs.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace otlpd::loadgen {

struct Outcome {
  enum class Kind {
    ok,       // the server accepted the request (partial_success may reject some items)
    refused,  // the server answered with an error status (`code`: gRPC code or HTTP status)
    failed,   // no answer: connection error, reset, timeout
  };
  Kind kind = Kind::ok;
  int code = 0;
  uint64_t rejected_items = 0;  // partial_success rejected count when ok
  std::string error;            // a short description when failed (first one is reported)
};

class Transport {
 public:
  using Done = std::function<void(Outcome)>;
  virtual ~Transport() = default;
  // Prepares channels/connections; false (with *error set) when the endpoint is unusable.
  virtual bool start(std::string* error) = 0;
  // Sends `payload` (uncompressed protobuf or JSON) on connection `conn` (< connections).
  virtual void send(size_t conn, std::string payload, Done done) = 0;
  virtual void shutdown() = 0;
};

}  // namespace otlpd::loadgen

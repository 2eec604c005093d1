// HttpTransport: sends OTLP/HTTP requests (protobuf or JSON, optional gzip) over Beast HTTP/1.1
// keep-alive connections, with up to `concurrency` requests pipelined on each connection.
//
// Ownership and threads: the transport owns an io_context run by `threads` I/O threads. Each
// connection is a Conn object living on its own strand (all its state is touched only there);
// send() posts to that strand, gzip compression happens there too, and `done` runs there.
// A connection is opened on first use and re-opened after an error; an error fails every request
// written or queued on it. Responses: 200 -> ok (partial_success parsed from the body); any other
// status -> refused with that status; connection errors and timeouts -> failed.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/loadgen/payload.h"
#include "bench/loadgen/transport.h"
#include "otlp/signal.h"

namespace otlpd::loadgen {

struct HttpClientOptions {
  std::string endpoint;  // host:port
  otlp::Signal signal = otlp::Signal::traces;
  Format format = Format::protobuf;
  size_t connections = 1;
  bool gzip = false;
  size_t threads = 2;                        // I/O threads
  std::chrono::milliseconds timeout{10000};  // per request (connect, write, answer)
};

class HttpTransport : public Transport {
 public:
  explicit HttpTransport(HttpClientOptions options);
  ~HttpTransport() override;
  bool start(std::string* error) override;
  void send(size_t conn, std::string payload, Done done) override;
  void shutdown() override;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace otlpd::loadgen

// HttpServer: the OTLP/HTTP server of the `otlp` receiver (HTTP/1.1 with keep-alive, on Boost.Beast).
//
// It answers POST on the three signal paths with the OTLP/HTTP protocol: protobuf or JSON bodies
// (JSON is converted to protobuf here, so the handler only ever sees protobuf), identity, gzip or
// zstd Content-Encoding, a body limit enforced on the wire and after decompression, and the
// handler's Status mapped to an HTTP status (pipeline/status.h http_status()), Retry-After on
// 429/503, partial_success on a partial Status. Responses use the request's content type:
// Export<Signal>ServiceResponse on success, google.rpc.Status on error. Where no OTLP content type
// is known (404/405/415 for an absent or foreign Content-Type, malformed HTTP, header too large)
// the body is text/plain holding the message. Every response carries Content-Type and
// Content-Length. Protobuf request bytes are passed on unvalidated: the handler validates them.
//
// Threads and ownership: the server uses the caller's io_context, which one or more threads run.
// Each connection lives on its own strand and owns itself (shared_from_this); the Handler runs
// on that strand, so several calls may run at once on different connections and the Handler must
// be thread-safe. start(), port() and shutdown() are called from one control thread (not an I/O
// thread). After shutdown() returns no Handler call is running and none starts; connections still
// open at the deadline are closed, and they release their last resources once the io_context
// runs their cancelled operations (or is destroyed). Destroy the HttpServer before the io_context.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "otlp/signal.h"
#include "pipeline/component.h"
#include "pipeline/status.h"

namespace boost::asio {
class io_context;
}

namespace otlpd {

using otlp::Signal;

struct HttpServerSettings {
  std::string endpoint = "localhost:4318";         // host:port; port 0 picks a free one; [::1]:port for IPv6
  uint64_t max_request_body_size = 20 << 20;       // bytes, enforced on the wire body AND after decompression
  std::string traces_url_path = "/v1/traces";
  std::string metrics_url_path = "/v1/metrics";
  std::string logs_url_path = "/v1/logs";
  std::chrono::milliseconds read_timeout{30000};   // whole request, headers+body (also bounds writing the response)
  std::chrono::milliseconds idle_timeout{120000};  // keep-alive connection idle between requests
};

class HttpServer {
 public:
  // Called on an I/O thread with the body of an Export<Signal>ServiceRequest as protobuf bytes
  // (decompressed; JSON already converted; not validated). Returns the pipeline's answer.
  using Handler = std::function<Status(Signal signal, std::string&& request_proto)>;

  HttpServer(boost::asio::io_context& io, HttpServerSettings settings, Handler handler);
  // Shuts down with an immediate deadline if the owner did not.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Resolves, binds and listens, then accepts on the io_context. Returns quickly; an error Status
  // (e.g. "bind 127.0.0.1:4318: Address already in use") when it fails, having undone its work.
  Status start();
  // The bound port, valid after a successful start().
  uint16_t port() const;
  // Stops accepting, lets requests already in progress finish until `deadline` (their responses
  // say Connection: close), closes idle connections at once and the rest at the deadline.
  // Idempotent.
  void shutdown(Clock::time_point deadline);

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace otlpd

// HttpServer: the OTLP/HTTP server of the `otlp` receiver: HTTP/1.1 with keep-alive on Boost.Beast,
// and HTTP/2 on the same port (prior-knowledge h2c, or ALPN h2 under TLS) through Http2Codec.
//
// It answers POST on the three signal paths with the OTLP/HTTP protocol: protobuf or JSON bodies
// (JSON is converted to protobuf here, so the handler only ever sees protobuf), identity, gzip or
// zstd Content-Encoding, a body limit enforced on the wire and while decompressing, and the
// handler's Status mapped to an HTTP status (pipeline/status.h http_status()), Retry-After on
// 429/503, partial_success on a partial Status. Responses use the request's content type:
// Export<Signal>ServiceResponse on success, google.rpc.Status on error. Where no OTLP content type
// is known (404/405/415 for an absent or foreign Content-Type, malformed HTTP, header too large)
// the body is text/plain holding the message. Every response carries Content-Type and
// Content-Length, except the bodiless 204 answer to a CORS preflight. Protobuf request bytes are
// passed on unvalidated: the handler validates them.
//
// With `tls`, a connection's TLS handshake must complete within read_header_timeout too; with a
// client CA a client without a certificate it signed fails the handshake (no HTTP answer).
//
// Protection from slow or numerous clients: the request line and headers must arrive within
// read_header_timeout (slow-loris), the whole request within read_timeout; at most
// max_connections connections are open, and one beyond that is closed as soon as it is accepted
// (a warning says so at most every 10 s). With `cors` set, browsers on the allowed origins may
// call: preflights (OPTIONS with Access-Control-Request-Method) get 204, and answers to an
// allowed Origin carry Access-Control-Allow-Origin, as the Collector's confighttp (rs/cors) does.
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
#include <optional>
#include <string>
#include <vector>

#include "net/tls_settings.h"
#include "otlp/signal.h"
#include "pipeline/component.h"
#include "pipeline/status.h"

namespace boost::asio {
class io_context;
}

namespace otlpd {

using otlp::Signal;

// Cross-origin calls from browser SDKs (the Collector's `cors` keys).
struct CorsSettings {
  // Exact origins ("https://app.example.com"), or with one * standing for any characters
  // ("https://*.example.com"; "*" alone: every origin). Compared case-insensitively.
  std::vector<std::string> allowed_origins;
  // Request headers a page may send beyond Content-Type and Content-Encoding, which are always
  // allowed; "*": whatever the preflight asks for.
  std::vector<std::string> allowed_headers;
  std::chrono::seconds max_age{0};  // how long a browser may cache a preflight answer; 0: not said
};

struct HttpServerSettings {
  std::string endpoint = "localhost:4318";         // host:port; port 0 picks a free one; [::1]:port for IPv6
  uint64_t max_request_body_size = 20 << 20;       // bytes, enforced on the wire body AND after decompression
  std::string traces_url_path = "/v1/traces";
  std::string metrics_url_path = "/v1/metrics";
  std::string logs_url_path = "/v1/logs";
  std::chrono::milliseconds read_timeout{30000};   // whole request, headers+body (also bounds writing the response)
  std::chrono::milliseconds idle_timeout{120000};  // keep-alive connection idle between requests
  // Request line and headers, from the request's first byte (0: only read_timeout applies). Not the
  // Collector's 1m: read_timeout (30s) already bounds the headers, so 1m would never apply, and a
  // real client sends its headers in one write right away; 10s holds a slow-loris slot 3x shorter.
  std::chrono::milliseconds read_header_timeout{10000};
  // Open connections, lingering ones included; one more is closed as soon as it is accepted. Far
  // below the packaged unit's LimitNOFILE (65536), which also serves gRPC and exporters.
  uint32_t max_connections = 4096;
  // HTTP/2 (prior-knowledge h2c, or ALPN h2 under TLS): streams open at once per connection.
  uint32_t max_concurrent_streams = 100;
  std::optional<CorsSettings> cors;  // absent: no CORS, OPTIONS is 405 like any other method
  std::string authenticator;         // auth.authenticator: a bearertokenauth id; empty: none
  std::optional<TlsServerSettings> tls;  // absent: plaintext; present: every connection is TLS
};

class BearerToken;

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
  // From now on a request without auth's header and value is answered 401 once its headers are
  // read, its body unread, and the connection closed; CORS preflights are exempt (a browser sends
  // them without credentials). Called before start().
  void require(std::shared_ptr<const BearerToken> auth);
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

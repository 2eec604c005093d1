// Clients for the attack tests: a raw TCP connection (to send what no well-behaved client library
// would: truncated bodies, a byte a second, garbage, hand-written HTTP/2 frames), a minimal
// HTTP/1.1 client on top of it (in plaintext, or over TLS with OpenSSL for the mTLS test), an h2c
// client (nghttp2), and gRPC calls with raw message bytes (insecure or TLS channel credentials).
// Every operation has a deadline, so a server that stops answering fails a check instead of
// hanging the test. No Catch2 macros here: the slow-loris test
// uses these clients from a second thread, and Catch2 assertions are not thread-safe.
#pragma once

#include <grpcpp/support/status_code_enum.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace security {

using SteadyClock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// A TCP connection to 127.0.0.1 (non-blocking socket, every wait a poll with a deadline).
class Connection {
 public:
  // Connects to 127.0.0.1:`port`; connected() tells whether it worked.
  explicit Connection(int port);
  ~Connection();
  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  // Sends all of `data`; false when the peer closed or reset the connection, or at `deadline`.
  bool send_all(std::string_view data, SteadyClock::time_point deadline);
  // No more bytes from us (the server sees end of stream); reading still works.
  void shutdown_send();

  enum class Read { data, closed, timeout };
  // Appends what arrives to `into`, waiting until `deadline` for at least one byte. A reset
  // counts as closed.
  Read read_some(std::string& into, SteadyClock::time_point deadline);
  // Reads and discards until the peer closes; true if it did before `deadline`. `received`
  // (optional) gets the number of bytes the peer sent meanwhile.
  bool wait_closed(SteadyClock::time_point deadline, size_t* received = nullptr);

 private:
  int fd_ = -1;
};

struct HttpResponse {
  int status = 0;                              // 0: no complete response (see error)
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string error;                           // why there is no response: connect, send, closed, timeout

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  // The server announced it closes the connection after this response.
  bool closes() const { return header("connection") == "close"; }
  // One line for failure messages: status, content type, body (bounded).
  std::string describe() const;
};

// A POST request: request line, Host, Content-Type (omitted when empty), Content-Length, then
// `extra_headers` (each ending in \r\n) and the body.
std::string post_request(const std::string& path, const std::string& content_type, std::string_view body,
                         const std::string& extra_headers = "");

// Reads one final response (otlpd always sends Content-Length) from `c`, skipping interim 1xx
// responses (100 Continue); `buffer` keeps bytes read past it for the next response on the same
// connection.
HttpResponse read_response(Connection& c, std::string& buffer, SteadyClock::time_point deadline);

// HTTP/1.1 on one keep-alive connection, opening a new one after a response that closes it.
class HttpClient {
 public:
  explicit HttpClient(int port) : port_(port) {}
  // Sends `request` (from post_request) and reads its response within `timeout`.
  HttpResponse send(std::string_view request, Millis timeout = Millis(10000));

 private:
  int port_;
  std::optional<Connection> conn_;
  std::string buffer_;
};

// One POST on a connection of its own, answered within `timeout`.
HttpResponse http_post(int port, const std::string& path, const std::string& content_type, std::string_view body,
                       const std::string& extra_headers = "", Millis timeout = Millis(10000));

// ---- TLS ----

// How a TLS client (https_send, a TLS GrpcClient) is set up. The server's certificate is verified
// against `trusted_ca` for the address dialled, 127.0.0.1.
struct ClientTls {
  std::string trusted_ca;   // PEM roots
  std::string cert_chain;   // PEM client certificate (chain) presented when the server asks; empty: none
  std::string private_key;  // PEM private key of cert_chain
  int max_version = 0;      // https_send only: highest TLS version offered, e.g. TLS1_2_VERSION; 0: 1.3
};

// What a TLS HTTP/1.1 exchange came to.
struct TlsHttpResult {
  enum class End {
    setup_failed,      // the client's own certificates or keys did not load (a test bug)
    connect_failed,    // no TCP connection
    handshake_failed,  // the TLS handshake failed (the client saw the server's alert, or an EOF)
    closed,            // handshake done, then the connection ended (alert, EOF or reset) without a response
    timeout,           // the client's deadline passed first
    response,          // a complete HTTP response: `response`
  };
  End end = End::setup_failed;
  std::string error;      // why there is no response: OpenSSL's reason (e.g. "... alert unknown ca"), EOF, ...
  HttpResponse response;  // with End::response
  int version = 0;        // the negotiated TLS version (SSL_version) once the handshake completed
  // Refused by the server: no response, and not for the client's own reasons (setup, timeout).
  bool refused() const { return end == End::handshake_failed || end == End::closed; }
  std::string describe() const;
};

// Connects to 127.0.0.1:`port`, does a TLS handshake (ALPN http/1.1) as `tls` says, sends
// `request` (from post_request) and reads one response, all within `timeout`. Non-blocking I/O
// through memory BIOs: every wait is a poll with the deadline, and a reset never raises SIGPIPE.
TlsHttpResult https_send(int port, const ClientTls& tls, std::string_view request, Millis timeout = Millis(10000));

struct GrpcAnswer {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string message;
  std::string describe() const;
};

// gRPC metadata sent with a call (keys in lower case), e.g. {{"authorization", "Bearer x"}}.
using Metadata = std::vector<std::pair<std::string, std::string>>;

// Unary calls with raw message bytes on one channel (one HTTP/2 connection, reused by its calls).
// Thread-safe, as a gRPC channel is.
class GrpcClient {
 public:
  // Insecure channel credentials without `tls`; with it, SSL credentials (its roots, and its
  // client certificate chain and key when set) on a channel with a subchannel pool of its own, so
  // that each TLS client has a connection (and a handshake) of its own.
  explicit GrpcClient(int port, const std::optional<ClientTls>& tls = std::nullopt);
  ~GrpcClient();
  GrpcClient(const GrpcClient&) = delete;
  GrpcClient& operator=(const GrpcClient&) = delete;

  // One call of `method` with `message` as the request's serialized bytes; with `gzip` the gRPC
  // library compresses the message (grpc-encoding: gzip). Ends by `timeout` at the latest.
  GrpcAnswer call(const std::string& method, const std::string& message, bool gzip = false,
                  Millis timeout = Millis(10000), const Metadata& metadata = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One call on a channel of its own (see GrpcClient::call).
GrpcAnswer grpc_call(int port, const std::string& method, const std::string& message, bool gzip = false,
                     Millis timeout = Millis(10000), const Metadata& metadata = {});

// One call on a TLS channel of its own (see GrpcClient).
GrpcAnswer grpc_call_tls(int port, const ClientTls& tls, const std::string& method, const std::string& message,
                         Millis timeout = Millis(10000), const Metadata& metadata = {});

// One unary call whose message is `gzip_bytes` exactly as given, flagged compressed with
// grpc-encoding: gzip. gRPC's own compression needs the whole uncompressed message in the client;
// this way a message inflating to gigabytes costs the client only its compressed size.
GrpcAnswer grpc_call_precompressed(int port, const std::string& method, const std::string& gzip_bytes,
                                   Millis timeout = Millis(20000), const Metadata& metadata = {});

// ---- HTTP/2 ----

// Frames written by hand, for what no HTTP/2 library sends (stream resets in a loop, header blocks
// that never end), and read back from the server's bytes.
namespace h2 {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum Type : uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPing = 0x6,
  kGoaway = 0x7,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
};
enum Flag : uint8_t { kEndStream = 0x1, kAck = 0x1, kEndHeaders = 0x4 };
enum Error : uint32_t {
  kNoError = 0x0,
  kProtocolError = 0x1,
  kInternalError = 0x2,
  kCancel = 0x8,
  kEnhanceYourCalm = 0xb,
};

// A frame: the 9-byte header (24-bit length, type, flags, 31-bit stream id), then `payload`.
std::string frame(uint8_t type, uint8_t flags, uint32_t stream_id, std::string_view payload);
// RST_STREAM of `stream_id` with `error`.
std::string rst_stream(uint32_t stream_id, uint32_t error);
// One HPACK "literal header field without indexing, new name" (RFC 7541 6.2.2), no Huffman
// coding; `name` and `value` shorter than 127 bytes each.
std::string hpack_literal(std::string_view name, std::string_view value);
// The header block of a POST of OTLP protobuf to `path` (pseudo-headers first), no content-length.
std::string post_header_block(const std::string& path);

struct Frame {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream_id = 0;
  std::string payload;
};
// Takes the complete frames off the front of `buffer` (what the server sent after its preface
// part, which HTTP/2 servers do not have: the server's bytes are frames from the first).
std::vector<Frame> take_frames(std::string& buffer);

// What a hostile client saw of the server while attacking.
struct Outcome {
  bool goaway = false;
  uint32_t goaway_last_stream = 0;
  uint32_t goaway_error = 0;
  bool closed = false;       // EOF or reset
  size_t frames_received = 0;
  std::string describe() const;
  // Feeds what arrived: the server's frames noted, GOAWAY in particular.
  void note(std::string& buffer);
};

}  // namespace h2

// One POST over h2c with prior knowledge (an nghttp2 client session on its own connection),
// answered within `timeout`. `status` 0 and `error` when there is no answer.
HttpResponse h2c_post(int port, const std::string& path, const std::string& content_type, std::string_view body,
                      Millis timeout = Millis(10000));

}  // namespace security

// Http2Codec: the HTTP/2 side of one OTLP/HTTP connection, on nghttp2, without any I/O.
//
// The connection (HttpServer's session) feeds it the bytes it reads and sends the bytes it hands
// out; the codec turns streams into Beast requests and their answers into HTTP/2 frames. A
// request is answered from its headers alone when `on_headers` says so (401 without credentials,
// 413 for a declared Content-Length over the limit); its body is then discarded, never buffered.
//
// Limits against hostile peers: at most max_concurrent_streams open streams (SETTINGS), a header
// list of at most max_header_list_size bytes (a stream over it is reset), at most
// max_continuations CONTINUATION frames per header block and a stream reset rate (a peer over
// either gets GOAWAY and the connection ends: HTTP/2 rapid reset and CONTINUATION floods), a body
// of at most max_body bytes per stream (413) and max_buffered bytes of bodies in flight per
// connection (a stream over it is refused with REFUSED_STREAM, which clients retry).
//
// Threads: one at a time (the connection's strand). The callbacks run inside receive().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

struct nghttp2_session;

namespace otlpd {

class Http2Codec {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Response = boost::beast::http::response<boost::beast::http::string_body>;

  struct Limits {
    uint32_t max_concurrent_streams = 100;
    uint32_t max_header_list_size = 16 * 1024;  // names + values + 32 per field (RFC 9113 6.5.2)
    uint32_t initial_window_size = 1 << 20;     // per stream, bytes the peer may send ahead
    size_t max_continuations = 8;
    uint64_t reset_burst = 1000;  // stream resets allowed at once, then reset_rate per second
    uint64_t reset_rate = 33;
    uint64_t max_body = 20 << 20;
    uint64_t max_buffered = 40 << 20;
  };

  struct Callbacks {
    // After a request's headers: an answer now, or nullopt to go on and read its body.
    std::function<std::optional<Response>(const Request&)> on_headers;
    // A complete request: its answer.
    std::function<Response(Request&)> on_request;
    // A body that grew past max_body: the answer (413).
    std::function<Response(const Request&)> on_too_large;
  };

  Http2Codec(const Limits& limits, Callbacks callbacks);
  ~Http2Codec();
  Http2Codec(const Http2Codec&) = delete;
  Http2Codec& operator=(const Http2Codec&) = delete;

  // Feeds bytes read from the peer (the first ones include the client preface). False when the
  // connection must end: send what take_output() gives (a GOAWAY), then close.
  bool receive(std::string_view bytes);
  // Appends the bytes to send now to *out.
  void take_output(std::string* out);
  // Whether the connection still has something to read or send; false once it is over.
  bool alive() const;
  size_t open_streams() const { return streams_.size(); }
  // When the oldest open stream began (its HEADERS arrived); nullopt with no stream open. The
  // connection bounds each stream, from its headers to the end of its answer, by read_timeout.
  std::optional<std::chrono::steady_clock::time_point> oldest_stream_start() const;
  // GOAWAY: the streams already started finish, no new one is accepted.
  void shutdown();
  // Why receive() failed, for the log.
  const std::string& error() const { return error_; }

 private:
  struct Stream {
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    Request request;
    uint32_t header_bytes = 0;
    bool answered = false;  // a response was submitted; what else arrives is discarded
    Response response;
    size_t sent = 0;        // body bytes handed to nghttp2
  };

  friend struct Http2Glue;  // nghttp2's callbacks (http2_codec.cc)

  void complete(int32_t stream_id, Stream& stream);
  void submit(int32_t stream_id, Stream& stream, Response response);
  void forget_body(Stream& stream);

  const Limits limits_;
  const Callbacks callbacks_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, Stream> streams_;
  uint64_t buffered_ = 0;  // body bytes held by streams not yet complete
  std::string error_;
};

}  // namespace otlpd

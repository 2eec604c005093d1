#include "receivers/otlp/http2_codec.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <vector>

#include <nghttp2/nghttp2.h>

namespace otlpd {

namespace http = boost::beast::http;

namespace {

constexpr int32_t kConnectionWindow = 4 << 20;  // all streams together may send this much ahead

// Hop-by-hop fields an HTTP/1.1 answer may carry; HTTP/2 forbids them (RFC 9113 8.2.2).
bool connection_specific(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "transfer-encoding" || name == "upgrade" ||
         name == "proxy-connection";
}

nghttp2_nv field(const std::string& name, std::string_view value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

// nghttp2's C callbacks, forwarding to the codec their user_data points to.
struct Http2Glue {
  static Http2Codec& codec(void* user_data) { return *static_cast<Http2Codec*>(user_data); }

  static Http2Codec::Stream* find(Http2Codec& c, int32_t id) {
    auto it = c.streams_.find(id);
    return it == c.streams_.end() ? nullptr : &it->second;
  }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    Http2Codec::Stream& stream = codec(user_data).streams_[frame->hd.stream_id];
    stream.request.version(11);  // the request handling is shared with HTTP/1.1
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t, void* user_data) {
    Http2Codec& c = codec(user_data);
    Http2Codec::Stream* stream = find(c, frame->hd.stream_id);
    if (!stream) return 0;
    stream->header_bytes += static_cast<uint32_t>(std::min<size_t>(namelen + valuelen + 32, UINT32_MAX / 2));
    if (stream->header_bytes > c.limits_.max_header_list_size) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // reset
    boost::beast::string_view n(reinterpret_cast<const char*>(name), namelen);
    boost::beast::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;  // trailers carry nothing OTLP needs
    if (n == ":method") {
      stream->request.method_string(v);
    } else if (n == ":path") {
      stream->request.target(v);
    } else if (n == ":authority") {
      stream->request.set(http::field::host, v);
    } else if (n.empty() || n.front() != ':') {
      stream->request.insert(n, v);
    }
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    Http2Codec& c = codec(user_data);
    const int32_t id = frame->hd.stream_id;
    Http2Codec::Stream* stream = find(c, id);
    if (!stream) return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST && !stream->answered) {
      if (std::optional<Http2Codec::Response> early = c.callbacks_.on_headers(stream->request)) {
        c.submit(id, *stream, std::move(*early));
      }
    }
    const bool data_or_headers = frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA;
    if (data_or_headers && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) c.complete(id, *stream);
    return 0;
  }

  static int on_data_chunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data, size_t len,
                           void* user_data) {
    Http2Codec& c = codec(user_data);
    Http2Codec::Stream* stream = find(c, id);
    if (!stream || stream->answered) return 0;  // discarded; flow control still credits it
    std::string& body = stream->request.body();
    if (body.size() + len > c.limits_.max_body) {
      c.forget_body(*stream);
      c.submit(id, *stream, c.callbacks_.on_too_large(stream->request));
      return 0;
    }
    if (c.buffered_ + len > c.limits_.max_buffered) {
      c.forget_body(*stream);
      stream->answered = true;
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
      return 0;
    }
    body.append(reinterpret_cast<const char*>(data), len);
    c.buffered_ += len;
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t id, uint32_t, void* user_data) {
    Http2Codec& c = codec(user_data);
    if (Http2Codec::Stream* stream = find(c, id)) {
      c.forget_body(*stream);
      c.streams_.erase(id);
    }
    return 0;
  }

  static ssize_t read_body(nghttp2_session*, int32_t id, uint8_t* buf, size_t length, uint32_t* data_flags,
                           nghttp2_data_source*, void* user_data) {
    Http2Codec::Stream* stream = find(codec(user_data), id);
    if (!stream) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    const std::string& body = stream->response.body();
    size_t n = std::min(length, body.size() - stream->sent);
    std::memcpy(buf, body.data() + stream->sent, n);
    stream->sent += n;
    if (stream->sent == body.size()) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
};

Http2Codec::Http2Codec(const Limits& limits, Callbacks callbacks) : limits_(limits), callbacks_(std::move(callbacks)) {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &Http2Glue::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &Http2Glue::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &Http2Glue::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &Http2Glue::on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &Http2Glue::on_stream_close);
  nghttp2_option* options = nullptr;
  nghttp2_option_new(&options);
  nghttp2_option_set_max_continuations(options, limits_.max_continuations);
  nghttp2_option_set_stream_reset_rate_limit(options, limits_.reset_burst, limits_.reset_rate);
  nghttp2_session_server_new2(&session_, cbs, this, options);
  nghttp2_option_del(options);
  nghttp2_session_callbacks_del(cbs);

  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits_.initial_window_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits_.max_header_list_size},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
}

Http2Codec::~Http2Codec() { nghttp2_session_del(session_); }

bool Http2Codec::receive(std::string_view bytes) {
  ssize_t n = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (n >= 0) return true;
  error_ = nghttp2_strerror(static_cast<int>(n));
  // A GOAWAY for the peer, when nghttp2 has not queued one already.
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                        n == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR, nullptr, 0);
  return false;
}

void Http2Codec::take_output(std::string* out) {
  for (;;) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n <= 0) return;
    out->append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
}

std::optional<std::chrono::steady_clock::time_point> Http2Codec::oldest_stream_start() const {
  std::optional<std::chrono::steady_clock::time_point> oldest;
  for (const auto& [id, stream] : streams_) {
    if (!oldest || stream.started < *oldest) oldest = stream.started;
  }
  return oldest;
}

bool Http2Codec::alive() const {
  return nghttp2_session_want_read(session_) != 0 || nghttp2_session_want_write(session_) != 0;
}

void Http2Codec::shutdown() {
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
}

void Http2Codec::complete(int32_t stream_id, Stream& stream) {
  if (stream.answered) return;
  buffered_ -= stream.request.body().size();
  Response response = callbacks_.on_request(stream.request);
  stream.request.body() = {};
  submit(stream_id, stream, std::move(response));
}

void Http2Codec::submit(int32_t stream_id, Stream& stream, Response response) {
  stream.answered = true;
  stream.response = std::move(response);
  stream.response.prepare_payload();
  if (stream.response.result() == http::status::no_content) stream.response.erase(http::field::content_length);
  const std::string status = std::to_string(stream.response.result_int());
  static const std::string kStatus = ":status";
  std::vector<std::string> names;
  names.reserve(16);
  for (const auto& f : stream.response) {
    std::string name(f.name_string());
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
    names.push_back(std::move(name));
  }
  std::vector<nghttp2_nv> nva;
  nva.push_back(field(kStatus, status));
  size_t i = 0;
  for (const auto& f : stream.response) {
    const std::string& name = names[i++];
    if (connection_specific(name)) continue;
    nva.push_back(field(name, std::string_view(f.value().data(), f.value().size())));
  }
  nghttp2_data_provider body{};
  body.read_callback = &Http2Glue::read_body;
  const bool has_body = !stream.response.body().empty();
  nghttp2_submit_response(session_, stream_id, nva.data(), nva.size(), has_body ? &body : nullptr);
}

void Http2Codec::forget_body(Stream& stream) {
  if (stream.answered) return;  // complete() already took it off buffered_
  buffered_ -= stream.request.body().size();
  stream.request.body() = {};
}

}  // namespace otlpd

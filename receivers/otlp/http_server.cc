#include "receivers/otlp/http_server.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <exception>
#include <limits>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <spdlog/spdlog.h>

#include "extensions/bearertokenauth/bearer_token.h"
#include "google/rpc/status.pb.h"
#include "net/tcp_listen.h"
#include "net/tls_server_context.h"
#include "receivers/otlp/http2_codec.h"
#include "otlp/compression.h"
#include "otlp/json_codec.h"
#include "otlp/response.h"

namespace otlpd {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

namespace {

constexpr uint32_t kHeaderLimit = 16 * 1024;  // request line + headers; more gets 431
constexpr size_t kFirstReadSize = 16 * 1024;  // read while waiting for the next keep-alive request
// How long a connection we are closing may take to send what is left of a request we did not
// read; closing with unread bytes makes the kernel send RST, which can destroy our response.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr std::chrono::milliseconds kAcceptRetry{100};  // after EMFILE and the like
constexpr std::chrono::seconds kRefusalLogInterval{10};  // between two max_connections warnings
// What an HTTP/2 client sends first (RFC 9113 3.4): with it, a plaintext connection is h2c.
constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// grpc::StatusCode numbers for answers that do not come from a Status.
constexpr int kGrpcNotFound = 5;
constexpr int kGrpcUnimplemented = 12;
constexpr int kGrpcUnauthenticated = 16;

enum class BodyFormat { protobuf, json };
enum class Encoding { identity, gzip, zstd };

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

std::string lower_trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// Client text echoed in a message: printable ASCII only, bounded, so every body stays valid UTF-8.
std::string printable(std::string_view s) {
  constexpr size_t kMax = 100;
  std::string out;
  for (char c : s.substr(0, kMax)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > kMax) out += "...";
  return out;
}

std::optional<BodyFormat> parse_content_type(std::string_view header) {
  std::string type = lower_trimmed(header.substr(0, header.find(';')));  // parameters don't matter
  if (type == "application/x-protobuf") return BodyFormat::protobuf;
  if (type == "application/json") return BodyFormat::json;
  return std::nullopt;
}

std::optional<Encoding> parse_encoding(std::string_view header) {
  std::string enc = lower_trimmed(header);
  if (enc.empty() || enc == "identity") return Encoding::identity;
  if (enc == "gzip" || enc == "x-gzip") return Encoding::gzip;
  if (enc == "zstd") return Encoding::zstd;
  return std::nullopt;
}

std::optional<Signal> match_path(const HttpServerSettings& s, std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));  // a query string is ignored
  if (path == s.traces_url_path) return Signal::traces;
  if (path == s.metrics_url_path) return Signal::metrics;
  if (path == s.logs_url_path) return Signal::logs;
  return std::nullopt;
}

std::string_view content_type_name(BodyFormat f) {
  return f == BodyFormat::json ? "application/json" : "application/x-protobuf";
}

std::string encode(const google::protobuf::Message& m, BodyFormat f) {
  std::string out;
  if (f == BodyFormat::json) {
    otlp::message_to_json(m, &out);
  } else {
    m.SerializeToString(&out);
  }
  return out;
}

void set_body(Response& res, int status, std::string_view type, std::string body) {
  res.result(static_cast<unsigned>(status));
  res.set(http::field::content_type, beast::string_view(type.data(), type.size()));
  res.body() = std::move(body);
}

void text_reply(Response& res, int status, const std::string& message) {
  set_body(res, status, "text/plain; charset=utf-8", message + "\n");
}

// An error as google.rpc.Status in the request's format, or text when that format is unknown.
void error_reply(Response& res, std::optional<BodyFormat> format, int status, int grpc, const std::string& message) {
  if (!format) return text_reply(res, status, message);
  google::rpc::Status st;
  st.set_code(grpc);
  st.set_message(message);
  set_body(res, status, content_type_name(*format), encode(st, *format));
}

// Export<Signal>ServiceResponse, with partial_success only when items were rejected.
std::string success_body(Signal signal, const Status& s, BodyFormat f) {
  const int64_t rejected = static_cast<int64_t>(s.rejected_items());
  return encode(*otlp::make_response(signal, {rejected, rejected > 0 ? s.message() : std::string()}), f);
}

void status_reply(Response& res, BodyFormat format, Signal signal, const Status& s) {
  if (s.is_ok()) {
    set_body(res, 200, content_type_name(format), success_body(signal, s, format));
    return;
  }
  int status = http_status(s);
  error_reply(res, format, status, grpc_code(s), s.message());
  if (status == 429 || status == 503) {
    // Whole seconds, rounded up, at least 1: a zero would invite an immediate retry storm.
    int64_t seconds = std::max<int64_t>(1, (s.retry_after().count() + 999) / 1000);
    res.set(http::field::retry_after, std::to_string(seconds));
  }
}

// Turns the wire body into protobuf request bytes: decompress (bounded), convert JSON.
Status decode_body(Encoding enc, BodyFormat format, Signal signal, uint64_t limit, std::string& body) {
  if (enc != Encoding::identity) {
    std::string plain;
    auto r = enc == Encoding::gzip ? otlp::gzip_decompress(body, limit, &plain)
                                   : otlp::zstd_decompress(body, limit, &plain);
    if (r == otlp::DecompressResult::too_large) {
      return Status::too_large("request body larger than " + std::to_string(limit) + " bytes after decompression");
    }
    if (r == otlp::DecompressResult::malformed) {
      return Status::invalid_argument(enc == Encoding::gzip ? "malformed gzip body" : "malformed zstd body");
    }
    body.swap(plain);
  }
  if (format == BodyFormat::json) {
    std::string proto;
    std::string error = otlp::request_json_to_proto(signal, body, &proto);
    if (!error.empty()) return Status::invalid_argument("invalid OTLP/JSON: " + error);
    body.swap(proto);
  }
  return Status::ok();
}

bool is_http_syntax_error(const beast::error_code& ec) {
  static const beast::error_code http_error = http::error::bad_method;
  return ec.category() == http_error.category();
}

// How long the request line and headers may take: read_header_timeout, but never longer than
// read_timeout, which covers them too; zero means no limit.
std::chrono::milliseconds header_timeout(const HttpServerSettings& s) {
  if (s.read_header_timeout.count() == 0) return s.read_timeout;
  if (s.read_timeout.count() == 0) return s.read_header_timeout;
  return std::min(s.read_header_timeout, s.read_timeout);
}

// Which origins a browser may call from, and the headers that tell it so, as the Collector's
// confighttp sets up rs/cors. Immutable once built: used from every connection's strand.
class CorsPolicy {
 public:
  explicit CorsPolicy(const CorsSettings& settings) {
    for (const std::string& origin : settings.allowed_origins) {
      std::string lower = lower_trimmed(origin);
      size_t star = lower.find('*');
      if (star == std::string::npos) {
        origins_.push_back({lower, "", false});
      } else {
        origins_.push_back({lower.substr(0, star), lower.substr(star + 1), true});
      }
    }
    for (const std::string& header : settings.allowed_headers) {
      if (header == "*") {
        any_header_ = true;
      } else if (!beast::iequals(header, "Content-Type") && !beast::iequals(header, "Content-Encoding")) {
        allow_headers_ += ", " + header;
      }
    }
    if (settings.max_age.count() > 0) max_age_ = std::to_string(settings.max_age.count());
  }

  // A browser asking whether a cross-origin call may follow.
  static bool is_preflight(const Request& req) {
    return req.method() == http::verb::options && req.find(http::field::access_control_request_method) != req.end();
  }

  // 204 either way, like rs/cors: without the Allow headers the browser does not make the call.
  void answer_preflight(const Request& req, Response& res) const {
    res.result(http::status::no_content);
    // The answer depends on these request headers, so a cache must tell them apart.
    res.set(http::field::vary, "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
    std::string_view origin = sv(req[http::field::origin]);
    if (!allows(origin) || !beast::iequals(req[http::field::access_control_request_method], "POST")) return;
    allow_origin(origin, res);
    res.set(http::field::access_control_allow_methods, "POST");
    std::string_view requested = sv(req[http::field::access_control_request_headers]);
    std::string headers = allow_headers_;
    if (any_header_ && !requested.empty()) headers += ", " + std::string(requested);
    res.set(http::field::access_control_allow_headers, headers);
    if (!max_age_.empty()) res.set(http::field::access_control_max_age, max_age_);
  }

  // Any other answer: an allowed origin may read it, error answers included.
  void annotate(const Request& req, Response& res) const {
    res.set(http::field::vary, "Origin");
    std::string_view origin = sv(req[http::field::origin]);
    if (allows(origin)) allow_origin(origin, res);
  }

 private:
  // "https://*.example.com" is {"https://", ".example.com", true}; an exact origin is all prefix.
  struct OriginPattern {
    std::string prefix;
    std::string suffix;
    bool wildcard;
  };

  bool allows(std::string_view origin) const {
    if (origin.empty()) return false;
    std::string o = lower_trimmed(origin);
    for (const OriginPattern& p : origins_) {
      if (!p.wildcard ? o == p.prefix
                      : o.size() >= p.prefix.size() + p.suffix.size() && o.starts_with(p.prefix) &&
                            o.ends_with(p.suffix)) {
        return true;
      }
    }
    return false;
  }

  // The origin as sent, never "*": browser SDKs send with credentials (sendBeacon always does),
  // and then a browser accepts neither a "*" origin nor an answer without Allow-Credentials. The
  // receiver reads no cookies, so allowing credentials grants nothing more.
  static void allow_origin(std::string_view origin, Response& res) {
    res.set(http::field::access_control_allow_origin, beast::string_view(origin.data(), origin.size()));
    res.set(http::field::access_control_allow_credentials, "true");
  }

  std::vector<OriginPattern> origins_;
  bool any_header_ = false;
  std::string allow_headers_ = "Content-Type, Content-Encoding";  // what OTLP requests need
  std::string max_age_;                                           // empty: not sent
};

// Connections closed for max_connections, reported in the log at most once per
// kRefusalLogInterval so that a flood of them cannot flood the log. Used on the acceptor's strand.
class RefusalLog {
 public:
  void refused(uint16_t port, uint32_t max_connections) {
    ++unreported_;
    Clock::time_point now = Clock::now();
    if (last_warning_ && now - *last_warning_ < kRefusalLogInterval) return;
    last_warning_ = now;
    spdlog::warn("OTLP/HTTP port {}: closed {} new connection(s) at once, max_connections ({}) are open "
                 "(reported at most every {}s)",
                 port, unreported_, max_connections, kRefusalLogInterval.count());
    unreported_ = 0;
  }

 private:
  std::optional<Clock::time_point> last_warning_;
  uint64_t unreported_ = 0;
};

}  // namespace

class Session;

class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
 public:
  Impl(net::io_context& io, HttpServerSettings settings, Handler handler)
      : io_(io),
        settings_(std::move(settings)),
        handler_(std::move(handler)),
        cors_(settings_.cors ? std::optional<CorsPolicy>(std::in_place, *settings_.cors) : std::nullopt),
        acceptor_(net::make_strand(io)),
        retry_timer_(acceptor_.get_executor()) {}

  Status start();
  uint16_t port() const { return port_; }
  void shutdown(Clock::time_point deadline);

  const HttpServerSettings& settings() const { return settings_; }
  // Builds the answer to one complete request; sets *close when the connection must end after it.
  void process(Request& req, Response& res, bool* close);
  // CORS headers for an answer built elsewhere (a refusal before the body was read).
  void allow_cross_origin(const Request& req, Response& res) const {
    if (cors_) cors_->annotate(req, res);
  }
  void unregister_session(uint64_t id);
  void require(std::shared_ptr<const BearerToken> auth) { auth_ = std::move(auth); }
  // Whether a request may go on to have its body read: its credentials, when auth is required.
  bool authorized(const Request& req) const {
    if (!auth_ || (cors_ && CorsPolicy::is_preflight(req))) return true;
    auto it = req.find(auth_->header());
    return auth_->accepts(it == req.end() ? std::string_view() : sv(it->value()));
  }
  // The 401 for a request without valid credentials. The message does not repeat what was sent.
  void refuse_unauthenticated(const Request& req, Response& res) const;
  // The 413 for a body over max_request_body_size; `req` null when its headers are unknown.
  void refuse_too_large(const Request* req, Response& res) const;
  // An answer from a request's headers alone (401, 413 for its Content-Length), or nullopt.
  std::optional<Response> answer_early(const Request& req) const;
  Http2Codec::Limits http2_limits() const;
  // "Bearer" for the WWW-Authenticate header of a 401; empty when no auth or a custom header.
  std::string auth_challenge() const;

 private:
  Status bind_and_listen();
  void do_accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  // The answer to a POST (or a wrong method) on a signal path, or 404.
  void answer(Request& req, Response& res, bool* close);
  std::optional<Status> call_handler(Signal signal, std::string&& body);
  std::vector<std::shared_ptr<Session>> live_sessions();

  net::io_context& io_;
  const HttpServerSettings settings_;
  const Handler handler_;
  const std::optional<CorsPolicy> cors_;
  std::shared_ptr<const BearerToken> auth_;  // set before start(), then read-only
  std::shared_ptr<TlsServerContext> tls_;    // set by start() when settings_.tls; then read-only
  tcp::acceptor acceptor_;      // used on its strand once accepting
  net::steady_timer retry_timer_;
  RefusalLog refusals_;         // used on the acceptor's strand
  std::atomic<uint16_t> port_{0};

  // Guarded by mu_: the lifecycle flags, the session registry and the running-handler count.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool shut_down_ = false;
  bool stopping_ = false;           // shutdown began: no new connections, finish with Connection: close
  bool handlers_allowed_ = true;    // cleared at the drain deadline
  bool acceptor_closed_ = false;
  int handlers_running_ = 0;
  uint64_t next_session_id_ = 0;
  std::unordered_map<uint64_t, std::weak_ptr<Session>> sessions_;
};

// One connection. All members are used on the connection's strand only.
class Session : public std::enable_shared_from_this<Session> {
 public:
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;

  // `tls`: the context to handshake with; null for plaintext.
  Session(std::shared_ptr<HttpServer::Impl> server, uint64_t id, tcp::socket socket,
          std::shared_ptr<net::ssl::context> tls)
      : server_(std::move(server)), id_(id), tls_context_(std::move(tls)), stream_(make_stream(std::move(socket))) {}
  ~Session() { server_->unregister_session(id_); }

  void run() { net::dispatch(tcp().get_executor(), beast::bind_front_handler(&Session::start, shared_from_this())); }
  // From the control thread: finish the current request, then close; close now if idle.
  void begin_shutdown() { net::post(tcp().get_executor(), beast::bind_front_handler(&Session::on_shutdown, shared_from_this())); }
  void force_close() { net::post(tcp().get_executor(), beast::bind_front_handler(&Session::close, shared_from_this())); }

 private:
  enum class Phase { idle, handshaking, reading, responding, lingering, http2, closed };

  std::variant<beast::tcp_stream, TlsStream> make_stream(tcp::socket socket) {
    if (!tls_context_) return beast::tcp_stream(std::move(socket));
    return std::variant<beast::tcp_stream, TlsStream>(std::in_place_type<TlsStream>, std::move(socket), *tls_context_);
  }

  const HttpServerSettings& settings() const { return server_->settings(); }
  beast::tcp_stream& tcp() {
    return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); }, stream_);
  }
  // Runs `op` with the stream HTTP is read from and written to (TLS or plain).
  template <typename Op>
  void with_stream(Op&& op) {
    std::visit(std::forward<Op>(op), stream_);
  }

  // Sets the deadline of the coming operations; zero means none.
  void arm(std::chrono::milliseconds timeout) {
    if (timeout.count() > 0) {
      tcp().expires_after(timeout);
    } else {
      tcp().expires_never();
    }
  }

  void start() {
    auto* tls = std::get_if<TlsStream>(&stream_);
    if (!tls) return next_request();
    // The handshake counts against the header deadline: a client that stalls in it is a
    // slow-loris too.
    phase_ = Phase::handshaking;
    arm(header_timeout(settings()));
    tls->async_handshake(net::ssl::stream_base::server, beast::bind_front_handler(&Session::on_handshake, shared_from_this()));
  }

  void on_handshake(beast::error_code ec) {
    if (phase_ == Phase::closed) return;
    if (ec) return close();  // no certificate, wrong CA, expired, not TLS at all: nothing to answer
    phase_ = Phase::idle;
    const unsigned char* alpn = nullptr;
    unsigned int alpn_size = 0;
    SSL_get0_alpn_selected(std::get<TlsStream>(stream_).native_handle(), &alpn, &alpn_size);
    if (std::string_view(reinterpret_cast<const char*>(alpn), alpn_size) == "h2") return start_http2();
    next_request();
  }

  void next_request() {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::idle;
    if (stopping_) return close();
    if (first_) return read_preface();  // HTTP/2 with prior knowledge, or HTTP/1.1
    if (buffer_.size() > 0) return read_header();  // pipelined request
    // Idle keep-alive connection: wait for the first byte of the next request under idle_timeout.
    arm(settings().idle_timeout);
    with_stream([&](auto& s) {
      s.async_read_some(buffer_.prepare(kFirstReadSize), beast::bind_front_handler(&Session::on_first_bytes, shared_from_this()));
    });
  }

  // A new connection's first bytes, under the header deadline: the HTTP/2 preface or a request line.
  void read_preface() {
    phase_ = Phase::reading;
    request_start_ = std::chrono::steady_clock::now();
    arm(header_timeout(settings()));
    with_stream([&](auto& s) {
      s.async_read_some(buffer_.prepare(kFirstReadSize), beast::bind_front_handler(&Session::on_preface_bytes, shared_from_this()));
    });
  }

  void on_preface_bytes(beast::error_code ec, size_t n) {
    if (ec) return close();
    buffer_.commit(n);
    std::string_view got(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    const size_t compared = std::min(got.size(), kHttp2Preface.size());
    if (got.substr(0, compared) != kHttp2Preface.substr(0, compared)) return read_header(false);
    if (got.size() < kHttp2Preface.size()) {  // a prefix so far: wait for the rest
      with_stream([&](auto& s) {
        s.async_read_some(buffer_.prepare(kFirstReadSize), beast::bind_front_handler(&Session::on_preface_bytes, shared_from_this()));
      });
      return;
    }
    start_http2();
  }

  // ---- HTTP/2: read, let the codec answer, write what it has, read again ----

  void start_http2() {
    Http2Codec::Callbacks callbacks;
    // The codec calls these inside receive(), on this strand; `this` outlives the codec.
    callbacks.on_headers = [this](const Request& req) { return server_->answer_early(req); };
    callbacks.on_request = [this](Request& req) {
      Response res(http::status::ok, 11);
      bool close = false;
      server_->process(req, res, &close);
      if (close) stopping_ = true;
      return res;
    };
    callbacks.on_too_large = [this](const Request& req) {
      Response res(http::status::payload_too_large, 11);
      server_->refuse_too_large(&req, res);
      return res;
    };
    http2_ = std::make_unique<Http2Codec>(server_->http2_limits(), std::move(callbacks));
    phase_ = Phase::http2;
    http2_receive();
  }

  // Hands the codec what the buffer holds, then writes the codec's output.
  void http2_receive() {
    std::string_view bytes(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    if (!http2_->receive(bytes)) http2_failed_ = true;
    buffer_.consume(buffer_.size());
    http2_write();
  }

  void http2_write() {
    http2_out_.clear();
    http2_->take_output(&http2_out_);
    if (http2_out_.empty() && stopping_ && !http2_goaway_ && http2_->open_streams() == 0) {
      // Shutting down and every answer is out: GOAWAY, then the connection ends.
      http2_goaway_ = true;
      http2_->shutdown();
      http2_->take_output(&http2_out_);
    }
    if (http2_out_.empty()) return http2_read();
    arm_http2(settings().read_timeout);
    http2_writing_ = true;
    with_stream([&](auto& s) {
      net::async_write(s, net::buffer(http2_out_), [self = shared_from_this()](beast::error_code ec, size_t) {
        self->http2_writing_ = false;
        if (ec) return self->close();
        self->http2_write();  // more may be ready (a body larger than the flow-control window)
      });
    });
  }

  // Each stream must be read and answered within read_timeout of its headers (a client dripping
  // a body byte by byte, or reading its answer so, gets no longer than a prompt one); without
  // streams the next operation gets `without_streams`.
  void arm_http2(std::chrono::milliseconds without_streams) {
    const auto oldest = http2_->oldest_stream_start();
    if (!oldest) return arm(without_streams);
    if (settings().read_timeout.count() > 0) {
      tcp().expires_at(*oldest + settings().read_timeout);
    } else {
      tcp().expires_never();
    }
  }

  void http2_read() {
    if (phase_ == Phase::closed) return;
    if (http2_failed_ || !http2_->alive()) return linger_close();
    arm_http2(settings().idle_timeout);
    with_stream([&](auto& s) {
      s.async_read_some(buffer_.prepare(kFirstReadSize), [self = shared_from_this()](beast::error_code ec, size_t n) {
        if (ec) return self->close();
        self->buffer_.commit(n);
        self->http2_receive();
      });
    });
  }

  void on_first_bytes(beast::error_code ec, size_t n) {
    if (ec) return close();  // idle timeout, peer closed, or shutdown
    buffer_.commit(n);
    read_header();
  }

  // `new_deadline` false: the first bytes were read under the request's header deadline already.
  void read_header(bool new_deadline = true) {
    if (phase_ == Phase::closed) return;
    first_ = false;
    phase_ = Phase::reading;
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    // The body limit is set once the client is authenticated: a client without credentials gets 401,
    // whatever the size it announces. The body is not read before then.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    if (new_deadline) {
      request_start_ = std::chrono::steady_clock::now();
      arm(header_timeout(settings()));
    }
    with_stream([&](auto& s) {
      http::async_read_header(s, buffer_, *parser_, beast::bind_front_handler(&Session::on_header, shared_from_this()));
    });
  }

  void on_header(beast::error_code ec, size_t) {
    if (ec) return on_read_error(ec);
    // What is left of read_timeout, counted from the request's start, bounds the body.
    if (settings().read_timeout.count() > 0) {
      tcp().expires_at(request_start_ + settings().read_timeout);
    } else {
      tcp().expires_never();
    }
    const auto& req = parser_->get();
    if (!server_->authorized(req)) {
      phase_ = Phase::responding;
      res_ = Response(http::status::unauthorized, req.version());
      server_->refuse_unauthenticated(req, res_);
      return send(true);  // a client without credentials gets no second try on this connection
    }
    const uint64_t limit = settings().max_request_body_size;
    if (auto length = parser_->content_length(); length && *length > limit) {
      return on_read_error(http::error::body_limit);  // refused before a byte of the body is read
    }
    parser_->body_limit(limit);  // a chunked body is counted as it arrives
    if (req.version() >= 11 && beast::iequals(req[http::field::expect], "100-continue")) {
      // curl and others wait for this before sending a large body.
      continue_ = http::response<http::empty_body>(http::status::continue_, req.version());
      return with_stream([&](auto& s) {
        http::async_write(s, continue_, beast::bind_front_handler(&Session::on_continue, shared_from_this()));
      });
    }
    read_body();
  }

  void on_continue(beast::error_code ec, size_t) {
    if (ec) return close();
    read_body();
  }

  void read_body() {
    with_stream([&](auto& s) {
      http::async_read(s, buffer_, *parser_, beast::bind_front_handler(&Session::on_body, shared_from_this()));
    });
  }

  void on_body(beast::error_code ec, size_t) {
    if (ec) return on_read_error(ec);
    if (phase_ == Phase::closed) return;
    phase_ = Phase::responding;
    Request req = parser_->release();
    res_ = Response(http::status::ok, req.version());
    bool close = !req.keep_alive() || stopping_;
    server_->process(req, res_, &close);
    if (req.method() == http::verb::head) res_.body().clear();  // HEAD answers carry no body
    send(close);
  }

  void on_read_error(beast::error_code ec) {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::responding;
    res_ = Response(http::status::bad_request, 11);
    if (ec == http::error::body_limit) {
      // Refused without reading the body; the connection cannot be reused.
      server_->refuse_too_large(parser_->is_header_done() ? &parser_->get() : nullptr, res_);
      return send(true);
    }
    if (ec == http::error::header_limit) {
      text_reply(res_, 431, "request header larger than " + std::to_string(kHeaderLimit) + " bytes");
      return send(true);
    }
    if (is_http_syntax_error(ec) && ec != http::error::end_of_stream && ec != http::error::partial_message) {
      text_reply(res_, 400, "malformed HTTP request: " + ec.message());
      return send(true);
    }
    close();  // peer closed, timeout, shutdown or a socket error: nobody to answer
  }

  void send(bool close_after) {
    close_after_ = close_after;
    res_.keep_alive(!close_after);
    res_.prepare_payload();  // Content-Length
    // RFC 9110 8.6: no Content-Length on a 204 (Beast 1.74 writes "0").
    if (res_.result() == http::status::no_content) res_.erase(http::field::content_length);
    arm(settings().read_timeout);
    with_stream([&](auto& s) {
      http::async_write(s, res_, beast::bind_front_handler(&Session::on_write, shared_from_this()));
    });
  }

  void on_write(beast::error_code ec, size_t) {
    if (ec) return close();
    res_ = {};
    if (close_after_) return linger_close();
    next_request();
  }

  // Half-close, then drain whatever the client still sends for a short while, then close.
  void linger_close() {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::lingering;
    beast::error_code ignored;
    // Under TLS too: the client has its whole answer, a close_notify would add a round trip.
    tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
    auto read_timeout = settings().read_timeout;
    arm(read_timeout.count() > 0 ? std::min(kLingerTime, read_timeout) : kLingerTime);
    drain();
  }

  void drain() {
    buffer_.consume(buffer_.size());
    // Raw bytes, under TLS too: they are discarded, and decrypting them would be wasted work.
    tcp().async_read_some(buffer_.prepare(kFirstReadSize), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->close();
      self->drain();
    });
  }

  void on_shutdown() {
    stopping_ = true;
    if (phase_ == Phase::http2) {
      // Idle: close. Otherwise streams already open finish (and answers being written arrive
      // whole); the GOAWAY refusing new ones goes out with the next write.
      if (http2_->open_streams() == 0 && !http2_writing_) return close();
      if (!http2_goaway_) {
        http2_goaway_ = true;
        http2_->shutdown();
      }
      return;
    }
    bool nothing_started = phase_ == Phase::idle || phase_ == Phase::handshaking ||
                           (phase_ == Phase::reading && buffer_.size() == 0 && (!parser_ || !parser_->got_some()));
    if (nothing_started) close();
  }

  void close() {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::closed;
    beast::error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp().close();  // pending operations complete with operation_aborted
  }

  std::shared_ptr<HttpServer::Impl> server_;
  uint64_t id_;
  const std::shared_ptr<net::ssl::context> tls_context_;  // outlives stream_, which uses it
  std::variant<beast::tcp_stream, TlsStream> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response res_;
  http::response<http::empty_body> continue_;
  std::chrono::steady_clock::time_point request_start_;  // read_timeout counts from here
  Phase phase_ = Phase::idle;
  std::unique_ptr<Http2Codec> http2_;  // after the preface or ALPN h2: this connection speaks HTTP/2
  std::string http2_out_;              // the codec's output being written
  bool http2_failed_ = false;          // a protocol error or flood: close once the GOAWAY is out
  bool http2_goaway_ = false;          // shutdown's GOAWAY was submitted
  bool http2_writing_ = false;         // http2_out_ is being written: shutdown must not close now
  bool first_ = true;
  bool stopping_ = false;
  bool close_after_ = false;
};

// ---- HttpServer::Impl ----

std::string HttpServer::Impl::auth_challenge() const {
  if (!auth_ || auth_->header() != "authorization" || auth_->scheme().empty()) return {};
  return auth_->scheme();
}

void HttpServer::Impl::refuse_unauthenticated(const Request& req, Response& res) const {
  error_reply(res, parse_content_type(sv(req[http::field::content_type])), 401, kGrpcUnauthenticated,
              "missing or invalid credentials");
  std::string challenge = auth_challenge();
  if (!challenge.empty()) res.set(http::field::www_authenticate, challenge);
  allow_cross_origin(req, res);
}

void HttpServer::Impl::refuse_too_large(const Request* req, Response& res) const {
  std::optional<BodyFormat> format;
  if (req) format = parse_content_type(sv((*req)[http::field::content_type]));
  error_reply(res, format, 413, grpc_code(Status::too_large({})),
              "request body larger than " + std::to_string(settings_.max_request_body_size) + " bytes");
  if (req) allow_cross_origin(*req, res);
}

std::optional<Response> HttpServer::Impl::answer_early(const Request& req) const {
  Response res(http::status::ok, 11);
  if (!authorized(req)) {
    refuse_unauthenticated(req, res);
    return res;
  }
  auto length = req.find(http::field::content_length);
  if (length != req.end()) {
    std::string_view text = sv(length->value());
    uint64_t declared = 0;
    bool digits = !text.empty() && text.size() <= 19 &&
                  std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits) declared = std::stoull(std::string(text));
    if (digits && declared > settings_.max_request_body_size) {
      refuse_too_large(&req, res);
      return res;
    }
  }
  return std::nullopt;
}

Http2Codec::Limits HttpServer::Impl::http2_limits() const {
  Http2Codec::Limits limits;
  limits.max_concurrent_streams = settings_.max_concurrent_streams;
  limits.max_header_list_size = kHeaderLimit;
  limits.max_body = settings_.max_request_body_size;
  limits.max_buffered = 2 * settings_.max_request_body_size;
  return limits;
}

Status HttpServer::Impl::start() {
  {
    std::lock_guard lock(mu_);
    if (started_ || shut_down_) return Status::internal("HTTP server already started");
  }
  if (settings_.tls) {
    Status error;
    tls_ = TlsServerContext::open(*settings_.tls, &error);
    if (!tls_) return error;
  }
  Status s = bind_and_listen();
  if (!s.is_ok()) return s;
  {
    std::lock_guard lock(mu_);
    started_ = true;
  }
  net::dispatch(acceptor_.get_executor(), [self = shared_from_this()] { self->do_accept(); });
  return Status::ok();
}

Status HttpServer::Impl::bind_and_listen() {
  Status s = listen_tcp(io_, acceptor_, settings_.endpoint);
  if (!s.is_ok()) return s;
  beast::error_code ec;
  port_ = acceptor_.local_endpoint(ec).port();
  return Status::ok();
}

void HttpServer::Impl::do_accept() {
  acceptor_.async_accept(net::make_strand(io_), beast::bind_front_handler(&Impl::on_accept, shared_from_this()));
}

void HttpServer::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (!acceptor_.is_open() || ec == net::error::operation_aborted) return;
  if (ec) {
    // Out of descriptors and the like: try again shortly instead of spinning.
    retry_timer_.expires_after(kAcceptRetry);
    retry_timer_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
      if (!wait_ec && self->acceptor_.is_open()) self->do_accept();
    });
    return;
  }
  std::shared_ptr<Session> session;
  bool refused = false;
  {
    std::lock_guard lock(mu_);
    bool full = sessions_.size() >= settings_.max_connections;
    refused = full && !stopping_;
    if (!full && !stopping_) {
      uint64_t id = next_session_id_++;
      session = std::make_shared<Session>(shared_from_this(), id, std::move(socket), tls_ ? tls_->current() : nullptr);
      sessions_[id] = session;
    }
  }
  if (session) session->run();
  // Otherwise the socket closes unread as it goes out of scope; for a refusal that is on purpose:
  // an answer would hold the descriptor longer, and the client retries either way.
  if (refused) refusals_.refused(port_, settings_.max_connections);
  do_accept();
}

void HttpServer::Impl::unregister_session(uint64_t id) {
  {
    std::lock_guard lock(mu_);
    sessions_.erase(id);
  }
  cv_.notify_all();
}

std::vector<std::shared_ptr<Session>> HttpServer::Impl::live_sessions() {
  std::vector<std::shared_ptr<Session>> out;
  std::lock_guard lock(mu_);
  for (auto& [id, weak] : sessions_) {
    if (auto s = weak.lock()) out.push_back(std::move(s));
  }
  return out;
}

std::optional<Status> HttpServer::Impl::call_handler(Signal signal, std::string&& body) {
  {
    std::lock_guard lock(mu_);
    if (!handlers_allowed_) return std::nullopt;
    ++handlers_running_;
  }
  Status s;
  try {
    s = handler_(signal, std::move(body));
  } catch (const std::exception& e) {
    s = Status::internal(std::string("handler failed: ") + e.what());
  } catch (...) {
    s = Status::internal("handler failed");
  }
  {
    std::lock_guard lock(mu_);
    --handlers_running_;
  }
  cv_.notify_all();
  return s;
}

void HttpServer::Impl::process(Request& req, Response& res, bool* close) {
  if (cors_ && CorsPolicy::is_preflight(req) && match_path(settings_, sv(req.target()))) {
    return cors_->answer_preflight(req, res);
  }
  answer(req, res, close);
  if (cors_) cors_->annotate(req, res);
}

void HttpServer::Impl::answer(Request& req, Response& res, bool* close) {
  std::optional<BodyFormat> format = parse_content_type(sv(req[http::field::content_type]));
  std::optional<Signal> signal = match_path(settings_, sv(req.target()));
  if (!signal) {
    return error_reply(res, format, 404, kGrpcNotFound, "unknown path " + printable(sv(req.target())));
  }
  if (req.method() != http::verb::post) {
    res.set(http::field::allow, "POST");
    return error_reply(res, format, 405, kGrpcUnimplemented,
                       "method " + printable(sv(req.method_string())) + " not allowed, supported: POST");
  }
  if (!format) {
    return text_reply(res, 415, "unsupported Content-Type \"" + printable(sv(req[http::field::content_type])) +
                                    "\", supported: application/x-protobuf, application/json");
  }
  std::optional<Encoding> encoding = parse_encoding(sv(req[http::field::content_encoding]));
  if (!encoding) {
    return status_reply(res, *format, *signal,
                        Status::unsupported("unsupported Content-Encoding \"" +
                                            printable(sv(req[http::field::content_encoding])) +
                                            "\", supported: gzip, zstd"));
  }
  std::string body = std::move(req.body());
  Status s = decode_body(*encoding, *format, *signal, settings_.max_request_body_size, body);
  if (s.is_ok()) {
    std::optional<Status> answer = call_handler(*signal, std::move(body));
    if (!answer) {
      *close = true;
      answer = Status::unavailable("server is shutting down");
    }
    s = std::move(*answer);
  }
  status_reply(res, *format, *signal, s);
}

void HttpServer::Impl::shutdown(Clock::time_point deadline) {
  {
    std::lock_guard lock(mu_);
    if (shut_down_) return;
    shut_down_ = true;
    stopping_ = true;
    if (!started_) {
      handlers_allowed_ = false;
      return;
    }
  }
  net::post(acceptor_.get_executor(), [self = shared_from_this()] {
    beast::error_code ignored;
    self->acceptor_.close(ignored);
    self->retry_timer_.cancel();
    {
      std::lock_guard lock(self->mu_);
      self->acceptor_closed_ = true;
    }
    self->cv_.notify_all();
  });
  for (auto& s : live_sessions()) s->begin_shutdown();

  std::unique_lock lock(mu_);
  cv_.wait_until(lock, deadline, [&] { return sessions_.empty() && acceptor_closed_; });
  // Drain time is over: nothing new reaches the handler, and what remains is closed.
  handlers_allowed_ = false;
  lock.unlock();
  for (auto& s : live_sessions()) s->force_close();
  lock.lock();
  // A call already inside the handler is not interrupted; the pipeline bounds how long it takes.
  cv_.wait(lock, [&] { return handlers_running_ == 0; });
}

// ---- HttpServer ----

HttpServer::HttpServer(net::io_context& io, HttpServerSettings settings, Handler handler)
    : impl_(std::make_shared<Impl>(io, std::move(settings), std::move(handler))) {}

HttpServer::~HttpServer() { impl_->shutdown(Clock::now()); }

Status HttpServer::start() { return impl_->start(); }

void HttpServer::require(std::shared_ptr<const BearerToken> auth) { impl_->require(std::move(auth)); }

uint16_t HttpServer::port() const { return impl_->port(); }

void HttpServer::shutdown(Clock::time_point deadline) { impl_->shutdown(deadline); }

}  // namespace otlpd

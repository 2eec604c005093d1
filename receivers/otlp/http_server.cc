#include "receivers/otlp/http_server.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "google/rpc/status.pb.h"
#include "net/tcp_listen.h"
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

// grpc::StatusCode numbers for answers that do not come from a Status.
constexpr int kGrpcNotFound = 5;
constexpr int kGrpcUnimplemented = 12;

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

}  // namespace

class Session;

class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
 public:
  Impl(net::io_context& io, HttpServerSettings settings, Handler handler)
      : io_(io),
        settings_(std::move(settings)),
        handler_(std::move(handler)),
        acceptor_(net::make_strand(io)),
        retry_timer_(acceptor_.get_executor()) {}

  Status start();
  uint16_t port() const { return port_; }
  void shutdown(Clock::time_point deadline);

  const HttpServerSettings& settings() const { return settings_; }
  // Builds the answer to one complete request; sets *close when the connection must end after it.
  void process(Request& req, Response& res, bool* close);
  void unregister_session(uint64_t id);

 private:
  Status bind_and_listen();
  void do_accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  std::optional<Status> call_handler(Signal signal, std::string&& body);
  std::vector<std::shared_ptr<Session>> live_sessions();

  net::io_context& io_;
  const HttpServerSettings settings_;
  const Handler handler_;
  tcp::acceptor acceptor_;      // used on its strand once accepting
  net::steady_timer retry_timer_;
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
  Session(std::shared_ptr<HttpServer::Impl> server, uint64_t id, tcp::socket socket)
      : server_(std::move(server)), id_(id), stream_(std::move(socket)) {}
  ~Session() { server_->unregister_session(id_); }

  void run() { net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::next_request, shared_from_this())); }
  // From the control thread: finish the current request, then close; close now if idle.
  void begin_shutdown() { net::post(stream_.get_executor(), beast::bind_front_handler(&Session::on_shutdown, shared_from_this())); }
  void force_close() { net::post(stream_.get_executor(), beast::bind_front_handler(&Session::close, shared_from_this())); }

 private:
  enum class Phase { idle, reading, responding, lingering, closed };

  const HttpServerSettings& settings() const { return server_->settings(); }

  // Sets the deadline of the coming operations; zero means none.
  void arm(std::chrono::milliseconds timeout) {
    if (timeout.count() > 0) {
      stream_.expires_after(timeout);
    } else {
      stream_.expires_never();
    }
  }

  void next_request() {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::idle;
    if (stopping_) return close();
    if (first_ || buffer_.size() > 0) return read_header();  // new connection or pipelined request
    // Idle keep-alive connection: wait for the first byte of the next request under idle_timeout.
    arm(settings().idle_timeout);
    stream_.async_read_some(buffer_.prepare(kFirstReadSize),
                            beast::bind_front_handler(&Session::on_first_bytes, shared_from_this()));
  }

  void on_first_bytes(beast::error_code ec, size_t n) {
    if (ec) return close();  // idle timeout, peer closed, or shutdown
    buffer_.commit(n);
    read_header();
  }

  void read_header() {
    if (phase_ == Phase::closed) return;
    first_ = false;
    phase_ = Phase::reading;
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(settings().max_request_body_size);  // a larger Content-Length fails in the header
    arm(settings().read_timeout);                            // one deadline for header and body
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, size_t) {
    if (ec) return on_read_error(ec);
    const auto& req = parser_->get();
    if (req.version() >= 11 && beast::iequals(req[http::field::expect], "100-continue")) {
      // curl and others wait for this before sending a large body.
      continue_ = http::response<http::empty_body>(http::status::continue_, req.version());
      return http::async_write(stream_, continue_, beast::bind_front_handler(&Session::on_continue, shared_from_this()));
    }
    read_body();
  }

  void on_continue(beast::error_code ec, size_t) {
    if (ec) return close();
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_body, shared_from_this()));
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
      std::optional<BodyFormat> format;
      if (parser_->is_header_done()) format = parse_content_type(sv(parser_->get()[http::field::content_type]));
      error_reply(res_, format, 413, grpc_code(Status::too_large({})),
                  "request body larger than " + std::to_string(settings().max_request_body_size) + " bytes");
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
    arm(settings().read_timeout);
    http::async_write(stream_, res_, beast::bind_front_handler(&Session::on_write, shared_from_this()));
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
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    auto read_timeout = settings().read_timeout;
    arm(read_timeout.count() > 0 ? std::min(kLingerTime, read_timeout) : kLingerTime);
    drain();
  }

  void drain() {
    buffer_.consume(buffer_.size());
    stream_.async_read_some(buffer_.prepare(kFirstReadSize), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->close();
      self->drain();
    });
  }

  void on_shutdown() {
    stopping_ = true;
    bool nothing_started = phase_ == Phase::idle ||
                           (phase_ == Phase::reading && buffer_.size() == 0 && !parser_->got_some());
    if (nothing_started) close();
  }

  void close() {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::closed;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();  // pending operations complete with operation_aborted
  }

  std::shared_ptr<HttpServer::Impl> server_;
  uint64_t id_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response res_;
  http::response<http::empty_body> continue_;
  Phase phase_ = Phase::idle;
  bool first_ = true;
  bool stopping_ = false;
  bool close_after_ = false;
};

// ---- HttpServer::Impl ----

Status HttpServer::Impl::start() {
  {
    std::lock_guard lock(mu_);
    if (started_ || shut_down_) return Status::internal("HTTP server already started");
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
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      uint64_t id = next_session_id_++;
      session = std::make_shared<Session>(shared_from_this(), id, std::move(socket));
      sessions_[id] = session;
    }
  }
  if (session) session->run();  // else the socket closes as it goes out of scope
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

uint16_t HttpServer::port() const { return impl_->port(); }

void HttpServer::shutdown(Clock::time_point deadline) { impl_->shutdown(deadline); }

}  // namespace otlpd

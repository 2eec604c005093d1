#include "exporters/otlphttp/otlphttp_exporter.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <mutex>
#include <optional>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include "exporters/common/queued_exporter.h"
#include "google/rpc/status.pb.h"
#include "net/tls_client_context.h"
#include "otlp/compression.h"
#include "otlp/json_codec.h"
#include "otlp/response.h"

#ifndef OTLPD_VERSION
#define OTLPD_VERSION "unknown"
#endif

namespace otlpd {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

constexpr size_t kMaxResponseBytes = 4 << 20;  // responses are tiny; a huge one is a broken server
constexpr size_t kMaxBodyInMessage = 200;      // bytes of an undecodable error body quoted in a Status

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// Boost 1.74's beast::string_view is boost::string_view.
std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_ip_literal(const std::string& host) {
  beast::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

// Headers the exporter sets from its own settings; a user header may not replace them.
bool is_reserved_header(std::string_view name) {
  static const char* const kReserved[] = {"content-type", "content-encoding", "content-length",
                                          "transfer-encoding", "host", "connection"};
  std::string l = lower(name);
  return std::any_of(std::begin(kReserved), std::end(kReserved), [&](const char* r) { return l == r; });
}

// RFC 9110 token characters, so a configured name cannot smuggle extra header lines.
bool is_header_name(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

bool is_header_value(std::string_view value) {
  return std::none_of(value.begin(), value.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

// Retry-After as delay-seconds or an IMF-fixdate; zero when absent or unreadable.
std::chrono::milliseconds parse_retry_after(std::string_view v) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return {};
  int64_t secs = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), secs);
  if (ec == std::errc() && end == v.data() + v.size()) {
    return std::chrono::seconds(std::clamp<int64_t>(secs, 0, 24 * 3600));
  }
  std::tm tm{};
  std::string text(v);
  const char* rest = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (rest == nullptr || *rest != '\0') return {};
  auto when = std::chrono::system_clock::from_time_t(timegm(&tm));
  auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(when - std::chrono::system_clock::now());
  return std::clamp(delay, std::chrono::milliseconds(0), std::chrono::milliseconds(24 * 3600 * 1000));
}

bool is_json(const Response& res) {
  return lower(sv(res[http::field::content_type])).find("application/json") != std::string::npos;
}

bool is_protobuf(const Response& res) {
  return lower(sv(res[http::field::content_type])).find("application/x-protobuf") != std::string::npos;
}

// Parses a response body as `msg`, by the response's Content-Type.
bool decode_body(const Response& res, google::protobuf::Message& msg) {
  if (is_json(res)) return otlp::json_to_message(res.body(), msg).empty();
  if (is_protobuf(res)) return msg.ParseFromString(res.body());
  return false;
}

// What went wrong, for a non-2xx answer: the google.rpc.Status message if the body is one, else
// the start of the body.
std::string error_detail(const Response& res) {
  google::rpc::Status status;
  if (!res.body().empty() && decode_body(res, status) && !status.message().empty()) return status.message();
  std::string body = res.body().substr(0, kMaxBodyInMessage);
  return body.empty() ? std::string(res.reason()) : body;
}

otlp::PartialSuccess partial_success(Signal signal, const Response& res) {
  if (res.body().empty()) return {};
  auto reply = otlp::new_response(signal);
  if (!decode_body(res, *reply)) return {};
  return otlp::partial_success_of(signal, *reply);
}

// Builds the config-independent part of every request once; send() copies it and adds the body.
Request request_template(const HttpUrl& url, const OtlpHttpSender::Options& o) {
  Request req{http::verb::post, url.target, 11};
  bool default_port = url.port == (url.tls ? 443 : 80);
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  req.set(http::field::host, default_port ? host : host + ":" + std::to_string(url.port));
  req.set(http::field::user_agent, "otlpd/" OTLPD_VERSION);
  for (const auto& [name, value] : o.headers) req.set(name, value);  // may replace User-Agent
  req.set(http::field::content_type, o.encoding == HttpEncoding::json ? "application/json" : "application/x-protobuf");
  if (o.compression == HttpCompression::gzip) req.set(http::field::content_encoding, "gzip");
  if (o.compression == HttpCompression::zstd) req.set(http::field::content_encoding, "zstd");
  req.keep_alive(true);
  return req;
}

// One TCP (optionally TLS) connection to the endpoint's host. Used by one exchange at a time; all
// its I/O runs on its own strand. Single-use in the sense that once closed it is never reopened:
// a reconnect makes a new Connection (an ssl stream cannot be reused after close).
struct Connection {
  Connection(net::io_context& io, ssl::context* tls_ctx)
      : strand(net::make_strand(io)), resolver(strand), resolve_timer(strand) {
    if (tls_ctx) {
      tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(strand, *tls_ctx);
    } else {
      plain = std::make_unique<beast::tcp_stream>(strand);
    }
  }

  beast::tcp_stream& tcp() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

  // Calls f with the stream to read and write HTTP on (plain or TLS).
  template <typename F>
  void with_stream(F&& f) {
    if (tls) {
      f(*tls);
    } else {
      f(*plain);
    }
  }

  // On the strand. Cancels whatever is pending; the connection is dead afterwards.
  void close() {
    beast::error_code ec;
    resolver.cancel();
    resolve_timer.cancel();
    tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
    tcp().close();
    connected = false;
    closed = true;
  }

  net::strand<net::io_context::executor_type> strand;
  tcp::resolver resolver;
  net::steady_timer resolve_timer;  // bounds name resolution, which tcp_stream's timeout does not cover
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  bool connected = false;  // TCP (and TLS) established and not closed
  bool closed = false;     // close() ran (shutdown or failure): never (re)connect it
  bool reused = false;     // has carried a complete exchange; the peer may have closed it since
};

using ConnectionPtr = std::shared_ptr<Connection>;

}  // namespace

// ---- Client: URL, TLS context and the keep-alive pool. Shared by the sender and its exchanges. ----

class OtlpHttpSender::Client : public std::enable_shared_from_this<OtlpHttpSender::Client> {
 public:
  Client(net::io_context& io, Options options, HttpUrl url, std::shared_ptr<ssl::context> tls_ctx,
         std::shared_ptr<const BearerToken> token)
      : io_(io),
        options_(std::move(options)),
        url_(std::move(url)),
        tls_ctx_(std::move(tls_ctx)),
        token_(std::move(token)),
        template_(request_template(url_, options_)) {}

  void send(BatchPtr batch, Clock::time_point deadline, Done done);
  void shutdown();

  // An idle keep-alive connection, or a new unconnected one; null once shut down. Any thread.
  ConnectionPtr acquire();
  // Returns a connection after a complete exchange; closed instead when the pool is full or shut.
  void release(ConnectionPtr conn);
  // A new unconnected connection; null once shut down. Any thread.
  ConnectionPtr fresh_connection();

  Status status_of(const Response& res) const;
  void count_connection() { connections_opened_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t connections_opened() const { return connections_opened_.load(std::memory_order_relaxed); }

  const HttpUrl& url() const { return url_; }
  const Options& options() const { return options_; }
  bool verify_peer() const { return !options_.tls.insecure_skip_verify; }
  // The name the server's certificate must hold and SNI carries: server_name_override or the URL's host.
  const std::string& server_name() const {
    return options_.tls.server_name_override.empty() ? url_.host : options_.tls.server_name_override;
  }

 private:
  Status build_body(const Batch& batch, std::string* body) const;

  net::io_context& io_;
  const Options options_;
  const HttpUrl url_;
  const std::shared_ptr<ssl::context> tls_ctx_;  // null for http://; read-only after start
  const std::shared_ptr<const BearerToken> token_;  // null without auth
  const Request template_;
  std::atomic<uint64_t> connections_opened_{0};

  std::mutex mu_;  // guards the pool below
  std::vector<ConnectionPtr> idle_;
  std::vector<std::weak_ptr<Connection>> all_;  // to close in-flight ones at shutdown
  bool closed_ = false;
};

namespace {

// One send(): connect if needed, write the request, read the response, hand the connection back.
// Lives in the completion handlers (shared_from_this) and runs on the connection's strand.
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  using Client = OtlpHttpSender::Client;

  Exchange(std::shared_ptr<Client> client, Request request, Clock::time_point deadline, Sender::Done done)
      : client_(std::move(client)), request_(std::move(request)), deadline_(deadline), done_(std::move(done)) {}

  // Starts on `conn`'s strand.
  void start(ConnectionPtr conn) {
    conn_ = std::move(conn);
    net::post(conn_->strand, [self = shared_from_this()] { self->run(); });
  }

 private:
  void run() {
    if (conn_->closed) return finish(shut_down_status());
    if (Clock::now() >= deadline_) return finish(timeout_status());
    if (conn_->connected) return write();
    resolve();
  }

  void resolve() {
    const HttpUrl& url = client_->url();
    beast::error_code ec;
    auto address = net::ip::make_address(url.host, ec);
    if (!ec) return connect({tcp::endpoint(address, url.port)});
    conn_->resolve_timer.expires_at(deadline_);
    conn_->resolve_timer.async_wait([conn = conn_](beast::error_code e) {
      if (!e) conn->resolver.cancel();
    });
    conn_->resolver.async_resolve(url.host, std::to_string(url.port),
                                  [self = shared_from_this()](beast::error_code e, tcp::resolver::results_type r) {
                                    self->conn_->resolve_timer.cancel();
                                    if (e) return self->fail(e, "resolve");
                                    self->connect(std::vector<tcp::endpoint>(r.begin(), r.end()));
                                  });
  }

  void connect(std::vector<tcp::endpoint> endpoints) {
    endpoints_ = std::move(endpoints);
    conn_->tcp().expires_at(deadline_);
    conn_->tcp().async_connect(endpoints_, [self = shared_from_this()](beast::error_code e, const tcp::endpoint&) {
      self->on_connect(e);
    });
  }

  void on_connect(beast::error_code ec) {
    if (ec) return fail(ec, "connect to");
    client_->count_connection();
    if (!conn_->tls) {
      conn_->connected = true;
      return write();
    }
    handshake();
  }

  void handshake() {
    const std::string& host = client_->server_name();
    SSL* ssl = conn_->tls->native_handle();
    bool ip = is_ip_literal(host);
    if (!ip) SSL_set_tlsext_host_name(ssl, host.c_str());  // SNI takes names only
    if (client_->verify_peer()) {
      // OpenSSL checks the certificate's names against this during the handshake.
      if (ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
      } else {
        SSL_set1_host(ssl, host.c_str());
      }
    }
    conn_->tcp().expires_at(deadline_);
    conn_->tls->async_handshake(ssl::stream_base::client, [self = shared_from_this()](beast::error_code e) {
      if (e) return self->fail(e, "TLS handshake with");
      self->conn_->connected = true;
      self->write();
    });
  }

  void write() {
    conn_->tcp().expires_at(deadline_);
    conn_->with_stream([this](auto& stream) {
      http::async_write(stream, request_, [self = shared_from_this()](beast::error_code e, size_t) {
        if (e) return self->retry_or_fail(e, "send to");
        self->read();
      });
    });
  }

  void read() {
    parser_.emplace();
    parser_->body_limit(kMaxResponseBytes);
    conn_->tcp().expires_at(deadline_);
    conn_->with_stream([this](auto& stream) {
      http::async_read(stream, conn_->buffer, *parser_, [self = shared_from_this()](beast::error_code e, size_t) {
        if (e && !self->parser_->got_some()) return self->retry_or_fail(e, "read response from");
        if (e) return self->fail(e, "read response from");
        self->on_response();
      });
    });
  }

  void on_response() {
    Response res = parser_->release();
    conn_->reused = true;
    if (res.keep_alive()) {
      client_->release(std::move(conn_));
    } else {
      conn_->close();
    }
    finish(client_->status_of(res));
  }

  // A reused keep-alive connection that fails before any answer most likely was closed by the
  // server while idle: try once more on a new connection, within the same deadline.
  void retry_or_fail(beast::error_code ec, std::string_view what) {
    if (!conn_->reused || retried_ || ec == beast::error::timeout) return fail(ec, what);
    ConnectionPtr next = client_->fresh_connection();
    if (!next) return fail(ec, what);  // shut down meanwhile
    retried_ = true;
    conn_->close();
    start(std::move(next));
  }

  void fail(beast::error_code ec, std::string_view what) {
    conn_->close();
    if (ec == beast::error::timeout || (ec == net::error::operation_aborted && Clock::now() >= deadline_)) {
      return finish(timeout_status());
    }
    finish(Status::unavailable(std::string(what) + " " + client_->options().url + ": " + ec.message()));
  }

  Status shut_down_status() const {
    return Status::unavailable("exporter " + client_->options().exporter_name + " is shut down");
  }

  Status timeout_status() const {
    return Status::deadline_exceeded("no response from " + client_->options().url + " before the deadline");
  }

  void finish(Status status) {
    Sender::Done done = std::move(done_);
    done_ = nullptr;
    if (done) done(std::move(status));
  }

  std::shared_ptr<Client> client_;
  const Request request_;
  const Clock::time_point deadline_;
  Sender::Done done_;
  ConnectionPtr conn_;
  std::vector<tcp::endpoint> endpoints_;
  std::optional<http::response_parser<http::string_body>> parser_;
  bool retried_ = false;
};

}  // namespace

Status OtlpHttpSender::Client::build_body(const Batch& batch, std::string* body) const {
  std::string json;
  std::string_view raw = batch.payload;
  if (options_.encoding == HttpEncoding::json) {
    std::string err = otlp::request_proto_to_json(options_.signal, batch.payload, &json);
    if (!err.empty()) {
      return Status::invalid_argument("cannot convert " + std::string(otlp::signal_name(options_.signal)) +
                                      " to JSON: " + err);
    }
    raw = json;
  }
  switch (options_.compression) {
    case HttpCompression::gzip: otlp::gzip_compress(raw, body); break;
    case HttpCompression::zstd: otlp::zstd_compress(raw, body); break;
    case HttpCompression::none: body->assign(raw); break;
  }
  return Status::ok();
}

void OtlpHttpSender::Client::send(BatchPtr batch, Clock::time_point deadline, Done done) {
  Request req = template_;
  if (token_) req.set(token_->header(), token_->header_value());  // per request: the token may rotate
  if (Status s = build_body(*batch, &req.body()); !s.is_ok()) return done(std::move(s));
  req.prepare_payload();
  ConnectionPtr conn = acquire();
  if (!conn) return done(Status::unavailable("exporter " + options_.exporter_name + " is shut down"));
  std::make_shared<Exchange>(shared_from_this(), std::move(req), deadline, std::move(done))->start(std::move(conn));
}

ConnectionPtr OtlpHttpSender::Client::acquire() {
  {
    std::lock_guard lock(mu_);
    if (closed_) return nullptr;
    if (!idle_.empty()) {
      ConnectionPtr conn = std::move(idle_.back());
      idle_.pop_back();
      return conn;
    }
  }
  return fresh_connection();
}

ConnectionPtr OtlpHttpSender::Client::fresh_connection() {
  auto conn = std::make_shared<Connection>(io_, tls_ctx_.get());
  std::lock_guard lock(mu_);
  if (closed_) return nullptr;
  std::erase_if(all_, [](const auto& w) { return w.expired(); });
  all_.push_back(conn);
  return conn;
}

void OtlpHttpSender::Client::release(ConnectionPtr conn) {
  std::lock_guard lock(mu_);
  if (!closed_ && idle_.size() < options_.max_idle_connections) {
    idle_.push_back(std::move(conn));
    return;
  }
  net::post(conn->strand, [conn] { conn->close(); });
}

void OtlpHttpSender::Client::shutdown() {
  std::vector<ConnectionPtr> to_close;
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    idle_.clear();
    for (const auto& w : all_) {
      if (auto c = w.lock()) to_close.push_back(std::move(c));
    }
    all_.clear();
  }
  for (auto& conn : to_close) net::post(conn->strand, [conn] { conn->close(); });
}

Status OtlpHttpSender::Client::status_of(const Response& res) const {
  const int code = static_cast<int>(res.result_int());
  if (code >= 200 && code < 300) {
    otlp::PartialSuccess p = partial_success(options_.signal, res);
    if (p.rejected > 0) {
      spdlog::warn("exporter {}: {} rejected {} {}: {}", options_.exporter_name, options_.url, p.rejected,
                   otlp::item_name(options_.signal), p.message);
      return Status::partial(p.rejected, p.message);
    }
    return Status::ok();
  }
  std::string message = "HTTP " + std::to_string(code) + " from " + options_.url + ": " + error_detail(res);
  return status_from_http(code, std::move(message), parse_retry_after(sv(res[http::field::retry_after])));
}

// ---- OtlpHttpSender ----

OtlpHttpSender::Options OtlpHttpSender::options_from(const ComponentId& id, const OtlpHttpExporterConfig& config,
                                                     Signal signal, const BearerTokens* tokens) {
  Options o;
  o.exporter_name = id.str();
  o.signal = signal;
  o.url = signal_url(config, signal);
  o.encoding = config.encoding;
  o.compression = config.compression;
  o.headers = config.headers;
  o.tls = config.tls;
  if (const BearerTokenSettings* auth = find_bearer_token(tokens, config.authenticator)) o.auth = *auth;
  o.max_idle_connections = static_cast<size_t>(config.exporter.queue.num_consumers);
  return o;
}

OtlpHttpSender::OtlpHttpSender(net::io_context& io, Options options) : io_(io), options_(std::move(options)) {}

OtlpHttpSender::~OtlpHttpSender() { shutdown(); }

Status OtlpHttpSender::start() {
  std::string name(otlp::signal_name(options_.signal));
  if (options_.url.empty()) {
    return Status::invalid_argument(options_.exporter_name + ": no URL for " + name + ": set endpoint or " + name +
                                    "_endpoint");
  }
  HttpUrl url;
  if (std::string err = parse_http_url(options_.url, &url); !err.empty()) {
    return Status::invalid_argument(options_.exporter_name + ": " + err);
  }
  std::shared_ptr<ssl::context> tls_ctx;
  if (url.tls) {
    TlsClientFiles files;
    Status s = read_tls_client_files(options_.tls, &files);
    if (s.is_ok()) s = make_tls_client_context(options_.tls, files, &tls_ctx);
    if (!s.is_ok()) return Status::invalid_argument(options_.exporter_name + ": " + s.message());
  } else if (options_.tls.sets_tls_options()) {
    return Status::invalid_argument(options_.exporter_name + ": " + options_.url +
                                    " is plaintext (http://) but tls settings are given");
  }
  std::shared_ptr<const BearerToken> token;
  if (options_.auth) {
    Status error;
    token = BearerToken::open(*options_.auth, &error);
    if (!token) return Status::invalid_argument(options_.exporter_name + ": " + error.message());
  }
  client_ = std::make_shared<Client>(io_, options_, std::move(url), std::move(tls_ctx), std::move(token));
  return Status::ok();
}

void OtlpHttpSender::send(BatchPtr batch, Clock::time_point deadline, Done done) {
  if (!client_) return done(Status::unavailable("exporter " + options_.exporter_name + " is not started"));
  client_->send(std::move(batch), deadline, std::move(done));
}

void OtlpHttpSender::shutdown() {
  if (client_) client_->shutdown();
}

uint64_t OtlpHttpSender::connections_opened() const { return client_ ? client_->connections_opened() : 0; }

// ---- URLs ----

std::string parse_http_url(std::string_view text, HttpUrl* out) {
  HttpUrl url;
  std::string quoted = "\"" + std::string(text) + "\"";
  std::string_view rest = text;
  std::string scheme_end = lower(text.substr(0, 8));
  if (scheme_end.rfind("http://", 0) == 0) {
    rest.remove_prefix(7);
  } else if (scheme_end.rfind("https://", 0) == 0) {
    url.tls = true;
    rest.remove_prefix(8);
  } else {
    return "URL " + quoted + " must start with http:// or https://";
  }
  size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target = authority_end == std::string_view::npos ? "" : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) return "URL " + quoted + ": user info is not supported";

  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return "URL " + quoted + ": unterminated [IPv6 address]";
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return "URL " + quoted + ": unexpected text after ]";
    if (!after.empty()) port_text = after.substr(1);
    if (after.size() == 1) return "URL " + quoted + ": empty port";
  } else {
    size_t colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return "URL " + quoted + ": empty port";
    }
  }
  if (url.host.empty()) return "URL " + quoted + ": no host";
  url.port = url.tls ? 443 : 80;
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
      return "URL " + quoted + ": invalid port";
    }
    url.port = static_cast<uint16_t>(port);
  }
  if (size_t hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
  url.target = target.empty() || target.front() != '/' ? "/" + std::string(target) : std::string(target);
  *out = std::move(url);
  return "";
}

std::string signal_url(const OtlpHttpExporterConfig& config, Signal signal) {
  const std::string& own = signal == Signal::traces    ? config.traces_endpoint
                           : signal == Signal::metrics ? config.metrics_endpoint
                                                       : config.logs_endpoint;
  if (!own.empty()) return own;
  if (config.endpoint.empty()) return "";
  std::string url = config.endpoint;
  if (url.back() != '/') url += '/';
  return url + "v1/" + std::string(otlp::signal_name(signal));
}

// ---- Factory ----

namespace {

void check_url(config::Node& node, std::string_view key, const std::string& value) {
  if (value.empty()) return;
  HttpUrl url;
  if (std::string err = parse_http_url(value, &url); !err.empty()) node.error(key, err);
}

void parse_headers(config::Node& node, OtlpHttpExporterConfig& cfg) {
  node.read("headers", cfg.headers);
  for (const auto& [name, value] : cfg.headers) {
    std::string key = "headers." + name;
    if (!is_header_name(name)) {
      node.error(key, "not a valid HTTP header name");
    } else if (is_reserved_header(name)) {
      node.error(key, "set by the exporter from its settings; cannot be configured");
    } else if (!is_header_value(value)) {
      node.error(key, "value must not contain line breaks or NUL");
    }
  }
}

void parse_tls(config::Node& node, OtlpHttpExporterConfig& cfg) {
  cfg.tls = read_tls_client(node);
  if (!cfg.tls.sets_tls_options()) return;
  // TLS settings with only http:// URLs would never be used: say so instead of sending plaintext.
  bool any_https = false;
  for (const std::string* url : {&cfg.endpoint, &cfg.traces_endpoint, &cfg.metrics_endpoint, &cfg.logs_endpoint}) {
    HttpUrl parsed;
    any_https = any_https || (!url->empty() && parse_http_url(*url, &parsed).empty() && parsed.tls);
  }
  if (!any_https) node.error("tls", "TLS settings are given but no endpoint is https://");
}

}  // namespace

ComponentConfigPtr OtlpHttpExporterFactory::parse(config::Node& node) const {
  auto cfg = std::make_unique<OtlpHttpExporterConfig>();
  cfg->exporter.timeout = std::chrono::seconds(30);  // the Collector's otlphttp default
  node.read("endpoint", cfg->endpoint);
  node.read("traces_endpoint", cfg->traces_endpoint);
  node.read("metrics_endpoint", cfg->metrics_endpoint);
  node.read("logs_endpoint", cfg->logs_endpoint);
  if (cfg->endpoint.empty() && cfg->traces_endpoint.empty() && cfg->metrics_endpoint.empty() &&
      cfg->logs_endpoint.empty()) {
    node.error("endpoint", "required");
  }
  check_url(node, "endpoint", cfg->endpoint);
  check_url(node, "traces_endpoint", cfg->traces_endpoint);
  check_url(node, "metrics_endpoint", cfg->metrics_endpoint);
  check_url(node, "logs_endpoint", cfg->logs_endpoint);
  node.read_enum("encoding", cfg->encoding, {{"proto", HttpEncoding::proto}, {"json", HttpEncoding::json}});
  node.read_enum("compression", cfg->compression,
                 {{"gzip", HttpCompression::gzip}, {"zstd", HttpCompression::zstd}, {"none", HttpCompression::none}});
  parse_headers(node, *cfg);
  parse_tls(node, *cfg);
  read_authenticator(node, &cfg->authenticator);
  cfg->exporter.parse(node);
  node.finish();
  return cfg;
}

ExporterPtr OtlpHttpExporterFactory::create(const ComponentId& id, const ComponentConfig& config, Signal signal,
                                            Host& host) const {
  const auto& cfg = static_cast<const OtlpHttpExporterConfig&>(config);
  auto sender =
      std::make_unique<OtlpHttpSender>(host.io, OtlpHttpSender::options_from(id, cfg, signal, host.bearer_tokens));
  return std::make_shared<QueuedExporter>(id, signal, cfg.exporter, std::move(sender), host);
}

}  // namespace otlpd

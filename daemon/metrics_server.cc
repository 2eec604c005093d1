#include "daemon/metrics_server.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <future>
#include <map>
#include <optional>
#include <string_view>
#include <utility>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "pipeline/memory_limiter.h"

#ifndef OTLPD_VERSION
#define OTLPD_VERSION "unknown"
#endif

namespace otlpd {

// ---------------------------------------------------------------------------------------------
// Exposition

namespace {

// The Collector's item noun per signal; anything else keeps its `_items` name.
std::optional<std::string_view> item_noun(std::string_view signal) {
  if (signal == "traces") return "spans";
  if (signal == "metrics") return "metric_points";
  if (signal == "logs") return "log_records";
  return std::nullopt;
}

bool name_char(char c, bool first, bool colon_ok) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (c == ':') return colon_ok;
  return !first && c >= '0' && c <= '9';
}

// Metric names may hold colons, label names not; an invalid character becomes `_`.
std::string valid_name(std::string_view name, bool colon_ok) {
  std::string out;
  out.reserve(name.size() + 1);
  if (name.empty() || (name.front() >= '0' && name.front() <= '9')) out += '_';
  for (char c : name) out += name_char(c, out.empty(), colon_ok) ? c : '_';
  return out;
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Shortest text that reads back as the same double: "5", "0.25", "1e+21".
std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

const char* type_name(Telemetry::Kind kind) { return kind == Telemetry::Kind::gauge ? "gauge" : "counter"; }

}  // namespace

PromSample expose(const Telemetry::Sample& sample) {
  PromSample out{sample.name, sample.labels, static_cast<double>(sample.value), sample.kind, {}};
  constexpr std::string_view kSuffix = "_items";
  const std::string_view name = sample.name;
  auto signal = sample.labels.find("signal");
  if (signal == sample.labels.end() || name.size() <= kSuffix.size() || !name.ends_with(kSuffix)) return out;
  auto noun = item_noun(signal->second);
  if (!noun) return out;
  out.name = std::string(name.substr(0, name.size() - kSuffix.size())) + "_" + std::string(*noun);
  out.labels.erase("signal");
  return out;
}

std::string render_prometheus(const std::vector<PromSample>& samples) {
  struct Family {
    Telemetry::Kind kind;
    std::string help;
    std::map<Telemetry::Labels, double> series;  // map: sorted by labels, equal ones summed
  };
  std::map<std::string, Family> families;  // map: sorted by name
  for (const auto& s : samples) {
    Telemetry::Labels labels;
    for (const auto& [k, v] : s.labels) labels[valid_name(k, false)] = v;
    auto [it, added] = families.try_emplace(valid_name(s.name, true), Family{s.kind, s.help, {}});
    (void)added;  // a family's kind and help come from its first sample
    it->second.series[labels] += s.value;
  }
  std::string out;
  for (const auto& [name, family] : families) {
    std::string help = family.help.empty()
                           ? std::string("otlpd internal ") + type_name(family.kind) + "."
                           : family.help;
    out += "# HELP " + name + " " + escape_help(help) + "\n";
    out += "# TYPE " + name + " " + type_name(family.kind) + "\n";
    for (const auto& [labels, value] : family.series) {
      out += name;
      if (!labels.empty()) {
        out += '{';
        bool first = true;
        for (const auto& [k, v] : labels) {
          if (!first) out += ',';
          first = false;
          out += k + "=\"" + escape_label_value(v) + "\"";
        }
        out += '}';
      }
      out += ' ' + format_value(value) + '\n';
    }
  }
  return out;
}

std::vector<PromSample> process_samples(Clock::time_point process_start) {
  using Kind = Telemetry::Kind;
  std::vector<PromSample> out;
  out.push_back({"otlpd_process_memory_rss", {}, static_cast<double>(resident_memory_bytes()), Kind::gauge,
                 "Resident memory of the otlpd process, in bytes."});
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) == 0) {
    auto seconds = [](const timeval& t) {
      return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    out.push_back({"otlpd_process_cpu_seconds", {}, seconds(usage.ru_utime) + seconds(usage.ru_stime), Kind::counter,
                   "CPU time (user and system) used by the otlpd process, in seconds."});
  }
  const std::chrono::duration<double> up = Clock::now() - process_start;
  out.push_back({"otlpd_process_uptime", {}, up.count(), Kind::counter, "Seconds since otlpd started."});
  out.push_back({"otlpd_build_info", {{"version", OTLPD_VERSION}}, 1, Kind::gauge, "The otlpd build; always 1."});
  return out;
}

std::string metrics_page(const Telemetry& telemetry, Clock::time_point process_start) {
  std::vector<PromSample> samples = process_samples(process_start);
  for (const auto& s : telemetry.snapshot()) samples.push_back(expose(s));
  return render_prometheus(samples);
}

// ---------------------------------------------------------------------------------------------
// MetricsServer

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

namespace {

constexpr uint32_t kHeaderLimit = 8 * 1024;  // request line and headers; more gets 431
constexpr uint64_t kBodyLimit = 4 * 1024;    // GET and HEAD carry none; more gets 413
constexpr size_t kMaxConnections = 64;       // more are accepted and closed at once
// One deadline for waiting for the next request on a keep-alive connection and reading it;
// a scraper that comes back within its interval reuses the connection.
constexpr std::chrono::seconds kReadTimeout{120};
constexpr std::chrono::seconds kWriteTimeout{30};
constexpr std::chrono::milliseconds kLingerTime{500};   // drain what a refused client still sends
constexpr std::chrono::milliseconds kAcceptRetry{100};  // after EMFILE and the like
constexpr std::chrono::seconds kStopWait{2};

std::string endpoint_text(const tcp::endpoint& ep) {
  std::string host = ep.address().to_string();
  if (ep.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

// "host:port", "[v6]:port" or ":port" into its parts; false when malformed.
bool split_address(const std::string& address, std::string* host, std::string* port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  *host = address.substr(0, colon);
  *port = address.substr(colon + 1);
  if (!host->empty() && host->front() == '[') {
    if (host->size() < 3 || host->back() != ']') return false;
    *host = host->substr(1, host->size() - 2);
  } else if (host->find(':') != std::string::npos) {
    return false;  // an IPv6 address needs brackets
  }
  if (host->empty()) *host = "0.0.0.0";
  if (port->empty() || port->size() > 5 || !std::all_of(port->begin(), port->end(), ::isdigit)) return false;
  return std::stoi(*port) <= 65535;
}

bool is_http_error(const beast::error_code& ec) {
  static const beast::error_code http_error = http::error::bad_method;
  return ec.category() == http_error.category();
}

void text_reply(Response& res, http::status status, std::string message) {
  res.result(status);
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = std::move(message) + "\n";
  res.prepare_payload();  // Content-Length
}

}  // namespace

class Connection;

class MetricsServer::Impl : public std::enable_shared_from_this<MetricsServer::Impl> {
 public:
  using Strand = net::strand<net::io_context::executor_type>;

  Impl(net::io_context& io, std::string address, const Telemetry& telemetry, Clock::time_point process_start)
      : io_(io),
        strand_(net::make_strand(io)),
        acceptor_(strand_),
        retry_timer_(strand_),
        address_(std::move(address)),
        telemetry_(telemetry),
        process_start_(process_start) {}

  Status start();
  void stop();
  uint16_t port() const { return port_; }
  const std::string& url() const { return url_; }

  // On the strand.
  const Strand& strand() const { return strand_; }
  bool stopping() const { return stopping_; }
  void answer(const Request& req, Response& res) const;
  void forget(Connection* c) { connections_.erase(c); }

 private:
  Status bind_and_listen();
  bool listen_on(const tcp::endpoint& ep, beast::error_code& ec);
  void do_accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void close_all();

  net::io_context& io_;
  Strand strand_;
  // Used on the strand once accepting (start() opens it before any handler exists).
  tcp::acceptor acceptor_;
  net::steady_timer retry_timer_;
  const std::string address_;
  const Telemetry& telemetry_;
  const Clock::time_point process_start_;
  std::atomic<uint16_t> port_{0};
  std::string url_;                 // written by start(), read by the control thread
  std::atomic<bool> started_{false};
  std::atomic<bool> stop_called_{false};
  bool stopping_ = false;           // on the strand: no new connections or requests
  // On the strand. Weak: a connection lives by its pending operations, not by this map.
  std::map<Connection*, std::weak_ptr<Connection>> connections_;
};

// One client connection. Used on the server's strand only.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<MetricsServer::Impl> server, tcp::socket socket)
      : server_(std::move(server)), stream_(std::move(socket)) {}

  void read() {
    if (closed_) return;
    if (server_->stopping()) return close();
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(kBodyLimit);
    stream_.expires_after(kReadTimeout);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Connection::on_read, shared_from_this()));
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();  // pending operations complete with operation_aborted
    server_->forget(this);
  }

 private:
  void on_read(beast::error_code ec, size_t) {
    if (closed_) return;
    res_ = Response(http::status::ok, 11);
    if (ec == http::error::body_limit) {
      text_reply(res_, http::status::payload_too_large,
                 "request body larger than " + std::to_string(kBodyLimit) + " bytes");
      return send(true);
    }
    if (ec == http::error::header_limit) {
      text_reply(res_, http::status::request_header_fields_too_large,
                 "request header larger than " + std::to_string(kHeaderLimit) + " bytes");
      return send(true);
    }
    if (ec && is_http_error(ec) && ec != http::error::end_of_stream && ec != http::error::partial_message) {
      text_reply(res_, http::status::bad_request, "malformed HTTP request: " + ec.message());
      return send(true);
    }
    if (ec) return close();  // peer closed, timeout or stop: nobody to answer
    const Request& req = parser_->get();
    res_.version(req.version());
    server_->answer(req, res_);
    send(!req.keep_alive() || server_->stopping());
  }

  void send(bool close_after) {
    close_after_ = close_after;
    res_.keep_alive(!close_after);
    stream_.expires_after(kWriteTimeout);
    http::async_write(stream_, res_, beast::bind_front_handler(&Connection::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, size_t) {
    if (ec) return close();
    res_ = {};
    if (close_after_) return linger();
    read();
  }

  // Half-close and read what the client still sends until it closes (briefly): closing with
  // unread bytes makes the kernel send a reset, which can destroy the response just written.
  void linger() {
    if (closed_) return;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLingerTime);
    drain();
  }

  void drain() {
    buffer_.consume(buffer_.size());
    stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->close();
      self->drain();
    });
  }

  std::shared_ptr<MetricsServer::Impl> server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response res_;
  bool close_after_ = false;
  bool closed_ = false;
};

Status MetricsServer::Impl::start() {
  if (started_ || stop_called_) return Status::internal("self-metrics server already started");
  Status s = bind_and_listen();
  if (!s.is_ok()) return s;
  beast::error_code ec;
  tcp::endpoint local = acceptor_.local_endpoint(ec);
  port_ = local.port();
  url_ = "http://" + endpoint_text(local) + "/metrics";
  started_ = true;
  net::dispatch(strand_, [self = shared_from_this()] { self->do_accept(); });
  return Status::ok();
}

Status MetricsServer::Impl::bind_and_listen() {
  std::string host, port;
  if (!split_address(address_, &host, &port)) {
    return Status::invalid_argument("address \"" + address_ + "\": expected host:port ([host]:port for IPv6)");
  }
  beast::error_code ec;
  tcp::resolver resolver(io_);
  auto results = resolver.resolve(host, port, tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) return Status::invalid_argument("resolve " + address_ + ": " + ec.message());
  // IPv4 first: "localhost" often resolves to ::1 first, while scrapers are mostly pointed at
  // 127.0.0.1. The first address that binds wins.
  std::vector<tcp::endpoint> candidates;
  for (const auto& entry : results) candidates.push_back(entry.endpoint());
  std::stable_partition(candidates.begin(), candidates.end(),
                        [](const tcp::endpoint& e) { return e.address().is_v4(); });
  std::string error = "resolve " + address_ + ": no address";
  for (const tcp::endpoint& ep : candidates) {
    if (listen_on(ep, ec)) return Status::ok();
    error = "bind " + endpoint_text(ep) + ": " + ec.message();
    beast::error_code ignored;
    acceptor_.close(ignored);
  }
  return Status::internal(error);
}

bool MetricsServer::Impl::listen_on(const tcp::endpoint& ep, beast::error_code& ec) {
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);  // restart despite TIME_WAIT
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  return !ec;
}

void MetricsServer::Impl::do_accept() {
  // Accepted sockets run on this strand too: every connection shares it.
  acceptor_.async_accept(strand_, beast::bind_front_handler(&Impl::on_accept, shared_from_this()));
}

void MetricsServer::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (stopping_ || !acceptor_.is_open() || ec == net::error::operation_aborted) return;
  if (ec) {
    // Out of descriptors and the like: try again shortly instead of spinning.
    retry_timer_.expires_after(kAcceptRetry);
    retry_timer_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
      if (!wait_ec && !self->stopping_) self->do_accept();
    });
    return;
  }
  if (connections_.size() < kMaxConnections) {
    auto c = std::make_shared<Connection>(shared_from_this(), std::move(socket));
    connections_.emplace(c.get(), c);
    c->read();
  }  // else the socket closes as it goes out of scope
  do_accept();
}

void MetricsServer::Impl::close_all() {
  stopping_ = true;
  beast::error_code ignored;
  acceptor_.close(ignored);
  retry_timer_.cancel();
  std::vector<std::shared_ptr<Connection>> live;
  for (auto& [raw, weak] : connections_) {
    if (auto c = weak.lock()) live.push_back(std::move(c));
  }
  for (auto& c : live) c->close();  // each erases itself from connections_
  connections_.clear();
}

void MetricsServer::Impl::stop() {
  if (stop_called_.exchange(true) || !started_) return;
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> closed = done->get_future();
  net::post(strand_, [self = shared_from_this(), done] {
    self->close_all();
    done->set_value();
  });
  // Bounded: if nobody runs the io_context any more, the handler runs (or is destroyed) with it.
  closed.wait_for(kStopWait);
}

void MetricsServer::Impl::answer(const Request& req, Response& res) const {
  const std::string_view target(req.target().data(), req.target().size());
  const std::string_view path = target.substr(0, target.find('?'));  // a query string is ignored
  const bool head = req.method() == http::verb::head;
  if (path != "/metrics") {
    text_reply(res, http::status::not_found, "not found; otlpd serves its metrics at /metrics");
  } else if (req.method() != http::verb::get && !head) {
    res.set(http::field::allow, "GET, HEAD");
    text_reply(res, http::status::method_not_allowed, "method not allowed; use GET");
  } else {
    res.result(http::status::ok);
    res.set(http::field::content_type, kPrometheusContentType);
    res.body() = metrics_page(telemetry_, process_start_);
    res.prepare_payload();
  }
  if (head) res.body().clear();  // keeps the Content-Length a GET would get
}

// ---- MetricsServer ----

MetricsServer::MetricsServer(net::io_context& io, std::string address, const Telemetry& telemetry,
                             Clock::time_point process_start)
    : impl_(std::make_shared<Impl>(io, std::move(address), telemetry, process_start)) {}

MetricsServer::~MetricsServer() { impl_->stop(); }

Status MetricsServer::start() { return impl_->start(); }

uint16_t MetricsServer::port() const { return impl_->port(); }

std::string MetricsServer::url() const { return impl_->url(); }

void MetricsServer::stop() { impl_->stop(); }

}  // namespace otlpd

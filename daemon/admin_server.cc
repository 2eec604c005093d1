#include "daemon/admin_server.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <future>
#include <optional>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "net/tcp_listen.h"

namespace otlpd {

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
// a client polling within its interval (a scraper, a health probe) reuses the connection.
constexpr std::chrono::seconds kReadTimeout{120};
constexpr std::chrono::seconds kWriteTimeout{30};
constexpr std::chrono::milliseconds kLingerTime{500};   // drain what a refused client still sends
constexpr std::chrono::milliseconds kAcceptRetry{100};  // after EMFILE and the like
constexpr std::chrono::seconds kStopWait{2};

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

class AdminConnection;

class AdminServer::Impl : public std::enable_shared_from_this<AdminServer::Impl> {
 public:
  using Strand = net::strand<net::io_context::executor_type>;

  Impl(net::io_context& io, std::string address, AdminRoutes routes, std::string not_found)
      : io_(io),
        strand_(net::make_strand(io)),
        acceptor_(strand_),
        retry_timer_(strand_),
        address_(std::move(address)),
        routes_(std::move(routes)),
        not_found_(std::move(not_found)) {}

  Status start();
  void stop();
  uint16_t port() const { return port_; }
  std::string url(std::string_view path) const { return base_url_ + std::string(path); }

  // On the strand.
  bool stopping() const { return stopping_; }
  void answer(const Request& req, Response& res) const;
  void forget(AdminConnection* c) { connections_.erase(c); }

 private:
  void do_accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void close_all();

  net::io_context& io_;
  Strand strand_;
  // Used on the strand once accepting (start() opens it before any handler exists).
  tcp::acceptor acceptor_;
  net::steady_timer retry_timer_;
  const std::string address_;
  const AdminRoutes routes_;  // called on the strand
  const std::string not_found_;
  std::atomic<uint16_t> port_{0};
  std::string base_url_;            // written by start(), read by the control thread
  std::atomic<bool> started_{false};
  std::atomic<bool> stop_called_{false};
  bool stopping_ = false;           // on the strand: no new connections or requests
  // On the strand. Weak: a connection lives by its pending operations, not by this map.
  std::map<AdminConnection*, std::weak_ptr<AdminConnection>> connections_;
};

// One client connection. Used on the server's strand only.
class AdminConnection : public std::enable_shared_from_this<AdminConnection> {
 public:
  AdminConnection(std::shared_ptr<AdminServer::Impl> server, tcp::socket socket)
      : server_(std::move(server)), stream_(std::move(socket)) {}

  void read() {
    if (closed_) return;
    if (server_->stopping()) return close();
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(kBodyLimit);
    stream_.expires_after(kReadTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&AdminConnection::on_read, shared_from_this()));
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
    http::async_write(stream_, res_, beast::bind_front_handler(&AdminConnection::on_write, shared_from_this()));
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

  std::shared_ptr<AdminServer::Impl> server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response res_;
  bool close_after_ = false;
  bool closed_ = false;
};

Status AdminServer::Impl::start() {
  if (started_ || stop_called_) return Status::internal("server for " + address_ + " already started");
  Status s = listen_tcp(io_, acceptor_, address_);
  if (!s.is_ok()) return s;
  beast::error_code ec;
  tcp::endpoint local = acceptor_.local_endpoint(ec);
  port_ = local.port();
  base_url_ = "http://" + endpoint_text(local);
  started_ = true;
  net::dispatch(strand_, [self = shared_from_this()] { self->do_accept(); });
  return Status::ok();
}

void AdminServer::Impl::do_accept() {
  // Accepted sockets run on this strand too: every connection shares it.
  acceptor_.async_accept(strand_, beast::bind_front_handler(&Impl::on_accept, shared_from_this()));
}

void AdminServer::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
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
    auto c = std::make_shared<AdminConnection>(shared_from_this(), std::move(socket));
    connections_.emplace(c.get(), c);
    c->read();
  }  // else the socket closes as it goes out of scope
  do_accept();
}

void AdminServer::Impl::close_all() {
  stopping_ = true;
  beast::error_code ignored;
  acceptor_.close(ignored);
  retry_timer_.cancel();
  std::vector<std::shared_ptr<AdminConnection>> live;
  for (auto& [raw, weak] : connections_) {
    if (auto c = weak.lock()) live.push_back(std::move(c));
  }
  for (auto& c : live) c->close();  // each erases itself from connections_
  connections_.clear();
}

void AdminServer::Impl::stop() {
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

void AdminServer::Impl::answer(const Request& req, Response& res) const {
  const std::string_view target(req.target().data(), req.target().size());
  const std::string_view path = target.substr(0, target.find('?'));  // a query string is ignored
  const bool head = req.method() == http::verb::head;
  auto route = routes_.find(path);
  if (route == routes_.end()) {
    text_reply(res, http::status::not_found, not_found_);
  } else if (req.method() != http::verb::get && !head) {
    res.set(http::field::allow, "GET, HEAD");
    text_reply(res, http::status::method_not_allowed, "method not allowed; use GET");
  } else {
    AdminReply reply = route->second();
    res.result(reply.status);
    res.set(http::field::content_type, reply.content_type);
    for (const auto& [name, value] : reply.headers) res.set(name, value);
    res.body() = std::move(reply.body);
    res.prepare_payload();
  }
  if (head) res.body().clear();  // keeps the Content-Length a GET would get
}

// ---- AdminServer ----

AdminServer::AdminServer(net::io_context& io, std::string address, AdminRoutes routes, std::string not_found)
    : impl_(std::make_shared<Impl>(io, std::move(address), std::move(routes), std::move(not_found))) {}

AdminServer::~AdminServer() { impl_->stop(); }

Status AdminServer::start() { return impl_->start(); }

uint16_t AdminServer::port() const { return impl_->port(); }

std::string AdminServer::url(std::string_view path) const { return impl_->url(path); }

void AdminServer::stop() { impl_->stop(); }

}  // namespace otlpd

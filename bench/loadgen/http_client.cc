// HttpTransport: Beast HTTP/1.1 keep-alive connections with pipelining. Threads: see http_client.h.
#include "bench/loadgen/http_client.h"

#include <deque>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "otlp/compression.h"
#include "otlp/json_codec.h"
#include "otlp/response.h"

namespace otlpd::loadgen {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using Request = http::request<http::string_body>;

namespace {

const char* path_for(otlp::Signal s) {
  switch (s) {
    case otlp::Signal::traces: return "/v1/traces";
    case otlp::Signal::metrics: return "/v1/metrics";
    case otlp::Signal::logs: return "/v1/logs";
  }
  return "/";
}

Outcome failed(const std::string& why) {
  Outcome o;
  o.kind = Outcome::Kind::failed;
  o.error = why;
  return o;
}

// One keep-alive connection. Every member is used on strand_ only.
class Conn : public std::enable_shared_from_this<Conn> {
 public:
  Conn(net::io_context& io, const HttpClientOptions& options, const tcp::resolver::results_type& addrs)
      : options_(options), addrs_(addrs), strand_(net::make_strand(io)), socket_(strand_), timer_(strand_) {}

  void send(std::string payload, Transport::Done done) {
    net::post(strand_, [self = shared_from_this(), payload = std::move(payload), done = std::move(done)]() mutable {
      self->enqueue(std::move(payload), std::move(done));
    });
  }

  void close() {
    net::post(strand_, [self = shared_from_this()] {
      beast::error_code ec;
      self->socket_.close(ec);
      self->timer_.cancel();
    });
  }

 private:
  struct Pending {
    std::shared_ptr<Request> req;
    Transport::Done done;
    SteadyClock::time_point start;
  };

  void enqueue(std::string payload, Transport::Done done) {
    auto req = std::make_shared<Request>(http::verb::post, path_for(options_.signal), 11);
    req->set(http::field::host, options_.endpoint);
    req->set(http::field::user_agent, "otlpd-loadgen/" OTLPD_VERSION);
    req->set(http::field::content_type,
             options_.format == Format::json ? "application/json" : "application/x-protobuf");
    if (options_.gzip) {
      req->set(http::field::content_encoding, "gzip");
      otlp::gzip_compress(payload, &req->body(), 1);
    } else {
      req->body() = std::move(payload);
    }
    req->keep_alive(true);
    req->prepare_payload();
    queue_.push_back({std::move(req), std::move(done), SteadyClock::now()});
    pump();
  }

  void pump() {
    if (!connected_) {
      if (!connecting_ && !queue_.empty()) connect();
      return;
    }
    if (!writing_ && !queue_.empty()) {
      writing_ = true;
      inflight_.push_back(std::move(queue_.front()));
      queue_.pop_front();
      auto req = inflight_.back().req;
      http::async_write(socket_, *req,
                        [self = shared_from_this(), req, gen = generation_](beast::error_code ec, size_t) {
                          self->on_write(ec, gen);
                        });
    }
    if (!reading_ && !inflight_.empty()) {
      reading_ = true;
      parser_.emplace();
      parser_->body_limit(64 << 20);
      http::async_read(socket_, buffer_, *parser_,
                       [self = shared_from_this(), gen = generation_](beast::error_code ec, size_t) {
                         self->on_read(ec, gen);
                       });
    }
    arm_timer();
  }

  void connect() {
    connecting_ = true;
    arm_timer();
    net::async_connect(socket_, addrs_, [self = shared_from_this(), gen = generation_](beast::error_code ec, const tcp::endpoint&) {
      if (gen != self->generation_) return;
      self->connecting_ = false;
      if (ec) return self->fail_all("connect: " + ec.message());
      self->socket_.set_option(tcp::no_delay(true), ec);
      self->connected_ = true;
      self->pump();
    });
  }

  void on_write(beast::error_code ec, uint64_t gen) {
    if (gen != generation_) return;
    writing_ = false;
    if (ec) return fail_all("write: " + ec.message());
    pump();
  }

  void on_read(beast::error_code ec, uint64_t gen) {
    if (gen != generation_) return;
    reading_ = false;
    if (ec) return fail_all("read: " + ec.message());
    auto res = parser_->release();
    parser_.reset();
    if (inflight_.empty()) return fail_all("response without a request");
    Pending p = std::move(inflight_.front());
    inflight_.pop_front();
    Outcome o;
    if (res.result_int() == 200) {
      o.kind = Outcome::Kind::ok;
      o.rejected_items = rejected_in(res.body());
    } else {
      o.kind = Outcome::Kind::refused;
      o.code = static_cast<int>(res.result_int());
    }
    p.done(std::move(o));
    if (!res.keep_alive()) return fail_all("server closed the connection");
    pump();
  }

  uint64_t rejected_in(const std::string& body) const {
    if (body.empty()) return 0;
    auto reply = otlp::new_response(options_.signal);
    bool ok = options_.format == Format::json ? otlp::json_to_message(body, *reply).empty() : reply->ParseFromString(body);
    if (!ok) return 0;
    auto partial = otlp::partial_success_of(options_.signal, *reply);
    return partial.rejected > 0 ? static_cast<uint64_t>(partial.rejected) : 0;
  }

  // The oldest request (written or still queued) bounds how long the connection may stay silent.
  void arm_timer() {
    if (timer_armed_) return;
    const Pending* oldest = !inflight_.empty() ? &inflight_.front() : (!queue_.empty() ? &queue_.front() : nullptr);
    if (!oldest) return;
    timer_armed_ = true;
    timer_.expires_at(oldest->start + options_.timeout);
    timer_.async_wait([self = shared_from_this()](beast::error_code) {
      self->timer_armed_ = false;
      const Pending* first = !self->inflight_.empty() ? &self->inflight_.front()
                                                      : (!self->queue_.empty() ? &self->queue_.front() : nullptr);
      if (first && SteadyClock::now() >= first->start + self->options_.timeout) {
        self->fail_all("timeout after " + std::to_string(self->options_.timeout.count()) + " ms");
      } else {
        self->arm_timer();
      }
    });
  }

  // Closes the connection and fails every request written or queued on it.
  void fail_all(const std::string& why) {
    ++generation_;
    beast::error_code ec;
    socket_.close(ec);
    connected_ = connecting_ = writing_ = reading_ = false;
    parser_.reset();
    buffer_.consume(buffer_.size());
    std::deque<Pending> failed_now;
    failed_now.swap(inflight_);
    for (auto& p : queue_) failed_now.push_back(std::move(p));
    queue_.clear();
    for (auto& p : failed_now) p.done(failed(why));
  }

  const HttpClientOptions options_;
  const tcp::resolver::results_type addrs_;
  net::strand<net::io_context::executor_type> strand_;
  tcp::socket socket_;
  net::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::deque<Pending> queue_;     // not yet written
  std::deque<Pending> inflight_;  // written (or being written), answers arrive in this order
  bool connecting_ = false, connected_ = false, writing_ = false, reading_ = false, timer_armed_ = false;
  uint64_t generation_ = 0;  // bumped on close, so handlers of the old socket do nothing
};

}  // namespace

class HttpTransport::Impl {
 public:
  explicit Impl(HttpClientOptions options) : options_(std::move(options)) {}

  bool start(std::string* error) {
    size_t colon = options_.endpoint.rfind(':');
    if (colon == std::string::npos) {
      *error = "endpoint must be host:port: " + options_.endpoint;
      return false;
    }
    std::string host = options_.endpoint.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    tcp::resolver resolver(io_);
    beast::error_code ec;
    addrs_ = resolver.resolve(host, options_.endpoint.substr(colon + 1), ec);
    if (ec) {
      *error = "resolve " + options_.endpoint + ": " + ec.message();
      return false;
    }
    for (size_t i = 0; i < options_.connections; ++i) conns_.push_back(std::make_shared<Conn>(io_, options_, addrs_));
    for (size_t i = 0; i < std::max<size_t>(1, options_.threads); ++i) threads_.emplace_back([this] { io_.run(); });
    return true;
  }

  void send(size_t conn, std::string payload, Done done) {
    conns_[conn % conns_.size()]->send(std::move(payload), std::move(done));
  }

  void shutdown() {
    if (stopped_) return;
    stopped_ = true;
    for (auto& c : conns_) c->close();
    guard_.reset();
    io_.stop();  // the driver has drained (or given up); pending handlers are dropped
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  ~Impl() { shutdown(); }

 private:
  HttpClientOptions options_;
  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> guard_ = net::make_work_guard(io_);
  tcp::resolver::results_type addrs_;
  std::vector<std::shared_ptr<Conn>> conns_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

HttpTransport::HttpTransport(HttpClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
HttpTransport::~HttpTransport() = default;
bool HttpTransport::start(std::string* error) { return impl_->start(error); }
void HttpTransport::send(size_t conn, std::string payload, Done done) { impl_->send(conn, std::move(payload), std::move(done)); }
void HttpTransport::shutdown() { impl_->shutdown(); }

}  // namespace otlpd::loadgen

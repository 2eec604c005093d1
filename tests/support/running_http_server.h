// An HttpServer (the OTLP/HTTP receiver's listener) on 127.0.0.1:0 with two I/O threads of its
// own, for tests and fuzz targets: no test framework here, so a fuzz target can use it too.
// The caller checks start()'s Status; the destructor shuts the server down and joins the threads.
#pragma once

#include <chrono>
#include <memory>
#include <thread>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "receivers/otlp/http_server.h"

namespace otlpd::test {

class RunningHttpServer {
 public:
  // `settings.endpoint` is replaced by 127.0.0.1:0.
  RunningHttpServer(HttpServerSettings settings, HttpServer::Handler handler) {
    settings.endpoint = "127.0.0.1:0";
    server_ = std::make_unique<HttpServer>(io_, settings, std::move(handler));
  }
  ~RunningHttpServer() {
    server_->shutdown(Clock::now() + std::chrono::seconds(2));
    server_.reset();
    guard_.reset();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  RunningHttpServer(const RunningHttpServer&) = delete;
  RunningHttpServer& operator=(const RunningHttpServer&) = delete;

  // Listens and starts the I/O threads; call once, before port().
  Status start() {
    Status s = server_->start();
    if (!s.is_ok()) return s;
    for (auto& t : threads_) t = std::thread([this] { io_.run(); });
    return s;
  }
  uint16_t port() const { return server_->port(); }
  HttpServer& server() { return *server_; }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_ =
      boost::asio::make_work_guard(io_);
  std::thread threads_[2];
  std::unique_ptr<HttpServer> server_;
};

}  // namespace otlpd::test

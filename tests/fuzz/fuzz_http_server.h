// The HttpServer that the HTTP fuzz targets (fuzz_http, fuzz_http2) write their inputs to: on
// 127.0.0.1:0 for the whole run, two I/O threads, a handler that counts its calls and answers OK.
// A server that cannot start aborts the run. Exchange: what one input's connection got back.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "receivers/otlp/http_server.h"

namespace otlpd::fuzz {

class FuzzHttpServer {
 public:
  // `settings.endpoint` is replaced by 127.0.0.1:0; `handler_calls` counts the handler's calls.
  FuzzHttpServer(const char* target, HttpServerSettings settings, std::atomic<unsigned long>* handler_calls) {
    settings.endpoint = "127.0.0.1:0";
    server_ = std::make_unique<HttpServer>(io_, settings, [handler_calls](Signal, std::string&&) {
      ++*handler_calls;
      return Status::ok();
    });
    Status st = server_->start();
    if (!st.is_ok() || server_->port() == 0) {
      std::fprintf(stderr, "%s: cannot start the server: %s\n", target, st.to_string().c_str());
      std::abort();
    }
    for (auto& t : threads_) t = std::thread([this] { io_.run(); });
  }
  ~FuzzHttpServer() {
    server_->shutdown(Clock::now() + std::chrono::seconds(1));
    server_.reset();
    guard_.reset();
    for (auto& t : threads_) t.join();
  }
  FuzzHttpServer(const FuzzHttpServer&) = delete;
  FuzzHttpServer& operator=(const FuzzHttpServer&) = delete;

  uint16_t port() const { return server_->port(); }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_ =
      boost::asio::make_work_guard(io_);
  std::thread threads_[2];
  std::unique_ptr<HttpServer> server_;
};

// What came back on one connection a fuzz target wrote an input to.
struct Exchange {
  bool connected = false;
  std::string response;  // every byte the server sent
  bool eof = false;      // the server closed the connection cleanly
  bool reset = false;    // ... or reset it
  bool timeout = false;  // still open when the client gave up waiting
  std::chrono::steady_clock::duration took{};
};

}  // namespace otlpd::fuzz

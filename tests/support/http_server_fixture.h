// An HttpServer (the OTLP/HTTP receiver's listener) on 127.0.0.1:0 for tests: two I/O threads,
// a handler that records every call and answers with a Status the test chooses. Catch2 checks in
// the constructor: construct it on the test's thread.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "extensions/bearertokenauth/bearer_token.h"
#include "receivers/otlp/http_server.h"

namespace otlpd::test {

struct HttpCall {
  Signal signal;
  std::string bytes;
};

class HttpServerFixture {
 public:
  explicit HttpServerFixture(HttpServerSettings settings = {}, std::shared_ptr<const BearerToken> auth = nullptr) {
    settings.endpoint = "127.0.0.1:0";
    server_ = std::make_unique<HttpServer>(io_, settings, [this](Signal signal, std::string&& bytes) {
      std::lock_guard lock(mu_);
      calls_.push_back({signal, std::move(bytes)});
      return answer_;
    });
    if (auth) server_->require(std::move(auth));
    Status s = server_->start();
    INFO(s.to_string());
    REQUIRE(s.is_ok());
    REQUIRE(server_->port() != 0);
    for (auto& t : threads_) t = std::thread([this] { io_.run(); });
  }

  ~HttpServerFixture() {
    server_->shutdown(Clock::now() + std::chrono::seconds(2));
    server_.reset();
    guard_.reset();
    for (auto& t : threads_) t.join();
  }
  HttpServerFixture(const HttpServerFixture&) = delete;
  HttpServerFixture& operator=(const HttpServerFixture&) = delete;

  uint16_t port() const { return server_->port(); }
  HttpServer& server() { return *server_; }
  // What the handler answers from now on (default: OK).
  void answer(Status s) {
    std::lock_guard lock(mu_);
    answer_ = std::move(s);
  }
  // Every call the handler got, in order.
  std::vector<HttpCall> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_ =
      boost::asio::make_work_guard(io_);
  std::thread threads_[2];
  std::unique_ptr<HttpServer> server_;
  std::mutex mu_;
  Status answer_;
  std::vector<HttpCall> calls_;
};

}  // namespace otlpd::test

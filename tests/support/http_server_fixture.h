// An HttpServer (the OTLP/HTTP receiver's listener) on 127.0.0.1:0 for tests (RunningHttpServer),
// with a handler that records every call and answers with a Status the test chooses. Catch2 checks in
// the constructor: construct it on the test's thread.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "extensions/bearertokenauth/bearer_token.h"
#include "receivers/otlp/http_server.h"
#include "support/running_http_server.h"

namespace otlpd::test {

struct HttpCall {
  Signal signal;
  std::string bytes;
};

class HttpServerFixture {
 public:
  explicit HttpServerFixture(HttpServerSettings settings = {}, std::shared_ptr<const BearerToken> auth = nullptr)
      : running_(std::move(settings), [this](Signal signal, std::string&& bytes) {
          std::lock_guard lock(mu_);
          calls_.push_back({signal, std::move(bytes)});
          return answer_;
        }) {
    if (auth) running_.server().require(std::move(auth));
    Status s = running_.start();
    INFO(s.to_string());
    REQUIRE(s.is_ok());
    REQUIRE(running_.port() != 0);
  }

  uint16_t port() const { return running_.port(); }
  HttpServer& server() { return running_.server(); }
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
  std::mutex mu_;
  Status answer_;
  std::vector<HttpCall> calls_;
  RunningHttpServer running_;  // last: stopped before what its handler uses goes away
};

}  // namespace otlpd::test

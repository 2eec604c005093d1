// The HttpServer that the HTTP fuzz targets (fuzz_http, fuzz_http2) write their inputs to: on
// 127.0.0.1:0 for the whole run, two I/O threads, a handler that counts its calls and answers OK.
// A server that cannot start aborts the run. Exchange: what one input's connection got back.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "receivers/otlp/http_server.h"
#include "support/running_http_server.h"

namespace otlpd::fuzz {

class FuzzHttpServer {
 public:
  // `handler_calls` counts the handler's calls.
  FuzzHttpServer(const char* target, HttpServerSettings settings, std::atomic<unsigned long>* handler_calls)
      : running_(std::move(settings), [handler_calls](Signal, std::string&&) {
          ++*handler_calls;
          return Status::ok();
        }) {
    Status st = running_.start();
    if (!st.is_ok() || running_.port() == 0) {
      std::fprintf(stderr, "%s: cannot start the server: %s\n", target, st.to_string().c_str());
      std::abort();
    }
  }

  uint16_t port() const { return running_.port(); }

 private:
  test::RunningHttpServer running_;
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

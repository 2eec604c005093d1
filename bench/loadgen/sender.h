// run_send: the `send` command. Builds the payload pool, then drives requests through a
// Transport with a fixed number of in-flight slots (connections x concurrency), optional rate
// pacing, and a stop condition (duration or request count); waits for the answers, reports.
//
// Threads: run_send() runs the driver on the calling thread; it takes a free slot, waits for the
// request's scheduled time when a rate is set, patches the payload and calls Transport::send().
// Completions (transport threads) record the outcome and hand the slot back.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

#include "bench/loadgen/payload.h"
#include "otlp/signal.h"

namespace otlpd::loadgen {

enum class Protocol { grpc, http_proto, http_json };

struct SendOptions {
  otlp::Signal signal = otlp::Signal::traces;
  Protocol protocol = Protocol::grpc;
  std::string endpoint = "127.0.0.1:4317";
  double rate = 0;                              // items/s; 0 = as fast as possible
  std::chrono::milliseconds duration{10000};    // used when requests == 0
  uint64_t requests = 0;                        // stop after this many requests (0 = use duration)
  size_t connections = 1;                       // gRPC channels / HTTP connections
  size_t concurrency = 1;                       // requests in flight per connection
  size_t items_per_request = 100;
  bool gzip = false;
  uint64_t seed = 1;
  std::chrono::milliseconds timeout{10000};     // per request
  size_t threads = 2;                           // HTTP client I/O threads
  std::string acked_file;                       // at exit: ids of acknowledged items (item_keys.h)
};

std::string protocol_name(Protocol p);

// Runs the load; prints the report to `out`. Returns 0 when the run completed (refusals and
// failures included), 1 when it could not start (payload or endpoint problem; message on `err`).
int run_send(const SendOptions& options, std::ostream& out, std::ostream& err);

}  // namespace otlpd::loadgen

// run_sink: the `sink` command, an OTLP server that counts what it receives and answers per mode.
//
// It reuses otlpd's GrpcServer and HttpServer with its own handler, which only walks the wire
// format (otlp::count_items; HttpServer has already converted JSON bodies to protobuf). Modes:
//   ok      accept everything
//   fail    answer INVALID_ARGUMENT / 400 to every request, or to the fraction --fail-rate of
//           them (deterministic: request n fails when floor((n+1)*rate) > floor(n*rate))
//   refuse  answer UNAVAILABLE + RetryInfo / 503 + Retry-After (Status::unavailable)
//   stall   hold each request for `stall` (or until shutdown), then answer UNAVAILABLE
// Malformed requests are answered INVALID_ARGUMENT and counted apart. `delay` (ok, fail, refuse)
// holds each request that long before answering it as the mode says: a backend that is slow but
// answers, whose throughput is bounded by the requests the client keeps in flight.
// With `distinct`, the sink also remembers the identity of every item it accepted (a span or log
// record by its trace and span ids, a metric point by its timestamp; otlpd-loadgen makes these
// unique per item, see payload.h) and reports how many were distinct and how many were accepted
// again (duplicates), so a test can tell a redelivery from a loss.
//
// Threads: the calling thread blocks SIGINT/SIGTERM (call run_sink before starting any other
// thread so every thread inherits the mask), prints a line per report interval and waits for the
// signal. Handlers run on `threads` gRPC threads and `threads` HTTP I/O threads; counters are atomics,
// the set of item identities (`distinct`) is guarded by a mutex. A stalled or delayed request holds
// its handler thread, so at most that many requests are held at once per server (`threads` each
// for gRPC and HTTP).
#pragma once

#include <chrono>
#include <ostream>
#include <string>

namespace otlpd::loadgen {

enum class SinkMode { ok, fail, stall, refuse };

struct SinkOptions {
  std::string grpc_endpoint = "127.0.0.1:4317";  // "" or "none": no gRPC server
  std::string http_endpoint = "127.0.0.1:4318";  // "" or "none": no HTTP server
  SinkMode mode = SinkMode::ok;
  double fail_rate = 1.0;                         // fail mode: fraction of requests failed
  std::chrono::milliseconds report_interval{1000};
  std::chrono::milliseconds stall{30000};
  std::chrono::milliseconds delay{0};             // ok, fail, refuse: hold each request this long first
  bool distinct = false;                          // remember accepted items' identities (RESULT:
                                                  // items_distinct, items_duplicates)
  std::string ids_file;                           // with distinct: at exit, every identity in hex,
                                                  // one per line (see item_keys.h)
  std::string ports_file;                         // also write "grpc=PORT http=PORT\n" here
  size_t threads = 4;                             // handler threads, each for gRPC and HTTP
};

// Serves until SIGINT or SIGTERM; prints `LISTENING grpc=P http=P`, a line per interval
// (`INTERVAL t=T requests=N items=N items/s=R accepted=N`: received so far, and accepted so far,
// which a delayed request is only once answered), and `RESULT {json}` with the totals on `out`. Returns 0, or 1 when a server cannot start.
int run_sink(const SinkOptions& options, std::ostream& out, std::ostream& err);

}  // namespace otlpd::loadgen

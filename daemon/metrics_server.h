// Self-metrics: otlpd's own counters (Telemetry) served as Prometheus text on GET /metrics, at
// service.telemetry.metrics.address, like the Collector's `otelcol_*` endpoint on :8888.
//
// Two parts:
//  - Exposition (pure functions, no I/O but the process readings): expose() renames an internal
//    sample the way the Collector names its series (`otlpd_receiver_accepted_items{signal=traces}`
//    becomes `otlpd_receiver_accepted_spans`); render_prometheus() writes text format 0.0.4;
//    process_samples() reads RSS, CPU time, uptime and the build; metrics_page() is the whole body.
//  - MetricsServer: an AdminServer (see admin_server.h: keep-alive, GET and HEAD only, bounded
//    requests and connections, one strand) answering /metrics with metrics_page(), 404 elsewhere,
//    405 for other methods.
//
// Threads and ownership: as AdminServer's. It reads the Telemetry it was given (thread-safe) from
// the server's strand; the Telemetry must outlive the threads running the io_context. start(),
// port(), url() and stop() are called from one control thread, never from an I/O thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "daemon/admin_server.h"
#include "pipeline/component.h"
#include "pipeline/status.h"
#include "pipeline/telemetry.h"

namespace otlpd {

// One series as exposed to Prometheus. `value` is a double because process metrics are decimal;
// integers up to 2^53 print exactly.
struct PromSample {
  std::string name;
  Telemetry::Labels labels;
  double value = 0;
  Telemetry::Kind kind = Telemetry::Kind::counter;
  std::string help;  // empty: a generic text by kind
};

// The exposed form of an internal sample. A name ending in `_items` with a `signal` label of
// traces, metrics or logs ends instead in `_spans`, `_metric_points` or `_log_records`, and the
// signal label goes (the name says it). Everything else passes unchanged.
PromSample expose(const Telemetry::Sample& sample);

// Text exposition format 0.0.4: one `# HELP` and `# TYPE` per family, families sorted by name and
// series by labels, series with equal name and labels summed. Names and label names are made
// valid (other characters become `_`); label values are escaped (\\, \", \n).
std::string render_prometheus(const std::vector<PromSample>& samples);

// The process as it is now: otlpd_process_memory_rss (bytes), otlpd_process_cpu_seconds (user +
// system), otlpd_process_uptime (seconds since `process_start`), otlpd_build_info{version}.
std::vector<PromSample> process_samples(Clock::time_point process_start);

// The /metrics body: every Telemetry sample exposed, plus process_samples().
std::string metrics_page(const Telemetry& telemetry, Clock::time_point process_start);

// The Content-Type of metrics_page().
inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

class MetricsServer {
 public:
  // `address` is "host:port", "[v6]:port" or ":port" (all IPv4 interfaces); a host name is
  // resolved, port 0 picks a free port. `process_start` is what uptime counts from.
  // Destroying it stops it if the owner did not (while the io_context still runs: it waits for it).
  MetricsServer(boost::asio::io_context& io, std::string address, const Telemetry& telemetry,
                Clock::time_point process_start = Clock::now());

  // Resolves, binds and listens, then accepts on the io_context. Returns quickly; an error Status
  // naming the address (e.g. "bind 127.0.0.1:8888: Address already in use") when it fails, having
  // undone its work.
  Status start();
  // The bound port and "http://HOST:PORT/metrics", valid after a successful start().
  uint16_t port() const;
  std::string url() const;
  // Stops accepting and closes every connection (a response being written is cut). Waits, up to
  // a couple of seconds, until that happened on the strand. Idempotent.
  void stop();

 private:
  AdminServer server_;
};

}  // namespace otlpd

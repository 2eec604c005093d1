// SendStats: counting outcomes and writing the report. Threads: see stats.h.
#include "bench/loadgen/stats.h"

#include <cstdio>

#include <nlohmann/json.hpp>

namespace otlpd::loadgen {

void SendStats::record(const Outcome& o, uint64_t items, uint64_t latency_us) {
  switch (o.kind) {
    case Outcome::Kind::ok: {
      const uint64_t rejected = o.rejected_items < items ? o.rejected_items : items;
      requests_ok_.fetch_add(1, std::memory_order_relaxed);
      items_acked_.fetch_add(items - rejected, std::memory_order_relaxed);
      items_rejected_.fetch_add(rejected, std::memory_order_relaxed);
      latency_.record(latency_us);
      break;
    }
    case Outcome::Kind::refused: {
      requests_refused_.fetch_add(1, std::memory_order_relaxed);
      items_refused_total_.fetch_add(items, std::memory_order_relaxed);
      latency_.record(latency_us);
      std::lock_guard lock(mu_);
      items_refused_[o.code] += items;
      requests_refused_by_[o.code] += 1;
      break;
    }
    case Outcome::Kind::failed: {
      requests_failed_.fetch_add(1, std::memory_order_relaxed);
      items_failed_.fetch_add(items, std::memory_order_relaxed);
      std::lock_guard lock(mu_);
      if (first_error_.empty()) first_error_ = o.error;
      break;
    }
  }
}

void SendStats::report(const RunInfo& info, std::chrono::nanoseconds elapsed, std::ostream& out) const {
  const double secs = static_cast<double>(elapsed.count()) / 1e9;
  const uint64_t answered = requests_ok_.load() + requests_refused_.load();
  const double rps = secs > 0 ? static_cast<double>(answered) / secs : 0;
  const double ips = secs > 0 ? static_cast<double>(items_acked_.load()) / secs : 0;
  std::lock_guard lock(mu_);

  char line[256];
  auto row = [&](const char* name, const std::string& value) {
    std::snprintf(line, sizeof line, "  %-24s %s\n", name, value.c_str());
    out << line;
  };
  auto num = [](uint64_t v) { return std::to_string(v); };
  auto fixed = [](double v) {
    char b[64];
    std::snprintf(b, sizeof b, "%.3f", v);
    return std::string(b);
  };
  out << "otlpd-loadgen send: " << info.signal << " over " << info.protocol << " to " << info.endpoint
      << (info.gzip ? " (gzip)" : "") << ", " << info.connections << " connection(s) x " << info.concurrency
      << " in flight, " << info.items_per_request << " items/request (" << info.payload_bytes << " bytes)\n";
  row("duration (s)", fixed(secs));
  row("requests sent", num(requests_sent_.load()));
  row("items sent", num(items_sent_.load()));
  row("items acknowledged", num(items_acked_.load()));
  row("items rejected (partial)", num(items_rejected_.load()));
  for (const auto& [code, n] : items_refused_) {
    row(("items refused " + std::string(info.protocol == "grpc" ? "grpc " : "http ") + std::to_string(code)).c_str(),
        num(n));
  }
  row("items failed", num(items_failed_.load()) + (first_error_.empty() ? "" : " (first: " + first_error_ + ")"));
  row("requests/s", fixed(rps));
  row("items/s (acknowledged)", fixed(ips));
  row("latency p50 (us)", num(latency_.percentile(50)));
  row("latency p99 (us)", num(latency_.percentile(99)));
  row("latency max (us)", num(latency_.max()));

  nlohmann::json j;
  j["signal"] = info.signal;
  j["protocol"] = info.protocol;
  j["endpoint"] = info.endpoint;
  j["gzip"] = info.gzip;
  j["connections"] = info.connections;
  j["concurrency"] = info.concurrency;
  j["items_per_request"] = info.items_per_request;
  j["payload_bytes"] = info.payload_bytes;
  j["duration_s"] = secs;
  j["requests_sent"] = requests_sent_.load();
  j["items_sent"] = items_sent_.load();
  j["requests_ok"] = requests_ok_.load();
  j["items_acknowledged"] = items_acked_.load();
  j["items_rejected_partial"] = items_rejected_.load();
  j["requests_refused"] = requests_refused_.load();
  j["items_refused_total"] = items_refused_total_.load();
  nlohmann::json refused = nlohmann::json::object();
  for (const auto& [code, n] : items_refused_) refused[std::to_string(code)] = n;
  j["items_refused"] = refused;
  nlohmann::json refused_requests = nlohmann::json::object();
  for (const auto& [code, n] : requests_refused_by_) refused_requests[std::to_string(code)] = n;
  j["requests_refused_by_status"] = refused_requests;
  j["requests_failed"] = requests_failed_.load();
  j["items_failed"] = items_failed_.load();
  if (!first_error_.empty()) j["first_error"] = first_error_;
  j["requests_per_s"] = rps;
  j["items_per_s"] = ips;
  j["latency_us"] = {{"p50", latency_.percentile(50)},
                     {"p90", latency_.percentile(90)},
                     {"p99", latency_.percentile(99)},
                     {"max", latency_.max()},
                     {"count", latency_.count()}};
  out << "RESULT " << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  out.flush();
}

}  // namespace otlpd::loadgen

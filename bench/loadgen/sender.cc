// run_send: payload pool, slot accounting, pacing and the drain. Threads: see sender.h.
#include "bench/loadgen/sender.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include "bench/loadgen/grpc_client.h"
#include "bench/loadgen/http_client.h"
#include "bench/loadgen/item_keys.h"
#include "bench/loadgen/stats.h"

namespace otlpd::loadgen {

namespace {

using SteadyClock = std::chrono::steady_clock;

// Numbers of the requests answered OK with nothing rejected (for --acked-file). Completions add
// from transport threads; read once at the end.
class AckedRequests {
 public:
  void add(uint64_t request) {
    std::lock_guard lock(mu_);
    requests_.push_back(request);
  }
  std::vector<uint64_t> take() {
    std::lock_guard lock(mu_);
    return std::move(requests_);
  }

 private:
  std::mutex mu_;
  std::vector<uint64_t> requests_;
};

// Rebuilds each acknowledged request (make() is deterministic) and writes its items' ids.
bool write_acked_ids(const PayloadGenerator& gen, std::vector<uint64_t> requests, const std::string& path) {
  std::sort(requests.begin(), requests.end());
  std::ofstream file(path, std::ios::trunc);
  std::string payload;
  std::vector<std::string> keys;
  for (uint64_t r : requests) {
    gen.make(r, &payload);
    keys.clear();
    if (!item_keys(gen.options().signal, payload, &keys)) return false;
    for (const auto& key : keys) file << hex(key) << '\n';
  }
  return static_cast<bool>(file.flush());
}

// Free in-flight slots, each naming its connection. Guarded by a mutex; completions return slots.
class Slots {
 public:
  Slots(size_t connections, size_t concurrency) : total_(connections * concurrency) {
    for (size_t k = 0; k < concurrency; ++k) {
      for (size_t c = 0; c < connections; ++c) free_.push_back(c);
    }
  }
  // A free slot's connection, or -1 when none became free before `deadline`.
  long take(SteadyClock::time_point deadline) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_until(lock, deadline, [&] { return !free_.empty(); })) return -1;
    size_t c = free_.front();
    free_.pop_front();
    return static_cast<long>(c);
  }
  void give(size_t conn) {
    {
      std::lock_guard lock(mu_);
      free_.push_back(conn);
      last_answer_ = SteadyClock::now();
    }
    cv_.notify_all();
  }
  // Waits until every slot is back; false when `deadline` passed first.
  bool wait_all(SteadyClock::time_point deadline) {
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, deadline, [&] { return free_.size() == total_; });
  }
  SteadyClock::time_point last_answer() {
    std::lock_guard lock(mu_);
    return last_answer_;
  }

 private:
  const size_t total_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<size_t> free_;
  SteadyClock::time_point last_answer_{};
};

}  // namespace

std::string protocol_name(Protocol p) {
  switch (p) {
    case Protocol::grpc: return "grpc";
    case Protocol::http_proto: return "http-proto";
    case Protocol::http_json: return "http-json";
  }
  return "?";
}

int run_send(const SendOptions& o, std::ostream& out, std::ostream& err) {
  PayloadOptions po;
  po.signal = o.signal;
  po.format = o.protocol == Protocol::http_json ? Format::json : Format::protobuf;
  po.items_per_request = o.items_per_request;
  po.seed = o.seed;
  if (!o.acked_file.empty() && po.format != Format::protobuf) {
    err << "otlpd-loadgen: --acked-file needs a protobuf protocol (grpc or http-proto)\n";
    return 1;
  }
  std::unique_ptr<PayloadGenerator> gen;
  try {
    gen = std::make_unique<PayloadGenerator>(po);
  } catch (const std::exception& e) {
    err << "otlpd-loadgen: " << e.what() << "\n";
    return 1;
  }

  std::unique_ptr<Transport> transport;
  if (o.protocol == Protocol::grpc) {
    transport = std::make_unique<GrpcTransport>(GrpcClientOptions{o.endpoint, o.signal, o.connections, o.gzip, o.timeout});
  } else {
    HttpClientOptions ho;
    ho.endpoint = o.endpoint;
    ho.signal = o.signal;
    ho.format = po.format;
    ho.connections = o.connections;
    ho.gzip = o.gzip;
    ho.threads = o.threads;
    ho.timeout = o.timeout;
    transport = std::make_unique<HttpTransport>(ho);
  }
  std::string error;
  if (!transport->start(&error)) {
    err << "otlpd-loadgen: " << error << "\n";
    return 1;
  }

  // Shared with the completion callbacks, which may outlive this function if a call never ends.
  auto stats_ptr = std::make_shared<SendStats>();
  auto acked_ptr = std::make_shared<AckedRequests>();
  auto slots_ptr = std::make_shared<Slots>(o.connections, o.concurrency);
  SendStats& stats = *stats_ptr;
  Slots& slots = *slots_ptr;
  const uint64_t items = o.items_per_request;
  const std::chrono::nanoseconds interval =
      o.rate > 0 ? std::chrono::nanoseconds(static_cast<int64_t>(1e9 * static_cast<double>(items) / o.rate))
                 : std::chrono::nanoseconds(0);
  const auto start = SteadyClock::now();
  const auto end = o.requests > 0 ? SteadyClock::time_point::max() : start + o.duration;
  std::string payload;
  for (uint64_t j = 0; o.requests == 0 || j < o.requests; ++j) {
    if (SteadyClock::now() >= end) break;
    // With a request count there is no end time; a slot comes back at the latest after the
    // per-request timeout, so wait a little longer than that.
    const auto slot_deadline = o.requests > 0 ? SteadyClock::now() + o.timeout + std::chrono::seconds(5) : end;
    long conn = slots.take(slot_deadline);
    if (conn < 0) {
      if (o.requests > 0) err << "otlpd-loadgen: no answer within the timeout; stopping early\n";
      break;
    }
    if (interval.count() > 0) {
      const auto when = start + interval * static_cast<int64_t>(j);
      if (when >= end) {
        slots.give(static_cast<size_t>(conn));
        break;
      }
      if (when > SteadyClock::now()) std::this_thread::sleep_until(when);
    }
    gen->make(j, &payload);
    stats.sent(items);
    const auto t0 = SteadyClock::now();
    transport->send(static_cast<size_t>(conn), std::move(payload),
                    [stats_ptr, slots_ptr, acked_ptr, t0, items, conn, j](Outcome outcome) {
                      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - t0);
                      stats_ptr->record(outcome, items, static_cast<uint64_t>(us.count()));
                      if (outcome.kind == Outcome::Kind::ok && outcome.rejected_items == 0) acked_ptr->add(j);
                      slots_ptr->give(static_cast<size_t>(conn));
                    });
    payload = std::string();
  }
  const bool drained = slots.wait_all(SteadyClock::now() + o.timeout + std::chrono::seconds(5));
  const auto last = slots.last_answer();
  transport->shutdown();
  if (!drained) err << "otlpd-loadgen: some requests were still unanswered at exit\n";

  if (!o.acked_file.empty() && !write_acked_ids(*gen, acked_ptr->take(), o.acked_file)) {
    err << "otlpd-loadgen: cannot write " << o.acked_file << "\n";
  }

  RunInfo info;
  info.signal = std::string(otlp::signal_name(o.signal));
  info.protocol = protocol_name(o.protocol);
  info.endpoint = o.endpoint;
  info.connections = o.connections;
  info.concurrency = o.concurrency;
  info.items_per_request = o.items_per_request;
  info.rate = o.rate;
  info.gzip = o.gzip;
  info.payload_bytes = gen->average_bytes();
  const auto finish = last > start ? last : SteadyClock::now();
  stats.report(info, finish - start, out);
  return 0;
}

}  // namespace otlpd::loadgen

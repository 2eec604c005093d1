// BufferPool, BlockPool and pooled batches: reuse, bounds, and the counters they report.
#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include "pipeline/batch.h"
#include "pipeline/buffer_pool.h"
#include "pipeline/telemetry.h"

namespace otlpd {
namespace {

uint64_t stat(const Telemetry& t, const std::string& name, const std::string& pool) {
  return t.value(name, {{"pool", pool}});
}

TEST_CASE("a buffer pool hands back released buffers and counts hits and misses", "[pool]") {
  Telemetry telemetry;
  BufferPool pool("p", 2, 1 << 20, telemetry);
  std::string a = pool.acquire(1000);
  CHECK(a.empty());
  CHECK(a.capacity() >= 1000);
  CHECK(stat(telemetry, "otlpd_pool_misses", "p") == 1);
  a.assign(900, 'x');
  const char* memory = a.data();
  pool.release(std::move(a));
  CHECK(stat(telemetry, "otlpd_pool_size", "p") == 1);

  std::string b = pool.acquire(500);
  CHECK(b.empty());  // released buffers come back cleared
  CHECK(b.data() == memory);  // the same memory, not a new allocation
  CHECK(stat(telemetry, "otlpd_pool_hits", "p") == 1);
  CHECK(stat(telemetry, "otlpd_pool_misses", "p") == 1);
  CHECK(stat(telemetry, "otlpd_pool_size", "p") == 0);
}

TEST_CASE("a buffer pool keeps at most max_buffers, none above max_capacity", "[pool]") {
  Telemetry telemetry;
  BufferPool pool("p", 2, 4096, telemetry);
  for (int i = 0; i < 3; ++i) pool.release(pool.acquire(1000));
  CHECK(stat(telemetry, "otlpd_pool_size", "p") == 1);  // one buffer went round three times
  CHECK(stat(telemetry, "otlpd_pool_hits", "p") == 2);
  std::vector<std::string> held;
  for (int i = 0; i < 4; ++i) held.push_back(pool.acquire(1000));
  for (auto& s : held) pool.release(std::move(s));
  CHECK(stat(telemetry, "otlpd_pool_size", "p") == 2);
  std::string big;
  big.reserve(8192);
  pool.acquire(0);
  pool.release(std::move(big));  // too large to keep
  CHECK(stat(telemetry, "otlpd_pool_size", "p") == 1);  // the acquire above took one, nothing came back
}

TEST_CASE("pooled batches reuse their object block and return their payload buffer", "[pool]") {
  Telemetry telemetry;
  BlockPool objects("objects", 8, telemetry);
  BufferPool buffers("buffers", 8, 1 << 20, telemetry);
  std::string payload = buffers.acquire(4096);
  payload.assign(3000, 'y');
  BatchPtr first = make_pooled_batch(objects, buffers, Signal::logs, std::move(payload), 7);
  CHECK(first->signal == Signal::logs);
  CHECK(first->items == 7);
  CHECK(first->payload == std::string(3000, 'y'));
  const void* block = first.get();
  first.reset();
  CHECK(stat(telemetry, "otlpd_pool_size", "objects") == 1);
  CHECK(stat(telemetry, "otlpd_pool_size", "buffers") == 1);

  BatchPtr second = make_pooled_batch(objects, buffers, Signal::traces, buffers.acquire(10), 1);
  CHECK(second.get() == block);
  CHECK(stat(telemetry, "otlpd_pool_hits", "objects") == 1);
  CHECK(stat(telemetry, "otlpd_pool_misses", "objects") == 1);
  CHECK(stat(telemetry, "otlpd_pool_hits", "buffers") == 1);
  CHECK(second->payload.capacity() >= 3000);  // the first batch's buffer
}

TEST_CASE("pools are safe to use from several threads", "[pool]") {
  Telemetry telemetry;
  BlockPool objects("objects", 16, telemetry);
  BufferPool buffers("buffers", 16, 1 << 20, telemetry);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        std::string p = buffers.acquire(256);
        p.assign(100, 'z');
        BatchPtr b = make_pooled_batch(objects, buffers, Signal::traces, std::move(p), 1);
        REQUIRE(b->payload.size() == 100);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(stat(telemetry, "otlpd_pool_hits", "objects") + stat(telemetry, "otlpd_pool_misses", "objects") == 8000);
  CHECK(stat(telemetry, "otlpd_pool_hits", "buffers") + stat(telemetry, "otlpd_pool_misses", "buffers") == 8000);
  CHECK(stat(telemetry, "otlpd_pool_misses", "objects") <= 4);  // one per thread at most in flight
  CHECK(stat(telemetry, "otlpd_pool_size", "objects") <= 4);
}

}  // namespace
}  // namespace otlpd

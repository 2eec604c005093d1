// Telemetry: otlpd's own counters (accepted, refused, dropped, sent, failed, pool hits...).
//
// A counter is created once at component construction (takes a mutex) and then updated lock-free
// from any thread. Counters live as long as the Telemetry object, which outlives every component.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace otlpd {

class Counter {
 public:
  void add(uint64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  // For values that go down as well (a gauge: a pool's size, a queue's fill).
  void set(uint64_t v) { value_.store(v, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Telemetry {
 public:
  using Labels = std::map<std::string, std::string>;
  // A counter only grows (add); a gauge is a level that goes up and down (set).
  enum class Kind { counter, gauge };

  // Returns the counter for (name, labels), creating it at zero; the reference stays valid.
  Counter& counter(const std::string& name, const Labels& labels = {});
  // The same for a gauge (a pool's size, a queue's fill); the kind only matters to exposition.
  Counter& gauge(const std::string& name, const Labels& labels = {});
  // 0 when no such counter exists.
  uint64_t value(const std::string& name, const Labels& labels = {}) const;

  struct Sample {
    std::string name;
    Labels labels;
    uint64_t value;
    Kind kind;
  };
  std::vector<Sample> snapshot() const;

 private:
  struct Entry {
    std::string name;
    Labels labels;
    Kind kind;
    Counter counter;
  };
  Counter& find_or_add(const std::string& name, const Labels& labels, Kind kind);
  mutable std::mutex mu_;
  std::deque<Entry> entries_;  // deque: references to elements survive growth
  std::map<std::pair<std::string, Labels>, Counter*> index_;
};

}  // namespace otlpd

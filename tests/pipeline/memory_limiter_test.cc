// memory_limiter: refuses (retryable) while memory is above the soft limit, passes data through
// otherwise; limits in MiB or percentages; config errors with paths.
#include "pipeline/memory_limiter.h"

#include <catch2/catch.hpp>

#include <atomic>

#include <yaml-cpp/yaml.h>

#include "config/node.h"
#include "pipeline/host.h"
#include "support/test_support.h"

namespace otlpd {
namespace {

using namespace std::chrono_literals;
using test::RecordingConsumer;
using test::make_traces_request;
using test::wait_until;

constexpr uint64_t kMiB = 1024 * 1024;

TEST_CASE("memory_limiter refuses while above the soft limit and accepts again below it", "[memory_limiter]") {
  Telemetry telemetry;
  test::IoThreads threads{1};
  Host host{threads.io(), telemetry};
  auto sink = std::make_shared<RecordingConsumer>();
  MemoryLimiterConfig config;
  config.check_interval = 10ms;
  config.limit_mib = 100;
  config.spike_limit_mib = 20;  // soft limit 80 MiB
  std::atomic<uint64_t> used{50 * kMiB};
  MemoryLimiter limiter({"memory_limiter", ""}, Signal::traces, config, sink, host, [&] { return used.load(); });
  REQUIRE(limiter.start().is_ok());

  CHECK(limiter.consume(make_traces_request(1, 1, 4).batch()).is_ok());
  CHECK(sink->items() == 4);

  used = 90 * kMiB;
  REQUIRE(wait_until([&] { return limiter.refusing(); }));
  Status refused = limiter.consume(make_traces_request(1, 1, 7).batch());
  CHECK(refused.code() == Status::Code::unavailable);
  CHECK(refused.retryable());
  CHECK(refused.retry_after() >= 1000ms);
  CHECK(telemetry.value("otlpd_processor_refused_items", {{"processor", "memory_limiter"}, {"signal", "traces"}}) == 7);
  CHECK(sink->items() == 4);  // nothing went on

  used = 79 * kMiB;
  REQUIRE(wait_until([&] { return !limiter.refusing(); }));
  CHECK(limiter.consume(make_traces_request(1, 1, 3).batch()).is_ok());
  CHECK(sink->items() == 7);
  limiter.shutdown(Clock::now());
}

TEST_CASE("memory_limiter soft limit from MiB or percentages", "[memory_limiter]") {
  MemoryLimiterConfig mib;
  mib.limit_mib = 100;
  CHECK(mib.soft_limit_bytes(0) == 80 * kMiB);  // spike defaults to 20% of the limit
  mib.spike_limit_mib = 30;
  CHECK(mib.soft_limit_bytes(0) == 70 * kMiB);
  MemoryLimiterConfig pct;
  pct.limit_percentage = 50;
  pct.spike_limit_percentage = 10;
  CHECK(pct.soft_limit_bytes(1000 * kMiB) == 400 * kMiB);
}

std::vector<std::pair<std::string, std::string>> parse_errors(const std::string& yaml) {
  config::Errors errors;
  config::Node node(YAML::Load(yaml), "processors.memory_limiter", &errors);
  MemoryLimiterFactory().parse(node);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : errors.list()) out.emplace_back(e.path, e.message);
  return out;
}

TEST_CASE("memory_limiter config: Collector keys, errors with paths", "[memory_limiter][config]") {
  CHECK(parse_errors("{check_interval: 1s, limit_mib: 512, spike_limit_mib: 128}").empty());
  CHECK(parse_errors("{check_interval: 1s, limit_percentage: 75, spike_limit_percentage: 15}").empty());
  using Errs = std::vector<std::pair<std::string, std::string>>;
  CHECK(parse_errors("{check_interval: 1s}") ==
        Errs{{"processors.memory_limiter.limit_mib", "set limit_mib or limit_percentage"}});
  CHECK(parse_errors("{limit_mib: 100, spike_limit_mib: 100}") ==
        Errs{{"processors.memory_limiter.spike_limit_mib", "must be below limit_mib (100)"}});
  CHECK(parse_errors("{limit_mib: 100, bogus: 1}").size() == 1);
  CHECK(parse_errors("{limit_mib: 100, bogus: 1}")[0].first == "processors.memory_limiter.bogus");
}

}  // namespace
}  // namespace otlpd

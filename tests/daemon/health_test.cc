// The health_check extension: evaluate_health() (phases, the exporter failure threshold and
// interval at an exact time), render_health() (exact JSON), and HealthServer over real TCP.
#include <catch2/catch.hpp>

#include <regex>
#include <string>
#include <vector>

#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "daemon/health.h"
#include "support/http_client.h"
#include "support/test_support.h"

namespace {

using otlpd::HealthCheckConfig;
using otlpd::HealthPhase;
using otlpd::HealthReport;
using otlpd::HealthServer;
using otlpd::HealthState;
using otlpd::Telemetry;
using Client = otlpd::test::HttpClient;
using SystemClock = std::chrono::system_clock;
using Strings = std::vector<std::string>;
using namespace std::chrono_literals;
namespace http = boost::beast::http;

constexpr uint64_t kSince = 1796122800;  // 2026-12-01T11:00:00Z
const SystemClock::time_point kSinceTime{std::chrono::seconds(kSince)};

// The two gauges a QueuedExporter keeps for (exporter, signal).
void add_exporter(std::vector<Telemetry::Sample>& samples, const std::string& exporter, const std::string& signal,
                  uint64_t consecutive_failures, uint64_t failing_since) {
  const Telemetry::Labels labels{{"exporter", exporter}, {"signal", signal}};
  samples.push_back({"otlpd_exporter_consecutive_failures", labels, consecutive_failures, Telemetry::Kind::gauge});
  samples.push_back(
      {"otlpd_exporter_failing_since_timestamp_seconds", labels, failing_since, Telemetry::Kind::gauge});
}

void set_exporter(Telemetry& telemetry, const std::string& exporter, uint64_t consecutive_failures,
                  uint64_t failing_since) {
  const Telemetry::Labels labels{{"exporter", exporter}, {"signal", "traces"}};
  telemetry.gauge("otlpd_exporter_consecutive_failures", labels).set(consecutive_failures);
  telemetry.gauge("otlpd_exporter_failing_since_timestamp_seconds", labels).set(failing_since);
}

uint64_t unix_seconds(SystemClock::time_point t) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
}

HealthCheckConfig ephemeral_config() {
  HealthCheckConfig config;
  config.endpoint = "127.0.0.1:0";
  return config;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// evaluate_health

TEST_CASE("evaluate_health: only the running phase is healthy", "[health]") {
  const HealthCheckConfig config;
  std::vector<Telemetry::Sample> samples;
  add_exporter(samples, "otlp/down", "traces", 100, kSince);  // failing for an hour at `now`
  const auto now = kSinceTime + 1h;

  for (auto [phase, status] : {std::pair{HealthPhase::starting, "starting"}, std::pair{HealthPhase::reloading, "reloading"},
                               std::pair{HealthPhase::stopping, "stopping"}}) {
    HealthReport r = otlpd::evaluate_health(phase, config, {}, now);
    CHECK_FALSE(r.healthy);
    CHECK(r.status == status);
    CHECK(r.failing_exporters.empty());
    // The phase decides; exporters are not looked at.
    HealthReport with_failures = otlpd::evaluate_health(phase, config, samples, now);
    CHECK(with_failures.status == status);
    CHECK(with_failures.failing_exporters.empty());
  }

  HealthReport running = otlpd::evaluate_health(HealthPhase::running, config, {}, now);
  CHECK(running.healthy);
  CHECK(running.status == "running");
  CHECK(running.failing_exporters.empty());
}

TEST_CASE("evaluate_health: the failure threshold counts from exporter_failure_threshold up", "[health]") {
  HealthCheckConfig config;
  config.exporter_failure_threshold = 5;
  config.exporter_failure_interval = 300s;
  const auto now = kSinceTime + 1h;

  std::vector<Telemetry::Sample> below;
  add_exporter(below, "otlp", "logs", 4, kSince);
  HealthReport healthy = otlpd::evaluate_health(HealthPhase::running, config, below, now);
  CHECK(healthy.healthy);
  CHECK(healthy.status == "running");
  CHECK(healthy.failing_exporters.empty());

  std::vector<Telemetry::Sample> at;
  add_exporter(at, "otlp", "logs", 5, kSince);
  HealthReport failing = otlpd::evaluate_health(HealthPhase::running, config, at, now);
  CHECK_FALSE(failing.healthy);
  CHECK(failing.status == "exporter failing");
  CHECK(failing.failing_exporters == Strings{"otlp (logs)"});
}

TEST_CASE("evaluate_health: failing for exactly the interval is not yet unhealthy", "[health]") {
  HealthCheckConfig config;
  config.exporter_failure_threshold = 1;
  config.exporter_failure_interval = 300s;
  std::vector<Telemetry::Sample> samples;
  add_exporter(samples, "otlp", "traces", 1, kSince);

  CHECK(otlpd::evaluate_health(HealthPhase::running, config, samples, kSinceTime + 300s).healthy);
  HealthReport r = otlpd::evaluate_health(HealthPhase::running, config, samples, kSinceTime + 300s + 1ms);
  CHECK_FALSE(r.healthy);
  CHECK(r.status == "exporter failing");
  CHECK(r.failing_exporters == Strings{"otlp (traces)"});
  // A clock behind the failure's timestamp (wall clock stepped back) is not "longer than".
  CHECK(otlpd::evaluate_health(HealthPhase::running, config, samples, kSinceTime - 10s).healthy);
}

TEST_CASE("evaluate_health: of two exporters only the failing one is named", "[health]") {
  HealthCheckConfig config;  // threshold 5, interval 300 s
  const auto now = kSinceTime + 301s;
  std::vector<Telemetry::Sample> samples;
  add_exporter(samples, "otlp/ok", "traces", 0, 0);
  add_exporter(samples, "otlphttp/down", "traces", 9, kSince);
  // Other telemetry is ignored.
  samples.push_back({"otlpd_exporter_sent_items", {{"exporter", "otlp/ok"}, {"signal", "traces"}}, 12,
                     Telemetry::Kind::counter});

  HealthReport r = otlpd::evaluate_health(HealthPhase::running, config, samples, now);
  CHECK_FALSE(r.healthy);
  CHECK(r.status == "exporter failing");
  CHECK(r.failing_exporters == Strings{"otlphttp/down (traces)"});

  SECTION("both failing: both named, sorted") {
    add_exporter(samples, "otlp/ok", "logs", 5, kSince - 10);
    CHECK(otlpd::evaluate_health(HealthPhase::running, config, samples, now).failing_exporters ==
          Strings{"otlp/ok (logs)", "otlphttp/down (traces)"});
  }
  SECTION("check_exporters off: healthy") {
    config.check_exporters = false;
    HealthReport off = otlpd::evaluate_health(HealthPhase::running, config, samples, now);
    CHECK(off.healthy);
    CHECK(off.status == "running");
    CHECK(off.failing_exporters.empty());
  }
  SECTION("failures without a timestamp (not failing now) do not count") {
    std::vector<Telemetry::Sample> cleared;
    add_exporter(cleared, "otlphttp/down", "traces", 9, 0);
    CHECK(otlpd::evaluate_health(HealthPhase::running, config, cleared, now).healthy);
  }
}

// ---------------------------------------------------------------------------------------------
// render_health

TEST_CASE("render_health: exact JSON, names escaped", "[health]") {
  HealthReport running{true, "running", {}};
  CHECK(otlpd::render_health(running, kSinceTime + 999ms, 12549ms) ==
        R"({"status":"running","healthy":true,"upSince":"2026-12-01T11:00:00Z","uptime":"12.5s",)"
        R"("failing_exporters":[]})");

  HealthReport failing{false, "exporter failing", {"otlp/a (traces)", "we\"ird\\name\n (logs)"}};
  const std::string body = otlpd::render_health(failing, kSinceTime, 3600000ms);
  CHECK(body ==
        R"({"status":"exporter failing","healthy":false,"upSince":"2026-12-01T11:00:00Z","uptime":"3600.0s",)"
        R"json("failing_exporters":["otlp/a (traces)","we\"ird\\name\n (logs)"]})json");
  CHECK(nlohmann::json::parse(body)["failing_exporters"][1] == "we\"ird\\name\n (logs)");

  CHECK(otlpd::render_health({false, "starting", {}}, kSinceTime, 0ms) ==
        R"({"status":"starting","healthy":false,"upSince":"2026-12-01T11:00:00Z","uptime":"0.0s",)"
        R"("failing_exporters":[]})");
}

// ---------------------------------------------------------------------------------------------
// HealthServer

namespace {

struct ServerFixture {
  Telemetry telemetry;  // before the threads: the server reads it until they are joined
  HealthState state;
  otlpd::test::IoThreads io{2};

  // The reply's body as JSON; throws (failing the test) when it is not valid JSON.
  static nlohmann::json json_of(const Client::Reply& reply) { return nlohmann::json::parse(reply.response.body()); }
};

}  // namespace

TEST_CASE_METHOD(ServerFixture, "HealthServer follows the phase: 503 starting, 200 running, 503 reloading and stopping",
                 "[health]") {
  HealthServer server(io.io(), ephemeral_config(), state, telemetry, otlpd::Clock::now() - 2500ms);
  REQUIRE(server.start().is_ok());
  REQUIRE(server.port() != 0);
  CHECK(server.url() == "http://127.0.0.1:" + std::to_string(server.port()) + "/");
  Client client(server.port());

  auto starting = client.request(http::verb::get, "/");
  REQUIRE_FALSE(starting.error);
  CHECK(starting.status() == 503);
  CHECK(starting.header(http::field::content_type) == "application/json");
  CHECK(starting.header(http::field::cache_control) == "no-store");
  CHECK(starting.header(http::field::content_length) == std::to_string(starting.response.body().size()));
  auto body = json_of(starting);
  CHECK(body["status"] == "starting");
  CHECK(body["healthy"] == false);
  CHECK(body["failing_exporters"] == nlohmann::json::array());
  const std::string up_since = body["upSince"];
  CHECK(std::regex_match(up_since, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));
  const std::string uptime = body["uptime"];
  REQUIRE(std::regex_match(uptime, std::regex(R"(\d+\.\ds)")));
  CHECK(std::stod(uptime) >= 2.5);
  CHECK(std::stod(uptime) < 60);

  state.set_phase(HealthPhase::running);
  auto running = client.request(http::verb::get, "/");  // the same connection: keep-alive
  REQUIRE_FALSE(running.error);
  CHECK(running.status() == 200);
  CHECK(running.response.keep_alive());
  CHECK(json_of(running)["status"] == "running");
  CHECK(json_of(running)["healthy"] == true);
  CHECK(json_of(running)["upSince"] == up_since);

  state.set_phase(HealthPhase::reloading);
  auto reloading = client.request(http::verb::get, "/");
  CHECK(reloading.status() == 503);
  CHECK(json_of(reloading)["status"] == "reloading");

  state.set_phase(HealthPhase::stopping);
  auto stopping = client.request(http::verb::get, "/");
  CHECK(stopping.status() == 503);
  CHECK(json_of(stopping)["status"] == "stopping");
  CHECK(json_of(stopping)["healthy"] == false);

  server.stop();
  CHECK(client.closed_by_server());
}

TEST_CASE_METHOD(ServerFixture, "HealthServer answers 503 exporter failing while an exporter's gauges say so",
                 "[health]") {
  HealthCheckConfig config = ephemeral_config();
  config.exporter_failure_threshold = 3;
  config.exporter_failure_interval = 60s;
  const uint64_t ten_minutes_ago = unix_seconds(SystemClock::now() - 10min);
  set_exporter(telemetry, "otlp/ok", 0, 0);
  set_exporter(telemetry, "otlphttp/down", 3, ten_minutes_ago);
  state.set_phase(HealthPhase::running);
  HealthServer server(io.io(), config, state, telemetry);
  REQUIRE(server.start().is_ok());
  Client client(server.port());

  auto failing = client.request(http::verb::get, "/");
  REQUIRE_FALSE(failing.error);
  CHECK(failing.status() == 503);
  auto body = json_of(failing);
  CHECK(body["status"] == "exporter failing");
  CHECK(body["healthy"] == false);
  CHECK(body["failing_exporters"] == nlohmann::json::array({"otlphttp/down (traces)"}));

  // Below the threshold, then a success: healthy again.
  set_exporter(telemetry, "otlphttp/down", 2, ten_minutes_ago);
  CHECK(client.request(http::verb::get, "/").status() == 200);
  set_exporter(telemetry, "otlphttp/down", 7, ten_minutes_ago);
  CHECK(client.request(http::verb::get, "/").status() == 503);
  set_exporter(telemetry, "otlphttp/down", 0, 0);
  auto recovered = client.request(http::verb::get, "/");
  CHECK(recovered.status() == 200);
  CHECK(json_of(recovered)["failing_exporters"] == nlohmann::json::array());
}

TEST_CASE_METHOD(ServerFixture, "HealthServer serves only its path, HEAD without a body, 405 for other methods", "[health]") {
  HealthCheckConfig config = ephemeral_config();
  config.path = "/health/status";
  HealthServer server(io.io(), config, state, telemetry);
  REQUIRE(server.start().is_ok());
  CHECK(server.url() == "http://127.0.0.1:" + std::to_string(server.port()) + "/health/status");
  Client client(server.port());

  auto root = client.request(http::verb::get, "/");
  REQUIRE_FALSE(root.error);
  CHECK(root.status() == 404);
  CHECK(root.header(http::field::content_type) == "text/plain; charset=utf-8");
  CHECK(root.response.body() == "not found; otlpd answers health checks at /health/status\n");
  CHECK(client.request(http::verb::get, "/health").status() == 404);

  auto starting = client.request(http::verb::get, "/health/status");
  CHECK(starting.status() == 503);
  auto starting_head = client.request(http::verb::head, "/health/status");
  REQUIRE_FALSE(starting_head.error);
  CHECK(starting_head.status() == 503);
  CHECK(starting_head.response.body().empty());

  state.set_phase(HealthPhase::running);
  auto get = client.request(http::verb::get, "/health/status?verbose=1");  // a query string is ignored
  REQUIRE_FALSE(get.error);
  CHECK(get.status() == 200);
  auto head = client.request(http::verb::head, "/health/status");
  REQUIRE_FALSE(head.error);
  CHECK(head.status() == 200);
  CHECK(head.header(http::field::content_type) == "application/json");
  CHECK(head.header(http::field::content_length) == std::to_string(get.response.body().size()));
  CHECK(head.response.body().empty());

  auto post = client.request(http::verb::post, "/health/status");
  REQUIRE_FALSE(post.error);
  CHECK(post.status() == 405);
  CHECK(post.header(http::field::allow) == "GET, HEAD");
  CHECK(client.request(http::verb::get, "/health/status").status() == 200);  // still connected
}

TEST_CASE_METHOD(ServerFixture, "HealthServer start fails naming the endpoint when the port is taken", "[health]") {
  HealthServer first(io.io(), ephemeral_config(), state, telemetry);
  REQUIRE(first.start().is_ok());
  HealthCheckConfig config;
  config.endpoint = "127.0.0.1:" + std::to_string(first.port());
  HealthServer second(io.io(), config, state, telemetry);
  otlpd::Status s = second.start();
  CHECK_FALSE(s.is_ok());
  CHECK(s.message() == "bind " + config.endpoint + ": Address already in use");
}

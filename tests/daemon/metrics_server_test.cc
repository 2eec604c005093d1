// Self-metrics: the Prometheus exposition of Telemetry samples (exact text), and the HTTP server
// that serves it, over real TCP connections.
#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "daemon/metrics_server.h"
#include "support/http_client.h"
#include "support/test_support.h"

namespace {

using otlpd::MetricsServer;
using otlpd::PromSample;
using otlpd::Telemetry;
using Client = otlpd::test::HttpClient;
using Kind = Telemetry::Kind;
using namespace std::chrono_literals;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

PromSample exposed(std::string name, Telemetry::Labels labels, uint64_t value, Kind kind = Kind::counter) {
  return otlpd::expose({std::move(name), std::move(labels), value, kind});
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The text without the lines of the otlpd_process_* families, whose values change by the moment.
std::string without_process_families(const std::string& text) {
  std::string out;
  for (const auto& line : lines_of(text)) {
    if (line.find("otlpd_process_") != std::string::npos) continue;
    out += line + "\n";
  }
  return out;
}

// The value of the one series named exactly `name` (no labels), if present.
std::optional<double> value_of(const std::string& text, const std::string& name) {
  for (const auto& line : lines_of(text)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return std::nullopt;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Exposition

TEST_CASE("expose: _items with a signal label takes the Collector's item noun", "[metrics_server]") {
  auto spans = exposed("otlpd_receiver_accepted_items", {{"receiver", "otlp"}, {"transport", "grpc"}, {"signal", "traces"}}, 7);
  CHECK(spans.name == "otlpd_receiver_accepted_spans");
  CHECK(spans.labels == Telemetry::Labels{{"receiver", "otlp"}, {"transport", "grpc"}});
  CHECK(spans.value == 7);
  CHECK(spans.kind == Kind::counter);

  auto points = exposed("otlpd_exporter_sent_items", {{"exporter", "otlp"}, {"signal", "metrics"}}, 3);
  CHECK(points.name == "otlpd_exporter_sent_metric_points");
  CHECK(points.labels == Telemetry::Labels{{"exporter", "otlp"}});

  auto records = exposed("otlpd_processor_dropped_items", {{"processor", "batch"}, {"pipeline", "logs"}, {"signal", "logs"}}, 1);
  CHECK(records.name == "otlpd_processor_dropped_log_records");
  CHECK(records.labels == Telemetry::Labels{{"pipeline", "logs"}, {"processor", "batch"}});

  auto queue = exposed("otlpd_exporter_queue_items", {{"exporter", "otlp"}, {"signal", "traces"}}, 2, Kind::gauge);
  CHECK(queue.name == "otlpd_exporter_queue_spans");
  CHECK(queue.kind == Kind::gauge);
}

TEST_CASE("expose: other names keep their name and their signal label", "[metrics_server]") {
  auto retries = exposed("otlpd_exporter_retries", {{"exporter", "otlp"}, {"signal", "traces"}}, 4);
  CHECK(retries.name == "otlpd_exporter_retries");
  CHECK(retries.labels == Telemetry::Labels{{"exporter", "otlp"}, {"signal", "traces"}});

  auto malformed = exposed("otlpd_receiver_malformed_requests", {{"receiver", "otlp"}, {"signal", "logs"}}, 1);
  CHECK(malformed.name == "otlpd_receiver_malformed_requests");
  CHECK(malformed.labels.count("signal") == 1);

  // _items without a signal label, or with a signal otlpd has no noun for.
  CHECK(exposed("otlpd_thing_items", {{"pool", "traces"}}, 1).name == "otlpd_thing_items");
  auto profiles = exposed("otlpd_receiver_accepted_items", {{"signal", "profiles"}}, 1);
  CHECK(profiles.name == "otlpd_receiver_accepted_items");
  CHECK(profiles.labels == Telemetry::Labels{{"signal", "profiles"}});
  CHECK(exposed("_items", {{"signal", "traces"}}, 1).name == "_items");

  auto pool = exposed("otlpd_pool_size", {{"pool", "traces"}}, 12, Kind::gauge);
  CHECK(pool.name == "otlpd_pool_size");
  CHECK(pool.kind == Kind::gauge);
}

TEST_CASE("render_prometheus: families sorted, one HELP and TYPE each, equal series summed", "[metrics_server]") {
  std::vector<PromSample> samples = {
      exposed("otlpd_receiver_accepted_items", {{"receiver", "otlp"}, {"transport", "http"}, {"signal", "traces"}}, 5),
      exposed("otlpd_receiver_accepted_items", {{"receiver", "otlp"}, {"transport", "grpc"}, {"signal", "traces"}}, 7),
      exposed("otlpd_receiver_accepted_items", {{"receiver", "otlp"}, {"transport", "grpc"}, {"signal", "logs"}}, 2),
      exposed("otlpd_exporter_sent_items", {{"exporter", "otlp"}, {"signal", "metrics"}}, 3),
      exposed("otlpd_exporter_sent_items", {{"exporter", "otlp"}, {"signal", "metrics"}}, 4),
      exposed("otlpd_exporter_queue_items", {{"exporter", "otlp/b"}, {"signal", "traces"}}, 2, Kind::gauge),
      exposed("otlpd_pool_size", {{"pool", "traces"}}, 12, Kind::gauge),
      exposed("otlpd_exporter_retries", {{"exporter", "otlp"}, {"signal", "traces"}}, 0),
      exposed("otlpd_processor_dropped_items", {{"processor", "batch"}, {"pipeline", "logs"}, {"signal", "logs"}}, 9),
  };
  CHECK(otlpd::render_prometheus(samples) ==
        "# HELP otlpd_exporter_queue_spans otlpd internal gauge.\n"
        "# TYPE otlpd_exporter_queue_spans gauge\n"
        "otlpd_exporter_queue_spans{exporter=\"otlp/b\"} 2\n"
        "# HELP otlpd_exporter_retries otlpd internal counter.\n"
        "# TYPE otlpd_exporter_retries counter\n"
        "otlpd_exporter_retries{exporter=\"otlp\",signal=\"traces\"} 0\n"
        "# HELP otlpd_exporter_sent_metric_points otlpd internal counter.\n"
        "# TYPE otlpd_exporter_sent_metric_points counter\n"
        "otlpd_exporter_sent_metric_points{exporter=\"otlp\"} 7\n"
        "# HELP otlpd_pool_size otlpd internal gauge.\n"
        "# TYPE otlpd_pool_size gauge\n"
        "otlpd_pool_size{pool=\"traces\"} 12\n"
        "# HELP otlpd_processor_dropped_log_records otlpd internal counter.\n"
        "# TYPE otlpd_processor_dropped_log_records counter\n"
        "otlpd_processor_dropped_log_records{pipeline=\"logs\",processor=\"batch\"} 9\n"
        "# HELP otlpd_receiver_accepted_log_records otlpd internal counter.\n"
        "# TYPE otlpd_receiver_accepted_log_records counter\n"
        "otlpd_receiver_accepted_log_records{receiver=\"otlp\",transport=\"grpc\"} 2\n"
        "# HELP otlpd_receiver_accepted_spans otlpd internal counter.\n"
        "# TYPE otlpd_receiver_accepted_spans counter\n"
        "otlpd_receiver_accepted_spans{receiver=\"otlp\",transport=\"grpc\"} 7\n"
        "otlpd_receiver_accepted_spans{receiver=\"otlp\",transport=\"http\"} 5\n");
  CHECK(otlpd::render_prometheus({}) == "");
}

TEST_CASE("render_prometheus: escaping, decimals, unlabelled series and invalid names", "[metrics_server]") {
  std::vector<PromSample> samples = {
      {"otlpd_exporter_retries", {{"exporter", "we\"ird\\na\nme"}}, 1, Kind::counter, ""},
      {"otlpd_up.time-x", {{"my-key", "v"}}, 0.25, Kind::counter, "Help with \\ and\nnewline."},
      {"9lives", {}, 1234567.5, Kind::gauge, ""},
      {"otlpd_big", {}, 9007199254740992.0, Kind::counter, ""},  // 2^53, still exact
  };
  CHECK(otlpd::render_prometheus(samples) ==
        "# HELP _9lives otlpd internal gauge.\n"
        "# TYPE _9lives gauge\n"
        "_9lives 1234567.5\n"
        "# HELP otlpd_big otlpd internal counter.\n"
        "# TYPE otlpd_big counter\n"
        "otlpd_big 9007199254740992\n"
        "# HELP otlpd_exporter_retries otlpd internal counter.\n"
        "# TYPE otlpd_exporter_retries counter\n"
        "otlpd_exporter_retries{exporter=\"we\\\"ird\\\\na\\nme\"} 1\n"
        "# HELP otlpd_up_time_x Help with \\\\ and\\nnewline.\n"
        "# TYPE otlpd_up_time_x counter\n"
        "otlpd_up_time_x{my_key=\"v\"} 0.25\n");
}

TEST_CASE("metrics_page: telemetry samples plus process metrics", "[metrics_server]") {
  Telemetry telemetry;
  telemetry.counter("otlpd_receiver_accepted_items", {{"receiver", "otlp"}, {"transport", "grpc"}, {"signal", "traces"}}).add(3);
  telemetry.gauge("otlpd_pool_size", {{"pool", "logs"}}).set(4);
  const auto start = otlpd::Clock::now() - 2500ms;
  const std::string page = otlpd::metrics_page(telemetry, start);
  INFO(page);

  CHECK(without_process_families(page) ==
        "# HELP otlpd_build_info The otlpd build; always 1.\n"
        "# TYPE otlpd_build_info gauge\n"
        "otlpd_build_info{version=\"" OTLPD_VERSION "\"} 1\n"
        "# HELP otlpd_pool_size otlpd internal gauge.\n"
        "# TYPE otlpd_pool_size gauge\n"
        "otlpd_pool_size{pool=\"logs\"} 4\n"
        "# HELP otlpd_receiver_accepted_spans otlpd internal counter.\n"
        "# TYPE otlpd_receiver_accepted_spans counter\n"
        "otlpd_receiver_accepted_spans{receiver=\"otlp\",transport=\"grpc\"} 3\n");

  const auto lines = lines_of(page);
  auto has = [&](const std::string& l) { return std::find(lines.begin(), lines.end(), l) != lines.end(); };
  CHECK(has("# TYPE otlpd_process_memory_rss gauge"));
  CHECK(has("# TYPE otlpd_process_cpu_seconds counter"));
  CHECK(has("# TYPE otlpd_process_uptime counter"));
  auto rss = value_of(page, "otlpd_process_memory_rss");
  REQUIRE(rss);
  CHECK(*rss > 1024 * 1024);  // this test process holds more than a MiB
  auto cpu = value_of(page, "otlpd_process_cpu_seconds");
  REQUIRE(cpu);
  CHECK(*cpu > 0);
  auto uptime = value_of(page, "otlpd_process_uptime");
  REQUIRE(uptime);
  CHECK(*uptime >= 2.5);
  CHECK(*uptime < 60);
}

// ---------------------------------------------------------------------------------------------
// Server

TEST_CASE("MetricsServer serves /metrics as Prometheus text over TCP, with keep-alive", "[metrics_server]") {
  Telemetry telemetry;
  otlpd::test::IoThreads io(2);
  auto& accepted =
      telemetry.counter("otlpd_receiver_accepted_items", {{"receiver", "otlp"}, {"transport", "grpc"}, {"signal", "traces"}});
  accepted.add(7);
  telemetry.gauge("otlpd_exporter_queue_bytes", {{"exporter", "otlp"}, {"signal", "logs"}}).set(1024);
  telemetry.counter("otlpd_pool_hits", {{"pool", "traces"}}).add(3);

  MetricsServer server(io.io(), "127.0.0.1:0", telemetry);
  REQUIRE(server.start().is_ok());
  REQUIRE(server.port() != 0);
  CHECK(server.url() == "http://127.0.0.1:" + std::to_string(server.port()) + "/metrics");

  Client client(server.port());
  auto r = client.request(http::verb::get, "/metrics");
  REQUIRE_FALSE(r.error);
  CHECK(r.status() == 200);
  CHECK(r.header(http::field::content_type) == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(r.header(http::field::content_length) == std::to_string(r.response.body().size()));
  CHECK(r.response.keep_alive());
  CHECK(without_process_families(r.response.body()) ==
        "# HELP otlpd_build_info The otlpd build; always 1.\n"
        "# TYPE otlpd_build_info gauge\n"
        "otlpd_build_info{version=\"" OTLPD_VERSION "\"} 1\n"
        "# HELP otlpd_exporter_queue_bytes otlpd internal gauge.\n"
        "# TYPE otlpd_exporter_queue_bytes gauge\n"
        "otlpd_exporter_queue_bytes{exporter=\"otlp\",signal=\"logs\"} 1024\n"
        "# HELP otlpd_pool_hits otlpd internal counter.\n"
        "# TYPE otlpd_pool_hits counter\n"
        "otlpd_pool_hits{pool=\"traces\"} 3\n"
        "# HELP otlpd_receiver_accepted_spans otlpd internal counter.\n"
        "# TYPE otlpd_receiver_accepted_spans counter\n"
        "otlpd_receiver_accepted_spans{receiver=\"otlp\",transport=\"grpc\"} 7\n");
  CHECK(value_of(r.response.body(), "otlpd_process_memory_rss").has_value());

  // The same connection, a later scrape: the values are read at scrape time.
  accepted.add(5);
  auto again = client.request(http::verb::get, "/metrics?ignored=1");
  REQUIRE_FALSE(again.error);
  CHECK(again.status() == 200);
  const auto lines = lines_of(again.response.body());
  CHECK(std::find(lines.begin(), lines.end(), "otlpd_receiver_accepted_spans{receiver=\"otlp\",transport=\"grpc\"} 12") !=
        lines.end());

  // HEAD: the headers a GET gets, no body.
  auto head = client.request(http::verb::head, "/metrics");
  REQUIRE_FALSE(head.error);
  CHECK(head.status() == 200);
  CHECK(head.header(http::field::content_type) == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(std::stoul(head.header(http::field::content_length)) > 100);
  CHECK(head.response.body().empty());
  server.stop();
}

TEST_CASE("MetricsServer answers 404 for other paths and 405 for other methods, keeping the connection", "[metrics_server]") {
  Telemetry telemetry;
  otlpd::test::IoThreads io(1);
  MetricsServer server(io.io(), "127.0.0.1:0", telemetry);
  REQUIRE(server.start().is_ok());
  Client client(server.port());

  auto missing = client.request(http::verb::get, "/v1/traces");
  REQUIRE_FALSE(missing.error);
  CHECK(missing.status() == 404);
  CHECK(missing.header(http::field::content_type) == "text/plain; charset=utf-8");
  CHECK(missing.response.body() == "not found; otlpd serves its metrics at /metrics\n");
  CHECK(client.request(http::verb::get, "/").status() == 404);
  CHECK(client.request(http::verb::get, "/metricsx").status() == 404);

  for (auto method : {http::verb::post, http::verb::put, http::verb::delete_, http::verb::options}) {
    auto r = client.request(method, "/metrics");
    REQUIRE_FALSE(r.error);
    CHECK(r.status() == 405);
    CHECK(r.header(http::field::allow) == "GET, HEAD");
  }
  http::request<http::string_body> post(http::verb::post, "/metrics", 11);
  post.body() = "a small body is read and ignored";
  CHECK(client.send(post).status() == 405);

  auto ok = client.request(http::verb::get, "/metrics");
  REQUIRE_FALSE(ok.error);
  CHECK(ok.status() == 200);
}

TEST_CASE("MetricsServer bounds requests: oversized header 431, oversized body 413, then closes", "[metrics_server]") {
  Telemetry telemetry;
  otlpd::test::IoThreads io(1);
  MetricsServer server(io.io(), "127.0.0.1:0", telemetry);
  REQUIRE(server.start().is_ok());
  {
    Client client(server.port());
    http::request<http::string_body> req(http::verb::get, "/metrics", 11);
    req.set("X-Padding", std::string(16 * 1024, 'x'));
    auto r = client.send(req);
    REQUIRE_FALSE(r.error);
    CHECK(r.status() == 431);
    CHECK_FALSE(r.response.keep_alive());
    CHECK(client.closed_by_server());
  }
  {
    Client client(server.port());
    http::request<http::string_body> req(http::verb::post, "/metrics", 11);
    req.body() = std::string(64 * 1024, 'x');
    auto r = client.send(req);
    REQUIRE_FALSE(r.error);
    CHECK(r.status() == 413);
    CHECK(client.closed_by_server());
  }
  {
    // Connection: close is honoured.
    Client client(server.port());
    http::request<http::string_body> req(http::verb::get, "/metrics", 11);
    req.keep_alive(false);
    auto r = client.send(req);
    REQUIRE_FALSE(r.error);
    CHECK(r.status() == 200);
    CHECK_FALSE(r.response.keep_alive());
    CHECK(client.closed_by_server());
  }
}

TEST_CASE("MetricsServer::stop closes idle keep-alive connections and stops accepting", "[metrics_server]") {
  Telemetry telemetry;
  otlpd::test::IoThreads io(2);
  MetricsServer server(io.io(), "127.0.0.1:0", telemetry);
  REQUIRE(server.start().is_ok());
  const uint16_t port = server.port();
  Client client(port);
  REQUIRE(client.request(http::verb::get, "/metrics").status() == 200);
  server.stop();
  CHECK(client.closed_by_server());
  server.stop();  // idempotent

  net::io_context probe;
  tcp::socket socket(probe);
  beast::error_code ec;
  socket.connect({net::ip::make_address("127.0.0.1"), port}, ec);
  CHECK(ec);  // nothing listens any more
}

TEST_CASE("MetricsServer start fails naming the address when the port is taken or the address is bad", "[metrics_server]") {
  Telemetry telemetry;
  otlpd::test::IoThreads io(1);
  MetricsServer first(io.io(), "127.0.0.1:0", telemetry);
  REQUIRE(first.start().is_ok());
  const std::string taken = "127.0.0.1:" + std::to_string(first.port());

  MetricsServer second(io.io(), taken, telemetry);
  otlpd::Status s = second.start();
  CHECK_FALSE(s.is_ok());
  CHECK(s.message() == "bind " + taken + ": Address already in use");
  second.stop();  // after a failed start: returns at once

  for (std::string bad : {"nonsense", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:99999", "::1:8888", "[::1]", "[]:80"}) {
    MetricsServer server(io.io(), bad, telemetry);
    otlpd::Status b = server.start();
    INFO(bad);
    CHECK(b.code() == otlpd::Status::Code::invalid_argument);
    CHECK(b.message().find(bad) != std::string::npos);
  }
  MetricsServer unresolvable(io.io(), "no-such-host.invalid:0", telemetry);
  otlpd::Status u = unresolvable.start();
  CHECK_FALSE(u.is_ok());
  CHECK(u.message().find("no-such-host.invalid:0") != std::string::npos);
}

TEST_CASE("MetricsServer resolves host names and binds IPv6 in brackets", "[metrics_server]") {
  Telemetry telemetry;
  telemetry.counter("otlpd_pool_hits", {{"pool", "traces"}}).add(1);
  otlpd::test::IoThreads io(1);

  MetricsServer named(io.io(), "localhost:0", telemetry);
  REQUIRE(named.start().is_ok());
  // IPv4 first, whatever order the resolver gives.
  CHECK(named.url() == "http://127.0.0.1:" + std::to_string(named.port()) + "/metrics");
  CHECK(Client(named.port()).request(http::verb::get, "/metrics").status() == 200);

  MetricsServer v6(io.io(), "[::1]:0", telemetry);
  otlpd::Status s = v6.start();
  if (!s.is_ok()) {
    WARN("no IPv6 loopback here: " << s.message());
    return;
  }
  CHECK(v6.url() == "http://[::1]:" + std::to_string(v6.port()) + "/metrics");
  Client client(tcp::endpoint(net::ip::make_address("::1"), v6.port()));
  auto r = client.request(http::verb::get, "/metrics");
  REQUIRE_FALSE(r.error);
  CHECK(r.status() == 200);
  CHECK(r.response.body().find("otlpd_pool_hits{pool=\"traces\"} 1\n") != std::string::npos);
}

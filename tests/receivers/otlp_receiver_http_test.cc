// The otlp receiver's HTTP side end to end through its ExportHandler: framing checks and the
// pipeline's answers become HTTP statuses; and its `protocols.http` config keys.
#include <catch2/catch.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <yaml-cpp/yaml.h>

#include "config/node.h"
#include "pipeline/telemetry.h"
#include "otlp/wire.h"
#include "receivers/otlp/otlp_receiver.h"
#include "support/test_support.h"

using namespace otlpd;
using namespace otlpd::test;
namespace asio = boost::asio;

namespace {

struct HttpFixture {
  HttpFixture() {
    consumers.traces = sink;
    OtlpReceiverConfig config;
    config.http = HttpServerSettings{};
    config.http->endpoint = "127.0.0.1:0";
    receiver = std::make_unique<OtlpReceiver>(ComponentId{"otlp", ""}, config, consumers, host);
    REQUIRE(receiver->start().is_ok());
  }
  ~HttpFixture() { receiver->shutdown(Clock::now() + 2s); }

  // One request on a fresh connection; returns the whole response (headers and body).
  std::string post(const std::string& path, const std::string& content_type, const std::string& body) {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), receiver->http_port()});
    std::string request = "POST " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Type: " + content_type +
                          "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    asio::write(socket, asio::buffer(request));
    std::string response;
    boost::system::error_code ec;
    asio::read(socket, asio::dynamic_buffer(response), ec);  // until the server closes
    return response;
  }

  IoThreads threads{2};
  Telemetry telemetry;
  Host host{threads.io(), telemetry};
  std::shared_ptr<RecordingConsumer> sink = std::make_shared<RecordingConsumer>();
  ReceiverConsumers consumers;
  std::unique_ptr<OtlpReceiver> receiver;
};

}  // namespace

TEST_CASE("HTTP protobuf is counted and delivered as sent", "[receiver][http]") {
  HttpFixture f;
  auto req = make_traces_request(2, 1, 4);
  std::string response = f.post("/v1/traces", "application/x-protobuf", req.bytes);
  CHECK(response.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  REQUIRE(f.sink->batch_count() == 1);
  CHECK(f.sink->batches()[0]->items == 8);
  CHECK(f.sink->batches()[0]->payload == req.bytes);
}

TEST_CASE("HTTP malformed protobuf is 400 naming the problem", "[receiver][http]") {
  HttpFixture f;
  std::string response = f.post("/v1/traces", "application/x-protobuf", std::string("\x0a\x10\x12", 3));
  CHECK(response.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
  CHECK(response.find("malformed traces request: request: field length 16 exceeds the 1 bytes remaining") !=
        std::string::npos);
  CHECK(f.sink->call_count() == 0);
}

TEST_CASE("HTTP to a signal without a pipeline is 404", "[receiver][http]") {
  HttpFixture f;
  std::string response = f.post("/v1/logs", "application/x-protobuf", "");
  CHECK(response.rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
}

TEST_CASE("HTTP against a full pipeline is 503 with Retry-After", "[receiver][http]") {
  HttpFixture f;
  f.sink->set_fallback(Status::unavailable("batch queue full", 3000ms));
  std::string response = f.post("/v1/traces", "application/json", R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a"}]}]}]})");
  CHECK(response.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
  CHECK(response.find("Retry-After: 3\r\n") != std::string::npos);
  CHECK(response.find("batch queue full") != std::string::npos);
  CHECK(f.telemetry.value("otlpd_receiver_refused_items",
                          {{"receiver", "otlp"}, {"transport", "http"}, {"signal", "traces"}}) == 1);
}

TEST_CASE("HTTP requests broken below the item level are 400 too", "[receiver][http]") {
  HttpFixture f;
  auto wrap = [](uint32_t field, const std::string& inner) {
    std::string out;
    otlp::append_tag(&out, field, 2);
    otlp::append_varint(&out, inner.size());
    return out + inner;
  };
  // A span whose attribute (field 9) holds a KeyValue whose key claims 5 bytes but has 2.
  std::string broken_attribute = wrap(9, std::string("\x0a\x05" "ab", 4));
  std::string request = wrap(1, wrap(2, wrap(2, broken_attribute)));
  std::string response = f.post("/v1/traces", "application/x-protobuf", request);
  CHECK(response.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
  CHECK(response.find("an item does not decode") != std::string::npos);

  // A span name that is not UTF-8.
  std::string bad_name = wrap(5, std::string("\xff\xfe", 2));
  response = f.post("/v1/traces", "application/x-protobuf", wrap(1, wrap(2, wrap(2, bad_name))));
  CHECK(response.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
  CHECK(f.sink->call_count() == 0);
}

namespace {

struct ParsedHttp {
  config::Errors errors;
  std::optional<HttpServerSettings> http;
};

// `http_flow` is the value of receivers.otlp.protocols.http in YAML flow style.
ParsedHttp parse_http(const std::string& http_flow) {
  ParsedHttp p;
  config::Node node(YAML::Load("protocols: {http: " + http_flow + "}"), "receivers.otlp", &p.errors);
  ComponentConfigPtr config = OtlpReceiverFactory().parse(node);
  p.http = static_cast<const OtlpReceiverConfig&>(*config).http;
  return p;
}

std::string http_error(const std::string& http_flow) { return parse_http(http_flow).errors.to_string(); }

}  // namespace

TEST_CASE("HTTP hardening keys: defaults", "[receiver][http]") {
  ParsedHttp p = parse_http("{}");
  INFO(p.errors.to_string());
  REQUIRE(p.errors.empty());
  REQUIRE(p.http);
  CHECK(p.http->read_header_timeout == 10s);
  CHECK(p.http->read_timeout == 30s);
  CHECK(p.http->max_connections == 4096);
  CHECK_FALSE(p.http->cors);
}

TEST_CASE("HTTP hardening keys: every key", "[receiver][http]") {
  ParsedHttp p = parse_http(
      "{read_header_timeout: 2s, max_connections: 100, cors: {allowed_origins: ['https://*.example.com', "
      "'https://app.example.org'], allowed_headers: [X-Tenant, '*'], max_age: 7200}}");
  INFO(p.errors.to_string());
  REQUIRE(p.errors.empty());
  CHECK(p.http->read_header_timeout == 2s);
  CHECK(p.http->max_connections == 100);
  REQUIRE(p.http->cors);
  CHECK(p.http->cors->allowed_origins == std::vector<std::string>{"https://*.example.com", "https://app.example.org"});
  CHECK(p.http->cors->allowed_headers == std::vector<std::string>{"X-Tenant", "*"});
  CHECK(p.http->cors->max_age == std::chrono::seconds(7200));
  CHECK(parse_http("{read_header_timeout: 0, max_connections: 1048576}").errors.empty());
}

TEST_CASE("HTTP hardening keys: bad values name their path", "[receiver][http]") {
  const std::string at = "receivers.otlp.protocols.http.";
  CHECK(http_error("{max_connections: 0}") == at + "max_connections: must be between 1 and 1048576, got 0");
  CHECK(http_error("{max_connections: -5}") == at + "max_connections: must be between 1 and 1048576, got -5");
  CHECK(http_error("{max_connections: 1048577}") ==
        at + "max_connections: must be between 1 and 1048576, got 1048577");
  CHECK(http_error("{read_header_timeout: -1s}") ==
        at + "read_header_timeout: invalid duration \"-1s\" (expected a number with a unit, e.g. 200ms, 5s, 1m)");
  CHECK(http_error("{cors: {allowed_origins: ['*'], max_age: -1}}") ==
        at + "cors.max_age: must be between 0 and 86400, got -1");
  CHECK(http_error("{cors: {allowed_origins: ['*'], max_age: 86401}}") ==
        at + "cors.max_age: must be between 0 and 86400, got 86401");
  CHECK(http_error("{cors: {allowed_origins: ['*'], allowed_methods: [POST]}}") ==
        at + "cors.allowed_methods: unknown key");
  CHECK(http_error("{cors: {max_age: 10}}") == at + "cors.allowed_origins: at least one origin is required");
  CHECK(http_error("{cors: }") == at + "cors.allowed_origins: at least one origin is required");
  CHECK(http_error("{cors: {allowed_origins: ['https://*.*.example.com', '']}}") ==
        at + "cors.allowed_origins[0]: at most one * is allowed\n" + at + "cors.allowed_origins[1]: must not be empty");
  CHECK(http_error("{cors: {allowed_origins: ['*'], allowed_headers: ['X Bad', 'X-Good', \"a\\r\\nb\"]}}") ==
        at + "cors.allowed_headers[0]: not a header name\n" + at + "cors.allowed_headers[2]: not a header name");
}

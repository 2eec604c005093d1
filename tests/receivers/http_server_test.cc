#include "receivers/otlp/http_server.h"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>

#include "extensions/bearertokenauth/bearer_token.h"
#include "google/rpc/status.pb.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/compression.h"
#include "otlp/json_codec.h"
#include "support/http_server_fixture.h"

namespace otlpd {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Response = http::response<http::string_body>;
using namespace std::chrono_literals;
namespace tracepb = opentelemetry::proto::collector::trace::v1;

constexpr auto kClientTimeout = 10s;  // a hung server fails the test instead of hanging it
constexpr char kProtobuf[] = "application/x-protobuf";
constexpr char kJson[] = "application/json";

// A small synchronous client: each call runs async Beast operations on a private io_context
// until they complete, under a timeout, so no test ever sleeps to wait for the server.
class Client {
 public:
  explicit Client(uint16_t port) {
    stream_.expires_after(kClientTimeout);
    beast::error_code result = net::error::would_block;
    stream_.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                          [&](beast::error_code ec) { result = ec; });
    run();
    REQUIRE_FALSE(result);
  }

  beast::error_code write(const std::string& bytes) {
    return run_op([&](auto handler) { net::async_write(stream_, net::buffer(bytes), handler); });
  }

  beast::error_code send(http::request<http::string_body> req) {
    req.prepare_payload();
    return run_op([&](auto handler) { http::async_write(stream_, req, handler); });
  }

  // The next response, or the error that ended the connection instead.
  beast::error_code read(Response* res) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    beast::error_code ec = run_op([&](auto handler) { http::async_read(stream_, buffer_, parser, handler); });
    if (!ec) *res = parser.release();
    return ec;
  }

  Response request(http::request<http::string_body> req) {
    REQUIRE_FALSE(send(std::move(req)));
    Response res;
    beast::error_code ec = read(&res);
    INFO(ec.message());
    REQUIRE_FALSE(ec);
    return res;
  }

  // True when the server closed the connection (EOF or reset) rather than leaving it open.
  bool closed_by_server() {
    char byte;
    beast::error_code ec = run_op([&](auto handler) { stream_.async_read_some(net::buffer(&byte, 1), handler); });
    return ec == net::error::eof || ec == net::error::connection_reset;
  }

  // Writes `bytes` one at a time, `interval` apart, until the server closes the connection or
  // starts answering; true when it closed (before the client's timeout), whatever was unsent.
  // An answer stays buffered for read().
  bool trickle(const std::string& bytes, std::chrono::milliseconds interval) {
    stream_.expires_after(kClientTimeout);
    net::steady_timer pause(io_);
    bool done = false;
    bool closed = false;
    stream_.async_read_some(buffer_.prepare(4096), [&](beast::error_code ec, size_t n) {
      buffer_.commit(n);
      done = true;
      closed = ec == net::error::eof || ec == net::error::connection_reset;
      pause.cancel();
    });
    size_t sent = 0;
    std::function<void()> write_next = [&] {
      if (done || sent == bytes.size()) return;
      net::async_write(stream_, net::buffer(&bytes[sent++], 1), [&](beast::error_code ec, size_t) {
        if (ec || done) return;
        pause.expires_after(interval);
        pause.async_wait([&](beast::error_code wait_ec) {
          if (!wait_ec) write_next();
        });
      });
    };
    write_next();
    run();
    return closed;
  }

 private:
  template <typename Start>
  beast::error_code run_op(Start start) {
    stream_.expires_after(kClientTimeout);
    beast::error_code result = net::error::would_block;
    start([&](beast::error_code ec, size_t) { result = ec; });
    run();
    return result;
  }

  void run() {
    io_.restart();
    io_.run();
  }

  net::io_context io_;
  beast::tcp_stream stream_{io_};
  beast::flat_buffer buffer_;
};

http::request<http::string_body> post(const std::string& target, const std::string& content_type, std::string body) {
  http::request<http::string_body> req(http::verb::post, target, 11);
  req.set(http::field::host, "127.0.0.1");
  if (!content_type.empty()) req.set(http::field::content_type, content_type);
  req.body() = std::move(body);
  return req;
}

using Fixture = test::HttpServerFixture;

const std::string kTraceId("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10", 16);
const std::string kTraceIdHex = "0102030405060708090a0b0c0d0e0f10";

std::string trace_request_bytes() {
  tracepb::ExportTraceServiceRequest req;
  auto* span = req.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(kTraceId);
  span->set_span_id(std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  span->set_name("span");
  return req.SerializeAsString();
}

std::string trace_request_json(const std::string& trace_id_hex = kTraceIdHex) {
  return R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":")" + trace_id_hex +
         R"(","spanId":"0102030405060708","name":"span"}]}]}]})";
}

google::rpc::Status rpc_status_from(const Response& res) {
  google::rpc::Status st;
  if (res[http::field::content_type] == kJson) {
    std::string error = otlp::json_to_message(std::string(res.body()), st);
    INFO(error);
    REQUIRE(error.empty());
  } else {
    REQUIRE(res[http::field::content_type] == kProtobuf);
    REQUIRE(st.ParseFromString(res.body()));
  }
  return st;
}

void require_content_length(const Response& res) {
  REQUIRE(res.has_content_length());
  CHECK(res[http::field::content_length] == std::to_string(res.body().size()));
}

TEST_CASE("protobuf POST is handed over byte for byte", "[http_server]") {
  Fixture f;
  Client c(f.port());
  const std::string bytes = trace_request_bytes();
  Response res = c.request(post("/v1/traces", kProtobuf, bytes));
  CHECK(res.result_int() == 200);
  CHECK(res[http::field::content_type] == kProtobuf);
  require_content_length(res);
  tracepb::ExportTraceServiceResponse answer;
  REQUIRE(answer.ParseFromString(res.body()));
  CHECK_FALSE(answer.has_partial_success());
  CHECK(res.body().empty());
  auto calls = f.calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].signal == Signal::traces);
  CHECK(calls[0].bytes == bytes);
}

TEST_CASE("each path reaches its signal, content type parameters are accepted", "[http_server]") {
  Fixture f;
  Client c(f.port());
  CHECK(c.request(post("/v1/metrics", "Application/X-Protobuf; charset=utf-8", "m")).result_int() == 200);
  CHECK(c.request(post("/v1/logs?x=1", kProtobuf, "l")).result_int() == 200);
  auto calls = f.calls();
  REQUIRE(calls.size() == 2);
  CHECK(calls[0].signal == Signal::metrics);
  CHECK(calls[0].bytes == "m");
  CHECK(calls[1].signal == Signal::logs);
  CHECK(calls[1].bytes == "l");
}

TEST_CASE("JSON POST is converted to protobuf and answered in JSON", "[http_server]") {
  Fixture f;
  Client c(f.port());
  Response res = c.request(post("/v1/traces", "application/json; charset=utf-8", trace_request_json()));
  CHECK(res.result_int() == 200);
  CHECK(res[http::field::content_type] == kJson);
  CHECK(res.body() == "{}");
  require_content_length(res);
  auto calls = f.calls();
  REQUIRE(calls.size() == 1);
  tracepb::ExportTraceServiceRequest got;
  REQUIRE(got.ParseFromString(calls[0].bytes));
  const auto& span = got.resource_spans(0).scope_spans(0).spans(0);
  CHECK(span.trace_id() == kTraceId);
  CHECK(span.name() == "span");
}

TEST_CASE("gzip and zstd bodies are decompressed", "[http_server]") {
  Fixture f;
  Client c(f.port());
  const std::string bytes = trace_request_bytes();
  std::string gz, zs;
  otlp::gzip_compress(bytes, &gz);
  otlp::zstd_compress(bytes, &zs);

  auto req = post("/v1/traces", kProtobuf, gz);
  req.set(http::field::content_encoding, "gzip");
  CHECK(c.request(req).result_int() == 200);
  req = post("/v1/traces", kProtobuf, zs);
  req.set(http::field::content_encoding, "ZSTD");
  CHECK(c.request(req).result_int() == 200);
  std::string json_gz;
  otlp::gzip_compress(trace_request_json(), &json_gz);
  req = post("/v1/traces", kJson, json_gz);
  req.set(http::field::content_encoding, "gzip");
  CHECK(c.request(req).result_int() == 200);

  auto calls = f.calls();
  REQUIRE(calls.size() == 3);
  CHECK(calls[0].bytes == bytes);
  CHECK(calls[1].bytes == bytes);
  tracepb::ExportTraceServiceRequest got;
  REQUIRE(got.ParseFromString(calls[2].bytes));
  CHECK(got.resource_spans(0).scope_spans(0).spans(0).trace_id() == kTraceId);
}

TEST_CASE("keep-alive: two requests on one connection, Connection: close honoured", "[http_server]") {
  Fixture f;
  Client c(f.port());
  Response first = c.request(post("/v1/traces", kProtobuf, "a"));
  CHECK(first.result_int() == 200);
  CHECK(first.keep_alive());
  Response second = c.request(post("/v1/traces", kProtobuf, "b"));
  CHECK(second.result_int() == 200);
  auto req = post("/v1/traces", kProtobuf, "c");
  req.keep_alive(false);
  Response third = c.request(req);
  CHECK(third.result_int() == 200);
  CHECK_FALSE(third.keep_alive());
  CHECK(c.closed_by_server());
  auto calls = f.calls();
  REQUIRE(calls.size() == 3);
  CHECK(calls[1].bytes == "b");
}

TEST_CASE("pipelined requests are answered in order", "[http_server]") {
  Fixture f;
  Client c(f.port());
  std::string two;
  for (const char* body : {"one", "two"}) {
    two += std::string("POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 3\r\n\r\n") + body;
  }
  REQUIRE_FALSE(c.write(two));
  Response res;
  REQUIRE_FALSE(c.read(&res));
  CHECK(res.result_int() == 200);
  REQUIRE_FALSE(c.read(&res));
  CHECK(res.result_int() == 200);
  auto calls = f.calls();
  REQUIRE(calls.size() == 2);
  CHECK(calls[0].bytes == "one");
  CHECK(calls[1].bytes == "two");
}

TEST_CASE("partial success carries the rejected count", "[http_server]") {
  Fixture f;
  f.answer(Status::partial(7, "7 spans dropped"));
  Client c(f.port());
  Response res = c.request(post("/v1/traces", kProtobuf, trace_request_bytes()));
  CHECK(res.result_int() == 200);
  tracepb::ExportTraceServiceResponse answer;
  REQUIRE(answer.ParseFromString(res.body()));
  REQUIRE(answer.has_partial_success());
  CHECK(answer.partial_success().rejected_spans() == 7);
  CHECK(answer.partial_success().error_message() == "7 spans dropped");

  res = c.request(post("/v1/logs", kJson, "{}"));
  CHECK(res.result_int() == 200);
  CHECK(res[http::field::content_type] == kJson);
  opentelemetry::proto::collector::logs::v1::ExportLogsServiceResponse logs_answer;
  REQUIRE(otlp::json_to_message(std::string(res.body()), logs_answer).empty());
  CHECK(logs_answer.partial_success().rejected_log_records() == 7);
  CHECK(logs_answer.partial_success().error_message() == "7 spans dropped");
}

TEST_CASE("malformed JSON is 400 with the converter's message", "[http_server]") {
  Fixture f;
  Client c(f.port());
  Response res = c.request(post("/v1/traces", kJson, trace_request_json("0102")));
  CHECK(res.result_int() == 400);
  CHECK(res[http::field::content_type] == kJson);
  require_content_length(res);
  auto st = rpc_status_from(res);
  CHECK(st.code() == 3);
  CHECK_THAT(st.message(), Catch::Contains("resourceSpans[0].scopeSpans[0].spans[0].traceId"));
  res = c.request(post("/v1/traces", kJson, "{not json"));
  CHECK(res.result_int() == 400);
  CHECK(f.calls().empty());
}

TEST_CASE("unknown path is 404, other methods 405 with Allow", "[http_server]") {
  Fixture f;
  Client c(f.port());
  Response res = c.request(post("/v1/other", kProtobuf, "x"));
  CHECK(res.result_int() == 404);
  CHECK(res[http::field::content_type] == kProtobuf);
  CHECK(rpc_status_from(res).code() == 5);

  http::request<http::string_body> get(http::verb::get, "/v1/traces", 11);
  get.set(http::field::host, "x");
  res = c.request(get);
  CHECK(res.result_int() == 405);
  CHECK(res[http::field::allow] == "POST");
  CHECK(res[http::field::content_type] == "text/plain; charset=utf-8");
  require_content_length(res);
  CHECK(f.calls().empty());
}

TEST_CASE("unsupported content type and encoding are 415", "[http_server]") {
  Fixture f;
  Client c(f.port());
  Response res = c.request(post("/v1/traces", "text/plain", "x"));
  CHECK(res.result_int() == 415);
  CHECK(res[http::field::content_type] == "text/plain; charset=utf-8");
  CHECK_THAT(std::string(res.body()), Catch::Contains("application/x-protobuf"));
  CHECK(c.request(post("/v1/traces", "", "x")).result_int() == 415);

  auto req = post("/v1/traces", kJson, "{}");
  req.set(http::field::content_encoding, "br");
  res = c.request(req);
  CHECK(res.result_int() == 415);
  CHECK(res[http::field::content_type] == kJson);
  CHECK_THAT(rpc_status_from(res).message(), Catch::Contains("\"br\""));
  CHECK(f.calls().empty());
}

TEST_CASE("body over the limit on the wire is 413 without reading it", "[http_server]") {
  HttpServerSettings s;
  s.max_request_body_size = 1000;
  Fixture f(s);
  {
    Client c(f.port());
    // Only the header is sent: the answer must come without the body.
    REQUIRE_FALSE(c.write("POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                          "Content-Length: 2000000\r\n\r\nabc"));
    Response res;
    REQUIRE_FALSE(c.read(&res));
    CHECK(res.result_int() == 413);
    require_content_length(res);
    CHECK_FALSE(res.keep_alive());
    CHECK(c.closed_by_server());
  }
  {
    Client c(f.port());
    CHECK(c.request(post("/v1/traces", kProtobuf, std::string(1000, 'x'))).result_int() == 200);  // exactly the limit
    Response res = c.request(post("/v1/traces", kProtobuf, std::string(1001, 'x')));
    CHECK(res.result_int() == 413);
    CHECK(c.closed_by_server());
  }
  {
    // Chunked bodies are counted as they arrive.
    Client c(f.port());
    std::string chunked = "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i) chunked += "190\r\n" + std::string(400, 'y') + "\r\n";
    chunked += "0\r\n\r\n";
    REQUIRE_FALSE(c.write(chunked));
    Response res;
    REQUIRE_FALSE(c.read(&res));
    CHECK(res.result_int() == 413);
  }
  auto calls = f.calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].bytes.size() == 1000);
}

TEST_CASE("a gzip bomb is 413 after decompression", "[http_server]") {
  HttpServerSettings s;
  s.max_request_body_size = 1 << 20;
  Fixture f(s);
  Client c(f.port());
  std::string bomb;
  otlp::gzip_compress(std::string(10 << 20, '\0'), &bomb, 9);
  REQUIRE(bomb.size() < s.max_request_body_size);
  auto req = post("/v1/traces", kProtobuf, bomb);
  req.set(http::field::content_encoding, "gzip");
  Response res = c.request(req);
  CHECK(res.result_int() == 413);
  CHECK(rpc_status_from(res).code() == 8);
  req = post("/v1/traces", kProtobuf, "not gzip");
  req.set(http::field::content_encoding, "gzip");
  CHECK(c.request(req).result_int() == 400);
  CHECK(f.calls().empty());
}

TEST_CASE("refusals map to 503 and 429 with Retry-After", "[http_server]") {
  Fixture f;
  Client c(f.port());
  f.answer(Status::unavailable("full", 1500ms));
  Response res = c.request(post("/v1/traces", kProtobuf, "x"));
  CHECK(res.result_int() == 503);
  CHECK(res[http::field::retry_after] == "2");
  auto st = rpc_status_from(res);
  CHECK(st.code() == 14);
  CHECK(st.message() == "full");

  res = c.request(post("/v1/traces", kJson, "{}"));
  CHECK(res.result_int() == 503);
  CHECK(res.body() == R"({"code":14,"message":"full"})");

  f.answer(Status::resource_exhausted("slow down", 0ms));
  res = c.request(post("/v1/metrics", kProtobuf, "x"));
  CHECK(res.result_int() == 429);
  CHECK(res[http::field::retry_after] == "1");
  CHECK(rpc_status_from(res).code() == 8);

  f.answer(Status::invalid_argument("bad spans"));
  res = c.request(post("/v1/metrics", kProtobuf, "x"));
  CHECK(res.result_int() == 400);
  CHECK(res.find(http::field::retry_after) == res.end());
}

TEST_CASE("custom url path", "[http_server]") {
  HttpServerSettings s;
  s.traces_url_path = "/custom/traces";
  Fixture f(s);
  Client c(f.port());
  CHECK(c.request(post("/custom/traces", kProtobuf, "x")).result_int() == 200);
  CHECK(c.request(post("/v1/traces", kProtobuf, "x")).result_int() == 404);
  REQUIRE(f.calls().size() == 1);
  CHECK(f.calls()[0].signal == Signal::traces);
}

TEST_CASE("garbage input gets 400 or a close, and the server keeps serving", "[http_server]") {
  Fixture f;
  {
    Client c(f.port());
    std::string garbage;
    for (int i = 0; i < 4096; ++i) garbage += static_cast<char>((i * 7919) % 256);
    REQUIRE_FALSE(c.write(garbage));
    Response res;
    beast::error_code ec = c.read(&res);
    if (!ec) CHECK(res.result_int() == 400);
    CHECK((ec || c.closed_by_server()));
  }
  {
    Client c(f.port());
    REQUIRE_FALSE(c.write("POST /v1/traces HTTP/1.1\r\nContent-Length: nope\r\n\r\n"));
    Response res;
    REQUIRE_FALSE(c.read(&res));
    CHECK(res.result_int() == 400);
  }
  {
    Client c(f.port());
    std::string huge = "POST /v1/traces HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n";
    REQUIRE_FALSE(c.write(huge));
    Response res;
    REQUIRE_FALSE(c.read(&res));
    CHECK(res.result_int() == 431);
  }
  {
    Client c(f.port());
    REQUIRE_FALSE(c.write("POST /v1/traces HTTP/1.1\r\nContent-Length: 10\r\n\r\nab"));
  }  // the client vanishes mid-body
  Client c(f.port());
  CHECK(c.request(post("/v1/traces", kProtobuf, "ok")).result_int() == 200);
}

TEST_CASE("Expect: 100-continue gets an interim answer", "[http_server]") {
  Fixture f;
  Client c(f.port());
  REQUIRE_FALSE(c.write("POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                        "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  Response interim;
  REQUIRE_FALSE(c.read(&interim));
  CHECK(interim.result_int() == 100);
  REQUIRE_FALSE(c.write("hello"));
  Response res;
  REQUIRE_FALSE(c.read(&res));
  CHECK(res.result_int() == 200);
  REQUIRE(f.calls().size() == 1);
  CHECK(f.calls()[0].bytes == "hello");
}

TEST_CASE("start fails on a port already in use", "[http_server]") {
  Fixture f;
  net::io_context io;
  HttpServerSettings s;
  s.endpoint = "127.0.0.1:" + std::to_string(f.port());
  HttpServer second(io, s, [](Signal, std::string&&) { return Status::ok(); });
  Status st = second.start();
  CHECK_FALSE(st.is_ok());
  CHECK(st.message() == "bind 127.0.0.1:" + std::to_string(f.port()) + ": Address already in use");

  s.endpoint = "no-port";
  HttpServer third(io, s, [](Signal, std::string&&) { return Status::ok(); });
  CHECK_FALSE(third.start().is_ok());
}

http::request<http::string_body> preflight(const std::string& origin, const std::string& method = "POST") {
  http::request<http::string_body> req(http::verb::options, "/v1/traces", 11);
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::origin, origin);
  req.set(http::field::access_control_request_method, method);
  req.set(http::field::access_control_request_headers, "content-type");
  return req;
}

bool has(const Response& res, http::field field) { return res.find(field) != res.end(); }

// Fresh connections until one gets its POST answered, or false at the deadline.
bool served_before(uint16_t port, Clock::time_point deadline) {
  while (Clock::now() < deadline) {
    Client c(port);
    Response res;
    if (!c.send(post("/v1/traces", kProtobuf, "x")) && !c.read(&res) && res.result_int() == 200) return true;
  }
  return false;
}

TEST_CASE("read_header_timeout closes a connection whose headers come too slowly", "[http_server]") {
  HttpServerSettings s;
  s.read_header_timeout = 300ms;
  s.read_timeout = 60s;  // longer than the client's timeout: only the header deadline can close in time
  Fixture f(s);
  Client slow(f.port());
  REQUIRE_FALSE(slow.write("POST /v1/traces HTTP/1.1\r\nHost: x\r\n"));
  Client normal(f.port());
  CHECK(normal.request(post("/v1/traces", kProtobuf, "x")).result_int() == 200);
  CHECK(slow.closed_by_server());

  // A byte every 50 ms keeps the reads busy but does not move the deadline.
  Client trickling(f.port());
  CHECK(trickling.trickle("POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(1000, 'a'), 50ms));
  CHECK(normal.request(post("/v1/traces", kProtobuf, "y")).result_int() == 200);
  CHECK(f.calls().size() == 2);
}

TEST_CASE("read_header_timeout leaves the body to read_timeout", "[http_server]") {
  HttpServerSettings s;
  s.read_header_timeout = 200ms;
  s.read_timeout = 60s;
  Fixture f(s);
  Client c(f.port());
  REQUIRE_FALSE(c.write("POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                        "Content-Length: 20\r\n\r\n"));
  // The body trickles in long after the header deadline and is still read to the end.
  const std::string body(20, 'b');
  CHECK_FALSE(c.trickle(body, 50ms));  // the server answers instead of closing: no EOF
  Response res;
  REQUIRE_FALSE(c.read(&res));
  CHECK(res.result_int() == 200);
  REQUIRE(f.calls().size() == 1);
  CHECK(f.calls()[0].bytes == body);
}

TEST_CASE("slow clients below max_connections do not hold up others", "[http_server]") {
  HttpServerSettings s;
  s.read_header_timeout = 20s;
  s.max_connections = 64;
  Fixture f(s);
  std::vector<std::unique_ptr<Client>> slow;
  for (int i = 0; i < 50; ++i) {
    slow.push_back(std::make_unique<Client>(f.port()));
    REQUIRE_FALSE(slow.back()->write("POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-"));
  }
  Client normal(f.port());
  auto start = Clock::now();
  for (int i = 0; i < 5; ++i) CHECK(normal.request(post("/v1/traces", kProtobuf, "x")).result_int() == 200);
  // Far below read_header_timeout: the answers did not wait for the slow clients to time out.
  CHECK(Clock::now() - start < 5s);
}

TEST_CASE("max_connections refuses the connection over the cap until one closes", "[http_server]") {
  HttpServerSettings s;
  s.max_connections = 4;
  Fixture f(s);
  std::vector<std::unique_ptr<Client>> open;
  for (int i = 0; i < 4; ++i) {
    open.push_back(std::make_unique<Client>(f.port()));
    CHECK(open.back()->request(post("/v1/traces", kProtobuf, "x")).result_int() == 200);
  }
  {
    Client over(f.port());  // the kernel completes the handshake; the server closes it unread
    CHECK(over.closed_by_server());
  }
  CHECK(open[0]->request(post("/v1/traces", kProtobuf, "x")).result_int() == 200);  // the others go on
  open.pop_back();
  // The server sees the close asynchronously: retry until a new connection is served.
  CHECK(served_before(f.port(), Clock::now() + 10s));
}

HttpServerSettings with_cors(std::vector<std::string> origins, std::vector<std::string> headers = {},
                             std::chrono::seconds max_age = 0s) {
  HttpServerSettings s;
  s.cors = CorsSettings{std::move(origins), std::move(headers), max_age};
  return s;
}

TEST_CASE("CORS preflight from an allowed origin", "[http_server]") {
  Fixture f(with_cors({"https://app.example.com"}, {"X-Tenant", "content-type"}, 600s));
  Client c(f.port());
  Response res = c.request(preflight("https://app.example.com"));
  CHECK(res.result_int() == 204);
  CHECK(res[http::field::access_control_allow_origin] == "https://app.example.com");
  CHECK(res[http::field::access_control_allow_credentials] == "true");
  CHECK(res[http::field::access_control_allow_methods] == "POST");
  CHECK(res[http::field::access_control_allow_headers] == "Content-Type, Content-Encoding, X-Tenant");
  CHECK(res[http::field::access_control_max_age] == "600");
  CHECK(res[http::field::vary] == "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
  CHECK_FALSE(has(res, http::field::content_length));
  CHECK(res.body().empty());
  CHECK(res.keep_alive());
  // Origins compare case-insensitively and are echoed as sent.
  res = c.request(preflight("HTTPS://App.Example.com"));
  CHECK(res[http::field::access_control_allow_origin] == "HTTPS://App.Example.com");
  CHECK(f.calls().empty());
}

TEST_CASE("CORS preflight from another origin or for another method gets no CORS headers", "[http_server]") {
  Fixture f(with_cors({"https://app.example.com"}));
  Client c(f.port());
  for (auto req : {preflight("https://evil.example.net"), preflight("https://app.example.com", "PUT"),
                   preflight("http://app.example.com"), preflight("https://app.example.com.evil.net")}) {
    Response res = c.request(req);
    CHECK(res.result_int() == 204);
    CHECK_FALSE(has(res, http::field::access_control_allow_origin));
    CHECK_FALSE(has(res, http::field::access_control_allow_methods));
    CHECK_FALSE(has(res, http::field::access_control_allow_headers));
    CHECK(res[http::field::vary] == "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
  }
  // Not a signal path: no preflight answer.
  auto req = preflight("https://app.example.com");
  req.target("/v1/other");
  CHECK(c.request(req).result_int() == 404);
}

TEST_CASE("CORS wildcard origins", "[http_server]") {
  Fixture f(with_cors({"https://*.example.com"}));
  Client c(f.port());
  auto allowed = [&](const std::string& origin) {
    return has(c.request(preflight(origin)), http::field::access_control_allow_origin);
  };
  CHECK(allowed("https://app.example.com"));
  CHECK(allowed("https://a.b.example.com"));
  CHECK_FALSE(allowed("https://example.com"));
  CHECK_FALSE(allowed("http://app.example.com"));
  CHECK_FALSE(allowed("https://app.example.com.evil.net"));
  CHECK_FALSE(allowed("https://appexample.com"));

  Fixture any(with_cors({"*"}, {"*"}));
  Client c2(any.port());
  Response res = c2.request(preflight("https://anywhere.test"));
  CHECK(res[http::field::access_control_allow_origin] == "https://anywhere.test");  // never "*": credentials
  CHECK(res[http::field::access_control_allow_headers] == "Content-Type, Content-Encoding, content-type");
  CHECK_FALSE(has(res, http::field::access_control_max_age));  // max_age 0
}

TEST_CASE("CORS on answers: allowed origins may read them, errors included", "[http_server]") {
  Fixture f(with_cors({"https://app.example.com"}));
  Client c(f.port());
  auto req = post("/v1/traces", kJson, trace_request_json());
  req.set(http::field::origin, "https://app.example.com");
  Response res = c.request(req);
  CHECK(res.result_int() == 200);
  CHECK(res[http::field::access_control_allow_origin] == "https://app.example.com");
  CHECK(res[http::field::access_control_allow_credentials] == "true");
  CHECK(res[http::field::vary] == "Origin");

  req = post("/v1/traces", kJson, "{not json");
  req.set(http::field::origin, "https://app.example.com");
  res = c.request(req);
  CHECK(res.result_int() == 400);
  CHECK(res[http::field::access_control_allow_origin] == "https://app.example.com");

  req = post("/v1/traces", kProtobuf, "x");
  req.set(http::field::origin, "https://evil.example.net");
  res = c.request(req);
  CHECK(res.result_int() == 200);
  CHECK_FALSE(has(res, http::field::access_control_allow_origin));
  CHECK(res[http::field::vary] == "Origin");

  res = c.request(post("/v1/traces", kProtobuf, "x"));  // no Origin: not a browser
  CHECK_FALSE(has(res, http::field::access_control_allow_origin));
}

TEST_CASE("without cors OPTIONS stays 405", "[http_server]") {
  Fixture f;
  Client c(f.port());
  Response res = c.request(preflight("https://app.example.com"));
  CHECK(res.result_int() == 405);
  CHECK(res[http::field::allow] == "POST");
  CHECK_FALSE(has(res, http::field::access_control_allow_origin));
  CHECK_FALSE(has(res, http::field::vary));
}

std::shared_ptr<const BearerToken> token(const std::string& value) {
  BearerTokenSettings settings;
  settings.token = value;
  Status error;
  std::shared_ptr<const BearerToken> t = BearerToken::open(settings, &error);
  REQUIRE(t);
  return t;
}

http::request<http::string_body> with_authorization(http::request<http::string_body> req, const std::string& value) {
  req.set(http::field::authorization, value);
  return req;
}

TEST_CASE("auth: 401 once the headers are read, before any body byte arrives", "[http_server][auth]") {
  Fixture f({}, token("s3cret-token"));
  Client c(f.port());
  // A 20 MB body is announced but never sent: the answer cannot depend on reading it.
  REQUIRE_FALSE(c.write("POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                        "Content-Encoding: gzip\r\nContent-Length: 20000000\r\n\r\n"));
  Response res;
  REQUIRE_FALSE(c.read(&res));
  CHECK(res.result_int() == 401);
  CHECK(res[http::field::www_authenticate] == "Bearer");
  CHECK_FALSE(res.keep_alive());
  require_content_length(res);
  google::rpc::Status st = rpc_status_from(res);
  CHECK(st.code() == 16);
  CHECK(st.message() == "missing or invalid credentials");
  CHECK(c.closed_by_server());
  CHECK(f.calls().empty());
}

TEST_CASE("auth: wrong, truncated, longer and differently cased tokens are all 401", "[http_server][auth]") {
  Fixture f({}, token("s3cret-token"));
  for (const std::string& value : {std::string("Bearer s3cret-tokeN"), std::string("Bearer s3cret-toke"),
                                   std::string("Bearer s3cret-token2"), std::string("bearer s3cret-token"),
                                   std::string("s3cret-token"), std::string("Basic czNjcmV0LXRva2Vu"),
                                   std::string("Bearer  s3cret-token"), std::string()}) {
    INFO("Authorization: " << value);
    Client c(f.port());
    auto req = post("/v1/traces", kJson, trace_request_json());
    if (!value.empty()) req.set(http::field::authorization, value);
    Response res = c.request(req);
    CHECK(res.result_int() == 401);
    CHECK(res[http::field::content_type] == kJson);
    CHECK(rpc_status_from(res).code() == 16);
    // Nothing of what was sent comes back.
    CHECK(res.body().find("s3cret") == std::string::npos);
    CHECK(res.body().find("Bearer") == std::string::npos);
  }
  CHECK(f.calls().empty());
}

TEST_CASE("auth: the right token is served, on every path and with keep-alive", "[http_server][auth]") {
  Fixture f({}, token("s3cret-token"));
  Client c(f.port());
  for (const char* path : {"/v1/traces", "/v1/metrics", "/v1/logs"}) {
    Response res = c.request(with_authorization(post(path, kProtobuf, "x"), "Bearer s3cret-token"));
    CHECK(res.result_int() == 200);
    CHECK(res.keep_alive());
  }
  CHECK(f.calls().size() == 3);
  // A 404 needs credentials too: an unauthenticated client learns nothing about the paths.
  Client other(f.port());
  CHECK(other.request(post("/v1/other", kProtobuf, "x")).result_int() == 401);
}

TEST_CASE("auth: a CORS preflight needs no credentials, the request after it does", "[http_server][auth]") {
  Fixture f(with_cors({"https://app.example.com"}), token("s3cret-token"));
  Client c(f.port());
  Response res = c.request(preflight("https://app.example.com"));
  CHECK(res.result_int() == 204);
  CHECK(res[http::field::access_control_allow_origin] == "https://app.example.com");
  Client c2(f.port());
  auto req = post("/v1/traces", kJson, trace_request_json());
  req.set(http::field::origin, "https://app.example.com");
  res = c2.request(req);
  CHECK(res.result_int() == 401);
  // The page may read the refusal.
  CHECK(res[http::field::access_control_allow_origin] == "https://app.example.com");
  CHECK(f.calls().empty());
}

TEST_CASE("shutdown closes idle connections and is idempotent", "[http_server]") {
  Fixture f;
  Client c(f.port());
  CHECK(c.request(post("/v1/traces", kProtobuf, "x")).result_int() == 200);
  f.server().shutdown(Clock::now() + 5s);
  CHECK(c.closed_by_server());
  f.server().shutdown(Clock::now() + 5s);
}

}  // namespace
}  // namespace otlpd

// TLS on the otlp receiver's listeners (net/tls_server_context, receivers/otlp/http_server and
// grpc_server, and the `tls` config block): handshakes with real OpenSSL and gRPC clients against
// certificates from support/test_certs, on 127.0.0.1 with ephemeral ports. Every client operation
// runs under a timeout and every wait polls a condition until a deadline, so a broken server fails
// a test instead of hanging it.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <grpcpp/grpcpp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "config/errors.h"
#include "config/node.h"
#include "net/tls_server_context.h"
#include "net/tls_settings.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "receivers/otlp/grpc_server.h"
#include "receivers/otlp/http_server.h"
#include "receivers/otlp/otlp_receiver.h"
#include "support/http_server_fixture.h"
#include "support/test_certs.h"
#include "support/test_support.h"

namespace otlpd {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;
using namespace std::chrono_literals;
using test::CertOptions;
using test::Pem;
using test::make_ca;
using test::make_cert;
using test::write_file;
namespace tracepb = opentelemetry::proto::collector::trace::v1;

constexpr auto kClientTimeout = 5s;     // one client operation; a hung server fails the test
constexpr auto kReloadDeadline = 10s;   // how long a rotated certificate may take to be served
constexpr char kProtobuf[] = "application/x-protobuf";

// ---------------------------------------------------------------------------------------------
// Files and certificates

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "otlpd-tls-test-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A server certificate for the loopback listener: 127.0.0.1 and localhost, signed by `ca`.
Pem server_cert(const Pem& ca, const std::string& cn = "localhost") {
  return make_cert(ca, {.common_name = cn, .dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1"}});
}

Pem client_cert(const Pem& ca, const std::string& cn = "client") {
  return make_cert(ca, {.common_name = cn, .client = true});
}

// The CA the servers trust for clients (and the clients for servers), another CA nobody trusts,
// and a server certificate.
struct Pki {
  Pem ca = make_ca("otlpd test CA");
  Pem other_ca = make_ca("some other CA");
  Pem server = server_cert(ca);
};

// Writes `server` as server.crt/server.key into `dir` (and `client_ca` as clients.pem when set).
TlsServerSettings write_server_files(const TempDir& dir, const Pem& server, const Pem* client_ca = nullptr) {
  TlsServerSettings s;
  s.cert_file = write_file(dir.path(), "server.crt", server.cert);
  s.key_file = write_file(dir.path(), "server.key", server.key);
  if (client_ca) s.client_ca_file = write_file(dir.path(), "clients.pem", client_ca->cert);
  return s;
}

std::string trace_request_bytes() {
  tracepb::ExportTraceServiceRequest req;
  auto* span = req.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10", 16));
  span->set_span_id(std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  span->set_name("span over tls");
  return req.SerializeAsString();
}

std::string subject_cn(X509* cert) {
  char buf[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf) < 0) return {};
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Log capture: the TLS reload reports its failures only in the log.

class CaptureSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // How many lines logged since the last clear() contain `fragment`.
  size_t count(const std::string& fragment) {
    std::lock_guard lock(mutex_);
    size_t n = 0;
    for (const auto& line : lines_) {
      if (line.find(fragment) != std::string::npos) ++n;
    }
    return n;
  }
  bool contains(const std::string& fragment) { return count(fragment) > 0; }
  void clear() {
    std::lock_guard lock(mutex_);
    lines_.clear();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override { lines_.emplace_back(msg.payload.data(), msg.payload.size()); }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

// Installs a default logger that also writes to a CaptureSink; restores the previous one. Declare
// it before the servers, so nothing logs while the loggers are swapped.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    std::vector<spdlog::sink_ptr> sinks = previous_->sinks();
    sinks.push_back(sink_);
    auto logger = std::make_shared<spdlog::logger>("tls_receiver_test", sinks.begin(), sinks.end());
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  CaptureSink& sink() { return *sink_; }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<CaptureSink> sink_ = std::make_shared<CaptureSink>();
};

// ---------------------------------------------------------------------------------------------
// HTTP: an OTLP/HTTP server with TLS, and TLS / plaintext clients

using test::HttpCall;

// An HttpServer on 127.0.0.1:0 with `tls` (tests/support/http_server_fixture.h).
class HttpFixture : public test::HttpServerFixture {
 public:
  explicit HttpFixture(TlsServerSettings tls, std::chrono::milliseconds read_header_timeout = 5s)
      : HttpServerFixture(settings(std::move(tls), read_header_timeout)) {}

 private:
  static HttpServerSettings settings(TlsServerSettings tls, std::chrono::milliseconds read_header_timeout) {
    HttpServerSettings s;
    s.read_header_timeout = read_header_timeout;
    s.tls = std::move(tls);
    return s;
  }
};

Request post_traces(std::string body) {
  Request req(http::verb::post, "/v1/traces", 11);
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::content_type, kProtobuf);
  req.keep_alive(false);
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

// How a TLS client is set up.
struct ClientTls {
  std::string trusted_ca{};        // PEM roots the client verifies the server against
  std::optional<Pem> identity{};   // the client certificate presented, if any
  int max_version = 0;           // e.g. TLS1_2_VERSION; 0: OpenSSL's highest (1.3)
};

enum class Stage { connect, handshake, write, read, done };

const char* stage_name(Stage s) {
  switch (s) {
    case Stage::connect: return "connect";
    case Stage::handshake: return "handshake";
    case Stage::write: return "write";
    case Stage::read: return "read";
    case Stage::done: return "done";
  }
  return "?";
}

// What a TLS client got: where it stopped (done: all went through), the error there, the
// response, and the negotiated protocol and server certificate.
struct TlsExchange {
  Stage failed_at = Stage::done;
  beast::error_code error;
  std::optional<Response> response;
  int protocol = 0;       // SSL_version() after the handshake
  std::string peer_cn;    // the server certificate's subject CN
  bool ok() const { return failed_at == Stage::done; }
  std::string describe() const {
    std::string d = std::string("stage ") + stage_name(failed_at) + ", error \"" + error.message() + "\"";
    if (response) d += ", HTTP " + std::to_string(response->result_int());
    return d;
  }
};

// Connects to 127.0.0.1:port, handshakes (verifying the server's certificate for 127.0.0.1
// against opts.trusted_ca), then sends `req` and reads the response when there is one.
TlsExchange tls_exchange(uint16_t port, const ClientTls& opts, const std::optional<Request>& req) {
  TlsExchange out;
  ssl::context ctx(ssl::context::tls_client);
  ctx.set_verify_mode(ssl::verify_peer);
  ctx.add_certificate_authority(net::buffer(opts.trusted_ca));
  if (opts.identity) {
    ctx.use_certificate_chain(net::buffer(opts.identity->cert));
    ctx.use_private_key(net::buffer(opts.identity->key), ssl::context::pem);
  }
  if (opts.max_version != 0) REQUIRE(SSL_CTX_set_max_proto_version(ctx.native_handle(), opts.max_version) == 1);

  net::io_context io;
  beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
  stream.set_verify_callback(ssl::host_name_verification("127.0.0.1"));
  auto run = [&](auto start) {
    beast::get_lowest_layer(stream).expires_after(kClientTimeout);
    beast::error_code result = net::error::would_block;
    start([&](beast::error_code ec, auto&&...) { result = ec; });
    io.restart();
    io.run();
    return result;
  };
  auto fail = [&](Stage stage, beast::error_code ec) {
    out.failed_at = stage;
    out.error = ec;
    return out;
  };

  if (auto ec = run([&](auto h) {
        beast::get_lowest_layer(stream).async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), h);
      })) {
    return fail(Stage::connect, ec);
  }
  if (auto ec = run([&](auto h) { stream.async_handshake(ssl::stream_base::client, h); })) {
    return fail(Stage::handshake, ec);
  }
  out.protocol = SSL_version(stream.native_handle());
  if (X509* peer = SSL_get1_peer_certificate(stream.native_handle())) {
    out.peer_cn = subject_cn(peer);
    X509_free(peer);
  }
  if (!req) return out;
  Request copy = *req;
  if (auto ec = run([&](auto h) { http::async_write(stream, copy, h); })) return fail(Stage::write, ec);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  if (auto ec = run([&](auto h) { http::async_read(stream, buffer, parser, h); })) return fail(Stage::read, ec);
  out.response = parser.release();
  return out;
}

// A TLS client the server must refuse: it gets no HTTP answer, and the refusal is prompt (an
// error or EOF, not the client's timeout). With TLS 1.2 the handshake itself fails; with TLS 1.3
// the client may finish its side first and see the server's alert on its first read.
void check_refused(const TlsExchange& r) {
  INFO(r.describe());
  CHECK_FALSE(r.response.has_value());
  CHECK(r.failed_at != Stage::done);
  CHECK(r.failed_at != Stage::connect);  // TCP is accepted: the refusal is TLS's
  CHECK(r.error != beast::error::timeout);
}

// The client's view of a refusal, for the TLS 1.2 case where it is the handshake's alert.
void check_handshake_alert(const TlsExchange& r, const std::string& alert) {
  INFO(r.describe());
  CHECK(r.failed_at == Stage::handshake);
  CHECK(r.error.message().find(alert) != std::string::npos);
}

// Sends `bytes` in plaintext to 127.0.0.1:port and reads until the server closes (or the client's
// timeout passes); returns what ended the read, with everything received in *received.
beast::error_code plaintext_exchange(uint16_t port, const std::string& bytes, std::string* received) {
  net::io_context io;
  beast::tcp_stream stream(io);
  beast::error_code result = net::error::would_block;
  stream.expires_after(kClientTimeout);
  stream.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), [&](beast::error_code ec) { result = ec; });
  io.run();
  if (result) return result;
  const auto deadline = std::chrono::steady_clock::now() + kClientTimeout;
  stream.expires_at(deadline);
  net::async_write(stream, net::buffer(bytes), [&](beast::error_code ec, size_t) { result = ec; });
  io.restart();
  io.run();
  // A write error (the server reset the connection early) still leaves received bytes to read.
  char chunk[4096];
  std::function<void()> read_more = [&] {
    stream.async_read_some(net::buffer(chunk), [&](beast::error_code ec, size_t n) {
      received->append(chunk, n);
      result = ec;
      if (!ec) read_more();
    });
  };
  read_more();
  io.restart();
  io.run();
  return result;
}

// Opens handshake-only connections until `pred(exchange)` holds or `deadline` passes; every
// exchange is handed to `each` first. Returns the last exchange.
TlsExchange poll_handshakes(uint16_t port, const ClientTls& opts, std::chrono::milliseconds deadline,
                            const std::function<bool(const TlsExchange&)>& pred,
                            const std::function<void(const TlsExchange&)>& each = {}) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (true) {
    TlsExchange r = tls_exchange(port, opts, std::nullopt);
    if (each) each(r);
    if (pred(r) || std::chrono::steady_clock::now() >= until) return r;
    std::this_thread::sleep_for(20ms);  // pacing between polls, not synchronisation
  }
}

// ---------------------------------------------------------------------------------------------
// gRPC: a GrpcServer with TLS and a typed TLS client

class GrpcFixture {
 public:
  explicit GrpcFixture(TlsServerSettings tls) {
    GrpcServerSettings settings;
    settings.endpoint = "127.0.0.1:0";
    settings.tls = std::move(tls);
    server_ = std::make_unique<GrpcServer>(
        settings, nullptr,
        [this](otlp::Signal signal, std::string&& bytes) {
          std::lock_guard lock(mu_);
          calls_.push_back({signal, std::move(bytes)});
          return Status::ok();
        },
        [](otlp::Signal) { return true; });
    Status s = server_->start();
    INFO(s.to_string());
    REQUIRE(s.is_ok());
    REQUIRE(server_->port() != 0);
  }
  ~GrpcFixture() { server_->shutdown(Clock::now() + 2s); }

  uint16_t port() const { return server_->port(); }
  std::vector<HttpCall> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::vector<HttpCall> calls_;
  std::unique_ptr<GrpcServer> server_;
};

struct GrpcResult {
  grpc::Status status;
  std::string peer_cn;  // the server certificate's CN, as the client's auth context reports it
};

// One Export on a fresh channel (its own subchannel, so a new connection and handshake) to
// 127.0.0.1:port, verifying the server against opts.trusted_ca.
GrpcResult grpc_export(uint16_t port, const ClientTls& opts, const std::string& request_bytes) {
  grpc::SslCredentialsOptions creds;
  creds.pem_root_certs = opts.trusted_ca;
  if (opts.identity) {
    creds.pem_private_key = opts.identity->key;
    creds.pem_cert_chain = opts.identity->cert;
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), grpc::SslCredentials(creds), args);
  auto stub = tracepb::TraceService::NewStub(channel);
  tracepb::ExportTraceServiceRequest req;
  REQUIRE(req.ParseFromString(request_bytes));
  tracepb::ExportTraceServiceResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kClientTimeout);
  GrpcResult out;
  out.status = stub->Export(&ctx, req, &resp);
  if (auto auth = ctx.auth_context()) {
    auto cns = auth->FindPropertyValues("x509_common_name");
    if (!cns.empty()) out.peer_cn = std::string(cns[0].data(), cns[0].size());
  }
  return out;
}

std::string describe(const grpc::Status& s) {
  return "gRPC status " + std::to_string(static_cast<int>(s.error_code())) + " \"" + s.error_message() + "\"";
}

// ---------------------------------------------------------------------------------------------
// Config

std::string parse_errors(const std::string& protocols_flow) {
  config::Errors errors;
  config::Node node(YAML::Load("protocols: " + protocols_flow), "receivers.otlp", &errors);
  OtlpReceiverFactory().parse(node);
  return errors.to_string();
}

}  // namespace

// ============================================================================================
// HTTP receiver

TEST_CASE("HTTP TLS: a client trusting the CA is served 200 and the handler gets the exact bytes", "[tls][http]") {
  Pki pki;
  TempDir dir;
  HttpFixture f(write_server_files(dir, pki.server));
  const std::string bytes = trace_request_bytes();
  // The server accepts TLS 1.2 and 1.3 by default.
  for (int max_version : {TLS1_2_VERSION, 0}) {
    TlsExchange r = tls_exchange(f.port(), {.trusted_ca = pki.ca.cert, .max_version = max_version}, post_traces(bytes));
    INFO(r.describe());
    REQUIRE(r.ok());
    CHECK(r.protocol == (max_version == 0 ? TLS1_3_VERSION : TLS1_2_VERSION));
    CHECK(r.peer_cn == "localhost");
    CHECK(r.response->result_int() == 200);
    CHECK((*r.response)[http::field::content_type] == kProtobuf);
    CHECK(r.response->body().empty());  // full success: an empty ExportTraceServiceResponse
  }
  auto calls = f.calls();
  REQUIRE(calls.size() == 2);
  for (const auto& call : calls) {
    CHECK(call.signal == Signal::traces);
    CHECK(call.bytes == bytes);
  }
}

TEST_CASE("HTTP TLS: a plaintext request is not served, and TLS clients still are", "[tls][http]") {
  Pki pki;
  TempDir dir;
  HttpFixture f(write_server_files(dir, pki.server));
  const std::string bytes = trace_request_bytes();
  const std::string plaintext = "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
                                "Content-Length: " + std::to_string(bytes.size()) + "\r\nConnection: close\r\n\r\n" + bytes;
  std::string received;
  beast::error_code ec = plaintext_exchange(f.port(), plaintext, &received);
  INFO("plaintext read ended with \"" << ec.message() << "\" after " << received.size() << " bytes");
  // The server closes the connection (EOF or reset) right away, without an HTTP answer.
  CHECK((ec == net::error::eof || ec == net::error::connection_reset));
  CHECK(received.find("HTTP/") == std::string::npos);
  CHECK(f.calls().empty());

  TlsExchange r = tls_exchange(f.port(), {.trusted_ca = pki.ca.cert}, post_traces(bytes));
  INFO(r.describe());
  REQUIRE(r.ok());
  CHECK(r.response->result_int() == 200);
  auto calls = f.calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].bytes == bytes);
}

TEST_CASE("HTTP TLS: a client stalling in the handshake is closed at read_header_timeout", "[tls][http]") {
  Pki pki;
  TempDir dir;
  HttpFixture f(write_server_files(dir, pki.server), 300ms);
  // Connects and sends nothing: the server waits for a ClientHello under the header deadline.
  const auto start = std::chrono::steady_clock::now();
  std::string received;
  beast::error_code ec = plaintext_exchange(f.port(), "", &received);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  INFO("read ended with \"" << ec.message() << "\" after "
                             << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << "ms");
  CHECK((ec == net::error::eof || ec == net::error::connection_reset));  // the server closed, not our timeout
  CHECK(received.empty());
  CHECK(elapsed >= 250ms);  // not before the deadline (timers never fire early; 50ms for clock granularity)
  CHECK(elapsed < kClientTimeout);

  TlsExchange r = tls_exchange(f.port(), {.trusted_ca = pki.ca.cert}, post_traces("x"));
  INFO(r.describe());
  REQUIRE(r.ok());
  CHECK(r.response->result_int() == 200);
}

TEST_CASE("HTTP mTLS: clients without a certificate from the client CA are refused, a valid one is served",
          "[tls][http][mtls]") {
  Pki pki;
  TempDir dir;
  HttpFixture f(write_server_files(dir, pki.server, &pki.ca));
  const std::string bytes = trace_request_bytes();
  const Pem wrong_ca_client = client_cert(pki.other_ca, "stranger");
  const Pem expired_client =
      make_cert(pki.ca, {.common_name = "expired", .client = true, .not_before_offset = -std::chrono::hours(48),
                         .valid_for = std::chrono::hours(24)});

  for (int max_version : {TLS1_2_VERSION, 0}) {
    const bool tls12 = max_version == TLS1_2_VERSION;
    INFO("client max version " << (tls12 ? "1.2" : "1.3"));
    {
      INFO("no client certificate");
      TlsExchange r = tls_exchange(f.port(), {.trusted_ca = pki.ca.cert, .max_version = max_version}, post_traces(bytes));
      check_refused(r);
      if (tls12) check_handshake_alert(r, "alert handshake failure");
    }
    {
      INFO("client certificate from another CA");
      TlsExchange r = tls_exchange(f.port(), {.trusted_ca = pki.ca.cert, .identity = wrong_ca_client, .max_version = max_version},
                                   post_traces(bytes));
      check_refused(r);
      if (tls12) check_handshake_alert(r, "alert unknown ca");
    }
    {
      INFO("expired client certificate from the client CA");
      TlsExchange r = tls_exchange(f.port(), {.trusted_ca = pki.ca.cert, .identity = expired_client, .max_version = max_version},
                                   post_traces(bytes));
      check_refused(r);
      if (tls12) check_handshake_alert(r, "alert certificate expired");
    }
  }
  CHECK(f.calls().empty());

  for (int max_version : {TLS1_2_VERSION, 0}) {
    TlsExchange r = tls_exchange(f.port(), {.trusted_ca = pki.ca.cert, .identity = client_cert(pki.ca), .max_version = max_version},
                                 post_traces(bytes));
    INFO(r.describe());
    REQUIRE(r.ok());
    CHECK(r.response->result_int() == 200);
  }
  auto calls = f.calls();
  REQUIRE(calls.size() == 2);
  CHECK(calls[0].bytes == bytes);
  CHECK(calls[1].bytes == bytes);
}

TEST_CASE("HTTP TLS min_version 1.3: a TLS 1.2 client fails the handshake, a 1.3 client is served", "[tls][http]") {
  Pki pki;
  TempDir dir;
  TlsServerSettings tls = write_server_files(dir, pki.server);
  tls.min_version = TlsVersion::v1_3;
  HttpFixture f(tls);
  const std::string bytes = trace_request_bytes();

  TlsExchange old = tls_exchange(f.port(), {.trusted_ca = pki.ca.cert, .max_version = TLS1_2_VERSION}, post_traces(bytes));
  check_refused(old);
  check_handshake_alert(old, "alert protocol version");
  CHECK(f.calls().empty());

  TlsExchange r = tls_exchange(f.port(), {.trusted_ca = pki.ca.cert}, post_traces(bytes));
  INFO(r.describe());
  REQUIRE(r.ok());
  CHECK(r.protocol == TLS1_3_VERSION);
  CHECK(r.response->result_int() == 200);
  auto calls = f.calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].bytes == bytes);
}

TEST_CASE("HTTP TLS reload_interval: a rotated certificate is served, a mismatched key keeps the previous one",
          "[tls][http][reload]") {
  LogCapture log;  // before the server: the reload reports its failures in the log
  Pki pki;
  TempDir dir;
  const Pem a = server_cert(pki.ca, "server-a");
  const Pem b = server_cert(pki.ca, "server-b");
  const Pem c = server_cert(pki.ca, "server-c");
  const Pem unrelated = server_cert(pki.ca, "unrelated");
  TlsServerSettings tls = write_server_files(dir, a);
  tls.reload_interval = 100ms;
  HttpFixture f(tls);
  const ClientTls client{.trusted_ca = pki.ca.cert};

  TlsExchange first = tls_exchange(f.port(), client, std::nullopt);
  INFO(first.describe());
  REQUIRE(first.ok());
  CHECK(first.peer_cn == "server-a");

  // Rotate to B: new connections get B once the interval has passed.
  write_file(dir.path(), "server.crt", b.cert);
  write_file(dir.path(), "server.key", b.key);
  std::vector<std::string> seen;
  TlsExchange rotated = poll_handshakes(
      f.port(), client, kReloadDeadline, [](const TlsExchange& r) { return r.peer_cn == "server-b"; },
      [&](const TlsExchange& r) { seen.push_back(r.ok() ? r.peer_cn : "error: " + r.describe()); });
  INFO("certificates seen while rotating: " << Catch::Detail::stringify(seen));
  REQUIRE(rotated.peer_cn == "server-b");
  for (const auto& cn : seen) CHECK((cn == "server-a" || cn == "server-b"));  // never a failed handshake

  // A certificate with a key that does not belong to it: the reload fails, B stays.
  write_file(dir.path(), "server.crt", c.cert);
  write_file(dir.path(), "server.key", unrelated.key);
  log.sink().clear();
  const std::string warning = "TLS reload: tls.key_file " + tls.key_file;
  seen.clear();
  // A failed reload is retried every interval. The first warning after clear() may come from an
  // attempt that overlapped the two writes; the second began after it, so with both files new.
  poll_handshakes(
      f.port(), client, kReloadDeadline, [&](const TlsExchange&) { return log.sink().count(warning) >= 2; },
      [&](const TlsExchange& r) { seen.push_back(r.ok() ? r.peer_cn : "error: " + r.describe()); });
  INFO("certificates seen with the mismatched key: " << Catch::Detail::stringify(seen));
  REQUIRE(log.sink().count(warning) >= 2);
  CHECK(log.sink().contains("the previous certificate stays in use"));
  TlsExchange after = tls_exchange(f.port(), client, std::nullopt);  // after the failed reloads for sure
  seen.push_back(after.ok() ? after.peer_cn : "error: " + after.describe());
  for (const auto& cn : seen) CHECK(cn == "server-b");

  // The matching key arrives: C is served.
  write_file(dir.path(), "server.key", c.key);
  TlsExchange fixed = poll_handshakes(f.port(), client, kReloadDeadline,
                                      [](const TlsExchange& r) { return r.peer_cn == "server-c"; });
  INFO(fixed.describe());
  CHECK(fixed.peer_cn == "server-c");
  // And a request on the reloaded context still goes through.
  TlsExchange served = tls_exchange(f.port(), client, post_traces("x"));
  INFO(served.describe());
  REQUIRE(served.ok());
  CHECK(served.response->result_int() == 200);
}

TEST_CASE("TLS server files: a missing, mismatched or empty file is an error naming it", "[tls][http]") {
  Pki pki;
  TempDir dir;
  const TlsServerSettings good = write_server_files(dir, pki.server);
  const std::string other_key = write_file(dir.path(), "other.key", server_cert(pki.ca, "other").key);
  const std::string not_pem = write_file(dir.path(), "not.pem", "hello\n");
  const std::string missing = dir.file("missing.pem");

  auto open_error = [](const TlsServerSettings& s) {
    Status error;
    std::shared_ptr<TlsServerContext> ctx = TlsServerContext::open(s, &error);
    CHECK(ctx == nullptr);
    CHECK_FALSE(error.is_ok());
    return error.message();
  };
  auto start_error = [](const TlsServerSettings& s) {
    test::IoThreads threads(1);
    HttpServerSettings settings;
    settings.endpoint = "127.0.0.1:0";
    settings.tls = s;
    HttpServer server(threads.io(), settings, [](Signal, std::string&&) { return Status::ok(); });
    Status status = server.start();
    CHECK_FALSE(status.is_ok());
    return status.message();
  };

  {
    Status error;
    auto ctx = TlsServerContext::open(good, &error);
    INFO(error.to_string());
    REQUIRE(ctx != nullptr);
    CHECK(ctx->current() != nullptr);
  }

  TlsServerSettings s = good;
  s.key_file = missing;
  CHECK(open_error(s) == "cannot read tls.key_file " + missing);
  CHECK(start_error(s) == "cannot read tls.key_file " + missing);

  s = good;
  s.cert_file = missing;
  CHECK(open_error(s) == "cannot read tls.cert_file " + missing);
  CHECK(start_error(s) == "cannot read tls.cert_file " + missing);

  s = good;
  s.key_file = other_key;  // a valid key, not the certificate's
  std::string msg = open_error(s);
  INFO(msg);
  CHECK(msg.rfind("tls.key_file " + other_key, 0) == 0);
  msg = start_error(s);
  INFO(msg);
  CHECK(msg.rfind("tls.key_file " + other_key, 0) == 0);

  s = good;
  s.key_file = not_pem;
  msg = open_error(s);
  INFO(msg);
  CHECK(msg.rfind("tls.key_file " + not_pem, 0) == 0);

  s = good;
  s.cert_file = not_pem;
  CHECK(open_error(s) == "tls.cert_file " + not_pem + " holds no PEM certificate");
  CHECK(start_error(s) == "tls.cert_file " + not_pem + " holds no PEM certificate");

  s = good;
  s.client_ca_file = missing;
  CHECK(open_error(s) == "cannot read tls.client_ca_file " + missing);
  s.client_ca_file = not_pem;
  CHECK(open_error(s) == "tls.client_ca_file " + not_pem + " holds no PEM certificate");
}

// ============================================================================================
// gRPC receiver

TEST_CASE("gRPC TLS: a client trusting the CA exports OK and the handler gets the request", "[tls][grpc]") {
  Pki pki;
  TempDir dir;
  GrpcFixture f(write_server_files(dir, pki.server));
  const std::string bytes = trace_request_bytes();
  GrpcResult r = grpc_export(f.port(), {.trusted_ca = pki.ca.cert}, bytes);
  INFO(describe(r.status));
  REQUIRE(r.status.ok());
  CHECK(r.peer_cn == "localhost");
  auto calls = f.calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].signal == Signal::traces);
  CHECK(calls[0].bytes == bytes);

  // A client that does not trust the server's CA gets nowhere.
  GrpcResult untrusting = grpc_export(f.port(), {.trusted_ca = pki.other_ca.cert}, bytes);
  INFO(describe(untrusting.status));
  CHECK(untrusting.status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(f.calls().size() == 1);
}

TEST_CASE("gRPC mTLS: clients without a certificate from the client CA fail, a valid one succeeds", "[tls][grpc][mtls]") {
  Pki pki;
  TempDir dir;
  TlsServerSettings tls = write_server_files(dir, pki.server, &pki.ca);
  // Both certificate providers: static files, and the file watcher used with reload_interval.
  for (auto reload : {0ms, 1000ms}) {
    INFO("reload_interval " << reload.count() << "ms");
    tls.reload_interval = reload;
    GrpcFixture f(tls);
    const std::string bytes = trace_request_bytes();

    GrpcResult none = grpc_export(f.port(), {.trusted_ca = pki.ca.cert}, bytes);
    INFO("no client certificate: " << describe(none.status));
    CHECK(none.status.error_code() == grpc::StatusCode::UNAVAILABLE);

    GrpcResult stranger = grpc_export(f.port(), {.trusted_ca = pki.ca.cert, .identity = client_cert(pki.other_ca)}, bytes);
    INFO("client certificate from another CA: " << describe(stranger.status));
    CHECK(stranger.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(f.calls().empty());

    GrpcResult valid = grpc_export(f.port(), {.trusted_ca = pki.ca.cert, .identity = client_cert(pki.ca)}, bytes);
    INFO("valid client certificate: " << describe(valid.status));
    REQUIRE(valid.status.ok());
    auto calls = f.calls();
    REQUIRE(calls.size() == 1);
    CHECK(calls[0].bytes == bytes);
  }
}

TEST_CASE("gRPC TLS reload_interval: a rotated certificate is served, a mismatched key keeps the previous one",
          "[tls][grpc][reload]") {
  Pki pki;
  TempDir dir;
  TlsServerSettings tls = write_server_files(dir, server_cert(pki.ca, "server-a"));
  tls.reload_interval = 100ms;  // gRPC's file watcher rounds it up to 1 s
  GrpcFixture f(tls);
  const std::string bytes = trace_request_bytes();
  const ClientTls client{.trusted_ca = pki.ca.cert};

  GrpcResult first = grpc_export(f.port(), client, bytes);
  INFO(describe(first.status));
  REQUIRE(first.status.ok());
  CHECK(first.peer_cn == "server-a");

  const Pem b = server_cert(pki.ca, "server-b");
  write_file(dir.path(), "server.crt", b.cert);
  write_file(dir.path(), "server.key", b.key);
  const auto until = std::chrono::steady_clock::now() + kReloadDeadline;
  GrpcResult r;
  std::vector<std::string> seen;
  while (true) {
    r = grpc_export(f.port(), client, bytes);
    seen.push_back(r.status.ok() ? r.peer_cn : describe(r.status));
    if (r.peer_cn == "server-b" || std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(50ms);  // pacing between polls, not synchronisation
  }
  INFO("seen while rotating: " << Catch::Detail::stringify(seen));
  REQUIRE(r.status.ok());
  REQUIRE(r.peer_cn == "server-b");

  // A certificate with a key that is not its own: the previous pair (B) must stay in use, as with
  // HTTP (grpc_server.cc: "switches when they hold a valid pair"). gRPC logs nothing we can wait
  // on, so observe for a bit more than two watcher intervals; every new connection must get B.
  const Pem c = server_cert(pki.ca, "server-c");
  write_file(dir.path(), "server.crt", c.cert);
  write_file(dir.path(), "server.key", server_cert(pki.ca, "unrelated").key);
  seen.clear();
  const auto observe_until = std::chrono::steady_clock::now() + 2500ms;
  while (std::chrono::steady_clock::now() < observe_until) {
    r = grpc_export(f.port(), client, bytes);
    seen.push_back(r.status.ok() ? r.peer_cn : describe(r.status));
    std::this_thread::sleep_for(100ms);  // pacing between polls
  }
  {
    INFO("seen with the mismatched key: " << Catch::Detail::stringify(seen));
    CHECK(std::count(seen.begin(), seen.end(), std::string("server-b")) == static_cast<long>(seen.size()));
  }

  // The matching key arrives: C is served.
  write_file(dir.path(), "server.key", c.key);
  const auto fixed_until = std::chrono::steady_clock::now() + kReloadDeadline;
  seen.clear();
  while (true) {
    r = grpc_export(f.port(), client, bytes);
    seen.push_back(r.status.ok() ? r.peer_cn : describe(r.status));
    if (r.peer_cn == "server-c" || std::chrono::steady_clock::now() >= fixed_until) break;
    std::this_thread::sleep_for(50ms);  // pacing between polls
  }
  INFO("seen after the matching key: " << Catch::Detail::stringify(seen));
  CHECK(r.status.ok());
  CHECK(r.peer_cn == "server-c");
}

TEST_CASE("gRPC TLS: start with an unreadable or bad file fails naming it", "[tls][grpc]") {
  Pki pki;
  TempDir dir;
  const TlsServerSettings good = write_server_files(dir, pki.server);
  const std::string missing = dir.file("missing.pem");
  const std::string not_pem = write_file(dir.path(), "not.pem", "hello\n");
  const std::string other_key = write_file(dir.path(), "other.key", server_cert(pki.ca, "other").key);

  auto start_error = [](const TlsServerSettings& tls) {
    GrpcServerSettings settings;
    settings.endpoint = "127.0.0.1:0";
    settings.tls = tls;
    GrpcServer server(settings, nullptr, [](otlp::Signal, std::string&&) { return Status::ok(); },
                      [](otlp::Signal) { return true; });
    Status s = server.start();
    CHECK_FALSE(s.is_ok());
    CHECK(server.port() == 0);
    return s.message();
  };

  TlsServerSettings s = good;
  s.cert_file = missing;
  CHECK(start_error(s) == "cannot read tls.cert_file " + missing);
  for (auto reload : {0ms, 1000ms}) {  // the file watcher is not created with a bad file either
    s = good;
    s.reload_interval = reload;
    s.key_file = missing;
    CHECK(start_error(s) == "cannot read tls.key_file " + missing);
    s.key_file = other_key;
    std::string msg = start_error(s);
    INFO(msg);
    CHECK(msg.rfind("tls.key_file " + other_key, 0) == 0);
  }
  s = good;
  s.cert_file = not_pem;
  CHECK(start_error(s) == "tls.cert_file " + not_pem + " holds no PEM certificate");
  s = good;
  s.client_ca_file = missing;
  CHECK(start_error(s) == "cannot read tls.client_ca_file " + missing);
}

// ============================================================================================
// Config

TEST_CASE("tls config: both files are required, gRPC refuses min_version 1.3", "[tls][config]") {
  const std::string grpc = "receivers.otlp.protocols.grpc.";
  const std::string http = "receivers.otlp.protocols.http.";
  CHECK(parse_errors("{http: {tls: {cert_file: /c.pem, key_file: /k.pem, client_ca_file: /ca.pem, "
                     "min_version: '1.3', reload_interval: 100ms}}}") == "");
  CHECK(parse_errors("{grpc: {tls: {cert_file: /c.pem, key_file: /k.pem, min_version: '1.2'}}}") == "");
  CHECK(parse_errors("{http: {tls: {cert_file: /c.pem}}}") == http + "tls.key_file: required when tls is set");
  CHECK(parse_errors("{grpc: {tls: {key_file: /k.pem}}}") == grpc + "tls.cert_file: required when tls is set");
  CHECK(parse_errors("{grpc: {tls: {cert_file: /c.pem, key_file: /k.pem, min_version: '1.3'}}}") ==
        grpc + "tls.min_version: 1.3 is not supported on the gRPC receiver (it always accepts 1.2 and 1.3)");

  config::Errors errors;
  config::Node node(YAML::Load("protocols: {http: {tls: {cert_file: /c.pem, key_file: /k.pem, client_ca_file: /ca.pem, "
                               "min_version: '1.3', reload_interval: 100ms}}}"),
                    "receivers.otlp", &errors);
  ComponentConfigPtr config = OtlpReceiverFactory().parse(node);
  REQUIRE(errors.empty());
  const auto& http_settings = static_cast<const OtlpReceiverConfig&>(*config).http;
  REQUIRE(http_settings);
  REQUIRE(http_settings->tls);
  CHECK(*http_settings->tls == TlsServerSettings{.cert_file = "/c.pem", .key_file = "/k.pem", .client_ca_file = "/ca.pem",
                                                 .min_version = TlsVersion::v1_3, .reload_interval = 100ms});
}

}  // namespace otlpd

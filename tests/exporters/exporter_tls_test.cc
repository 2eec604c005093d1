// The exporters' TLS client settings (tls: ca_file, cert_file/key_file, server_name_override,
// insecure_skip_verify, min_version, insecure) against real TLS backends on 127.0.0.1 (port 0):
//  - otlphttp: an OtlpHttpSender against a Beast TLS server in this file that records, per
//    connection, the SNI it was sent, the TLS version, the client certificate's CN and the bodies;
//  - otlp (gRPC): the factory's exporter (QueuedExporter around the gRPC sender, retries off)
//    against a grpc::Server with SslServerCredentials serving TraceService.
// Certificates come from otlpd_test_certs, made fresh per test into a temp dir.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "exporters/otlp/otlp_exporter.h"
#include "exporters/otlphttp/otlphttp_exporter.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "pipeline/host.h"
#include "pipeline/telemetry.h"
#include "support/temp_dir.h"
#include "support/test_certs.h"
#include "support/test_support.h"

namespace otlpd {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
namespace col = opentelemetry::proto::collector;

// ---------------------------------------------------------------------------------------------
// Shared helpers

std::string trace_payload(const std::string& name = "GET /checkout") {
  col::trace::v1::ExportTraceServiceRequest req;
  auto* span = req.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(std::string(16, '\x1c'));
  span->set_span_id(std::string(8, '\x2d'));
  span->set_name(name);
  return req.SerializeAsString();
}

// Collects the messages logged through spdlog's default logger while it lives.
class CaptureSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  // The first line containing `part`, or "".
  std::string find(const std::string& part) {
    std::lock_guard lock(mutex_);
    for (const auto& l : lines_) {
      if (l.find(part) != std::string::npos) return l;
    }
    return "";
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    std::vector<spdlog::sink_ptr> sinks = previous_->sinks();
    sinks.push_back(sink_);
    auto logger = std::make_shared<spdlog::logger>("exporter_tls_test", sinks.begin(), sinks.end());
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  CaptureSink& sink() { return *sink_; }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<CaptureSink> sink_ = std::make_shared<CaptureSink>();
};

// A test's certificates on disk.
struct CertDir {
  test::TempDir dir{"exporter_tls_test"};
  std::string write(const std::string& name, const std::string& text) {
    return test::write_file(dir.path().string(), name, text);
  }
  // Writes pem.cert and pem.key as <name>.crt and <name>.key and points tls at them.
  void write_identity(const std::string& name, const test::Pem& pem, TlsClientSettings* tls) {
    tls->cert_file = write(name + ".crt", pem.cert);
    tls->key_file = write(name + ".key", pem.key);
  }
};

// ---------------------------------------------------------------------------------------------
// otlphttp: a Beast TLS backend

// What the backend saw of one connection whose TLS handshake completed.
struct Handshake {
  std::string sni;        // SSL_get_servername on the server side; "" when none was sent
  int version = 0;        // SSL_version: TLS1_2_VERSION or TLS1_3_VERSION
  std::string client_cn;  // CN of the client's certificate; "" when it presented none
};

// An HTTPS server on 127.0.0.1 (ephemeral port, one thread) with a server context the test
// configures. Answers every request 200 with an empty protobuf body, keeps the connection alive.
class TlsHttpBackend {
 public:
  explicit TlsHttpBackend(std::shared_ptr<ssl::context> ctx) : ctx_(std::move(ctx)) {
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    net::co_spawn(io_, accept_loop(), net::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TlsHttpBackend() {
    io_.stop();  // teardown: drop the sessions still open
    thread_.join();
  }
  TlsHttpBackend(const TlsHttpBackend&) = delete;
  TlsHttpBackend& operator=(const TlsHttpBackend&) = delete;

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port()) + "/v1/traces"; }

  std::vector<std::string> bodies() const {
    std::lock_guard lock(mu_);
    return bodies_;
  }
  std::vector<Handshake> handshakes() const {
    std::lock_guard lock(mu_);
    return handshakes_;
  }
  int failed_handshakes() const { return failed_handshakes_.load(); }

 private:
  net::awaitable<void> accept_loop() {
    for (;;) {
      tcp::socket socket = co_await acceptor_.async_accept(net::use_awaitable);
      net::co_spawn(io_, session(std::move(socket)), net::detached);
    }
  }

  net::awaitable<void> session(tcp::socket socket) {
    ssl::stream<tcp::socket> stream(std::move(socket), *ctx_);
    boost::system::error_code ec;
    co_await stream.async_handshake(ssl::stream_base::server, net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      ++failed_handshakes_;
      co_return;
    }
    Handshake seen;
    SSL* ssl = stream.native_handle();
    if (const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) seen.sni = name;
    seen.version = SSL_version(ssl);
    if (X509* peer = SSL_get0_peer_certificate(ssl)) {
      char cn[256] = "";
      if (X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn) > 0) {
        seen.client_cn = cn;
      }
    }
    {
      std::lock_guard lock(mu_);
      handshakes_.push_back(seen);
    }
    try {
      beast::flat_buffer buffer;
      for (;;) {
        http::request<http::string_body> req;
        co_await http::async_read(stream, buffer, req, net::use_awaitable);
        {
          std::lock_guard lock(mu_);
          bodies_.push_back(req.body());
        }
        http::response<http::string_body> res{http::status::ok, 11};
        res.set(http::field::content_type, "application/x-protobuf");
        res.keep_alive(true);
        res.prepare_payload();
        co_await http::async_write(stream, res, net::use_awaitable);
      }
    } catch (const std::exception&) {
      // The client closed the connection.
    }
  }

  std::shared_ptr<ssl::context> ctx_;
  net::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<std::string> bodies_;
  std::vector<Handshake> handshakes_;
  std::atomic<int> failed_handshakes_{0};
};

// A server context presenting `leaf`; with `client_ca`, clients must present a certificate it
// signed; with `max_version`, nothing newer than it is spoken.
std::shared_ptr<ssl::context> backend_context(const test::Pem& leaf, const std::string& client_ca = "",
                                              int max_version = 0) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->use_certificate_chain(net::buffer(leaf.cert));
  ctx->use_private_key(net::buffer(leaf.key), ssl::context::pem);
  if (!client_ca.empty()) {
    ctx->add_certificate_authority(net::buffer(client_ca));
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  if (max_version != 0) REQUIRE(SSL_CTX_set_max_proto_version(ctx->native_handle(), max_version) == 1);
  return ctx;
}

OtlpHttpSender::Options http_options(const std::string& url, const TlsClientSettings& tls) {
  OtlpHttpSender::Options o;
  o.exporter_name = "otlphttp/tls";
  o.signal = Signal::traces;
  o.url = url;
  o.compression = HttpCompression::none;  // the backend sees the payload's own bytes
  o.tls = tls;
  return o;
}

// Starts a sender with `tls`, sends one batch and returns its status (bounded wait).
Status http_send(const std::string& url, const TlsClientSettings& tls, const std::string& payload) {
  test::IoThreads io(1);
  OtlpHttpSender sender(io.io(), http_options(url, tls));
  Status started = sender.start();
  INFO(started.to_string());
  REQUIRE(started.is_ok());
  std::promise<Status> result;
  auto future = result.get_future();
  sender.send(make_batch(Signal::traces, payload, 1), Clock::now() + 5s,
              [&result](Status s) { result.set_value(std::move(s)); });
  REQUIRE(future.wait_for(10s) == std::future_status::ready);
  Status s = future.get();
  sender.shutdown();
  return s;
}

// A TLS send that must fail before the backend reads a request: unavailable (retryable), naming
// the URL.
void check_refused(const Status& s, const std::string& url) {
  INFO(s.to_string());
  CHECK(s.code() == Status::Code::unavailable);
  CHECK(s.retryable());
  CHECK(s.message().find(url) != std::string::npos);
}

struct ParsedHttp {
  config::Errors errors;
  std::unique_ptr<OtlpHttpExporterConfig> config;
};

ParsedHttp parse_otlphttp(const std::string& yaml) {
  ParsedHttp p;
  config::Node node(YAML::Load(yaml), "exporters.otlphttp", &p.errors);
  ComponentConfigPtr cfg = OtlpHttpExporterFactory().parse(node);
  p.config.reset(static_cast<OtlpHttpExporterConfig*>(cfg.release()));
  return p;
}

// ---------------------------------------------------------------------------------------------
// otlp (gRPC): a grpc::Server with SslServerCredentials

// TraceService/Export: records each request (re-serialized: the payloads here are canonical) and
// the CN of the client's certificate.
class RecordingTraceService final : public col::trace::v1::TraceService::Service {
 public:
  grpc::Status Export(grpc::ServerContext* context, const col::trace::v1::ExportTraceServiceRequest* request,
                      col::trace::v1::ExportTraceServiceResponse*) override {
    std::string cn;
    if (auto auth = context->auth_context()) {
      auto values = auth->FindPropertyValues("x509_common_name");
      if (!values.empty()) cn.assign(values.front().data(), values.front().size());
    }
    std::lock_guard lock(mu_);
    requests_.push_back(request->SerializeAsString());
    client_cns_.push_back(cn);
    return grpc::Status::OK;
  }
  std::vector<std::string> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  std::vector<std::string> client_cns() const {
    std::lock_guard lock(mu_);
    return client_cns_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
  std::vector<std::string> client_cns_;
};

class GrpcTlsBackend {
 public:
  // Presents `leaf`; with `client_ca`, requires and verifies a client certificate it signed.
  explicit GrpcTlsBackend(const test::Pem& leaf, const std::string& client_ca = "") {
    grpc::SslServerCredentialsOptions options(client_ca.empty()
                                                  ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                                  : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = client_ca;
    options.pem_key_cert_pairs.push_back({leaf.key, leaf.cert});
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(options), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    REQUIRE(server_ != nullptr);
    REQUIRE(port_ > 0);
  }
  ~GrpcTlsBackend() { server_->Shutdown(std::chrono::system_clock::now() + 2s); }
  GrpcTlsBackend(const GrpcTlsBackend&) = delete;
  GrpcTlsBackend& operator=(const GrpcTlsBackend&) = delete;

  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  const RecordingTraceService& service() const { return service_; }

 private:
  RecordingTraceService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// What one export through the otlp exporter came to.
struct OtlpOutcome {
  bool sent = false;
  std::string error;  // the exporter's "dropped" log line when it failed
};

// Builds the otlp exporter (factory, retries off) for `endpoint` with `tls`, starts it, exports one
// batch and waits (bounded) until it is sent or dropped.
OtlpOutcome otlp_export(const std::string& endpoint, const TlsClientSettings& tls, const std::string& payload) {
  LogCapture log;
  test::IoThreads io(2);
  Telemetry telemetry;
  Host host{io.io(), telemetry};
  OtlpExporterConfig config;
  config.endpoint = endpoint;
  config.tls = tls;
  config.exporter.timeout = 5s;
  config.exporter.retry.enabled = false;
  const ComponentId id{"otlp", "tls"};
  ExporterPtr exporter = OtlpExporterFactory().create(id, config, Signal::traces, host);
  Status started = exporter->start();
  INFO(started.to_string());
  REQUIRE(started.is_ok());
  REQUIRE(exporter->consume(make_batch(Signal::traces, payload, 1)).is_ok());
  const Telemetry::Labels labels{{"exporter", "otlp/tls"}, {"signal", "traces"}};
  auto sent = [&] { return telemetry.value("otlpd_exporter_sent_items", labels); };
  auto failed = [&] { return telemetry.value("otlpd_exporter_send_failed_items", labels); };
  REQUIRE(test::wait_until([&] { return sent() + failed() >= 1; }, 10s));
  OtlpOutcome out;
  out.sent = sent() == 1;
  // The exporter counts the dropped items just before it logs the line.
  if (!out.sent) test::wait_until([&] { return !log.sink().find("dropped").empty(); });
  out.error = log.sink().find("dropped");
  exporter->shutdown(Clock::now() + 2s);
  exporter.reset();
  return out;
}

// An export that failed at the connection: dropped as gRPC UNAVAILABLE (14), for `reason` when
// given (gRPC's words for the handshake failure).
void check_grpc_refused(const OtlpOutcome& out, const std::string& reason = "") {
  INFO(out.error);
  CHECK_FALSE(out.sent);
  CHECK(out.error.find("exporter otlp/tls: dropped 1 spans") != std::string::npos);
  CHECK(out.error.find("gRPC 14: ") != std::string::npos);
  if (!reason.empty()) CHECK(out.error.find(reason) != std::string::npos);
}

struct ParsedOtlp {
  config::Errors errors;
  std::unique_ptr<OtlpExporterConfig> config;
};

ParsedOtlp parse_otlp(const std::string& yaml) {
  ParsedOtlp p;
  config::Node node(YAML::Load(yaml), "exporters.otlp", &p.errors);
  ComponentConfigPtr cfg = OtlpExporterFactory().parse(node);
  p.config.reset(static_cast<OtlpExporterConfig*>(cfg.release()));
  return p;
}

}  // namespace

// =============================================================================================
// otlphttp

TEST_CASE("otlphttp tls: mTLS presents cert_file/key_file and fails without one or with one from another CA",
          "[tls][otlphttp]") {
  CertDir dir;
  const auto server_ca = test::make_ca("backend CA");
  const auto client_ca = test::make_ca("client CA C");
  const auto other_ca = test::make_ca("some other CA");
  const auto server = test::make_cert(server_ca, {.common_name = "backend", .ip_addresses = {"127.0.0.1"}});
  TlsHttpBackend backend(backend_context(server, client_ca.cert));
  const std::string payload = trace_payload();

  TlsClientSettings tls;
  tls.ca_file = dir.write("server-ca.pem", server_ca.cert);

  SECTION("a client certificate signed by CA-C: sent, and the backend saw it and the request") {
    dir.write_identity("client", test::make_cert(client_ca, {.common_name = "otlpd-client", .client = true}), &tls);
    Status s = http_send(backend.url(), tls, payload);
    REQUIRE(s.to_string() == "OK");
    REQUIRE(backend.bodies() == std::vector<std::string>{payload});
    REQUIRE(backend.handshakes().size() == 1);
    CHECK(backend.handshakes()[0].client_cn == "otlpd-client");
  }

  SECTION("no client certificate: refused at the handshake") {
    Status s = http_send(backend.url(), tls, payload);
    check_refused(s, backend.url());
    CHECK(backend.bodies().empty());
    CHECK(test::wait_until([&] { return backend.failed_handshakes() == 1; }));
  }

  SECTION("a client certificate from another CA: refused at the handshake") {
    dir.write_identity("stranger", test::make_cert(other_ca, {.common_name = "stranger", .client = true}), &tls);
    Status s = http_send(backend.url(), tls, payload);
    check_refused(s, backend.url());
    CHECK(backend.bodies().empty());
    CHECK(test::wait_until([&] { return backend.failed_handshakes() == 1; }));
  }
}

TEST_CASE("otlphttp tls: server_name_override is verified and sent as SNI", "[tls][otlphttp]") {
  CertDir dir;
  const auto ca = test::make_ca("backend CA");
  const auto server = test::make_cert(ca, {.common_name = "backend.internal", .dns_names = {"backend.internal"}});
  TlsHttpBackend backend(backend_context(server));
  const std::string payload = trace_payload();
  TlsClientSettings tls;
  tls.ca_file = dir.write("ca.pem", ca.cert);

  SECTION("with the override: sent, SNI backend.internal") {
    tls.server_name_override = "backend.internal";
    Status s = http_send(backend.url(), tls, payload);
    REQUIRE(s.to_string() == "OK");
    REQUIRE(backend.bodies() == std::vector<std::string>{payload});
    REQUIRE(backend.handshakes().size() == 1);
    CHECK(backend.handshakes()[0].sni == "backend.internal");
  }

  SECTION("without it the certificate does not hold 127.0.0.1: verification fails") {
    Status s = http_send(backend.url(), tls, payload);
    check_refused(s, backend.url());
    CHECK(s.message().find("TLS handshake with " + backend.url()) != std::string::npos);
    CHECK(s.message().find("certificate verify failed") != std::string::npos);
    CHECK(backend.bodies().empty());
  }

  SECTION("an override the certificate does not hold: verification fails") {
    tls.server_name_override = "other.internal";
    Status s = http_send(backend.url(), tls, payload);
    check_refused(s, backend.url());
    CHECK(s.message().find("certificate verify failed") != std::string::npos);
    CHECK(backend.bodies().empty());
  }
}

TEST_CASE("otlphttp tls: insecure_skip_verify accepts an untrusted self-signed certificate", "[tls][otlphttp]") {
  const auto self = test::make_self_signed({.common_name = "elsewhere", .dns_names = {"elsewhere.example"}});
  TlsHttpBackend backend(backend_context(self));
  const std::string payload = trace_payload();

  TlsClientSettings tls;
  tls.insecure_skip_verify = true;
  REQUIRE(http_send(backend.url(), tls, payload).to_string() == "OK");
  CHECK(backend.bodies() == std::vector<std::string>{payload});

  check_refused(http_send(backend.url(), TlsClientSettings{}, payload), backend.url());
  CHECK(backend.bodies().size() == 1);
}

TEST_CASE("otlphttp tls: min_version 1.3 refuses a TLS 1.2 backend and speaks 1.3 to a 1.3 one",
          "[tls][otlphttp]") {
  CertDir dir;
  const auto ca = test::make_ca("backend CA");
  const auto server = test::make_cert(ca, {.common_name = "backend", .ip_addresses = {"127.0.0.1"}});
  const std::string payload = trace_payload();
  TlsClientSettings tls;
  tls.ca_file = dir.write("ca.pem", ca.cert);

  SECTION("a backend limited to TLS 1.2") {
    TlsHttpBackend backend(backend_context(server, "", TLS1_2_VERSION));
    // The default minimum (1.2) reaches it, so the refusal below is the version's.
    REQUIRE(http_send(backend.url(), tls, payload).to_string() == "OK");
    REQUIRE(backend.handshakes().size() == 1);
    CHECK(backend.handshakes()[0].version == TLS1_2_VERSION);

    tls.min_version = TlsVersion::v1_3;
    Status s = http_send(backend.url(), tls, payload);
    check_refused(s, backend.url());
    CHECK(s.message().find("TLS handshake with") != std::string::npos);
    CHECK(backend.bodies().size() == 1);
    CHECK(backend.handshakes().size() == 1);
  }

  SECTION("a TLS 1.3 backend") {
    TlsHttpBackend backend(backend_context(server));
    tls.min_version = TlsVersion::v1_3;
    REQUIRE(http_send(backend.url(), tls, payload).to_string() == "OK");
    CHECK(backend.bodies() == std::vector<std::string>{payload});
    REQUIRE(backend.handshakes().size() == 1);
    CHECK(backend.handshakes()[0].version == TLS1_3_VERSION);
  }
}

TEST_CASE("otlphttp tls: config errors", "[tls][otlphttp]") {
  CHECK(parse_otlphttp("endpoint: https://backend:4318\ntls: {cert_file: client.crt}\n").errors.to_string() ==
        "exporters.otlphttp.tls.key_file: required with cert_file");
  CHECK(parse_otlphttp("endpoint: https://backend:4318\ntls: {key_file: client.key}\n").errors.to_string() ==
        "exporters.otlphttp.tls.cert_file: required with key_file");
  CHECK(parse_otlphttp("endpoint: https://backend:4318\ntls: {insecure: true, ca_file: ca.pem}\n").errors.to_string() ==
        "exporters.otlphttp.tls.insecure: true means plaintext: remove it or the other tls settings");
  CHECK(parse_otlphttp("endpoint: http://backend:4318\ntls: {ca_file: ca.pem}\n").errors.to_string() ==
        "exporters.otlphttp.tls: TLS settings are given but no endpoint is https://");
  CHECK(parse_otlphttp("endpoint: http://backend:4318\ntraces_endpoint: http://t:4318/v1/traces\n"
                       "logs_endpoint: http://l:4318/v1/logs\ntls: {server_name_override: backend.internal}\n")
            .errors.to_string() == "exporters.otlphttp.tls: TLS settings are given but no endpoint is https://");
  // One https:// URL among them is enough; and every key reads through.
  ParsedHttp ok = parse_otlphttp(
      "endpoint: http://backend:4318\ntraces_endpoint: https://t:4318/v1/traces\n"
      "tls: {ca_file: ca.pem, cert_file: c.crt, key_file: c.key, server_name_override: b.internal, "
      "min_version: \"1.3\", insecure_skip_verify: true}\n");
  REQUIRE(ok.errors.to_string() == "");
  CHECK(ok.config->tls.ca_file == "ca.pem");
  CHECK(ok.config->tls.cert_file == "c.crt");
  CHECK(ok.config->tls.key_file == "c.key");
  CHECK(ok.config->tls.server_name_override == "b.internal");
  CHECK(ok.config->tls.min_version == TlsVersion::v1_3);
  CHECK(ok.config->tls.insecure_skip_verify);
}

TEST_CASE("otlphttp tls: start() errors name the file", "[tls][otlphttp]") {
  CertDir dir;
  const auto ca = test::make_ca("client CA");
  const auto client = test::make_cert(ca, {.common_name = "otlpd-client", .client = true});
  const auto other = test::make_cert(ca, {.common_name = "someone else", .client = true});
  test::IoThreads io(1);

  SECTION("a key_file that does not match cert_file") {
    TlsClientSettings tls;
    tls.cert_file = dir.write("client.crt", client.cert);
    tls.key_file = dir.write("other.key", other.key);
    OtlpHttpSender sender(io.io(), http_options("https://127.0.0.1:1/v1/traces", tls));
    Status s = sender.start();
    INFO(s.to_string());
    CHECK(s.code() == Status::Code::invalid_argument);
    CHECK(s.message().rfind("otlphttp/tls: tls.key_file " + tls.key_file, 0) == 0);
  }

  SECTION("an unreadable ca_file") {
    TlsClientSettings tls;
    tls.ca_file = (dir.dir.path() / "missing.pem").string();
    OtlpHttpSender sender(io.io(), http_options("https://127.0.0.1:1/v1/traces", tls));
    Status s = sender.start();
    CHECK(s.code() == Status::Code::invalid_argument);
    CHECK(s.message() == "otlphttp/tls: cannot read tls.ca_file " + tls.ca_file);
  }

  SECTION("tls settings with an http:// URL") {
    TlsClientSettings tls;
    tls.ca_file = dir.write("ca.pem", ca.cert);
    OtlpHttpSender sender(io.io(), http_options("http://127.0.0.1:1/v1/traces", tls));
    Status s = sender.start();
    CHECK(s.code() == Status::Code::invalid_argument);
    CHECK(s.message() ==
          "otlphttp/tls: http://127.0.0.1:1/v1/traces is plaintext (http://) but tls settings are given");
  }
}

// =============================================================================================
// otlp (gRPC)

TEST_CASE("otlp tls: ca_file trusts the backend and insecure_skip_verify trusts anything but neither fails",
          "[tls][otlp]") {
  CertDir dir;
  const std::string payload = trace_payload();

  SECTION("ca_file") {
    const auto ca = test::make_ca("backend CA");
    GrpcTlsBackend backend(test::make_cert(ca, {.common_name = "backend", .ip_addresses = {"127.0.0.1"}}));
    TlsClientSettings tls;
    tls.ca_file = dir.write("ca.pem", ca.cert);
    OtlpOutcome out = otlp_export(backend.endpoint(), tls, payload);
    INFO(out.error);
    CHECK(out.sent);
    CHECK(backend.service().requests() == std::vector<std::string>{payload});

    // The same backend through an https:// endpoint.
    OtlpOutcome https = otlp_export("https://" + backend.endpoint(), tls, payload);
    INFO(https.error);
    CHECK(https.sent);
    CHECK(backend.service().requests().size() == 2);

    // Without ca_file the system's roots do not know this CA.
    check_grpc_refused(otlp_export(backend.endpoint(), TlsClientSettings{}, payload), "certificate verify failed");
    CHECK(backend.service().requests().size() == 2);
  }

  SECTION("insecure_skip_verify with a self-signed certificate") {
    GrpcTlsBackend backend(test::make_self_signed({.common_name = "self", .ip_addresses = {"127.0.0.1"}}));
    TlsClientSettings tls;
    tls.insecure_skip_verify = true;
    OtlpOutcome out = otlp_export(backend.endpoint(), tls, payload);
    INFO(out.error);
    CHECK(out.sent);
    CHECK(backend.service().requests() == std::vector<std::string>{payload});

    check_grpc_refused(otlp_export(backend.endpoint(), TlsClientSettings{}, payload), "certificate verify failed");
    CHECK(backend.service().requests().size() == 1);
  }

  SECTION("insecure_skip_verify does not check the name either") {
    GrpcTlsBackend backend(test::make_self_signed({.common_name = "elsewhere", .dns_names = {"elsewhere.example"}}));
    TlsClientSettings tls;
    tls.insecure_skip_verify = true;
    OtlpOutcome out = otlp_export(backend.endpoint(), tls, payload);
    INFO(out.error);
    CHECK(out.sent);
    CHECK(backend.service().requests() == std::vector<std::string>{payload});
  }
}

TEST_CASE("otlp tls: mTLS presents cert_file/key_file and without them the backend refuses", "[tls][otlp]") {
  CertDir dir;
  const auto server_ca = test::make_ca("backend CA");
  const auto client_ca = test::make_ca("client CA C");
  GrpcTlsBackend backend(test::make_cert(server_ca, {.common_name = "backend", .ip_addresses = {"127.0.0.1"}}),
                         client_ca.cert);
  const std::string payload = trace_payload();
  TlsClientSettings tls;
  tls.ca_file = dir.write("server-ca.pem", server_ca.cert);

  SECTION("with a client certificate signed by CA-C") {
    dir.write_identity("client", test::make_cert(client_ca, {.common_name = "otlpd-client", .client = true}), &tls);
    OtlpOutcome out = otlp_export(backend.endpoint(), tls, payload);
    INFO(out.error);
    CHECK(out.sent);
    CHECK(backend.service().requests() == std::vector<std::string>{payload});
    CHECK(backend.service().client_cns() == std::vector<std::string>{"otlpd-client"});
  }

  SECTION("with a client certificate and insecure_skip_verify (the TlsCredentials path)") {
    TlsClientSettings skip;
    skip.insecure_skip_verify = true;
    dir.write_identity("client", test::make_cert(client_ca, {.common_name = "otlpd-client", .client = true}), &skip);
    OtlpOutcome out = otlp_export(backend.endpoint(), skip, payload);
    INFO(out.error);
    CHECK(out.sent);
    CHECK(backend.service().requests() == std::vector<std::string>{payload});
    CHECK(backend.service().client_cns() == std::vector<std::string>{"otlpd-client"});
  }

  SECTION("without one") {
    check_grpc_refused(otlp_export(backend.endpoint(), tls, payload));
    CHECK(backend.service().requests().empty());
  }

  SECTION("with one from another CA") {
    const auto other_ca = test::make_ca("some other CA");
    dir.write_identity("stranger", test::make_cert(other_ca, {.common_name = "stranger", .client = true}), &tls);
    check_grpc_refused(otlp_export(backend.endpoint(), tls, payload));
    CHECK(backend.service().requests().empty());
  }
}

TEST_CASE("otlp tls: server_name_override names the certificate to expect", "[tls][otlp]") {
  CertDir dir;
  const auto ca = test::make_ca("backend CA");
  GrpcTlsBackend backend(test::make_cert(ca, {.common_name = "backend.internal", .dns_names = {"backend.internal"}}));
  const std::string payload = trace_payload();
  TlsClientSettings tls;
  tls.ca_file = dir.write("ca.pem", ca.cert);

  SECTION("with the override") {
    tls.server_name_override = "backend.internal";
    OtlpOutcome out = otlp_export(backend.endpoint(), tls, payload);
    INFO(out.error);
    CHECK(out.sent);
    CHECK(backend.service().requests() == std::vector<std::string>{payload});
  }

  SECTION("without it the certificate does not hold 127.0.0.1") {
    check_grpc_refused(otlp_export(backend.endpoint(), tls, payload), "Peer name 127.0.0.1 is not in peer certificate");
    CHECK(backend.service().requests().empty());
  }
}

TEST_CASE("otlp tls: config errors", "[tls][otlp]") {
  CHECK(parse_otlp("endpoint: backend:4317\ntls: {ca_file: ca.pem, min_version: \"1.3\"}\n").errors.to_string() ==
        "exporters.otlp.tls.min_version: 1.3 is not supported by the otlp exporter (it always offers 1.2 and 1.3)");
  CHECK(parse_otlp("endpoint: http://backend:4317\ntls: {ca_file: ca.pem}\n").errors.to_string() ==
        "exporters.otlp.tls: TLS settings are given but the endpoint is http:// (plaintext)");
  CHECK(parse_otlp("endpoint: backend:4317\ntls: {insecure: true, cert_file: c.crt, key_file: c.key}\n")
            .errors.to_string() ==
        "exporters.otlp.tls.insecure: true means plaintext: remove it or the other tls settings");
  CHECK(parse_otlp("endpoint: backend:4317\ntls: {insecure: true, cert_file: c.crt}\n").errors.to_string() ==
        "exporters.otlp.tls.key_file: required with cert_file\n"
        "exporters.otlp.tls.insecure: true means plaintext: remove it or the other tls settings");
  // What is allowed: plaintext alone, 1.2, and every client key together.
  CHECK(parse_otlp("endpoint: backend:4317\ntls: {insecure: true}\n").errors.to_string() == "");
  ParsedOtlp ok = parse_otlp(
      "endpoint: https://backend:4317\ntls: {ca_file: ca.pem, cert_file: c.crt, key_file: c.key, "
      "server_name_override: b.internal, min_version: \"1.2\"}\n");
  REQUIRE(ok.errors.to_string() == "");
  CHECK(ok.config->tls.server_name_override == "b.internal");

  SECTION("start() refuses tls settings with an http:// endpoint too") {
    test::IoThreads io(1);
    Telemetry telemetry;
    Host host{io.io(), telemetry};
    OtlpExporterConfig config;
    config.endpoint = "http://127.0.0.1:1";
    config.tls.ca_file = "/nonexistent/ca.pem";
    ExporterPtr exporter = OtlpExporterFactory().create(ComponentId{"otlp", "tls"}, config, Signal::traces, host);
    Status s = exporter->start();
    CHECK(s.code() == Status::Code::invalid_argument);
    CHECK(s.message().find("otlp/tls: endpoint http://127.0.0.1:1 is plaintext (http://) but tls settings are given") !=
          std::string::npos);
    exporter->shutdown(Clock::now() + 1s);
  }
}

}  // namespace otlpd

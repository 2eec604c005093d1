// Tests for the otlphttp exporter: config parsing, URLs, and the Sender against a small Beast
// HTTP server in this file (127.0.0.1, port 0) that records every request.
#include "exporters/otlphttp/otlphttp_exporter.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/asio/ssl.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <unistd.h>
#include <filesystem>
#include <fstream>

#include "google/rpc/status.pb.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/compression.h"
#include "otlp/json_codec.h"

namespace otlpd {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using Request = http::request<http::string_body>;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse;

std::string header(const Request& req, std::string_view name) {
  auto v = req[beast::string_view(name.data(), name.size())];
  return std::string(v.data(), v.size());
}

// What the test server answers to one request.
struct Reply {
  http::status status = http::status::ok;
  std::string content_type = "application/x-protobuf";
  std::string body;
  std::map<std::string, std::string> headers;
  bool close = false;  // answer with Connection: close, then close
  bool drop = false;   // answer as keep-alive, then close anyway (an idle timeout on the server)
};

// A one-thread HTTP/1.1 server on 127.0.0.1 with an ephemeral port. The handler runs on the
// server's thread; returning nullopt means never answer (the connection stays open, silent).
class TestServer {
 public:
  using Handler = std::function<std::optional<Reply>(const Request&)>;

  // With `tls`, every connection is TLS with that (server) context.
  explicit TestServer(Handler handler = {}, ssl::context* tls = nullptr) : handler_(std::move(handler)), tls_(tls) {
    acceptor_.open(tcp::v4());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    net::co_spawn(io_, accept_loop(), net::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TestServer() {
    io_.stop();  // test teardown only: drop whatever is pending
    thread_.join();
  }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::string base() const { return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port()); }
  std::vector<Request> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  int connections() const { return connections_.load(); }

 private:
  net::awaitable<void> accept_loop() {
    for (;;) {
      tcp::socket socket = co_await acceptor_.async_accept(net::use_awaitable);
      ++connections_;
      net::co_spawn(io_, session(std::move(socket)), net::detached);
    }
  }

  net::awaitable<void> session(tcp::socket socket) {
    try {
      if (!tls_) {
        co_await serve(socket);
        co_return;
      }
      ssl::stream<tcp::socket> stream(std::move(socket), *tls_);
      co_await stream.async_handshake(ssl::stream_base::server, net::use_awaitable);
      co_await serve(stream);
    } catch (const std::exception&) {
      // The client went away or failed the handshake; nothing to do.
    }
  }

  // Reads requests and answers them until the client closes or a reply says to stop.
  template <typename Stream>
  net::awaitable<void> serve(Stream& socket) {
    {
      beast::flat_buffer buffer;
      for (;;) {
        Request req;
        co_await http::async_read(socket, buffer, req, net::use_awaitable);
        {
          std::lock_guard lock(mu_);
          requests_.push_back(req);
        }
        std::optional<Reply> reply = handler_ ? handler_(req) : Reply{};
        if (!reply) {
          net::steady_timer forever(socket.get_executor(), std::chrono::hours(1));
          co_await forever.async_wait(net::use_awaitable);
          co_return;
        }
        http::response<http::string_body> res{reply->status, 11};
        res.set(http::field::content_type, reply->content_type);
        for (const auto& [k, v] : reply->headers) res.set(k, v);
        res.body() = reply->body;
        res.keep_alive(!reply->close);
        res.prepare_payload();
        co_await http::async_write(socket, res, net::use_awaitable);
        if (reply->close || reply->drop) co_return;
      }
    }
  }

  Handler handler_;
  ssl::context* tls_;
  net::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<Request> requests_;
  std::atomic<int> connections_{0};
};

// The client side's io_context with one thread; joins after pending work drains.
struct IoThread {
  net::io_context io;
  net::executor_work_guard<net::io_context::executor_type> guard{io.get_executor()};
  std::thread thread{[this] { io.run(); }};
  ~IoThread() {
    guard.reset();
    thread.join();
  }
};

std::string trace_payload(const std::string& name = "GET /cart") {
  ExportTraceServiceRequest req;
  auto* span = req.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(std::string(16, '\x0a'));
  span->set_span_id(std::string(8, '\x0b'));
  span->set_name(name);
  return req.SerializeAsString();
}

OtlpHttpSender::Options options(const std::string& url, Signal signal = Signal::traces) {
  OtlpHttpSender::Options o;
  o.signal = signal;
  o.url = url;
  return o;
}

// Sends one batch and waits (bounded) for done.
Status send_wait(OtlpHttpSender& sender, const std::string& payload, Signal signal = Signal::traces,
                 std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  std::promise<Status> result;
  auto future = result.get_future();
  sender.send(make_batch(signal, payload, 1), Clock::now() + timeout,
              [&result](Status s) { result.set_value(std::move(s)); });
  REQUIRE(future.wait_for(timeout + std::chrono::seconds(5)) == std::future_status::ready);
  return future.get();
}

struct Parsed {
  config::Errors errors;
  std::unique_ptr<OtlpHttpExporterConfig> config;
};

Parsed parse_yaml(const std::string& yaml) {
  Parsed p;
  config::Node node(YAML::Load(yaml), "exporters.otlphttp", &p.errors);
  ComponentConfigPtr cfg = OtlpHttpExporterFactory().parse(node);
  p.config.reset(static_cast<OtlpHttpExporterConfig*>(cfg.release()));
  return p;
}

// A self-signed certificate for IP 127.0.0.1 only (no DNS names), made fresh for the test run,
// with its PEM also written to a file for tls.ca_file.
struct TestCert {
  std::string cert_pem;
  std::string key_pem;
  std::string ca_file;

  TestCert() {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("otlpd test"), -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "IP:127.0.0.1");
    X509_add_ext(x, san, -1);
    X509_EXTENSION_free(san);
    X509_EXTENSION* bc = X509V3_EXT_conf_nid(nullptr, &ctx, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(x, bc, -1);
    X509_EXTENSION_free(bc);
    X509_sign(x, key, EVP_sha256());
    cert_pem = to_pem([&](BIO* b) { PEM_write_bio_X509(b, x); });
    key_pem = to_pem([&](BIO* b) { PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr); });
    X509_free(x);
    EVP_PKEY_free(key);

    std::string tmpl = (std::filesystem::temp_directory_path() / "otlpd-ca-XXXXXX").string();
    int fd = mkstemp(tmpl.data());
    ::close(fd);
    ca_file = tmpl;
    std::ofstream(ca_file) << cert_pem;
  }
  ~TestCert() { std::filesystem::remove(ca_file); }

  ssl::context server_context() const {
    ssl::context ctx(ssl::context::tls_server);
    ctx.use_certificate_chain(net::buffer(cert_pem));
    ctx.use_private_key(net::buffer(key_pem), ssl::context::pem);
    return ctx;
  }

  template <typename F>
  static std::string to_pem(F write) {
    BIO* b = BIO_new(BIO_s_mem());
    write(b);
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    std::string out(data, static_cast<size_t>(n));
    BIO_free(b);
    return out;
  }
};

}  // namespace

// ---- config and URLs ----

TEST_CASE("otlphttp config: defaults and every key", "[otlphttp]") {
  Parsed d = parse_yaml("endpoint: http://collector:4318\n");
  REQUIRE(d.errors.to_string() == "");
  CHECK(d.config->encoding == HttpEncoding::proto);
  CHECK(d.config->compression == HttpCompression::gzip);
  CHECK(d.config->exporter.timeout == std::chrono::seconds(30));
  CHECK(d.config->headers.empty());

  Parsed p = parse_yaml(R"(
endpoint: https://collector:4318
traces_endpoint: https://traces.example/api/v1/otlp
metrics_endpoint: http://[::1]:9000/m
logs_endpoint: http://logs.example
encoding: json
compression: zstd
headers: {X-Tenant: acme, Authorization: Bearer abc}
timeout: 3s
tls: {insecure: false, insecure_skip_verify: true, ca_file: /etc/ssl/ca.pem}
sending_queue: {num_consumers: 4}
)");
  REQUIRE(p.errors.to_string() == "");
  CHECK(p.config->encoding == HttpEncoding::json);
  CHECK(p.config->compression == HttpCompression::zstd);
  CHECK(p.config->headers == std::map<std::string, std::string>{{"X-Tenant", "acme"}, {"Authorization", "Bearer abc"}});
  CHECK(p.config->exporter.timeout == std::chrono::seconds(3));
  CHECK(p.config->tls.insecure_skip_verify);
  CHECK(p.config->tls.ca_file == "/etc/ssl/ca.pem");
  auto o = OtlpHttpSender::options_from(ComponentId{"otlphttp", "x"}, *p.config, Signal::metrics);
  CHECK(o.url == "http://[::1]:9000/m");
  CHECK(o.max_idle_connections == 4);
  CHECK(o.exporter_name == "otlphttp/x");

  Parsed only = parse_yaml("logs_endpoint: http://logs:4318/v1/logs\ncompression: none\n");
  CHECK(only.errors.to_string() == "");
  CHECK(only.config->compression == HttpCompression::none);
}

TEST_CASE("otlphttp config: errors name their key", "[otlphttp]") {
  CHECK(parse_yaml("encoding: json\n").errors.to_string() == "exporters.otlphttp.endpoint: required");
  CHECK(parse_yaml("endpoint: ftp://x\n").errors.to_string() ==
        "exporters.otlphttp.endpoint: URL \"ftp://x\" must start with http:// or https://");
  CHECK(parse_yaml("endpoint: http://x\ntraces_endpoint: http://:80/\n").errors.to_string() ==
        "exporters.otlphttp.traces_endpoint: URL \"http://:80/\": no host");
  CHECK(parse_yaml("endpoint: http://x:99999\n").errors.to_string() ==
        "exporters.otlphttp.endpoint: URL \"http://x:99999\": invalid port");
  CHECK(parse_yaml("endpoint: http://x\nencoding: xml\n").errors.to_string() ==
        "exporters.otlphttp.encoding: invalid value \"xml\" (expected one of: proto, json)");
  CHECK(parse_yaml("endpoint: http://x\ncompression: br\n").errors.to_string() ==
        "exporters.otlphttp.compression: invalid value \"br\" (expected one of: gzip, zstd, none)");
  CHECK(parse_yaml("endpoint: http://x\nheaders: {Content-Type: text/plain}\n").errors.to_string() ==
        "exporters.otlphttp.headers.Content-Type: set by the exporter from its settings; cannot be configured");
  CHECK(parse_yaml("endpoint: http://x\nheaders: {\"Bad Name\": v}\n").errors.to_string() ==
        "exporters.otlphttp.headers.Bad Name: not a valid HTTP header name");
  CHECK(parse_yaml("endpoint: https://x\ntls: {cert_file: a.pem}\n").errors.to_string() ==
        "exporters.otlphttp.tls.key_file: required with cert_file");
  CHECK(parse_yaml("endpoint: https://x\ntls: {key_file: a.key}\n").errors.to_string() ==
        "exporters.otlphttp.tls.cert_file: required with key_file");
  CHECK(parse_yaml("endpoint: http://x\ntls: {ca_file: ca.pem}\n").errors.to_string() ==
        "exporters.otlphttp.tls: TLS settings are given but no endpoint is https://");
  CHECK(parse_yaml("endpoint: https://x\ntls: {min_version: \"1.1\"}\n").errors.to_string() ==
        "exporters.otlphttp.tls.min_version: invalid value \"1.1\" (expected one of: 1.2, 1.3)");
  CHECK(parse_yaml("endpoint: http://x\nfoo: 1\n").errors.to_string() == "exporters.otlphttp.foo: unknown key");
}

TEST_CASE("otlphttp URLs: signal paths, trailing slash, overrides", "[otlphttp]") {
  OtlpHttpExporterConfig c;
  c.endpoint = "http://h:4318";
  CHECK(signal_url(c, Signal::traces) == "http://h:4318/v1/traces");
  CHECK(signal_url(c, Signal::metrics) == "http://h:4318/v1/metrics");
  CHECK(signal_url(c, Signal::logs) == "http://h:4318/v1/logs");
  c.endpoint = "http://h:4318/";
  CHECK(signal_url(c, Signal::traces) == "http://h:4318/v1/traces");
  c.endpoint = "http://h/otlp";
  CHECK(signal_url(c, Signal::logs) == "http://h/otlp/v1/logs");
  c.traces_endpoint = "http://t/custom";
  CHECK(signal_url(c, Signal::traces) == "http://t/custom");
  c.endpoint.clear();
  CHECK(signal_url(c, Signal::metrics) == "");

  HttpUrl u;
  REQUIRE(parse_http_url("https://example.com", &u) == "");
  CHECK(u.tls);
  CHECK(u.host == "example.com");
  CHECK(u.port == 443);
  CHECK(u.target == "/");
  REQUIRE(parse_http_url("http://[::1]:8080/a/b?x=1#frag", &u) == "");
  CHECK_FALSE(u.tls);
  CHECK(u.host == "::1");
  CHECK(u.port == 8080);
  CHECK(u.target == "/a/b?x=1");
  REQUIRE(parse_http_url("HTTP://h", &u) == "");
  CHECK(u.port == 80);
  CHECK(parse_http_url("http://user:pw@h/", &u) == "URL \"http://user:pw@h/\": user info is not supported");
}

TEST_CASE("otlphttp sender: start() needs a URL", "[otlphttp]") {
  IoThread io;
  OtlpHttpSender sender(io.io, options("", Signal::logs));
  Status s = sender.start();
  CHECK(s.code() == Status::Code::invalid_argument);
  CHECK(s.message() == "otlphttp: no URL for logs: set endpoint or logs_endpoint");
}

// ---- delivery ----

TEST_CASE("otlphttp sender: each signal posts to its path", "[otlphttp]") {
  TestServer server;
  IoThread io;
  for (std::string base : {server.base(), server.base() + "/"}) {
    OtlpHttpExporterConfig c;
    c.endpoint = base;
    for (Signal s : {Signal::traces, Signal::metrics, Signal::logs}) {
      OtlpHttpSender sender(io.io, OtlpHttpSender::options_from(ComponentId{"otlphttp", ""}, c, s));
      REQUIRE(sender.start().is_ok());
      REQUIRE(send_wait(sender, "", s).is_ok());
    }
  }
  OtlpHttpExporterConfig c;
  c.endpoint = server.base() + "/prefix/";
  c.traces_endpoint = server.base() + "/custom/traces?tenant=a";
  OtlpHttpSender traces(io.io, OtlpHttpSender::options_from(ComponentId{"otlphttp", ""}, c, Signal::traces));
  OtlpHttpSender logs(io.io, OtlpHttpSender::options_from(ComponentId{"otlphttp", ""}, c, Signal::logs));
  REQUIRE(traces.start().is_ok());
  REQUIRE(logs.start().is_ok());
  REQUIRE(send_wait(traces, "").is_ok());
  REQUIRE(send_wait(logs, "", Signal::logs).is_ok());

  std::vector<std::string> targets;
  for (const auto& r : server.requests()) {
    CHECK(r.method() == http::verb::post);
    targets.emplace_back(r.target().data(), r.target().size());
  }
  CHECK(targets == std::vector<std::string>{"/v1/traces", "/v1/metrics", "/v1/logs", "/v1/traces", "/v1/metrics",
                                            "/v1/logs", "/custom/traces?tenant=a", "/prefix/v1/logs"});
}

TEST_CASE("otlphttp sender: headers and a gzip body that inflates to the request", "[otlphttp]") {
  TestServer server;
  IoThread io;
  auto o = options(server.base() + "/v1/traces");
  o.headers = {{"X-Tenant", "acme"}, {"Authorization", "Bearer t0k"}};
  OtlpHttpSender sender(io.io, o);
  REQUIRE(sender.start().is_ok());
  std::string payload = trace_payload();
  REQUIRE(send_wait(sender, payload).is_ok());

  auto reqs = server.requests();
  REQUIRE(reqs.size() == 1);
  const Request& r = reqs[0];
  CHECK(header(r, "X-Tenant") == "acme");
  CHECK(header(r, "Authorization") == "Bearer t0k");
  CHECK(header(r, "Content-Type") == "application/x-protobuf");
  CHECK(header(r, "Content-Encoding") == "gzip");
  CHECK(header(r, "User-Agent") == std::string("otlpd/") + OTLPD_VERSION);
  CHECK(header(r, "Host") == server.base().substr(7));
  CHECK(header(r, "Content-Length") == std::to_string(r.body().size()));
  std::string inflated;
  REQUIRE(otlp::gzip_decompress(r.body(), 1 << 20, &inflated) == otlp::DecompressResult::ok);
  CHECK(inflated == payload);
}

TEST_CASE("otlphttp sender: compression none and zstd", "[otlphttp]") {
  TestServer server;
  IoThread io;
  std::string payload = trace_payload();
  auto o = options(server.base() + "/v1/traces");
  o.compression = HttpCompression::none;
  OtlpHttpSender plain(io.io, o);
  o.compression = HttpCompression::zstd;
  OtlpHttpSender zstd(io.io, o);
  REQUIRE(plain.start().is_ok());
  REQUIRE(zstd.start().is_ok());
  REQUIRE(send_wait(plain, payload).is_ok());
  REQUIRE(send_wait(zstd, payload).is_ok());

  auto reqs = server.requests();
  REQUIRE(reqs.size() == 2);
  CHECK(header(reqs[0], "Content-Encoding") == "");
  CHECK(reqs[0].body() == payload);
  CHECK(header(reqs[1], "Content-Encoding") == "zstd");
  std::string out;
  REQUIRE(otlp::zstd_decompress(reqs[1].body(), 1 << 20, &out) == otlp::DecompressResult::ok);
  CHECK(out == payload);
}

TEST_CASE("otlphttp sender: JSON encoding sends OTLP/JSON", "[otlphttp]") {
  TestServer server;
  IoThread io;
  auto o = options(server.base() + "/v1/traces");
  o.encoding = HttpEncoding::json;
  o.compression = HttpCompression::none;
  OtlpHttpSender sender(io.io, o);
  REQUIRE(sender.start().is_ok());
  std::string payload = trace_payload("json span");
  REQUIRE(send_wait(sender, payload).is_ok());

  auto reqs = server.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(header(reqs[0], "Content-Type") == "application/json");
  std::string expected;
  REQUIRE(otlp::request_proto_to_json(Signal::traces, payload, &expected) == "");
  CHECK(reqs[0].body() == expected);
  ExportTraceServiceRequest back;
  REQUIRE(otlp::json_to_message(reqs[0].body(), back) == "");
  CHECK(back.SerializeAsString() == payload);

  Status bad = send_wait(sender, std::string("\x0a\x7f", 2));  // truncated protobuf
  CHECK(bad.code() == Status::Code::invalid_argument);
  CHECK(server.requests().size() == 1);
}

TEST_CASE("otlphttp sender: 503 with Retry-After is retryable with the hint", "[otlphttp]") {
  TestServer server([](const Request&) {
    Reply r;
    r.status = http::status::service_unavailable;
    r.headers["Retry-After"] = "3";
    return r;
  });
  IoThread io;
  OtlpHttpSender sender(io.io, options(server.base() + "/v1/traces"));
  REQUIRE(sender.start().is_ok());
  Status s = send_wait(sender, trace_payload());
  CHECK(s.code() == Status::Code::unavailable);
  CHECK(s.retryable());
  CHECK(s.retry_after() == std::chrono::milliseconds(3000));
}

TEST_CASE("otlphttp sender: 429 and 502/504 are retryable, 429 keeps its hint", "[otlphttp]") {
  std::atomic<int> which{0};
  TestServer server([&](const Request&) {
    static const http::status kStatuses[] = {http::status::too_many_requests, http::status::bad_gateway,
                                             http::status::gateway_timeout};
    Reply r;
    r.status = kStatuses[which.load()];
    if (which.load() == 0) r.headers["Retry-After"] = "7";
    return r;
  });
  IoThread io;
  OtlpHttpSender sender(io.io, options(server.base() + "/v1/traces"));
  REQUIRE(sender.start().is_ok());
  Status s429 = send_wait(sender, "");
  CHECK(s429.code() == Status::Code::resource_exhausted);
  CHECK(s429.retry_after() == std::chrono::milliseconds(7000));
  which = 1;
  CHECK(send_wait(sender, "").code() == Status::Code::unavailable);
  which = 2;
  Status s504 = send_wait(sender, "");
  CHECK(s504.code() == Status::Code::deadline_exceeded);
  CHECK(s504.retryable());
}

TEST_CASE("otlphttp sender: 400 is permanent and carries the server's message", "[otlphttp]") {
  std::atomic<bool> text{false};
  TestServer server([&](const Request&) {
    Reply r;
    r.status = http::status::bad_request;
    if (text) {
      r.content_type = "text/plain";
      r.body = std::string(300, 'e');
    } else {
      google::rpc::Status st;
      st.set_code(3);
      st.set_message("span 2 has no trace id");
      r.body = st.SerializeAsString();
    }
    return r;
  });
  IoThread io;
  std::string url = server.base() + "/v1/traces";
  OtlpHttpSender sender(io.io, options(url));
  REQUIRE(sender.start().is_ok());
  Status s = send_wait(sender, trace_payload());
  CHECK(s.code() == Status::Code::invalid_argument);
  CHECK_FALSE(s.retryable());
  CHECK(s.message() == "HTTP 400 from " + url + ": span 2 has no trace id");

  text = true;
  Status t = send_wait(sender, trace_payload());
  CHECK_FALSE(t.retryable());
  CHECK(t.message() == "HTTP 400 from " + url + ": " + std::string(200, 'e'));
}

TEST_CASE("otlphttp sender: 200 with partial_success is OK with the rejected count", "[otlphttp]") {
  TestServer server([](const Request&) {
    ExportTraceServiceResponse resp;
    resp.mutable_partial_success()->set_rejected_spans(2);
    resp.mutable_partial_success()->set_error_message("spans too old");
    Reply r;
    r.body = resp.SerializeAsString();
    return r;
  });
  IoThread io;
  OtlpHttpSender sender(io.io, options(server.base() + "/v1/traces"));
  REQUIRE(sender.start().is_ok());
  Status s = send_wait(sender, trace_payload());
  CHECK(s.is_ok());
  CHECK(s.rejected_items() == 2);
  CHECK(s.message() == "spans too old");
}

TEST_CASE("otlphttp sender: connection refused is retryable", "[otlphttp]") {
  uint16_t port = 0;
  {
    net::io_context tmp;
    tcp::acceptor a(tmp, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }  // closed: nothing listens on `port` now
  IoThread io;
  OtlpHttpSender sender(io.io, options("http://127.0.0.1:" + std::to_string(port) + "/v1/traces"));
  REQUIRE(sender.start().is_ok());
  Status s = send_wait(sender, trace_payload());
  CHECK(s.code() == Status::Code::unavailable);
  CHECK(s.retryable());
  CHECK(s.message().find("connect to http://127.0.0.1:") == 0);
}

TEST_CASE("otlphttp sender: a server that never answers ends at the deadline", "[otlphttp]") {
  TestServer server([](const Request&) { return std::optional<Reply>(); });
  IoThread io;
  OtlpHttpSender sender(io.io, options(server.base() + "/v1/traces"));
  REQUIRE(sender.start().is_ok());
  auto started = Clock::now();
  Status s = send_wait(sender, trace_payload(), Signal::traces, std::chrono::milliseconds(300));
  auto elapsed = Clock::now() - started;
  CHECK(s.code() == Status::Code::deadline_exceeded);
  CHECK(s.retryable());
  CHECK(elapsed >= std::chrono::milliseconds(290));
  CHECK(elapsed < std::chrono::milliseconds(1500));
  CHECK(server.requests().size() == 1);
}

TEST_CASE("otlphttp sender: a deadline already passed fails without I/O", "[otlphttp]") {
  TestServer server;
  IoThread io;
  OtlpHttpSender sender(io.io, options(server.base() + "/v1/traces"));
  REQUIRE(sender.start().is_ok());
  std::promise<Status> result;
  sender.send(make_batch(Signal::traces, "", 0), Clock::now() - std::chrono::seconds(1),
              [&](Status s) { result.set_value(std::move(s)); });
  auto future = result.get_future();
  REQUIRE(future.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(future.get().code() == Status::Code::deadline_exceeded);
  CHECK(server.connections() == 0);
}

TEST_CASE("otlphttp sender: keep-alive reuses one connection", "[otlphttp]") {
  TestServer server;
  IoThread io;
  OtlpHttpSender sender(io.io, options(server.base() + "/v1/traces"));
  REQUIRE(sender.start().is_ok());
  for (int i = 0; i < 3; ++i) REQUIRE(send_wait(sender, trace_payload()).is_ok());
  CHECK(server.requests().size() == 3);
  CHECK(server.connections() == 1);
  CHECK(sender.connections_opened() == 1);
}

TEST_CASE("otlphttp sender: Connection: close means a new connection per request", "[otlphttp]") {
  TestServer server([](const Request&) {
    Reply r;
    r.close = true;
    return r;
  });
  IoThread io;
  OtlpHttpSender sender(io.io, options(server.base() + "/v1/traces"));
  REQUIRE(sender.start().is_ok());
  REQUIRE(send_wait(sender, trace_payload()).is_ok());
  REQUIRE(send_wait(sender, trace_payload()).is_ok());
  CHECK(server.connections() == 2);
}

TEST_CASE("otlphttp sender: a keep-alive connection the server dropped is replaced transparently", "[otlphttp]") {
  TestServer server([](const Request&) {
    Reply r;
    r.drop = true;  // says keep-alive, then closes: the client finds out on its next request
    return r;
  });
  IoThread io;
  OtlpHttpSender sender(io.io, options(server.base() + "/v1/traces"));
  REQUIRE(sender.start().is_ok());
  REQUIRE(send_wait(sender, trace_payload()).is_ok());
  REQUIRE(send_wait(sender, trace_payload()).is_ok());
  CHECK(server.requests().size() == 2);
  CHECK(server.connections() == 2);
}

TEST_CASE("otlphttp sender: concurrent sends use up to one connection each", "[otlphttp]") {
  TestServer server;
  IoThread io;
  auto o = options(server.base() + "/v1/traces");
  o.max_idle_connections = 4;
  OtlpHttpSender sender(io.io, o);
  REQUIRE(sender.start().is_ok());
  for (int round = 0; round < 3; ++round) {
    std::vector<std::promise<Status>> results(4);
    for (auto& r : results) {
      sender.send(make_batch(Signal::traces, trace_payload(), 1), Clock::now() + std::chrono::seconds(5),
                  [&r](Status s) { r.set_value(std::move(s)); });
    }
    for (auto& r : results) {
      auto f = r.get_future();
      REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
      CHECK(f.get().is_ok());
    }
  }
  CHECK(server.requests().size() == 12);
  CHECK(server.connections() <= 4);
}

TEST_CASE("otlphttp sender: after shutdown sends fail as unavailable", "[otlphttp]") {
  TestServer server;
  IoThread io;
  OtlpHttpSender sender(io.io, options(server.base() + "/v1/traces"));
  REQUIRE(sender.start().is_ok());
  REQUIRE(send_wait(sender, trace_payload()).is_ok());
  sender.shutdown();
  sender.shutdown();  // idempotent
  Status s = send_wait(sender, trace_payload());
  CHECK(s.code() == Status::Code::unavailable);
  CHECK(server.requests().size() == 1);
}

TEST_CASE("otlphttp sender: shutdown ends a send in flight at once", "[otlphttp]") {
  auto arrived = std::make_shared<std::promise<void>>();
  TestServer server([arrived](const Request&) {
    arrived->set_value();
    return std::optional<Reply>();  // never answer
  });
  IoThread io;
  OtlpHttpSender sender(io.io, options(server.base() + "/v1/traces"));
  REQUIRE(sender.start().is_ok());
  std::promise<Status> result;
  sender.send(make_batch(Signal::traces, trace_payload(), 1), Clock::now() + std::chrono::seconds(30),
              [&result](Status s) { result.set_value(std::move(s)); });
  REQUIRE(arrived->get_future().wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  auto started = Clock::now();
  sender.shutdown();
  auto future = result.get_future();
  REQUIRE(future.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(Clock::now() - started < std::chrono::seconds(2));
  Status s = future.get();
  CHECK(s.code() == Status::Code::unavailable);
}

// ---- TLS ----

TEST_CASE("otlphttp sender: https verified with tls.ca_file", "[otlphttp][tls]") {
  TestCert cert;
  ssl::context server_ctx = cert.server_context();
  TestServer server({}, &server_ctx);
  IoThread io;
  auto o = options(server.base() + "/v1/traces");
  o.tls.ca_file = cert.ca_file;
  OtlpHttpSender sender(io.io, o);
  REQUIRE(sender.start().is_ok());
  std::string payload = trace_payload();
  for (int i = 0; i < 2; ++i) REQUIRE(send_wait(sender, payload).is_ok());
  auto reqs = server.requests();
  REQUIRE(reqs.size() == 2);
  std::string inflated;
  REQUIRE(otlp::gzip_decompress(reqs[1].body(), 1 << 20, &inflated) == otlp::DecompressResult::ok);
  CHECK(inflated == payload);
  CHECK(server.connections() == 1);
}

TEST_CASE("otlphttp sender: https with an untrusted or misnamed certificate fails", "[otlphttp][tls]") {
  TestCert cert;
  ssl::context server_ctx = cert.server_context();
  TestServer server({}, &server_ctx);
  IoThread io;

  // System roots do not trust the test certificate.
  OtlpHttpSender untrusted(io.io, options(server.base() + "/v1/traces"));
  REQUIRE(untrusted.start().is_ok());
  Status s = send_wait(untrusted, trace_payload());
  CHECK(s.code() == Status::Code::unavailable);
  CHECK(s.message().find("TLS handshake with " + server.base() + "/v1/traces: certificate verify failed") == 0);

  // Trusted, but the certificate names 127.0.0.1 only, not localhost.
  auto o = options("https://localhost:" + std::to_string(server.port()) + "/v1/traces");
  o.tls.ca_file = cert.ca_file;
  OtlpHttpSender misnamed(io.io, o);
  REQUIRE(misnamed.start().is_ok());
  Status m = send_wait(misnamed, trace_payload());
  CHECK(m.code() == Status::Code::unavailable);
  CHECK(m.message().find("certificate verify failed") != std::string::npos);
  CHECK(server.requests().empty());
}

TEST_CASE("otlphttp sender: https with insecure_skip_verify", "[otlphttp][tls]") {
  TestCert cert;
  ssl::context server_ctx = cert.server_context();
  TestServer server({}, &server_ctx);
  IoThread io;
  auto o = options("https://localhost:" + std::to_string(server.port()) + "/v1/traces");
  o.tls.insecure_skip_verify = true;
  OtlpHttpSender sender(io.io, o);
  REQUIRE(sender.start().is_ok());
  CHECK(send_wait(sender, trace_payload()).is_ok());
  CHECK(server.requests().size() == 1);
}

TEST_CASE("otlphttp sender: a missing tls.ca_file fails start()", "[otlphttp][tls]") {
  IoThread io;
  auto o = options("https://127.0.0.1:1/v1/traces");
  o.tls.ca_file = "/nonexistent/ca.pem";
  OtlpHttpSender sender(io.io, o);
  Status s = sender.start();
  CHECK(s.code() == Status::Code::invalid_argument);
  CHECK(s.message() == "otlphttp: cannot read tls.ca_file /nonexistent/ca.pem");
}

}  // namespace otlpd

namespace otlpd {
namespace {

// A hostile backend on 127.0.0.1: reads one request's headers, answers 200 with `head`, then
// streams `chunk` until the client stops reading or 10 s pass; counts what it managed to write.
class FloodingBackend {
 public:
  FloodingBackend(std::string head, std::string chunk) : head_(std::move(head)), chunk_(std::move(chunk)) {
    acceptor_.open(tcp::v4());
    acceptor_.bind({net::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    thread_ = std::thread([this] { serve(); });
  }
  ~FloodingBackend() { thread_.join(); }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  uint64_t written() const { return written_.load(); }

 private:
  void serve() {
    tcp::socket socket(io_);
    acceptor_.accept(socket);
    std::string got;
    char buf[4096];
    while (got.find("\r\n\r\n") == std::string::npos) {
      boost::system::error_code ec;
      size_t n = socket.read_some(net::buffer(buf), ec);
      if (ec) return;
      got.append(buf, n);
    }
    boost::system::error_code ec;
    net::write(socket, net::buffer(head_), ec);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    // Non-blocking writes, so a client that stops reading ends the loop at the deadline.
    socket.non_blocking(true);
    while (!ec && std::chrono::steady_clock::now() < deadline) {
      size_t n = socket.write_some(net::buffer(chunk_), ec);
      if (ec == net::error::would_block) {
        ec = {};
        socket.wait(tcp::socket::wait_write, ec);  // returns on write room or on error
        std::this_thread::yield();
        continue;
      }
      written_ += n;
    }
  }

  const std::string head_;
  const std::string chunk_;
  net::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::atomic<uint64_t> written_{0};
  std::thread thread_;
};

}  // namespace

TEST_CASE("otlphttp sender: a backend's endless response body is cut at 4 MiB", "[otlphttp][hostile]") {
  IoThread io;
  SECTION("declared 1 GiB: refused from the header") {
    FloodingBackend backend("HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1073741824\r\n\r\n",
                            std::string(64 * 1024, '\0'));
    OtlpHttpSender sender(io.io, options("http://127.0.0.1:" + std::to_string(backend.port()) + "/v1/traces"));
    REQUIRE(sender.start().is_ok());
    Status s = send_wait(sender, trace_payload());
    CHECK_FALSE(s.is_ok());
    CHECK(s.message().find("read response from") != std::string::npos);
    sender.shutdown();
  }
  SECTION("chunked without end: refused once 4 MiB arrived") {
    std::string chunk = "10000\r\n" + std::string(0x10000, 'x') + "\r\n";
    FloodingBackend backend("HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n",
                            chunk);
    OtlpHttpSender sender(io.io, options("http://127.0.0.1:" + std::to_string(backend.port()) + "/v1/traces"));
    REQUIRE(sender.start().is_ok());
    Status s = send_wait(sender, trace_payload());
    CHECK_FALSE(s.is_ok());
    CHECK(s.message().find("read response from") != std::string::npos);
    sender.shutdown();
    // What the backend could push is the 4 MiB limit plus what the sockets' buffers held.
    CHECK(backend.written() < (4u << 20) + (16u << 20));
  }
}

}  // namespace otlpd

// Attack replay: each test case starts a real otlpd (OTLP/gRPC and OTLP/HTTP receivers on
// ephemeral 127.0.0.1 ports, traces, metrics and logs pipelines into a `file` exporter), replays
// one attack against it and checks three things:
//  (a) the documented answer (docs/troubleshooting.md, "What clients see"), exact, or a closed
//      connection where that is what is documented;
//  (b) otlpd still serves a normal client afterwards (a one-span POST gets 200, a gRPC export OK);
//  (c) its peak resident memory (VmHWM) stayed under kPeakRssBoundMiB.
// Every wait has a deadline and waits on a condition; nothing leaves 127.0.0.1.
// The mTLS case runs otlpd with TLS and client_ca_file on both receivers: there the normal client
// of (b) speaks TLS and presents a valid client certificate.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/ssl.h>

#include "google/rpc/status.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "security/attack_clients.h"
#include "security/attack_payloads.h"
#include "support/temp_dir.h"
#include "support/test_certs.h"

namespace {

using namespace security;
namespace fs = std::filesystem;
using otlpd::test::Pem;
using otlpd::test::make_ca;
using otlpd::test::make_cert;
using Seconds = std::chrono::duration<double>;

constexpr size_t kMiB = size_t{1} << 20;
// otlpd's default max_request_body_size (the test config leaves it alone).
constexpr size_t kMaxBody = 20 * kMiB;
// Peak RSS bound for every attack. otlpd idles at a few tens of MiB. The most a single request may
// legitimately cost is bounded by the limits: an HTTP body of at most max_request_body_size (20
// MiB) as received plus at most 20 MiB decompressed plus its conversion (JSON to protobuf), and a
// gRPC message of at most max_recv_msg_size_mib (4 MiB) before and after inflation; with two I/O
// threads and two gRPC threads working at once that stays below ~200 MiB even with allocator
// slack. Measured on a 2-core machine: ~20 MiB idle, ~60 MiB after the HTTP bombs, ~135 MiB after
// the 100,000-deep OTLP/JSON body (its parse tree). A server that inflates a bomb instead of
// stopping at the limit reaches gigabytes, so 300 MiB tells the two apart with a wide margin. An
// otlpd built with ASan carries redzones and a quarantine of freed memory (256 MiB) on top.
#if defined(OTLPD_SANITIZED)
constexpr uint64_t kPeakRssBoundMiB = 1024;
#else
constexpr uint64_t kPeakRssBoundMiB = 300;
#endif

const char* const kProto = "application/x-protobuf";
const char* const kJson = "application/json";
const std::string kTraceMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

struct SignalRoute {
  std::string path;    // OTLP/HTTP
  std::string name;    // in otlpd's messages
  std::string method;  // OTLP/gRPC
};
const std::vector<SignalRoute> kSignals = {
    {"/v1/traces", "traces", kTraceMethod},
    {"/v1/metrics", "metrics", "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"},
    {"/v1/logs", "logs", "/opentelemetry.proto.collector.logs.v1.LogsService/Export"},
};

double seconds_since(SteadyClock::time_point t) { return Seconds(SteadyClock::now() - t).count(); }

// Calls `condition` every 20 ms until it returns true or `timeout` passes; returns its last answer.
template <typename Condition>
bool poll_until(Condition condition, Millis timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(Millis(20));  // polling interval of a condition with a deadline
  }
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The last `bytes` of `text`, for failure messages.
std::string tail(const std::string& text, size_t bytes = 4000) {
  return text.size() <= bytes ? text : "..." + text.substr(text.size() - bytes);
}

// A directory of its own per test, removed at the end.
struct TempDir : otlpd::test::TempDir {
  TempDir() : otlpd::test::TempDir("otlpd-security") {}
};

// Receivers' authentication for the config: a bearertokenauth extension both receivers require.
struct Auth {
  std::string token;
};

// Receivers' TLS for the config: both receivers serve `server` (127.0.0.1 and localhost, signed by
// `server_ca`) and require a client certificate signed by `client_ca` (client_ca_file: mTLS).
// `client` is a valid one: the normal client of check_serves_normal_client presents it.
struct Tls {
  Pem server_ca = make_ca("otlpd security test server CA");
  Pem server = make_cert(server_ca, {.common_name = "localhost", .dns_names = {"localhost"},
                                     .ip_addresses = {"127.0.0.1"}});
  Pem client_ca = make_ca("otlpd security test client CA");
  Pem client = make_cert(client_ca, {.common_name = "normal-client", .client = true});
};

// A client of `tls`'s otlpd: trusts its server CA and presents `identity` (nothing when nullopt).
ClientTls mtls_client(const Tls& tls, const std::optional<Pem>& identity) {
  ClientTls c;
  c.trusted_ca = tls.server_ca.cert;
  if (identity) {
    c.cert_chain = identity->cert;
    c.private_key = identity->key;
  }
  return c;
}

// The TLS files Otlpd writes into its directory and make_config names.
const char* const kServerCertFile = "tls-server.crt";
const char* const kServerKeyFile = "tls-server.key";
const char* const kClientCaFile = "tls-client-ca.pem";

// The test's otlpd: OTLP/gRPC and OTLP/HTTP on 127.0.0.1 port 0 (otlpd logs the ports it got),
// read_header_timeout 2s, every signal into one `file` exporter, self-metrics on a free port.
// With `tls`, both receivers have a `tls` block with cert_file, key_file and client_ca_file.
std::string make_config(const fs::path& dir, const std::optional<Auth>& auth, bool tls = false) {
  std::string c;
  if (auth) c += "extensions:\n  bearertokenauth:\n    token: \"" + auth->token + "\"\n";
  // Keys both protocols get: auth and tls.
  std::string protocol_keys = auth ? "        auth: {authenticator: bearertokenauth}\n" : "";
  if (tls) {
    protocol_keys += "        tls:\n"
                     "          cert_file: \"" + (dir / kServerCertFile).string() + "\"\n"
                     "          key_file: \"" + (dir / kServerKeyFile).string() + "\"\n"
                     "          client_ca_file: \"" + (dir / kClientCaFile).string() + "\"\n";
  }
  c += "receivers:\n"
       "  otlp:\n"
       "    protocols:\n"
       "      grpc:\n"
       "        endpoint: 127.0.0.1:0\n" +
       protocol_keys +
       "      http:\n"
       "        endpoint: 127.0.0.1:0\n"
       "        read_header_timeout: 2s\n" +
       protocol_keys +
       "exporters:\n"
       "  file:\n"
       "    path: \"" +
       (dir / "out.jsonl").string() +
       "\"\n"
       "service:\n";
  if (auth) c += "  extensions: [bearertokenauth]\n";
  c += "  telemetry: {metrics: {address: 127.0.0.1:0}}\n"
       "  pipelines:\n"
       "    traces: {receivers: [otlp], exporters: [file]}\n"
       "    metrics: {receivers: [otlp], exporters: [file]}\n"
       "    logs: {receivers: [otlp], exporters: [file]}\n";
  return c;
}

// otlpd as a child process on a config written to `dir`; its log (stderr) in dir/otlpd.log, its
// standard output in dir/stdout.log. The constructor returns once otlpd runs and both receivers
// listen; the destructor kills it if it is still running (a failed REQUIRE leaves nothing behind).
// With `tls`, its certificate files are written to `dir` too, and client_tls() is the normal
// client's TLS (a valid client certificate).
class Otlpd {
 public:
  Otlpd(const TempDir& dir, const std::optional<Auth>& auth = std::nullopt,
        const std::optional<Tls>& tls = std::nullopt)
      : config_(make_config(dir.path(), auth, tls.has_value())), log_path_(dir.path() / "otlpd.log") {
    if (tls) {
      otlpd::test::write_file(dir.path().string(), kServerCertFile, tls->server.cert);
      otlpd::test::write_file(dir.path().string(), kServerKeyFile, tls->server.key);
      otlpd::test::write_file(dir.path().string(), kClientCaFile, tls->client_ca.cert);
      client_tls_ = mtls_client(*tls, tls->client);
    }
    const fs::path config_path = dir.path() / "otlpd.yaml";
    {
      std::ofstream out(config_path);
      out << config_;
    }
    // Everything the child needs is prepared before fork: it only opens, dup2s and execs.
    const std::string binary = OTLPD_BINARY, config_arg = config_path.string(), log = log_path_.string(),
                      stdout_path = (dir.path() / "stdout.log").string();
    const pid_t parent = getpid();
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      // Dies with the test process, even one killed without unwinding (a CTest timeout).
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(125);
      const int out = open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int err = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (out < 0 || err < 0) _exit(126);
      dup2(out, STDOUT_FILENO);
      dup2(err, STDERR_FILENO);
      execl(binary.c_str(), binary.c_str(), "--config", config_arg.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    // daemon.cc logs "otlpd VERSION running N pipeline(s) on ..." once every receiver listens.
    const bool running = poll_until([&] { return !alive() || this->log().find(" pipeline(s) on ") != std::string::npos; },
                                    Millis(15000));
    INFO(config_);
    INFO(tail(this->log()));
    REQUIRE(running);
    REQUIRE(alive());
    grpc_port_ = logged_port("OTLP/gRPC listening on port ");
    http_port_ = logged_port("OTLP/HTTP listening on port ");
    REQUIRE(grpc_port_ > 0);
    REQUIRE(http_port_ > 0);
  }
  ~Otlpd() {
    if (pid_ > 0 && !exit_status_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Otlpd(const Otlpd&) = delete;
  Otlpd& operator=(const Otlpd&) = delete;

  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_port_; }
  // The normal client's TLS when the receivers require mTLS; nullopt: plaintext receivers.
  const std::optional<ClientTls>& client_tls() const { return client_tls_; }
  pid_t pid() const { return pid_; }
  std::string log() const { return read_text(log_path_); }

  // Whether the process is still running (reaps it once it has exited).
  bool alive() {
    if (exit_status_) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return true;
    exit_status_ = status;
    return false;
  }
  // How it ended, for messages: "running", "exit N" or "signal N (name)".
  std::string state() {
    if (alive()) return "running";
    if (WIFEXITED(*exit_status_)) return "exit " + std::to_string(WEXITSTATUS(*exit_status_));
    const int sig = WTERMSIG(*exit_status_);
    return "killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }

  // Peak resident set size (VmHWM) in MiB while running; 0 when it cannot be read.
  uint64_t peak_rss_mib() {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) / 1024;
    }
    return 0;
  }

  // Current resident set size (VmRSS) in MiB; 0 when it cannot be read.
  uint64_t rss_mib() {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) / 1024;
    }
    return 0;
  }

  // SIGTERM, then waits up to `timeout` for the exit; the exit code, or nullopt if it runs on or
  // a signal ended it.
  std::optional<int> terminate(Millis timeout) {
    if (alive()) kill(pid_, SIGTERM);
    poll_until([&] { return !alive(); }, timeout);
    if (alive() || !WIFEXITED(*exit_status_)) return std::nullopt;
    return WEXITSTATUS(*exit_status_);
  }

 private:
  int logged_port(const std::string& marker) const {
    const std::string text = log();
    const size_t at = text.find(marker);
    return at == std::string::npos ? 0 : std::atoi(text.c_str() + at + marker.size());
  }

  std::string config_;
  fs::path log_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;  // waitpid status once reaped
  std::optional<ClientTls> client_tls_;
  int grpc_port_ = 0;
  int http_port_ = 0;
};

// ---- answers ----

// The google.rpc.Status of an error answer in the request's format: protobuf or JSON body; a
// text/plain body is taken as the message itself. code -1 when the body is none of these.
struct ErrorBody {
  int code = -1;
  std::string message;
};

ErrorBody error_body(const HttpResponse& r) {
  ErrorBody e;
  const std::string type = r.header("content-type");
  if (type == kProto) {
    google::rpc::Status st;
    if (st.ParseFromString(r.body)) e = {st.code(), st.message()};
  } else if (type == kJson) {
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_object()) e = {j.value("code", -1), j.value("message", std::string())};
  } else if (type.rfind("text/plain", 0) == 0) {
    e.message = r.body.substr(0, r.body.find_last_not_of('\n') + 1);
  }
  return e;
}

// The first `n` bytes of `text` (all of it when shorter).
std::string starts(const std::string& text, size_t n) { return text.substr(0, std::min(n, text.size())); }
// The first bytes of `text`, as many as `prefix` has: compared with it, a failure shows both.
std::string head_of(const std::string& text, const std::string& prefix) { return starts(text, prefix.size()); }

// A request header line for `post_request`'s extra headers.
std::string header_line(const std::string& name, const std::string& value) { return name + ": " + value + "\r\n"; }

// (b): a valid one-span request over HTTP (protobuf) gets 200 and a gRPC export gets OK;
// `authorization` is sent along when not empty. Over TLS with a valid client certificate when
// otlpd requires mTLS.
void check_serves_normal_client(Otlpd& d, const std::string& authorization = "") {
  INFO("otlpd: " << d.state());
  REQUIRE(d.alive());
  const std::string extra = authorization.empty() ? "" : header_line("Authorization", authorization);
  const std::string request = one_span_request("normal-client");
  Metadata md;
  if (!authorization.empty()) md.push_back({"authorization", authorization});
  if (const std::optional<ClientTls>& tls = d.client_tls()) {
    const TlsHttpResult r = https_send(d.http_port(), *tls, post_request("/v1/traces", kProto, request, extra));
    INFO("HTTP over TLS: " << r.describe());
    CHECK(r.end == TlsHttpResult::End::response);
    CHECK(r.response.status == 200);
    const GrpcAnswer g = grpc_call_tls(d.grpc_port(), *tls, kTraceMethod, request, Millis(10000), md);
    INFO("gRPC over TLS: " << g.describe());
    CHECK(g.code == grpc::StatusCode::OK);
    return;
  }
  const HttpResponse r = http_post(d.http_port(), "/v1/traces", kProto, request, extra);
  INFO("HTTP: " << r.describe());
  CHECK(r.status == 200);
  const GrpcAnswer g = grpc_call(d.grpc_port(), kTraceMethod, request, false, Millis(10000), md);
  INFO("gRPC: " << g.describe());
  CHECK(g.code == grpc::StatusCode::OK);
}

// (c): the peak RSS so far is under the bound.
void check_peak_memory(Otlpd& d) {
  const uint64_t peak = d.peak_rss_mib();
  INFO("otlpd " << d.state() << ", peak RSS " << peak << " MiB, bound " << kPeakRssBoundMiB << " MiB");
  CHECK(peak > 0);
  CHECK(peak < kPeakRssBoundMiB);
}

// (b) and (c), then SIGTERM: otlpd drains and exits 0 (no crash on the way out either). Callers
// close their own gRPC channels first: otlpd's SIGTERM drain waits (up to a quarter of
// shutdown_timeout) for an open gRPC client connection, which would only add seconds here.
void finish(Otlpd& d, const std::string& authorization = "") {
  check_serves_normal_client(d, authorization);
  check_peak_memory(d);
  const auto code = d.terminate(Millis(20000));
  INFO("otlpd " << d.state() << "; log:\n" << tail(d.log()));
  CHECK(code == 0);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("the attack payloads are what they claim", "[security][payloads]") {
  SECTION("gzip_zeros inflates to exactly its size in zeros, in about 1 KiB per MiB") {
    const std::string bomb = gzip_zeros(5);
    const auto plain = gunzip(bomb, 6 * kMiB);
    REQUIRE(plain);
    CHECK(plain->size() == 5 * kMiB);
    CHECK(plain->find_first_not_of('\0') == std::string::npos);
    CHECK(bomb.size() < 5 * 1100);
    CHECK_FALSE(gunzip(bomb, 4 * kMiB));  // the check's own limit works
  }
  SECTION("zstd_zeros, with and without a declared content size") {
    for (bool declared : {false, true}) {
      INFO("declared " << declared);
      const std::string bomb = zstd_zeros(5, declared);
      const auto plain = unzstd(bomb, 6 * kMiB);
      REQUIRE(plain);
      CHECK(plain->size() == 5 * kMiB);
      CHECK(plain->find_first_not_of('\0') == std::string::npos);
      CHECK(ZSTD_getFrameContentSize(bomb.data(), bomb.size()) == (declared ? 5 * kMiB : ZSTD_CONTENTSIZE_UNKNOWN));
    }
    const std::string big = zstd_zeros(10240, true);
    CHECK(ZSTD_getFrameContentSize(big.data(), big.size()) == 10240ull * kMiB);
  }
  SECTION("gzip_bytes and zstd_bytes round-trip") {
    const std::string request = one_span_request("x");
    CHECK(gunzip(gzip_bytes(request), kMiB) == request);
    CHECK(unzstd(zstd_bytes(request), kMiB) == request);
  }
  SECTION("nested AnyValues have the requested depth and parse as OTLP") {
    opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest request;
    REQUIRE(request.ParseFromString(nested_any_value_protobuf(20)));  // within protobuf's recursion limit
    const opentelemetry::proto::common::v1::AnyValue* v =
        &request.resource_spans(0).resource().attributes(0).value();
    int depth = 1;
    for (;;) {
      if (v->has_kvlist_value()) {
        v = &v->kvlist_value().values(0).value();
      } else if (v->has_array_value()) {
        v = &v->array_value().values(0);
      } else {
        break;
      }
      ++depth;
    }
    CHECK(depth == 20);
    CHECK(v->string_value() == "x");
    CHECK(nlohmann::json::accept(nested_any_value_json(20)));
    CHECK(nlohmann::json::accept(nested_any_value_json(100000)));
  }
}

TEST_CASE("a gzip bomb over OTLP/HTTP gets 413 once the inflated body passes the limit", "[security][bomb]") {
  TempDir dir;
  Otlpd d(dir);
  const int port = d.http_port();

  // The format is right: a small one inflates fine, and its zeros are then no OTLP request.
  HttpResponse small = http_post(port, "/v1/traces", kProto, gzip_zeros(1), header_line("Content-Encoding", "gzip"));
  INFO(small.describe());
  CHECK(small.status == 400);
  CHECK(head_of(error_body(small).message, "malformed traces request: ") == "malformed traces request: ");

  const std::string bomb = gzip_zeros(10240);  // 10 GiB of zeros
  INFO("bomb: " << bomb.size() << " bytes");
  // Under max_request_body_size as sent: only its inflated size can refuse it.
  REQUIRE(bomb.size() > 5'000'000);
  REQUIRE(bomb.size() < kMaxBody);
  for (const char* type : {kProto, kJson}) {
    INFO(type);
    const auto t0 = SteadyClock::now();
    const HttpResponse r =
        http_post(port, type == kProto ? "/v1/traces" : "/v1/logs", type, bomb, header_line("Content-Encoding", "gzip"),
                  Millis(20000));
    const double took = seconds_since(t0);
    INFO(r.describe() << " after " << took << " s");
    CHECK(r.status == 413);
    CHECK(r.header("content-type") == type);
    const ErrorBody e = error_body(r);
    CHECK(e.code == static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
    CHECK(e.message == "request body larger than 20971520 bytes after decompression");
    CHECK(took < 20);
    check_peak_memory(d);
  }
  // A body announced over the limit is refused from its Content-Length, before it is sent.
  {
    Connection c(port);
    REQUIRE(c.connected());
    const auto deadline = SteadyClock::now() + Millis(5000);
    REQUIRE(c.send_all("POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
                       "Content-Encoding: gzip\r\nContent-Length: 10737418240\r\n\r\n",
                       deadline));
    std::string buffer;
    const HttpResponse r = read_response(c, buffer, deadline);
    INFO("Content-Length 10 GiB, no body: " << r.describe());
    CHECK(r.status == 413);
    CHECK(error_body(r).message == "request body larger than 20971520 bytes");
    CHECK(c.wait_closed(deadline));
  }
  finish(d);
}

TEST_CASE("a zstd bomb over OTLP/HTTP gets 413, streamed or with a declared size", "[security][bomb]") {
  TempDir dir;
  Otlpd d(dir);
  const int port = d.http_port();
  const std::string encoding = header_line("Content-Encoding", "zstd");

  HttpResponse small = http_post(port, "/v1/traces", kProto, zstd_zeros(1), encoding);
  INFO(small.describe());
  CHECK(small.status == 400);
  CHECK(head_of(error_body(small).message, "malformed traces request: ") == "malformed traces request: ");

  for (bool declared : {false, true}) {
    const std::string bomb = zstd_zeros(10240, declared);  // 10 GiB of zeros
    INFO("declared size: " << declared << ", bomb: " << bomb.size() << " bytes");
    REQUIRE(bomb.size() < kMaxBody);
    for (const char* type : {kProto, kJson}) {
      INFO(type);
      const auto t0 = SteadyClock::now();
      const HttpResponse r = http_post(port, "/v1/metrics", type, bomb, encoding, Millis(20000));
      const double took = seconds_since(t0);
      INFO(r.describe() << " after " << took << " s");
      CHECK(r.status == 413);
      const ErrorBody e = error_body(r);
      CHECK(e.code == static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
      CHECK(e.message == "request body larger than 20971520 bytes after decompression");
      CHECK(took < 20);
      check_peak_memory(d);
    }
  }
  finish(d);
}

TEST_CASE("a gzip bomb over OTLP/gRPC gets RESOURCE_EXHAUSTED", "[security][bomb]") {
  TempDir dir;
  Otlpd d(dir);
  const int port = d.grpc_port();

  // The precompressed path works: a valid request compressed by us is accepted.
  const GrpcAnswer control = grpc_call_precompressed(port, kTraceMethod, gzip_bytes(one_span_request("precompressed")));
  INFO("control: " << control.describe());
  CHECK(control.code == grpc::StatusCode::OK);

  // Under max_recv_msg_size_mib (4) as sent: only its inflated size can refuse it. The big one on
  // one method (at gzip's ~1000:1 it is 2 MiB on the wire), a 64 MiB one on every method.
  for (const auto& [method, mib] : std::vector<std::pair<std::string, size_t>>{
           {kTraceMethod, 2048}, {kSignals[0].method, 64}, {kSignals[1].method, 64}, {kSignals[2].method, 64}}) {
    const std::string bomb = gzip_zeros(mib);
    INFO(method << ": " << mib << " MiB of zeros in " << bomb.size() << " bytes");
    REQUIRE(bomb.size() < 4 * kMiB);
    const auto t0 = SteadyClock::now();
    const GrpcAnswer a = grpc_call_precompressed(port, method, bomb, Millis(20000));
    const double took = seconds_since(t0);
    INFO(a.describe() << " after " << took << " s");
    CHECK(a.code == grpc::StatusCode::RESOURCE_EXHAUSTED);
    CHECK(took < 20);
    check_peak_memory(d);
  }
  // The same through gRPC's own compression: 64 MiB of zeros in a span name, 64 KiB on the wire.
  const GrpcAnswer own = grpc_call(port, kTraceMethod, span_with_zero_name(64 * kMiB), true, Millis(20000));
  INFO("library-compressed: " << own.describe());
  CHECK(own.code == grpc::StatusCode::RESOURCE_EXHAUSTED);
  finish(d);
}

TEST_CASE("empty requests on every path, format and encoding get their documented answer", "[security][empty]") {
  TempDir dir;
  Otlpd d(dir);
  HttpClient http(d.http_port());
  for (const auto& s : kSignals) {
    for (const char* type : {kProto, kJson}) {
      INFO(s.path << " " << type);
      // Content-Length: 0. An empty protobuf is a valid empty Export request; an empty JSON
      // text is not JSON at all.
      HttpResponse r = http.send(post_request(s.path, type, ""));
      INFO(r.describe());
      if (type == kProto) {
        CHECK(r.status == 200);
        CHECK(r.header("content-type") == kProto);
        CHECK(r.body.empty());  // an Export<Signal>ServiceResponse without partial_success
      } else {
        CHECK(r.status == 400);
        CHECK(head_of(error_body(r).message, "invalid OTLP/JSON: ") == "invalid OTLP/JSON: ");
      }
      // No Content-Length at all: a request without a body (RFC 9112 6.3), the same answer.
      const std::string no_length =
          "POST " + s.path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header_line("Content-Type", type) + "\r\n";
      HttpResponse n = http.send(no_length);
      INFO("without Content-Length: " << n.describe());
      CHECK(n.status == r.status);
      CHECK(n.body == r.body);
      // The empty JSON object is the valid empty request in OTLP/JSON.
      if (type == kJson) {
        HttpResponse o = http.send(post_request(s.path, type, "{}"));
        INFO("{}: " << o.describe());
        CHECK(o.status == 200);
        CHECK(o.body == "{}");
      }
      // An empty body that claims to be compressed is not even a header of that format.
      for (const std::string enc : {"gzip", "zstd"}) {
        HttpResponse c = http.send(post_request(s.path, type, "", header_line("Content-Encoding", enc)));
        INFO(enc << ": " << c.describe());
        CHECK(c.status == 400);
        CHECK(error_body(c).message == "malformed " + enc + " body");
      }
      // And an empty request, compressed for real, is as valid as the plain one.
      for (const std::string enc : {"gzip", "zstd"}) {
        const std::string body = type == kProto ? "" : "{}";
        HttpResponse c = http.send(post_request(s.path, type, enc == "gzip" ? gzip_bytes(body) : zstd_bytes(body),
                                                header_line("Content-Encoding", enc)));
        INFO(enc << " of an empty request: " << c.describe());
        CHECK(c.status == 200);
      }
    }
  }
  {
    GrpcClient grpc(d.grpc_port());
    for (const auto& s : kSignals) {
      for (bool gzip : {false, true}) {
        const GrpcAnswer a = grpc.call(s.method, "", gzip);
        INFO(s.method << " gzip " << gzip << ": " << a.describe());
        CHECK(a.code == grpc::StatusCode::OK);
      }
    }
  }
  finish(d);
}

TEST_CASE("random bytes as bodies, messages and raw TCP get 400 / INVALID_ARGUMENT or a close", "[security][random]") {
  TempDir dir;
  Otlpd d(dir);
  const auto started = SteadyClock::now();

  // 200 bodies of 1..4096 bytes per path and content type (fixed seed), each sent plain and
  // declared gzip and zstd; every fifth also compressed for real, so that the random bytes reach
  // the protobuf / JSON decoder through each decompressor.
  std::map<std::string, int> counts;  // "<variant> <status>" -> how many
  {
    HttpClient http(d.http_port());
    std::mt19937_64 rng(20240601);
    std::uniform_int_distribution<size_t> length(1, 4096);
    for (const auto& s : kSignals) {
      for (const char* type : {kProto, kJson}) {
        for (int i = 0; i < 200; ++i) {
          const std::string body = random_bytes(rng, length(rng));
          std::vector<std::pair<std::string, std::string>> variants = {
              {"plain", ""}, {"declared-gzip", "gzip"}, {"declared-zstd", "zstd"}};
          if (i % 5 == 0) {
            variants.push_back({"real-gzip", "gzip"});
            variants.push_back({"real-zstd", "zstd"});
          }
          for (const auto& [variant, enc] : variants) {
            const std::string sent = variant == "real-gzip"   ? gzip_bytes(body)
                                     : variant == "real-zstd" ? zstd_bytes(body)
                                                              : body;
            const HttpResponse r =
                http.send(post_request(s.path, type, sent, enc.empty() ? "" : header_line("Content-Encoding", enc)));
            ++counts[variant + " " + std::to_string(r.status)];
            if (r.status != 200 && r.status != 400) {
              INFO(s.path << " " << type << " body #" << i << " " << variant << ": " << r.describe());
              INFO("otlpd " << d.state());
              REQUIRE((r.status == 200 || r.status == 400));
            }
            if (r.status == 400 && variant.rfind("declared-", 0) == 0) {
              // Random bytes are not a gzip or zstd stream.
              const std::string message = error_body(r).message;
              INFO(variant << ": " << r.describe());
              CHECK(message == "malformed " + enc + " body");
            }
          }
        }
      }
    }
  }
  std::string summary;
  for (const auto& [key, n] : counts) summary += key + ": " + std::to_string(n) + "; ";
  INFO("HTTP answers: " << summary);
  CHECK(counts["plain 400"] + counts["plain 200"] == 1200);
  check_peak_memory(d);

  // The same over gRPC: 100 random messages per method.
  int grpc_ok = 0, grpc_invalid = 0;
  {
    GrpcClient grpc(d.grpc_port());
    std::mt19937_64 rng(777);
    std::uniform_int_distribution<size_t> length(1, 4096);
    for (const auto& s : kSignals) {
      for (int i = 0; i < 100; ++i) {
        const GrpcAnswer a = grpc.call(s.method, random_bytes(rng, length(rng)));
        if (a.code == grpc::StatusCode::OK) {
          ++grpc_ok;
        } else if (a.code == grpc::StatusCode::INVALID_ARGUMENT) {
          ++grpc_invalid;
          INFO(a.describe());
          CHECK(a.message.rfind("malformed " + s.name + " request: ", 0) == 0);
        } else {
          INFO(s.method << " message #" << i << ": " << a.describe() << "; otlpd " << d.state());
          REQUIRE((a.code == grpc::StatusCode::OK || a.code == grpc::StatusCode::INVALID_ARGUMENT));
        }
      }
    }
  }
  INFO("gRPC: " << grpc_ok << " OK, " << grpc_invalid << " INVALID_ARGUMENT");
  CHECK(grpc_ok + grpc_invalid == 300);

  // Raw garbage straight on the TCP ports: the HTTP port answers 400 and closes, or just closes;
  // the gRPC port (HTTP/2) closes.
  std::mt19937_64 rng(4242);
  std::uniform_int_distribution<size_t> length(1, 4096);
  int answered_400 = 0, closed_silently = 0;
  for (int i = 0; i < 50; ++i) {
    Connection c(d.http_port());
    REQUIRE(c.connected());
    const auto deadline = SteadyClock::now() + Millis(10000);
    c.send_all(random_bytes(rng, length(rng)), deadline);  // the server may close before it has all
    c.shutdown_send();
    std::string buffer;
    const HttpResponse r = read_response(c, buffer, deadline);
    INFO("garbage #" << i << ": " << r.describe());
    if (r.status != 0) {
      CHECK(r.status == 400);
      CHECK(head_of(r.body, "malformed HTTP request: ") == "malformed HTTP request: ");
      ++answered_400;
    } else {
      CHECK(r.error.find("closed") != std::string::npos);  // not a timeout
      ++closed_silently;
    }
    CHECK(c.wait_closed(deadline));
  }
  for (int i = 0; i < 20; ++i) {
    Connection c(d.grpc_port());
    REQUIRE(c.connected());
    const auto deadline = SteadyClock::now() + Millis(10000);
    c.send_all(random_bytes(rng, length(rng)), deadline);
    c.shutdown_send();
    INFO("gRPC garbage #" << i);
    CHECK(c.wait_closed(deadline));
  }
  INFO("raw HTTP garbage: " << answered_400 << " answered 400, " << closed_silently << " closed");
  CHECK(answered_400 + closed_silently == 50);
  CHECK(seconds_since(started) < 90);
  finish(d);
}

TEST_CASE("a 100,000-deep nested AnyValue gets 400 / INVALID_ARGUMENT without a stack overflow", "[security][nesting]") {
  TempDir dir;
  Otlpd d(dir);
  HttpClient http(d.http_port());
  auto grpc = std::make_unique<GrpcClient>(d.grpc_port());

  // Shallow nesting of the same shape is a valid request in each form.
  {
    const HttpResponse p = http.send(post_request("/v1/traces", kProto, nested_any_value_protobuf(10)));
    INFO("depth 10 protobuf: " << p.describe());
    CHECK(p.status == 200);
    const HttpResponse j = http.send(post_request("/v1/traces", kJson, nested_any_value_json(10)));
    INFO("depth 10 JSON: " << j.describe());
    CHECK(j.status == 200);
    const GrpcAnswer g = grpc->call(kTraceMethod, nested_any_value_protobuf(10));
    INFO("depth 10 gRPC: " << g.describe());
    CHECK(g.code == grpc::StatusCode::OK);
  }

  const std::string deep_proto = nested_any_value_protobuf(100000);
  const std::string deep_json = nested_any_value_json(100000);
  INFO("protobuf " << deep_proto.size() << " bytes, JSON " << deep_json.size() << " bytes");
  REQUIRE(deep_proto.size() < 4 * kMiB);  // under every size limit: only the depth can refuse it
  REQUIRE(deep_json.size() < kMaxBody);

  const HttpResponse p = http.send(post_request("/v1/traces", kProto, deep_proto), Millis(20000));
  INFO("deep protobuf: " << p.describe() << "; otlpd " << d.state());
  CHECK(p.status == 400);
  CHECK(head_of(error_body(p).message, "malformed traces request: ") == "malformed traces request: ");

  const HttpResponse j = http.send(post_request("/v1/traces", kJson, deep_json), Millis(20000));
  INFO("deep JSON: " << j.describe() << "; otlpd " << d.state());
  CHECK(j.status == 400);
  CHECK(head_of(error_body(j).message, "invalid OTLP/JSON: ") == "invalid OTLP/JSON: ");

  // Compressed, the same bodies pass through the decompressors first.
  const HttpResponse z =
      http.send(post_request("/v1/traces", kJson, zstd_bytes(deep_json), header_line("Content-Encoding", "zstd")),
                Millis(20000));
  INFO("deep JSON, zstd: " << z.describe() << "; otlpd " << d.state());
  CHECK(z.status == 400);

  const GrpcAnswer g = grpc->call(kTraceMethod, deep_proto, false, Millis(20000));
  INFO("deep gRPC: " << g.describe() << "; otlpd " << d.state());
  CHECK(g.code == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(g.message.rfind("malformed traces request: ", 0) == 0);
  grpc.reset();  // see finish()
  finish(d);
}

namespace {

// One slow-loris connection: what became of it.
struct SlowConnection {
  bool connected = false;
  bool closed = false;      // by the server
  double closed_after = 0;  // seconds from connect
  size_t received = 0;      // bytes the server sent (it should send none)
};

// Opens `n` connections to `port`; the even ones send a request line and headers that never end,
// one byte per connection every 100 ms, the odd ones send nothing. Runs until the server has
// closed them all or `limit` has passed since they were opened. No Catch2 here (its own thread).
std::vector<SlowConnection> slow_loris(int port, int n, Millis limit) {
  const std::string trickle = "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
                              "X-Slow: " +
                              std::string(4096, 'a');
  std::vector<SlowConnection> result(n);
  std::vector<std::unique_ptr<Connection>> conns(n);
  std::vector<SteadyClock::time_point> opened(n);
  std::vector<size_t> sent(n, 0);
  for (int i = 0; i < n; ++i) {
    opened[i] = SteadyClock::now();
    conns[i] = std::make_unique<Connection>(port);
    result[i].connected = conns[i]->connected();
    if (!result[i].connected) conns[i].reset();
  }
  const auto deadline = SteadyClock::now() + limit;
  auto close_one = [&](int i) {
    result[i].closed = true;
    result[i].closed_after = seconds_since(opened[i]);
    conns[i].reset();
  };
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<int> index;
    for (int i = 0; i < n; ++i) {
      if (conns[i]) {
        fds.push_back({conns[i]->fd(), POLLIN, 0});
        index.push_back(i);
      }
    }
    if (fds.empty() || SteadyClock::now() >= deadline) break;
    // Waits for the server to close (or send) on any of them; 100 ms is the trickle's pace.
    poll(fds.data(), fds.size(), 100);
    for (size_t k = 0; k < fds.size(); ++k) {
      const int i = index[k];
      if (fds[k].revents == 0) continue;
      std::string got;
      const Connection::Read r = conns[i]->read_some(got, SteadyClock::now());
      result[i].received += got.size();
      if (r == Connection::Read::closed) close_one(i);
    }
    for (int i = 0; i < n; i += 2) {
      if (!conns[i] || sent[i] >= trickle.size()) continue;
      if (conns[i]->send_all(std::string_view(trickle).substr(sent[i], 1), SteadyClock::now() + Millis(100))) {
        ++sent[i];
      } else {
        close_one(i);  // reset by the server
      }
    }
  }
  return result;
}

}  // namespace

TEST_CASE("200 slow-loris connections are closed after read_header_timeout while normal clients are served",
          "[security][slowloris]") {
  TempDir dir;
  Otlpd d(dir);
  constexpr int kSlow = 200;

  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::vector<SlowConnection> slow;
  std::thread attacker([&] {
    auto r = slow_loris(d.http_port(), kSlow, Millis(10000));
    std::lock_guard lock(mu);
    slow = std::move(r);
    done = true;
    cv.notify_all();
  });

  // A normal client keeps sending (HTTP on a new connection each time, and gRPC) while the slow
  // connections are open; each request must be answered within 2 s.
  int requests = 0, http_failures = 0, grpc_failures = 0;
  double slowest = 0;
  std::string first_failure;
  auto grpc = std::make_unique<GrpcClient>(d.grpc_port());
  const auto give_up = SteadyClock::now() + Millis(20000);
  for (;;) {
    const auto t0 = SteadyClock::now();
    const HttpResponse r = http_post(d.http_port(), "/v1/traces", kProto, one_span_request("during-attack"), "",
                                     Millis(2000));
    const GrpcAnswer g = grpc->call(kTraceMethod, one_span_request("during-attack"), false, Millis(2000));
    slowest = std::max(slowest, seconds_since(t0));
    ++requests;
    if (r.status != 200) {
      ++http_failures;
      if (first_failure.empty()) first_failure = "HTTP " + r.describe();
    }
    if (g.code != grpc::StatusCode::OK) {
      ++grpc_failures;
      if (first_failure.empty()) first_failure = g.describe();
    }
    // Paces the normal client (20 ms) and notices the end of the attack at once.
    std::unique_lock lock(mu);
    if (cv.wait_for(lock, Millis(20), [&] { return done; }) || SteadyClock::now() > give_up) break;
  }
  attacker.join();
  grpc.reset();  // see finish()

  INFO(requests << " normal requests, slowest pair " << slowest << " s; first failure: " << first_failure);
  CHECK(requests >= 10);
  CHECK(http_failures == 0);
  CHECK(grpc_failures == 0);

  REQUIRE(slow.size() == static_cast<size_t>(kSlow));
  int connected = 0, closed = 0, answered = 0;
  double earliest = 1e9, latest = 0;
  for (const auto& c : slow) {
    connected += c.connected;
    closed += c.closed;
    answered += c.received > 0;
    if (c.closed) {
      earliest = std::min(earliest, c.closed_after);
      latest = std::max(latest, c.closed_after);
    }
  }
  INFO(connected << " connected, " << closed << " closed by otlpd, between " << earliest << " s and " << latest
                 << " s after connecting; " << answered << " got bytes");
  CHECK(connected == kSlow);
  CHECK(closed == kSlow);  // all within 10 s (slow_loris's limit)
  CHECK(latest <= 10);
  CHECK(earliest >= 1.5);  // read_header_timeout (2 s) closed them, nothing earlier
  CHECK(answered == 0);    // disconnected without an answer, as documented
  finish(d);
}

TEST_CASE("bearertokenauth: missing, wrong and same-length tokens get 401 / UNAUTHENTICATED", "[security][auth]") {
  TempDir dir;
  const std::string token = "k7Qz-AttackReplay-0123456789";
  Otlpd d(dir, Auth{token});
  const std::string right = "Bearer " + token;
  std::string same_length = token;
  same_length.front() = 'X';  // the right length, first and last bytes wrong
  same_length.back() = 'Y';
  const std::vector<std::pair<std::string, std::optional<std::string>>> wrong = {
      {"no Authorization", std::nullopt},
      {"wrong token", "Bearer wrong-guess-42"},
      {"same length, wrong bytes", "Bearer " + same_length},
      {"a prefix of the token", "Bearer " + token.substr(0, token.size() - 1)},
      {"the token and more", right + "0"},
      {"the token without scheme", token},
      {"another scheme", "Basic " + token},
      {"empty", ""},
  };

  for (const char* type : {kProto, kJson}) {
    for (const auto& [what, value] : wrong) {
      INFO(what << ", " << type);
      const std::string extra = value ? header_line("Authorization", *value) : "";
      Connection c(d.http_port());
      REQUIRE(c.connected());
      const auto deadline = SteadyClock::now() + Millis(10000);
      REQUIRE(c.send_all(post_request("/v1/traces", type, one_span_request("unauthenticated"), extra), deadline));
      std::string buffer;
      const HttpResponse r = read_response(c, buffer, deadline);
      INFO(r.describe());
      CHECK(r.status == 401);
      CHECK(r.header("www-authenticate") == "Bearer");
      CHECK(r.header("content-type") == type);
      const ErrorBody e = error_body(r);
      CHECK(e.code == static_cast<int>(grpc::StatusCode::UNAUTHENTICATED));
      CHECK(e.message == "missing or invalid credentials");
      CHECK(r.body.find(token) == std::string::npos);
      CHECK(r.body.find("wrong-guess") == std::string::npos);
      CHECK(r.body.find(same_length) == std::string::npos);
      CHECK(r.closes());  // the connection is closed after a 401
      CHECK(c.wait_closed(deadline));
    }
  }

  // Announced bodies that are never sent: the answer comes once the headers are read.
  for (const uint64_t length : {uint64_t{1} << 20, uint64_t{15} << 20, uint64_t{10} << 30}) {
    for (bool expect_continue : {false, true}) {
      INFO("Content-Length " << length << (expect_continue ? " with Expect: 100-continue" : ""));
      Connection c(d.http_port());
      REQUIRE(c.connected());
      const auto deadline = SteadyClock::now() + Millis(5000);
      const std::string head = "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
                               "Content-Length: " +
                               std::to_string(length) + "\r\n" + (expect_continue ? "Expect: 100-continue\r\n" : "") +
                               "\r\n";
      REQUIRE(c.send_all(head, deadline));
      std::string buffer;
      // The first bytes: a final answer, not 100 Continue (nothing invites the body).
      while (buffer.find("\r\n") == std::string::npos && c.read_some(buffer, deadline) == Connection::Read::data) {
      }
      INFO("first bytes: " << starts(buffer, 40));
      CHECK(head_of(buffer, "HTTP/1.1 401") == "HTTP/1.1 401");
      const HttpResponse r = read_response(c, buffer, deadline);
      INFO(r.describe());
      CHECK(r.status == 401);
      CHECK(error_body(r).message == "missing or invalid credentials");
      CHECK(c.wait_closed(deadline));
    }
  }

  // gRPC: the same values as metadata; the bomb is refused before its message is read.
  auto grpc = std::make_unique<GrpcClient>(d.grpc_port());
  for (const auto& [what, value] : wrong) {
    INFO("gRPC, " << what);
    Metadata md;
    if (value) md.push_back({"authorization", *value});
    const GrpcAnswer a = grpc->call(kTraceMethod, one_span_request("unauthenticated"), false, Millis(10000), md);
    INFO(a.describe());
    CHECK(a.code == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(a.message == "missing or invalid credentials");
  }
  const std::string bomb = gzip_zeros(2048);
  {
    const auto t0 = SteadyClock::now();
    const GrpcAnswer a = grpc_call_precompressed(d.grpc_port(), kTraceMethod, bomb, Millis(20000));
    INFO("bomb without a token: " << a.describe());
    CHECK(a.code == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(seconds_since(t0) < 20);
  }
  {
    // Past the check, the size limit applies (a 64 MiB bomb: the 2 GiB one costs seconds of
    // inflating, see the gRPC bomb test).
    const GrpcAnswer a =
        grpc_call_precompressed(d.grpc_port(), kTraceMethod, gzip_zeros(64), Millis(20000), {{"authorization", right}});
    INFO("bomb with the token: " << a.describe());
    CHECK(a.code == grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  check_peak_memory(d);

  // The right token on every path and method.
  HttpClient http(d.http_port());
  for (const auto& s : kSignals) {
    INFO(s.path);
    const HttpResponse r = http.send(post_request(s.path, kProto, "", header_line("Authorization", right)));
    INFO(r.describe());
    CHECK(r.status == 200);
    const GrpcAnswer a = grpc->call(s.method, "", false, Millis(10000), {{"authorization", right}});
    INFO(a.describe());
    CHECK(a.code == grpc::StatusCode::OK);
  }
  grpc.reset();  // see finish()
  finish(d, right);
  const std::string log = d.log();
  CHECK(log.find(token) == std::string::npos);  // never logged
  CHECK(log.find(same_length) == std::string::npos);
  CHECK(log.find("wrong-guess") == std::string::npos);
}

namespace {

// The names of the spans in the file exporter's output (one OTLP/JSON request a line), in order.
// A line that does not parse (one being written) is skipped.
std::vector<std::string> exported_span_names(const fs::path& file) {
  std::vector<std::string> names;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("resourceSpans")) continue;
    for (const auto& rs : j["resourceSpans"]) {
      if (!rs.contains("scopeSpans")) continue;
      for (const auto& ss : rs["scopeSpans"]) {
        if (!ss.contains("spans")) continue;
        for (const auto& span : ss["spans"]) names.push_back(span.value("name", std::string()));
      }
    }
  }
  return names;
}

size_t count_of(const std::vector<std::string>& names, const std::string& name) {
  return static_cast<size_t>(std::count(names.begin(), names.end(), name));
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return "[" + s + "]";
}

const char* tls_version_name(int max_version) { return max_version == TLS1_2_VERSION ? "TLS 1.2" : "TLS 1.3"; }

}  // namespace

TEST_CASE("mTLS: no client certificate, one from another CA and an expired one are refused on both receivers",
          "[security][mtls]") {
  TempDir dir;
  const Tls tls;
  Otlpd d(dir, std::nullopt, tls);
  const fs::path out = dir.path() / "out.jsonl";
  // A refusal comes from the TLS handshake itself: well within read_header_timeout (2s), which
  // would end a stalled HTTP handshake too, and far from the clients' 10 s timeout.
  constexpr double kPromptSeconds = 1.5;
  const Pem other_ca = make_ca("some other CA");
  struct Refused {
    std::string what;
    std::optional<Pem> identity;
    // The server's alert as OpenSSL's reason on the client, with TLS 1.2 and with TLS 1.3.
    std::string tls12_alert;
    std::string tls13_alert;
  };
  const std::vector<Refused> refused = {
      {"no client certificate", std::nullopt, "alert handshake failure", "alert certificate required"},
      {"a client certificate from another CA", make_cert(other_ca, {.common_name = "stranger", .client = true}),
       "alert unknown ca", "alert unknown ca"},
      // The CA of the server's own certificate is no client CA.
      {"a client certificate from the server's CA",
       make_cert(tls.server_ca, {.common_name = "sibling", .client = true}),
       "alert unknown ca", "alert unknown ca"},
      {"an expired client certificate from the client CA",
       make_cert(tls.client_ca, {.common_name = "expired", .client = true,
                                 .not_before_offset = -std::chrono::hours(48), .valid_for = std::chrono::hours(24)}),
       "alert certificate expired", "alert certificate expired"},
  };
  const std::string refused_request = one_span_request("mtls-refused");

  // OTLP/HTTP: no HTTP response at all, but the server's alert. A TLS 1.2 client's handshake
  // fails with it; a TLS 1.3 client finishes its side of the handshake before the server has
  // checked its certificate, and reads the alert where the response would be.
  for (const int max_version : {TLS1_2_VERSION, 0}) {
    for (const Refused& c : refused) {
      INFO("HTTP, " << c.what << ", client up to " << tls_version_name(max_version));
      ClientTls client = mtls_client(tls, c.identity);
      client.max_version = max_version;
      const auto t0 = SteadyClock::now();
      const TlsHttpResult r = https_send(d.http_port(), client, post_request("/v1/traces", kProto, refused_request));
      const double took = seconds_since(t0);
      INFO(r.describe() << ", after " << took << " s");
      CHECK(r.refused());
      CHECK(r.response.status == 0);
      CHECK(took < kPromptSeconds);
      if (max_version == TLS1_2_VERSION) CHECK(r.end == TlsHttpResult::End::handshake_failed);
      CHECK(r.error.find(max_version == TLS1_2_VERSION ? c.tls12_alert : c.tls13_alert) != std::string::npos);
    }
  }

  // OTLP/gRPC: the channel cannot connect, the call fails UNAVAILABLE (not a deadline).
  for (const Refused& c : refused) {
    INFO("gRPC, " << c.what);
    const auto t0 = SteadyClock::now();
    const GrpcAnswer a = grpc_call_tls(d.grpc_port(), mtls_client(tls, c.identity), kTraceMethod, refused_request);
    const double took = seconds_since(t0);
    INFO(a.describe() << ", after " << took << " s");
    CHECK(a.code == grpc::StatusCode::UNAVAILABLE);
    CHECK(took < kPromptSeconds);
  }

  // Plaintext on the TLS ports: HTTP/1.1 gets no HTTP answer, the connection is closed; a gRPC
  // call on an insecure channel does not get through either.
  {
    INFO("plaintext HTTP/1.1 request");
    Connection c(d.http_port());
    REQUIRE(c.connected());
    const auto deadline = SteadyClock::now() + Millis(5000);
    c.send_all(post_request("/v1/traces", kProto, refused_request), deadline);  // may fail once the server resets
    std::string received;
    Connection::Read got = Connection::Read::data;
    while (got == Connection::Read::data) got = c.read_some(received, deadline);
    INFO(received.size() << " bytes received: " << starts(received, 40));
    CHECK(got == Connection::Read::closed);
    CHECK(received.find("HTTP/") == std::string::npos);
  }
  {
    const GrpcAnswer a = grpc_call(d.grpc_port(), kTraceMethod, refused_request);
    INFO("plaintext gRPC call: " << a.describe());
    CHECK(a.code == grpc::StatusCode::UNAVAILABLE);
  }

  // A valid client certificate: 200 over TLS 1.2 and 1.3, OK over gRPC on every signal.
  const ClientTls valid = mtls_client(tls, tls.client);
  for (const int max_version : {TLS1_2_VERSION, 0}) {
    INFO("HTTP, valid client certificate, client up to " << tls_version_name(max_version));
    ClientTls client = valid;
    client.max_version = max_version;
    const std::string name = std::string("mtls-valid-http-") + tls_version_name(max_version);
    const TlsHttpResult r =
        https_send(d.http_port(), client, post_request("/v1/traces", kProto, one_span_request(name)));
    INFO(r.describe());
    REQUIRE(r.end == TlsHttpResult::End::response);
    CHECK(r.version == (max_version == 0 ? TLS1_3_VERSION : TLS1_2_VERSION));
    CHECK(r.response.status == 200);
    CHECK(r.response.header("content-type") == kProto);
  }
  {
    auto grpc = std::make_unique<GrpcClient>(d.grpc_port(), valid);
    const GrpcAnswer a = grpc->call(kTraceMethod, one_span_request("mtls-valid-grpc"));
    INFO("gRPC, valid client certificate: " << a.describe());
    CHECK(a.code == grpc::StatusCode::OK);
    for (const auto& s : kSignals) {
      const GrpcAnswer empty = grpc->call(s.method, "");
      INFO("gRPC, valid client certificate, empty " << s.name << " request: " << empty.describe());
      CHECK(empty.code == grpc::StatusCode::OK);
    }
  }  // the channel closes here: see finish()

  // The valid clients' spans arrive in the file exporter's output.
  const std::vector<std::string> expected = {"mtls-valid-http-TLS 1.2", "mtls-valid-http-TLS 1.3", "mtls-valid-grpc"};
  const bool arrived = poll_until(
      [&] {
        const auto names = exported_span_names(out);
        return std::all_of(expected.begin(), expected.end(), [&](const auto& n) { return count_of(names, n) > 0; });
      },
      Millis(10000));
  INFO("exported spans: " << joined(exported_span_names(out)));
  CHECK(arrived);

  finish(d);  // a valid client is still served (over TLS), peak RSS, SIGTERM exits 0

  // Once otlpd has exited (drained), the output holds every accepted span exactly once and
  // nothing of the refused requests.
  const std::vector<std::string> names = exported_span_names(out);
  INFO("exported spans: " << joined(names));
  for (const auto& n : expected) CHECK(count_of(names, n) == 1);
  CHECK(count_of(names, "normal-client") == 2);  // finish(): one over HTTP, one over gRPC
  CHECK(count_of(names, "mtls-refused") == 0);
  CHECK(names.size() == expected.size() + 2);
}

namespace {

// Current RSS bound for the HTTP/2 attacks: a connection that keeps state per reset stream, or
// buffers an endless header block, grows without limit; otlpd idles at a few tens of MiB.
constexpr uint64_t kHttp2RssBoundMiB = 200;

// Reads what the server sent on `c` until `until` (or until it closes), noting its frames.
void read_frames(Connection& c, std::string& in, h2::Outcome& seen, SteadyClock::time_point until) {
  while (!seen.closed) {
    const Connection::Read r = c.read_some(in, until);
    seen.note(in);
    if (r == Connection::Read::closed) seen.closed = true;
    if (r == Connection::Read::timeout) return;
  }
}

// After an HTTP/2 attack: otlpd runs, a normal client over HTTP/1.1 and over h2c gets 200, and
// its current RSS is under kHttp2RssBoundMiB.
void check_serves_after_http2_attack(Otlpd& d) {
  INFO("otlpd: " << d.state() << "; log:\n" << tail(d.log()));
  REQUIRE(d.alive());
  const HttpResponse h1 = http_post(d.http_port(), "/v1/traces", kProto, one_span_request("after-http2-attack"));
  INFO("HTTP/1.1: " << h1.describe());
  CHECK(h1.status == 200);
  const HttpResponse h2c = h2c_post(d.http_port(), "/v1/traces", kProto, one_span_request("after-http2-attack"));
  INFO("h2c: " << h2c.describe());
  CHECK(h2c.status == 200);
  CHECK(h2c.header("content-type") == kProto);
  const uint64_t rss = d.rss_mib();
  INFO("RSS " << rss << " MiB, bound " << kHttp2RssBoundMiB << " MiB");
  CHECK(rss > 0);
  CHECK(rss < kHttp2RssBoundMiB);
}

}  // namespace

TEST_CASE("HTTP/2 rapid reset: 10,000 HEADERS+RST_STREAM pairs on one h2c connection end it early",
          "[security][http2]") {
  TempDir dir;
  Otlpd d(dir);
  // Before the attack, the normal h2c client works (so a failure after it means something).
  const HttpResponse before = h2c_post(d.http_port(), "/v1/traces", kProto, one_span_request("before"));
  INFO("h2c before: " << before.describe());
  REQUIRE(before.status == 200);

  constexpr uint32_t kPairs = 10000;
  const std::string block = h2::post_header_block("/v1/traces");
  Connection c(d.http_port());
  REQUIRE(c.connected());
  const auto started = SteadyClock::now();
  const auto deadline = started + Millis(10000);
  h2::Outcome seen;
  std::string in;
  REQUIRE(c.send_all(std::string(h2::kPreface) + h2::frame(h2::kSettings, 0, 0, ""), deadline));
  // 100 pairs a write, whatever the server answers (an attacker does not stop at a GOAWAY); what
  // it sent meanwhile is read between the writes.
  uint32_t pairs_sent = 0;
  bool send_failed = false;
  while (pairs_sent < kPairs && !seen.closed && SteadyClock::now() < deadline) {
    std::string batch;
    for (int i = 0; i < 100 && pairs_sent < kPairs; ++i, ++pairs_sent) {
      const uint32_t id = 2 * pairs_sent + 1;
      batch += h2::frame(h2::kHeaders, h2::kEndHeaders, id, block) + h2::rst_stream(id, h2::kCancel);
    }
    if (!c.send_all(batch, deadline)) {
      send_failed = true;
      break;
    }
    read_frames(c, in, seen, SteadyClock::now());
  }
  read_frames(c, in, seen, deadline);  // until the server closes
  const double took = seconds_since(started);
  const uint32_t processed = seen.goaway ? (seen.goaway_last_stream + 1) / 2 : kPairs;
  INFO(pairs_sent << " pairs sent" << (send_failed ? " (then a write failed)" : "") << " in " << took << " s; "
                  << seen.describe() << "; pairs processed by the GOAWAY's last-stream-id: " << processed);
  CHECK((seen.goaway || seen.closed));
  CHECK(seen.closed);  // not left open once it has said GOAWAY
  // Stopped well before the end: by the GOAWAY's last stream, or by a write the server refused.
  CHECK((processed < kPairs / 2 || pairs_sent < kPairs));
  if (seen.goaway) CHECK(seen.goaway_error != h2::kNoError);
  CHECK(took < 10);
  check_serves_after_http2_attack(d);
  finish(d);
}

TEST_CASE("HTTP/2 CONTINUATION flood: a header block that never ends closes the connection", "[security][http2]") {
  TempDir dir;
  Otlpd d(dir);
  const std::string settings = std::string(h2::kPreface) + h2::frame(h2::kSettings, 0, 0, "");
  const std::string start = h2::frame(h2::kHeaders, 0, 1, h2::post_header_block("/v1/traces"));  // no END_HEADERS
  const std::string more = h2::frame(h2::kContinuation, 0, 1, h2::hpack_literal("x-c", "0123456789"));

  {
    // A few frames over the limit, then nothing: the server ends the connection on its own,
    // without waiting for the rest of the block.
    Connection c(d.http_port());
    REQUIRE(c.connected());
    const auto deadline = SteadyClock::now() + Millis(5000);
    std::string frames = settings + start;
    for (int i = 0; i < 9; ++i) frames += more;
    REQUIRE(c.send_all(frames, deadline));
    h2::Outcome seen;
    std::string in;
    read_frames(c, in, seen, deadline);
    INFO("HEADERS + 9 CONTINUATION: " << seen.describe());
    CHECK(seen.closed);
    if (seen.goaway) CHECK(seen.goaway_error != h2::kNoError);
  }
  {
    // Endless: CONTINUATION after CONTINUATION, up to 10,000, until the server closes.
    Connection c(d.http_port());
    REQUIRE(c.connected());
    const auto started = SteadyClock::now();
    const auto deadline = started + Millis(10000);
    REQUIRE(c.send_all(settings + start, deadline));
    h2::Outcome seen;
    std::string in;
    int sent = 0;
    bool send_failed = false;
    while (sent < 10000 && !seen.closed && SteadyClock::now() < deadline) {
      std::string batch;
      for (int i = 0; i < 50; ++i, ++sent) batch += more;
      if (!c.send_all(batch, deadline)) {
        send_failed = true;
        break;
      }
      read_frames(c, in, seen, SteadyClock::now());
    }
    read_frames(c, in, seen, deadline);
    const double took = seconds_since(started);
    INFO(sent << " CONTINUATION frames sent" << (send_failed ? " (then a write failed)" : "") << " in " << took
              << " s; " << seen.describe());
    CHECK(seen.closed);
    CHECK((seen.goaway || send_failed || sent < 10000));
    CHECK(took < 10);
  }
  check_serves_after_http2_attack(d);
  finish(d);
}

// The OTLP/HTTP receiver's HttpServer on arbitrary bytes from a client: one server (127.0.0.1:0,
// 64 KiB body limit, 200 ms header/read timeouts, CORS on) for the whole run; each input is
// written on a new connection, which is then half-closed, and what comes back is read to EOF.
// Properties: every answer (several for pipelined requests, after a 100 Continue) is a complete
// HTTP/1.1 response (or HTTP/1.0, which RFC 9110 6.2 allows for an HTTP/1.0 request) with a
// 3-digit status, Content-Type and a Content-Length its body matches (a 204 or 1xx: neither, no
// body), nothing follows an answer saying Connection: close, and the server closes the
// connection on its own. A connection opening with the HTTP/2 preface gets HTTP/2 frames: those
// answers are not checked. Every 200 inputs a well-formed POST /v1/traces must still get 200, so
// a server that stopped accepting or answering fails the run.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>


#include "fuzz/fuzz_target.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/compression.h"
#include "fuzz/fuzz_http_server.h"
#include "receivers/otlp/http_server.h"

using namespace otlpd;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t kBodyLimit = 64 << 10;
constexpr size_t kMaxInput = 256 << 10;  // larger inputs are skipped: they only test the socket buffers
constexpr int kCheckEvery = 200;         // inputs between two "does it still answer?" checks

// What the run saw, printed at exit.
struct Stats {
  std::atomic<unsigned long> inputs{0}, answered{0}, unanswered{0}, timeouts{0}, handler_calls{0}, http2{0};
  std::atomic<unsigned long> by_class[6]{};  // 1xx..5xx
};
Stats stats;

void print_stats() {
  std::fprintf(stderr,
               "fuzz_http: %lu connections, %lu answered (1xx %lu, 2xx %lu, 3xx %lu, 4xx %lu, 5xx %lu), "
               "%lu closed without an answer, %lu read timeouts, %lu handler calls, %lu HTTP/2 (unchecked)\n",
               stats.inputs.load(), stats.answered.load(), stats.by_class[1].load(), stats.by_class[2].load(),
               stats.by_class[3].load(), stats.by_class[4].load(), stats.by_class[5].load(), stats.unanswered.load(),
               stats.timeouts.load(), stats.handler_calls.load(), stats.http2.load());
}

HttpServerSettings server_settings() {
  HttpServerSettings s;
  s.max_request_body_size = kBodyLimit;
  s.read_header_timeout = 200ms;
  s.read_timeout = 200ms;
  s.idle_timeout = 500ms;
  s.max_connections = 256;
  s.cors = CorsSettings{{"https://*.example.com", "http://localhost:3000"}, {"X-Tenant"}, std::chrono::seconds(600)};
  return s;
}

fuzz::FuzzHttpServer& server() {
  static fuzz::FuzzHttpServer s("fuzz_http", server_settings(), &stats.handler_calls);
  static const int stats_at_exit = std::atexit(print_stats);
  (void)stats_at_exit;
  return s;
}

using fuzz::Exchange;

// One connection: write `request`, half-close, read until the server closes (or 1 s of silence).
Exchange exchange(std::string_view request) {
  Exchange x;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    std::perror("fuzz_http: socket");
    std::abort();
  }
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server().port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return x;
  }
  x.connected = true;
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      break;  // the server answered and closed early (413, 431, 400): fine, read what it said
    }
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      x.response.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      x.eof = true;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      x.timeout = true;
    } else {
      x.reset = true;
    }
    break;
  }
  ::close(fd);
  return x;
}

[[noreturn]] void fail(const std::string& why, std::string_view input, const std::string& response) {
  std::fprintf(stderr, "fuzz_http: %s\ninput (%zu bytes):\n", why.c_str(), input.size());
  std::fwrite(input.data(), 1, std::min<size_t>(input.size(), 4096), stderr);
  std::fprintf(stderr, "\nresponse (%zu bytes):\n", response.size());
  std::fwrite(response.data(), 1, std::min<size_t>(response.size(), 4096), stderr);
  std::fprintf(stderr, "\n");
  std::abort();
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// HTTP/1.1, or HTTP/1.0 (RFC 9110 6.2 lets a server answer an HTTP/1.0 request in kind).
bool status_line_ok(std::string_view r) {
  auto digit = [&](size_t i) { return std::isdigit(static_cast<unsigned char>(r[i])) != 0; };
  return r.size() >= 13 && (r.substr(0, 9) == "HTTP/1.1 " || r.substr(0, 9) == "HTTP/1.0 ") && digit(9) &&
         digit(10) && digit(11) && r[12] == ' ';
}

// Checks the answers in `r`; `complete`: the server closed cleanly, so nothing may be cut short.
// Returns the first status (0 when there is no answer), or an error in *why.
int check_responses(std::string_view r, bool complete, std::string* why) {
  int first_status = 0;
  bool closed = false;  // an answer said Connection: close
  while (!r.empty()) {
    const std::string_view prefix = std::string_view("HTTP/").substr(0, std::min<size_t>(r.size(), 5));
    if (r.size() < 13 && !complete && r.substr(0, 5) == prefix) {
      return first_status;  // a status line cut short by a reset or timeout
    }
    if (!status_line_ok(r)) {
      *why = "an answer does not start with \"HTTP/1.1 \" (or \"HTTP/1.0 \") and a 3-digit status";
      return -1;
    }
    if (closed) {
      *why = "an answer follows one that said Connection: close";
      return -1;
    }
    const int status = std::atoi(std::string(r.substr(9, 3)).c_str());
    if (!first_status) first_status = status;
    const size_t end = r.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (complete) {
        *why = "an answer's headers are not terminated";
        return -1;
      }
      return first_status;
    }
    bool has_type = false;
    long long length = -1;
    size_t at = r.find("\r\n") + 2;
    while (at < end + 2) {
      size_t eol = r.find("\r\n", at);
      std::string_view line = r.substr(at, eol - at);
      at = eol + 2;
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) {
        *why = "a header line without a colon in an answer";
        return -1;
      }
      std::string name = lower(line.substr(0, colon));
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (name == "content-type") has_type = true;
      if (name == "content-length") {
        if (length >= 0) {
          *why = "two Content-Length headers in an answer";
          return -1;
        }
        char* e = nullptr;
        std::string v(value);
        length = std::strtoll(v.c_str(), &e, 10);
        if (v.empty() || *e != '\0' || length < 0) {
          *why = "invalid Content-Length in an answer";
          return -1;
        }
      }
      if (name == "transfer-encoding") {
        *why = "an answer with Transfer-Encoding (bodies are always sized)";
        return -1;
      }
      if (name == "connection" && lower(value).find("close") != std::string::npos) closed = true;
    }
    const bool bodiless = status < 200 || status == 204;
    if (bodiless ? length >= 0 : (length < 0 || !has_type)) {
      *why = bodiless ? "a 1xx/204 answer with Content-Length" : "an answer without Content-Type or Content-Length";
      return -1;
    }
    const size_t body = bodiless ? 0 : static_cast<size_t>(length);
    r.remove_prefix(end + 4);
    if (r.size() < body) {
      if (complete) {
        *why = "an answer's body is shorter than its Content-Length";
        return -1;
      }
      return first_status;
    }
    r.remove_prefix(body);
  }
  return first_status;
}

// A connection starting with this speaks HTTP/2 (h2c with prior knowledge, RFC 9113 3.4).
constexpr char kHttp2Preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const char kAlive[] =
    "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
    "Content-Length: 0\r\nConnection: close\r\n\r\n";

// The server must still accept and answer a well-formed request.
void check_alive(std::string_view last_input) {
  Exchange x = exchange(kAlive);
  if (!x.connected || x.response.rfind("HTTP/1.1 200", 0) != 0) {
    // Once more after a pause, in case the machine is just very busy.
    std::this_thread::sleep_for(500ms);
    Exchange again = exchange(kAlive);
    if (!again.connected || again.response.rfind("HTTP/1.1 200", 0) != 0) {
      fail(again.connected ? "the server no longer answers a well-formed POST with 200 (after the input below)"
                           : "the server no longer accepts connections (after the input below)",
           last_input, again.response);
    }
  }
}

std::string request(const std::string& head, const std::string& body) {
  return head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static unsigned long count = 0;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (size > kMaxInput) return 0;
  if (count++ % kCheckEvery == 0) check_alive(input);
  Exchange x = exchange(input);
  if (!x.connected) check_alive(input);  // fails unless it was a passing hiccup
  ++stats.inputs;
  if (x.timeout) ++stats.timeouts;
  if (input.substr(0, sizeof kHttp2Preface - 1) == kHttp2Preface) {
    ++stats.http2;  // HTTP/2 with prior knowledge: the answer is HTTP/2 frames, not checked here
    return 0;
  }
  std::string why;
  int status = check_responses(x.response, x.eof, &why);
  if (status < 0) fail(why, input, x.response);
  if (status == 0) {
    ++stats.unanswered;
  } else {
    ++stats.answered;
    ++stats.by_class[std::min(status / 100, 5)];
  }
  return 0;
}

std::vector<std::string> fuzz_seeds() {
  namespace col = opentelemetry::proto::collector;
  col::trace::v1::ExportTraceServiceRequest traces;
  auto* span = traces.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(std::string(16, '\x01'));
  span->set_span_id(std::string(8, '\x02'));
  span->set_name("GET /");
  const std::string traces_pb = traces.SerializeAsString();
  col::logs::v1::ExportLogsServiceRequest logs;
  logs.add_resource_logs()->add_scope_logs()->add_log_records()->mutable_body()->set_string_value("hello");
  std::string logs_gz, traces_zstd;
  otlp::gzip_compress(logs.SerializeAsString(), &logs_gz);
  otlp::zstd_compress(traces_pb, &traces_zstd);
  const std::string traces_json =
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10",)"
      R"("spanId":"0102030405060708","name":"span","kind":2}]}]}]})";
  const std::string metrics_json =
      R"({"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","sum":{"dataPoints":[{"asInt":"5"}]}}]}]}]})";
  const std::string logs_json = R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]})";
  const std::string pb = "Content-Type: application/x-protobuf\r\n";
  const std::string json = "Content-Type: application/json\r\n";
  const std::string host = "Host: 127.0.0.1:4318\r\n";
  auto hex = [](size_t n) {
    char b[32];
    std::snprintf(b, sizeof b, "%zx", n);
    return std::string(b);
  };
  std::vector<std::string> seeds;
  seeds.push_back(request("POST /v1/traces HTTP/1.1\r\n" + host + pb, traces_pb));
  seeds.push_back(request("POST /v1/traces HTTP/1.1\r\n" + host + json, traces_json));
  seeds.push_back(request("POST /v1/metrics HTTP/1.1\r\n" + host + json, metrics_json));
  seeds.push_back(request("POST /v1/metrics?x=1 HTTP/1.1\r\n" + host +
                              "Content-Type: Application/X-Protobuf; charset=utf-8\r\n",
                          ""));
  seeds.push_back(request("POST /v1/logs HTTP/1.1\r\n" + host + json, logs_json));
  seeds.push_back(request("POST /v1/logs HTTP/1.1\r\n" + host + pb + "Content-Encoding: gzip\r\n", logs_gz));
  seeds.push_back(request("POST /v1/traces HTTP/1.1\r\n" + host + pb + "Content-Encoding: zstd\r\n", traces_zstd));
  // Chunked, in two chunks, with a trailer.
  seeds.push_back("POST /v1/traces HTTP/1.1\r\n" + host + json + "Transfer-Encoding: chunked\r\n\r\n" + hex(10) +
                  "\r\n" + traces_json.substr(0, 10) + "\r\n" + hex(traces_json.size() - 10) + ";ext=1\r\n" +
                  traces_json.substr(10) + "\r\n0\r\nX-Trailer: t\r\n\r\n");
  // Expect: 100-continue (the client sends the body without waiting here).
  seeds.push_back(request("POST /v1/traces HTTP/1.1\r\n" + host + pb + "Expect: 100-continue\r\n", traces_pb));
  // Two pipelined keep-alive requests, then one that closes.
  seeds.push_back(request("POST /v1/traces HTTP/1.1\r\n" + host + pb + "Connection: keep-alive\r\n", traces_pb) +
                  request("POST /v1/logs HTTP/1.1\r\n" + host + json + "Connection: close\r\n", logs_json));
  // CORS: a preflight from an allowed origin, and a POST carrying Origin.
  seeds.push_back("OPTIONS /v1/traces HTTP/1.1\r\n" + host +
                  "Origin: https://app.example.com\r\nAccess-Control-Request-Method: POST\r\n"
                  "Access-Control-Request-Headers: content-type, x-tenant\r\n\r\n");
  seeds.push_back(request("POST /v1/logs HTTP/1.1\r\n" + host + json + "Origin: http://localhost:3000\r\n", logs_json));
  seeds.push_back("OPTIONS /v1/metrics HTTP/1.1\r\n" + host + "\r\n");
  // Content-Length beyond the 64 KiB limit (413 before any body byte is read).
  seeds.push_back("POST /v1/traces HTTP/1.1\r\n" + host + pb + "Content-Length: 100000\r\n\r\n" + traces_pb);
  // A chunked body that grows past the limit: its second chunk's size is refused on sight.
  seeds.push_back("POST /v1/logs HTTP/1.1\r\n" + host + pb + "Transfer-Encoding: chunked\r\n\r\n8\r\n" +
                  std::string(8, '\0') + "\r\n" + hex(kBodyLimit) + "\r\n" + std::string(64, '\0'));
  // Wrong method, unknown path, unsupported type and encoding, HTTP/1.0, HEAD.
  seeds.push_back("GET /v1/traces HTTP/1.1\r\n" + host + "\r\n");
  seeds.push_back("HEAD /v1/logs HTTP/1.1\r\n" + host + json + "\r\n");
  seeds.push_back(request("POST /v2/nope HTTP/1.1\r\n" + host + json, "{}"));
  seeds.push_back(request("POST /v1/traces HTTP/1.1\r\n" + host + "Content-Type: text/plain\r\n", "hi"));
  seeds.push_back(request("POST /v1/traces HTTP/1.1\r\n" + host + pb + "Content-Encoding: br\r\n", traces_pb));
  seeds.push_back(request("POST /v1/traces HTTP/1.0\r\n" + pb, traces_pb));
  return seeds;
}

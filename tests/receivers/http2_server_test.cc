// HttpServer over HTTP/2 (receivers/otlp/http_server + http2_codec): prior-knowledge h2c and ALPN
// h2 under TLS, driven by a small blocking client on nghttp2's client session API. Every client
// wait is a read with a short SO_RCVTIMEO inside a loop bounded by a deadline, so a server that
// stops answering fails a check instead of hanging the test; nothing sleeps to synchronise.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "extensions/bearertokenauth/bearer_token.h"
#include "google/rpc/status.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/compression.h"
#include "receivers/otlp/http_server.h"
#include "support/http_server_fixture.h"
#include "support/temp_dir.h"
#include "support/test_certs.h"

namespace otlpd {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
namespace tracepb = opentelemetry::proto::collector::trace::v1;
using SteadyClock = std::chrono::steady_clock;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr auto kClientTimeout = 10s;  // one client wait; a hung server fails the test instead of hanging it
constexpr auto kReadSlice = 50ms;     // SO_RCVTIMEO: how long one read blocks before the deadline is checked
constexpr char kProtobuf[] = "application/x-protobuf";
constexpr char kJson[] = "application/json";

// ---------------------------------------------------------------------------------------------
// Transport: a blocking TCP socket to 127.0.0.1, optionally wrapped in TLS (OpenSSL).

struct SslCtxFree {
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
struct SslFree {
  void operator()(SSL* p) const { SSL_free(p); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

// A TLS client context that trusts `ca_pem` and offers `alpn` (wire format, e.g. "\x02h2").
SslCtxPtr client_tls(const std::string& ca_pem, const std::string& alpn) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  REQUIRE(ctx);
  BIO* bio = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  REQUIRE(ca);
  REQUIRE(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), ca) == 1);
  X509_free(ca);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  REQUIRE(SSL_CTX_set_alpn_protos(ctx.get(), reinterpret_cast<const unsigned char*>(alpn.data()),
                                  static_cast<unsigned>(alpn.size())) == 0);
  return ctx;
}

class Conn {
 public:
  enum class Read { data, timeout, closed };

  explicit Conn(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    // Loopback: the connect completes (or is refused) at once.
    REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval rcv{0, static_cast<suseconds_t>(std::chrono::microseconds(kReadSlice).count())};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);
    timeval snd{5, 0};  // a server that stops reading fails a write instead of blocking it forever
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Conn() {
    ssl_.reset();
    if (fd_ >= 0) close(fd_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // The TLS handshake with the server at 127.0.0.1, its certificate verified; false on failure.
  bool handshake(SSL_CTX* ctx) {
    ssl_.reset(SSL_new(ctx));
    SSL_set_fd(ssl_.get(), fd_);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), "127.0.0.1");
    const auto deadline = SteadyClock::now() + kClientTimeout;
    for (;;) {
      const int rc = SSL_connect(ssl_.get());
      if (rc == 1) return true;
      const int err = SSL_get_error(ssl_.get(), rc);
      if ((err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) || SteadyClock::now() >= deadline) {
        error_ = "TLS handshake failed: " + std::to_string(err) + " " + ERR_error_string(ERR_get_error(), nullptr);
        return false;
      }
    }
  }

  // The protocol the server selected by ALPN; empty for none.
  std::string alpn() const {
    const unsigned char* p = nullptr;
    unsigned int n = 0;
    if (ssl_) SSL_get0_alpn_selected(ssl_.get(), &p, &n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }

  bool write(std::string_view bytes) {
    while (!bytes.empty()) {
      if (ssl_) {
        const int n = SSL_write(ssl_.get(), bytes.data(), static_cast<int>(bytes.size()));
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;  // reset, or SO_SNDTIMEO: the server stopped reading
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // One read of what has arrived, waiting at most kReadSlice.
  Read read(std::string* into) {
    char buf[65536];
    if (ssl_) {
      const int n = SSL_read(ssl_.get(), buf, sizeof buf);
      if (n > 0) {
        into->append(buf, static_cast<size_t>(n));
        return Read::data;
      }
      const int err = SSL_get_error(ssl_.get(), n);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Read::timeout;
      return Read::closed;
    }
    for (;;) {
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        into->append(buf, static_cast<size_t>(n));
        return Read::data;
      }
      if (n == 0) return Read::closed;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Read::timeout;
      return Read::closed;  // reset
    }
  }

  const std::string& error() const { return error_; }

 private:
  int fd_ = -1;
  SslPtr ssl_;
  std::string error_;
};

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 over a Conn (plain or TLS): one POST, its response read up to its Content-Length.

struct Http1Response {
  int status = 0;  // 0: none (error says why)
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string error;
};

Http1Response http1_post(Conn& c, const std::string& path, const std::string& type, const std::string& body) {
  Http1Response r;
  const std::string request = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + type +
                              "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  if (!c.write(request)) {
    r.error = "write failed";
    return r;
  }
  std::string in;
  const auto deadline = SteadyClock::now() + kClientTimeout;
  size_t head_end = std::string::npos;
  size_t length = 0;
  for (;;) {
    if (head_end == std::string::npos && (head_end = in.find("\r\n\r\n")) != std::string::npos) {
      if (in.rfind("HTTP/1.1 ", 0) != 0) {
        r.error = "not an HTTP/1.1 response: " + in.substr(0, 40);
        return r;
      }
      r.status = std::atoi(in.c_str() + 9);
      size_t pos = in.find("\r\n") + 2;
      while (pos < head_end) {
        const size_t eol = in.find("\r\n", pos);
        const std::string line = in.substr(pos, eol - pos);
        const size_t colon = line.find(':');
        if (colon != std::string::npos) {
          std::string name = line.substr(0, colon);
          std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
          r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
        }
        pos = eol + 2;
      }
      length = std::strtoull(r.headers["content-length"].c_str(), nullptr, 10);
    }
    if (head_end != std::string::npos && in.size() >= head_end + 4 + length) {
      r.body = in.substr(head_end + 4, length);
      return r;
    }
    if (SteadyClock::now() >= deadline) break;
    if (c.read(&in) == Conn::Read::closed) break;
  }
  r.status = 0;
  r.error = "no complete response";
  return r;
}

// ---------------------------------------------------------------------------------------------
// A blocking HTTP/2 client on nghttp2's client session.

class H2Client {
 public:
  struct Stream {
    // What was sent.
    std::string request_body;
    size_t sendable = 0;  // the data provider sends up to this many body bytes, then defers
    size_t sent = 0;
    // What came back.
    int status = 0;                              // :status; 0 before the response headers
    std::map<std::string, std::string> headers;  // response fields
    std::string body;
    bool response_complete = false;  // the server's END_STREAM arrived
    bool closed = false;
    uint32_t close_error = 0;       // the stream's error code when it closed (0: NO_ERROR)
    bool reset_by_server = false;   // an RST_STREAM from the server
    uint32_t reset_error = 0;

    std::string header(const std::string& name) const {
      auto it = headers.find(name);
      return it == headers.end() ? std::string() : it->second;
    }
  };

  // h2c with prior knowledge.
  explicit H2Client(uint16_t port, uint32_t initial_window = 0) : conn_(port) { init(initial_window); }
  // h2 under TLS with `ctx` (which offers h2 by ALPN); `handshake_ok` says whether TLS worked.
  H2Client(uint16_t port, SSL_CTX* ctx, bool* handshake_ok) : conn_(port) {
    *handshake_ok = conn_.handshake(ctx);
    init(0);
  }
  ~H2Client() { nghttp2_session_del(session_); }
  H2Client(const H2Client&) = delete;
  H2Client& operator=(const H2Client&) = delete;

  // Submits a request; `body` nullopt: HEADERS with END_STREAM. With `content_length` the
  // request declares its body's size. `sendable`: how many body bytes may go before the data
  // provider defers (npos: all of them). Returns the stream id.
  int32_t submit(const std::string& method, const std::string& path, const Headers& extra,
                 std::optional<std::string> body, bool content_length = true, size_t sendable = std::string::npos) {
    auto stream = std::make_unique<Stream>();
    Headers fields = {{":method", method}, {":scheme", scheme_}, {":authority", "127.0.0.1"}, {":path", path}};
    if (body && content_length) fields.push_back({"content-length", std::to_string(body->size())});
    for (const auto& f : extra) fields.push_back(f);
    std::vector<nghttp2_nv> nva;
    for (const auto& [name, value] : fields) {
      nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                     reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
                     NGHTTP2_NV_FLAG_NONE});
    }
    nghttp2_data_provider provider{};
    if (body) {
      stream->request_body = std::move(*body);
      stream->sendable = std::min(sendable, stream->request_body.size());
      provider.source.ptr = stream.get();
      provider.read_callback = &H2Client::read_body;
    }
    const int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), body ? &provider : nullptr,
                                              stream.get());
    REQUIRE(id > 0);
    streams_[id] = std::move(stream);
    return id;
  }

  // Lets `n` more body bytes of stream `id` go.
  void allow(int32_t id, size_t n) {
    Stream& s = stream(id);
    s.sendable = std::min(s.request_body.size(), s.sendable + n);
    nghttp2_session_resume_data(session_, id);
  }

  void ping() {
    ++pings_sent_;
    nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr);
  }
  // A PING round trip: the server has processed everything sent before it.
  bool sync() {
    ping();
    const int want = pings_sent_;
    return pump_until([&] { return ping_acks_ >= want; });
  }

  // Sends what nghttp2 has queued and feeds what the server sends, until `done` holds, the
  // connection is over or `timeout` passes. Returns done()'s last answer.
  bool pump_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = kClientTimeout) {
    const auto deadline = SteadyClock::now() + timeout;
    for (;;) {
      flush();
      if (done()) return true;
      if (eof_ || broken_ || SteadyClock::now() >= deadline) return done();
      std::string in;
      switch (conn_.read(&in)) {
        case Conn::Read::closed:
          eof_ = true;
          break;
        case Conn::Read::timeout:
          break;
        case Conn::Read::data: {
          const ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(in.data()), in.size());
          if (rv < 0) {
            error_ = std::string("mem_recv: ") + nghttp2_strerror(static_cast<int>(rv));
            broken_ = true;
          }
          break;
        }
      }
    }
  }

  // Runs until stream `id` has closed.
  bool finish(int32_t id, std::chrono::milliseconds timeout = kClientTimeout) {
    return pump_until([&] { return stream(id).closed; }, timeout);
  }

  // One request, run to its end.
  const Stream& request(const std::string& method, const std::string& path, const Headers& extra,
                        std::optional<std::string> body, bool content_length = true) {
    const int32_t id = submit(method, path, extra, std::move(body), content_length);
    INFO(describe());
    REQUIRE(finish(id));
    return stream(id);
  }

  const Stream& post(const std::string& path, const std::string& type, std::string body, Headers extra = {}) {
    extra.insert(extra.begin(), {"content-type", type});
    return request("POST", path, extra, std::move(body));
  }

  Stream& stream(int32_t id) { return *streams_.at(id); }
  bool all_closed(const std::vector<int32_t>& ids) {
    return std::all_of(ids.begin(), ids.end(), [&](int32_t id) { return stream(id).closed; });
  }
  bool settings_received() const { return settings_received_; }
  uint32_t remote_setting(nghttp2_settings_id id) const { return nghttp2_session_get_remote_settings(session_, id); }
  bool goaway() const { return goaway_; }
  uint32_t goaway_error() const { return goaway_error_; }
  int32_t goaway_last_stream() const { return goaway_last_stream_; }
  bool eof() const { return eof_; }
  // The server ended the connection: GOAWAY or EOF.
  bool ended() const { return goaway_ || eof_; }
  Conn& conn() { return conn_; }
  std::string describe() const {
    return "connection: goaway " + std::to_string(goaway_) + " (error " + std::to_string(goaway_error_) +
           "), eof " + std::to_string(eof_) + ", broken " + std::to_string(broken_) + " " + error_;
  }

 private:
  void init(uint32_t initial_window) {
    scheme_ = "http";
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &H2Client::on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &H2Client::on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &H2Client::on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &H2Client::on_frame);
    nghttp2_option* options = nullptr;
    nghttp2_option_new(&options);
    // The header-list test sends more than the server's SETTINGS allow, on purpose.
    nghttp2_option_set_max_send_header_block_length(options, 256 * 1024);
    REQUIRE(nghttp2_session_client_new2(&session_, cbs, this, options) == 0);
    nghttp2_option_del(options);
    nghttp2_session_callbacks_del(cbs);
    std::vector<nghttp2_settings_entry> settings = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    if (initial_window > 0) {
      settings.push_back({NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, initial_window});
      nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, static_cast<int32_t>(initial_window));
    }
    REQUIRE(nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size()) == 0);
  }

  void flush() {
    for (;;) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        error_ = std::string("mem_send: ") + nghttp2_strerror(static_cast<int>(n));
        broken_ = true;
        return;
      }
      if (n == 0) return;
      if (!broken_ && !conn_.write(std::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(n)))) {
        error_ = "write failed";
        broken_ = true;
      }
    }
  }

  static H2Client& self(void* user_data) { return *static_cast<H2Client*>(user_data); }
  Stream* find(int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }

  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                           nghttp2_data_source* source, void*) {
    Stream& s = *static_cast<Stream*>(source->ptr);
    const size_t n = std::min(length, s.sendable - s.sent);
    if (n == 0 && s.sent < s.request_body.size()) return NGHTTP2_ERR_DEFERRED;
    std::memcpy(buf, s.request_body.data() + s.sent, n);
    s.sent += n;
    if (s.sent == s.request_body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t, void* user_data) {
    Stream* s = self(user_data).find(frame->hd.stream_id);
    if (!s) return 0;
    std::string n(reinterpret_cast<const char*>(name), namelen);
    std::string v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      s->status = std::atoi(v.c_str());
    } else {
      s->headers[n] = v;
    }
    return 0;
  }

  static int on_data(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* user_data) {
    if (Stream* s = self(user_data).find(id)) s->body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int on_close(nghttp2_session*, int32_t id, uint32_t error_code, void* user_data) {
    if (Stream* s = self(user_data).find(id)) {
      s->closed = true;
      s->close_error = error_code;
    }
    return 0;
  }

  static int on_frame(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    H2Client& c = self(user_data);
    switch (frame->hd.type) {
      case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) c.settings_received_ = true;
        break;
      case NGHTTP2_GOAWAY:
        c.goaway_ = true;
        c.goaway_error_ = frame->goaway.error_code;
        c.goaway_last_stream_ = frame->goaway.last_stream_id;
        break;
      case NGHTTP2_RST_STREAM:
        if (Stream* s = c.find(frame->hd.stream_id)) {
          s->reset_by_server = true;
          s->reset_error = frame->rst_stream.error_code;
        }
        break;
      case NGHTTP2_HEADERS:
      case NGHTTP2_DATA:
        if (Stream* s = c.find(frame->hd.stream_id); s && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
          s->response_complete = true;
        }
        break;
      case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) ++c.ping_acks_;
        break;
      default:
        break;
    }
    return 0;
  }

  Conn conn_;
  std::string scheme_;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, std::unique_ptr<Stream>> streams_;
  bool settings_received_ = false;
  bool goaway_ = false;
  uint32_t goaway_error_ = 0;
  int32_t goaway_last_stream_ = -1;
  int pings_sent_ = 0;
  int ping_acks_ = 0;
  bool eof_ = false;
  bool broken_ = false;
  std::string error_;
};

// ---------------------------------------------------------------------------------------------
// The server under test: an HttpServer recording its calls (tests/support/http_server_fixture.h).

using Fixture = test::HttpServerFixture;

const std::string kTraceId("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10", 16);

std::string trace_request_bytes(const std::string& name = "span") {
  tracepb::ExportTraceServiceRequest req;
  auto* span = req.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(kTraceId);
  span->set_span_id(std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  span->set_name(name);
  return req.SerializeAsString();
}

std::string trace_request_json(const std::string& trace_id_hex = "0102030405060708090a0b0c0d0e0f10") {
  return R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":")" + trace_id_hex +
         R"(","spanId":"0102030405060708","name":"span"}]}]}]})";
}

google::rpc::Status rpc_status_from(const H2Client::Stream& s) {
  google::rpc::Status st;
  REQUIRE(s.header("content-type") == kProtobuf);
  REQUIRE(st.ParseFromString(s.body));
  return st;
}

std::shared_ptr<const BearerToken> token(const std::string& value) {
  BearerTokenSettings settings;
  settings.token = value;
  Status error;
  std::shared_ptr<const BearerToken> t = BearerToken::open(settings, &error);
  REQUIRE(t);
  return t;
}

HttpServerSettings small_body(uint64_t limit) {
  HttpServerSettings s;
  s.max_request_body_size = limit;
  return s;
}

// ---------------------------------------------------------------------------------------------

TEST_CASE("h2c: protobuf, JSON and gzip bodies are answered 200 as over HTTP/1.1", "[http2_server]") {
  Fixture f;
  H2Client c(f.port());
  const std::string bytes = trace_request_bytes();

  const auto& proto = c.post("/v1/traces", kProtobuf, bytes);
  CHECK(proto.status == 200);
  CHECK(proto.header("content-type") == kProtobuf);
  CHECK(proto.header("content-length") == std::to_string(proto.body.size()));
  CHECK(proto.headers.count("connection") == 0);  // hop-by-hop fields are not HTTP/2
  tracepb::ExportTraceServiceResponse answer;
  CHECK(answer.ParseFromString(proto.body));
  CHECK_FALSE(answer.has_partial_success());

  const auto& json = c.post("/v1/traces", kJson, trace_request_json());
  CHECK(json.status == 200);
  CHECK(json.header("content-type") == kJson);
  CHECK(json.body == "{}");

  std::string gz;
  otlp::gzip_compress(bytes, &gz);
  REQUIRE(gz != bytes);
  const auto& gzip = c.post("/v1/traces", kProtobuf, gz, {{"content-encoding", "gzip"}});
  CHECK(gzip.status == 200);

  auto calls = f.calls();
  REQUIRE(calls.size() == 3);
  CHECK(calls[0].signal == Signal::traces);
  CHECK(calls[0].bytes == bytes);
  tracepb::ExportTraceServiceRequest got;
  REQUIRE(got.ParseFromString(calls[1].bytes));  // the handler only ever sees protobuf
  CHECK(got.resource_spans(0).scope_spans(0).spans(0).trace_id() == kTraceId);
  CHECK(got.resource_spans(0).scope_spans(0).spans(0).name() == "span");
  CHECK(calls[2].bytes == bytes);  // inflated
  CHECK_FALSE(c.ended());
}

TEST_CASE("h2c: ten concurrent streams on one connection, HTTP/1.1 on the same port still works", "[http2_server]") {
  Fixture f;
  H2Client c(f.port());
  std::vector<int32_t> ids;
  for (int i = 0; i < 10; ++i) {
    ids.push_back(c.submit("POST", i % 2 ? "/v1/logs" : "/v1/traces", {{"content-type", kProtobuf}},
                           "body-" + std::to_string(i)));
  }
  // All ten are submitted before a single byte is read.
  REQUIRE(c.pump_until([&] { return c.all_closed(ids); }));
  for (int32_t id : ids) {
    INFO("stream " << id);
    CHECK(c.stream(id).status == 200);
    CHECK(c.stream(id).close_error == NGHTTP2_NO_ERROR);
  }
  auto calls = f.calls();
  REQUIRE(calls.size() == 10);
  std::vector<std::string> bodies;
  for (const auto& call : calls) bodies.push_back(call.bytes);
  std::sort(bodies.begin(), bodies.end());
  for (int i = 0; i < 10; ++i) CHECK(std::count(bodies.begin(), bodies.end(), "body-" + std::to_string(i)) == 1);

  // HTTP/1.1 beside it, while the h2c connection is still open.
  Conn h1(f.port());
  Http1Response r = http1_post(h1, "/v1/traces", kProtobuf, "h1-body");
  INFO(r.error);
  CHECK(r.status == 200);
  CHECK(r.headers["content-type"] == kProtobuf);
  CHECK(c.post("/v1/metrics", kProtobuf, "after").status == 200);
  calls = f.calls();
  REQUIRE(calls.size() == 12);
  CHECK(calls[10].bytes == "h1-body");
  CHECK(calls[11].signal == Signal::metrics);
}

TEST_CASE("h2c: 404, 405, 415 and 400 as over HTTP/1.1", "[http2_server]") {
  Fixture f;
  H2Client c(f.port());
  const auto& unknown = c.post("/v1/other", kProtobuf, "x");
  CHECK(unknown.status == 404);
  CHECK(rpc_status_from(unknown).code() == 5);

  const auto& get = c.request("GET", "/v1/traces", {}, std::nullopt);
  CHECK(get.status == 405);
  CHECK(get.header("allow") == "POST");
  CHECK(get.header("content-type") == "text/plain; charset=utf-8");

  const auto& text = c.post("/v1/traces", "text/plain", "x");
  CHECK(text.status == 415);
  CHECK_THAT(text.body, Catch::Contains("application/x-protobuf"));

  const auto& malformed = c.post("/v1/traces", kJson, "{not json");
  CHECK(malformed.status == 400);
  CHECK(malformed.header("content-type") == kJson);
  const auto& bad_id = c.post("/v1/traces", kJson, trace_request_json("0102"));
  CHECK(bad_id.status == 400);
  CHECK_THAT(bad_id.body, Catch::Contains("traceId"));

  const auto& not_gzip = c.post("/v1/traces", kProtobuf, "not gzip", {{"content-encoding", "gzip"}});
  CHECK(not_gzip.status == 400);
  CHECK(rpc_status_from(not_gzip).message() == "malformed gzip body");

  CHECK(f.calls().empty());
  // Error answers end streams, not the connection.
  CHECK(c.post("/v1/traces", kProtobuf, "ok").status == 200);
  CHECK_FALSE(c.ended());
}

TEST_CASE("h2c: a body over max_request_body_size is 413, declared or streamed, and the connection goes on",
          "[http2_server]") {
  Fixture f(small_body(1024));
  H2Client c(f.port());
  const std::string big(2048, 'b');

  SECTION("declared by content-length: 413 before a byte of the body is sent") {
    const int32_t id = c.submit("POST", "/v1/traces", {{"content-type", kProtobuf}}, big, true, /*sendable=*/0);
    REQUIRE(c.pump_until([&] { return c.stream(id).status != 0; }));
    CHECK(c.stream(id).status == 413);
    CHECK(c.stream(id).sent == 0);  // answered from the headers alone
    // Its body, sent now anyway, is discarded.
    c.allow(id, big.size());
    REQUIRE(c.finish(id));
    CHECK(c.stream(id).status == 413);
    CHECK(rpc_status_from(c.stream(id)).message() == "request body larger than 1024 bytes");
  }
  SECTION("streamed without content-length: 413 once the body passes the limit") {
    const int32_t id = c.submit("POST", "/v1/traces", {{"content-type", kProtobuf}}, big, false);
    REQUIRE(c.finish(id));
    CHECK(c.stream(id).status == 413);
    CHECK(rpc_status_from(c.stream(id)).message() == "request body larger than 1024 bytes");
  }
  SECTION("streamed in pieces without content-length") {
    const int32_t id = c.submit("POST", "/v1/traces", {{"content-type", kProtobuf}}, big, false, 1000);
    REQUIRE(c.sync());  // 1000 bytes in: under the limit, no answer yet
    CHECK(c.stream(id).status == 0);
    c.allow(id, 100);
    REQUIRE(c.pump_until([&] { return c.stream(id).status != 0; }));
    CHECK(c.stream(id).status == 413);
    c.allow(id, big.size());
    REQUIRE(c.finish(id));
  }
  CHECK(f.calls().empty());
  // At the limit exactly, on the same connection: served.
  const auto& ok = c.post("/v1/traces", kProtobuf, std::string(1024, 'k'));
  CHECK(ok.status == 200);
  auto calls = f.calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].bytes == std::string(1024, 'k'));
  CHECK_FALSE(c.ended());
}

TEST_CASE("h2c: bodies in flight beyond twice the body limit per connection are refused", "[http2_server]") {
  Fixture f(small_body(1024));
  H2Client c(f.port());
  // Three streams, each under the limit, hold 900 bytes each without ending: 2700 > 2 x 1024.
  std::vector<int32_t> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(c.submit("POST", "/v1/traces", {{"content-type", kProtobuf}}, std::string(1000, 'a' + i), true, 900));
    REQUIRE(c.sync());
  }
  CHECK_FALSE(c.stream(ids[0]).closed);
  CHECK_FALSE(c.stream(ids[1]).closed);
  REQUIRE(c.pump_until([&] { return c.stream(ids[2]).closed; }));
  CHECK(c.stream(ids[2]).reset_by_server);
  CHECK(c.stream(ids[2]).reset_error == NGHTTP2_REFUSED_STREAM);
  // The first two finish normally.
  for (int i = 0; i < 2; ++i) {
    c.allow(ids[i], 100);
    REQUIRE(c.finish(ids[i]));
    CHECK(c.stream(ids[i]).status == 200);
  }
  auto calls = f.calls();
  REQUIRE(calls.size() == 2);
  CHECK(calls[0].bytes == std::string(1000, 'a'));
  CHECK(calls[1].bytes == std::string(1000, 'b'));
  CHECK(c.post("/v1/traces", kProtobuf, "x").status == 200);
}

TEST_CASE("h2c auth: 401 with WWW-Authenticate from the headers alone, the token is served", "[http2_server][auth]") {
  Fixture f({}, token("s3cret-token"));
  {
    H2Client c(f.port());
    // A large body is announced and never sent: the answer cannot depend on it.
    const int32_t id = c.submit("POST", "/v1/traces", {{"content-type", kProtobuf}}, std::string(100000, 'x'), true, 0);
    REQUIRE(c.pump_until([&] { return c.stream(id).status != 0; }));
    CHECK(c.stream(id).status == 401);
    CHECK(c.stream(id).sent == 0);
    CHECK(c.stream(id).header("www-authenticate") == "Bearer");
    REQUIRE(c.pump_until([&] { return c.stream(id).response_complete; }));
    google::rpc::Status st = rpc_status_from(c.stream(id));
    CHECK(st.code() == 16);
    CHECK(st.message() == "missing or invalid credentials");

    const auto& wrong = c.post("/v1/traces", kJson, trace_request_json(), {{"authorization", "Bearer s3cret-tokeN"}});
    CHECK(wrong.status == 401);
    CHECK(wrong.header("content-type") == kJson);
    CHECK(wrong.body.find("s3cret") == std::string::npos);
  }
  CHECK(f.calls().empty());

  H2Client c(f.port());
  const auto& ok = c.post("/v1/traces", kProtobuf, "x", {{"authorization", "Bearer s3cret-token"}});
  CHECK(ok.status == 200);
  REQUIRE(f.calls().size() == 1);
  CHECK(f.calls()[0].bytes == "x");
}

TEST_CASE("h2c limits: max_concurrent_streams in SETTINGS and enforced, a header list over 16 KiB resets the stream",
          "[http2_server]") {
  HttpServerSettings settings;
  settings.max_concurrent_streams = 2;
  Fixture f(settings);

  SECTION("advertised, and the client keeps to it") {
    H2Client c(f.port());
    REQUIRE(c.pump_until([&] { return c.settings_received(); }));
    CHECK(c.remote_setting(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) == 2);
    CHECK(c.remote_setting(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE) == 16 * 1024);
    std::vector<int32_t> ids;
    for (int i = 0; i < 5; ++i) ids.push_back(c.submit("POST", "/v1/traces", {{"content-type", kProtobuf}}, "s"));
    REQUIRE(c.pump_until([&] { return c.all_closed(ids); }));
    for (int32_t id : ids) CHECK(c.stream(id).status == 200);
    CHECK(f.calls().size() == 5);
  }
  SECTION("a third open stream is refused") {
    // Submitted before the server's SETTINGS arrive, so the client does not hold the third back.
    H2Client c(f.port());
    std::vector<int32_t> ids;
    for (int i = 0; i < 3; ++i) {
      ids.push_back(c.submit("POST", "/v1/traces", {{"content-type", kProtobuf}}, "abc", true, /*sendable=*/0));
    }
    REQUIRE(c.pump_until([&] { return c.stream(ids[2]).closed; }));
    CHECK(c.stream(ids[2]).reset_by_server);
    CHECK(c.stream(ids[2]).reset_error == NGHTTP2_REFUSED_STREAM);
    CHECK_FALSE(c.stream(ids[0]).closed);
    for (int i = 0; i < 2; ++i) {
      c.allow(ids[i], 3);
      REQUIRE(c.finish(ids[i]));
      CHECK(c.stream(ids[i]).status == 200);
    }
    CHECK(f.calls().size() == 2);
  }
  SECTION("a header list over 16 KiB is reset, the connection goes on") {
    H2Client c(f.port());
    Headers big = {{"content-type", kProtobuf}};
    for (int i = 0; i < 5; ++i) big.push_back({"x-pad-" + std::to_string(i), std::string(4000, 'p')});  // ~20 KB
    const int32_t id = c.submit("POST", "/v1/traces", big, "x");
    REQUIRE(c.finish(id));
    INFO(c.describe());
    CHECK(c.stream(id).status == 0);
    CHECK(c.stream(id).reset_by_server);
    CHECK(c.stream(id).close_error != NGHTTP2_NO_ERROR);
    CHECK(f.calls().empty());
    // Just under the limit: served.
    Headers fits = {{"content-type", kProtobuf}};
    for (int i = 0; i < 3; ++i) fits.push_back({"x-pad-" + std::to_string(i), std::string(4000, 'q')});
    const auto& ok = c.request("POST", "/v1/traces", fits, std::string("y"));
    CHECK(ok.status == 200);
    CHECK_FALSE(c.ended());
    REQUIRE(f.calls().size() == 1);
    CHECK(f.calls()[0].bytes == "y");
  }
}

TEST_CASE("h2 over TLS: ALPN h2 is selected and served, a client offering only http/1.1 gets HTTP/1.1",
          "[http2_server][tls]") {
  test::TempDir dir("otlpd-http2-test");
  const test::Pem ca = test::make_ca("otlpd http2 test CA");
  const test::Pem server =
      test::make_cert(ca, {.common_name = "localhost", .dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1"}});
  HttpServerSettings settings;
  TlsServerSettings tls;
  tls.cert_file = test::write_file(dir.path().string(), "server.crt", server.cert);
  tls.key_file = test::write_file(dir.path().string(), "server.key", server.key);
  settings.tls = tls;
  Fixture f(settings);

  {
    SslCtxPtr ctx = client_tls(ca.cert, std::string("\x02h2\x08http/1.1", 12));
    bool handshake = false;
    H2Client c(f.port(), ctx.get(), &handshake);
    INFO(c.conn().error());
    REQUIRE(handshake);
    CHECK(c.conn().alpn() == "h2");
    const auto& res = c.post("/v1/traces", kProtobuf, trace_request_bytes("over h2"));
    CHECK(res.status == 200);
    CHECK(res.header("content-type") == kProtobuf);
  }
  {
    SslCtxPtr ctx = client_tls(ca.cert, std::string("\x08http/1.1", 9));
    Conn c(f.port());
    INFO(c.error());
    REQUIRE(c.handshake(ctx.get()));
    CHECK(c.alpn() == "http/1.1");
    Http1Response r = http1_post(c, "/v1/traces", kProtobuf, trace_request_bytes("over http/1.1"));
    INFO(r.error);
    CHECK(r.status == 200);
  }
  auto calls = f.calls();
  REQUIRE(calls.size() == 2);
  CHECK(calls[0].bytes == trace_request_bytes("over h2"));
  CHECK(calls[1].bytes == trace_request_bytes("over http/1.1"));
}

TEST_CASE("h2c read_timeout: a stream whose body drips in is cut at read_timeout from its headers",
          "[http2_server][timeout]") {
  HttpServerSettings settings;
  settings.read_timeout = 1000ms;
  settings.idle_timeout = 60s;
  Fixture f(settings);
  H2Client c(f.port());
  const auto t0 = SteadyClock::now();
  const int32_t id = c.submit("POST", "/v1/traces", {{"content-type", kProtobuf}}, std::string(100, 'x'), true, 0);
  // One body byte every 100 ms: each read is prompt, the request as a whole is not (10 s).
  size_t sent = 0;
  while (!c.ended() && sent < 100 && SteadyClock::now() - t0 < 5s) {
    c.allow(id, 1);
    ++sent;
    c.pump_until([&] { return c.ended(); }, 100ms);
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t0);
  INFO(c.describe() << "; " << sent << " bytes sent; ended after " << took.count() << " ms");
  CHECK(c.ended());
  CHECK(took >= 900ms);
  CHECK(took < 2500ms);
  CHECK(sent < 30);
  CHECK(c.stream(id).status == 0);  // no answer: the connection was closed
  CHECK(f.calls().empty());

  H2Client next(f.port());  // the server goes on
  CHECK(next.post("/v1/traces", kProtobuf, trace_request_bytes()).status == 200);
}

TEST_CASE("h2c shutdown: an idle connection is closed at once", "[http2_server][shutdown]") {
  Fixture f;
  std::optional<H2Client> c(std::in_place, f.port());
  REQUIRE(c->post("/v1/traces", kProtobuf, "x").status == 200);
  const auto t0 = SteadyClock::now();
  auto done = std::async(std::launch::async, [&] { f.server().shutdown(Clock::now() + 5s); });
  // The server ends the connection (GOAWAY or EOF); the client then hangs up, as clients do.
  const bool ended = c->pump_until([&] { return c->ended(); }, 5s);
  INFO(c->describe());
  CHECK(ended);
  c.reset();
  done.wait();
  const auto took = SteadyClock::now() - t0;
  INFO("shutdown took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(took < 1s);  // the deadline is 5 s
}

TEST_CASE("h2c shutdown: a stream in flight finishes, then the connection ends before the deadline",
          "[http2_server][shutdown]") {
  Fixture f;
  std::optional<H2Client> c(std::in_place, f.port());
  H2Client idle(f.port());
  REQUIRE(idle.sync());
  // Headers in, body not yet: a request in progress when shutdown begins.
  const int32_t id = c->submit("POST", "/v1/traces", {{"content-type", kProtobuf}}, std::string("in flight"), true, 0);
  REQUIRE(c->sync());
  const auto t0 = SteadyClock::now();
  auto done = std::async(std::launch::async, [&] { f.server().shutdown(Clock::now() + 5s); });
  // The idle connection is closed at once: shutdown has reached the sessions.
  REQUIRE(idle.pump_until([&] { return idle.ended(); }, 5s));
  REQUIRE(c->sync());
  c->allow(id, 100);
  REQUIRE(c->finish(id));
  CHECK(c->stream(id).status == 200);
  // Nothing is left on the connection: it ends (GOAWAY or EOF) well before the deadline; the
  // client then hangs up, as clients do, and shutdown returns.
  const bool ended = c->pump_until([&] { return c->ended(); }, 5s);
  INFO(c->describe());
  CHECK(ended);
  c.reset();
  done.wait();
  const auto took = SteadyClock::now() - t0;
  INFO("shutdown took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(took < 2s);
  REQUIRE(f.calls().size() == 1);
  CHECK(f.calls()[0].bytes == "in flight");
}

TEST_CASE("h2c shutdown: a response being written when shutdown begins arrives whole", "[http2_server][shutdown]") {
  Fixture f;
  // A partial-success message makes a 32 MB response: more than the socket buffers hold while
  // the client does not read.
  const std::string message(32 << 20, 'm');
  f.answer(Status::partial(1, message));
  H2Client c(f.port(), /*initial_window=*/1 << 30);
  const int32_t id = c.submit("POST", "/v1/traces", {{"content-type", kProtobuf}}, std::string("x"));
  REQUIRE(c.pump_until([&] { return c.stream(id).status != 0; }));
  CHECK(c.stream(id).status == 200);
  // The server has the whole response out of its codec and is writing it; the client stops reading.
  const auto t0 = SteadyClock::now();
  auto done = std::async(std::launch::async, [&] { f.server().shutdown(Clock::now() + 5s); });
  const bool returned_early = done.wait_for(1s) == std::future_status::ready;
  const bool finished = c.finish(id, 10s);
  done.wait();
  INFO(c.describe() << "; shutdown took "
                    << std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t0).count()
                    << " ms, returned before the client read on: " << returned_early << "; body "
                    << c.stream(id).body.size() << " of " << c.stream(id).header("content-length") << " bytes");
  REQUIRE(finished);
  CHECK(c.stream(id).close_error == NGHTTP2_NO_ERROR);
  CHECK(c.stream(id).body.size() == std::stoul(c.stream(id).header("content-length")));
  tracepb::ExportTraceServiceResponse answer;
  REQUIRE(answer.ParseFromString(c.stream(id).body));
  CHECK(answer.partial_success().error_message().size() == message.size());
}


TEST_CASE("h2c shutdown: GOAWAY while a stream is in flight, a stream opened after it is refused",
          "[http2_server][shutdown]") {
  Fixture f;
  std::optional<H2Client> c(std::in_place, f.port());
  H2Client idle(f.port());
  REQUIRE(idle.sync());
  const int32_t id = c->submit("POST", "/v1/traces", {{"content-type", kProtobuf}}, std::string("in flight"), true, 0);
  REQUIRE(c->sync());
  const auto t0 = SteadyClock::now();
  auto done = std::async(std::launch::async, [&] { f.server().shutdown(Clock::now() + 5s); });
  REQUIRE(idle.pump_until([&] { return idle.ended(); }, 5s));
  // Shutdown has begun: the server says GOAWAY with its next write (each PING makes one), while
  // the stream in flight is still open.
  const auto give_up = SteadyClock::now() + 3s;
  while (!c->goaway() && !c->ended() && SteadyClock::now() < give_up) {
    c->ping();
    c->pump_until([&] { return c->goaway() || c->ended(); }, 50ms);
  }
  INFO(c->describe());
  CHECK(c->goaway());
  CHECK(c->goaway_error() == NGHTTP2_NO_ERROR);
  // A request started now is not served.
  const int32_t late = c->submit("POST", "/v1/traces", {{"content-type", kProtobuf}}, std::string("late"));
  c->pump_until([&] { return c->stream(late).closed; }, 5s);
  CHECK(c->stream(late).status == 0);
  // The one in flight finishes, then the connection ends and shutdown returns.
  c->allow(id, 100);
  REQUIRE(c->finish(id));
  CHECK(c->stream(id).status == 200);
  c->pump_until([&] { return c->ended(); }, 5s);
  c.reset();
  done.wait();
  const auto took = SteadyClock::now() - t0;
  INFO("shutdown took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(took < 4s);
  REQUIRE(f.calls().size() == 1);
  CHECK(f.calls()[0].bytes == "in flight");
}

}  // namespace
}  // namespace otlpd

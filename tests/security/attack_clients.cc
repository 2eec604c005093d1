#include "security/attack_clients.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include <grpc/byte_buffer.h>
#include <grpc/compression.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "support/openssl_ptr.h"

namespace security {

namespace {

// Milliseconds left until `deadline` for poll(), at least 0.
int millis_until(SteadyClock::time_point deadline) {
  const auto left = std::chrono::duration_cast<Millis>(deadline - SteadyClock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 1 << 30));
}

// Waits for `events` on `fd` until `deadline`; the revents, 0 at the deadline.
short wait_for(int fd, short events, SteadyClock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, millis_until(deadline));
    if (n > 0) return p.revents;
    if (n == 0) return 0;
    if (errno != EINTR) return POLLERR;
  }
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(std::string s) {
  const size_t begin = s.find_first_not_of(" \t");
  const size_t end = s.find_last_not_of(" \t");
  return begin == std::string::npos ? std::string() : s.substr(begin, end - begin + 1);
}

// The status line and headers of `head` (without the blank line); false if they do not parse.
bool parse_head(const std::string& head, HttpResponse* r) {
  size_t line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) return false;
  r->status = std::atoi(status_line.c_str() + 9);
  while (line_end != std::string::npos) {
    const size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string line = head.substr(start, line_end == std::string::npos ? std::string::npos : line_end - start);
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    r->headers[lower(line.substr(0, colon))] = trim(line.substr(colon + 1));
  }
  return r->status > 0;
}

}  // namespace

// ---- Connection ----

Connection::Connection(int port) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  // Blocking connect: on loopback it completes (or is refused) at once.
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd_);
    fd_ = -1;
    return;
  }
  fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
}

Connection::~Connection() {
  if (fd_ >= 0) close(fd_);
}

Connection::Connection(Connection&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

bool Connection::send_all(std::string_view data, SteadyClock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const short ev = wait_for(fd_, POLLOUT, deadline);
      if (ev == 0 || (ev & (POLLERR | POLLHUP)) != 0) return false;
      continue;
    }
    return false;  // EPIPE, ECONNRESET: the peer is gone
  }
  return true;
}

void Connection::shutdown_send() { shutdown(fd_, SHUT_WR); }

Connection::Read Connection::read_some(std::string& into, SteadyClock::time_point deadline) {
  for (;;) {
    char chunk[65536];
    const ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      into.append(chunk, static_cast<size_t>(n));
      return Read::data;
    }
    if (n == 0) return Read::closed;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Read::closed;  // reset
    if (wait_for(fd_, POLLIN, deadline) == 0) return Read::timeout;
  }
}

bool Connection::wait_closed(SteadyClock::time_point deadline, size_t* received) {
  std::string sink;
  size_t total = 0;
  for (;;) {
    const Read r = read_some(sink, deadline);
    total += sink.size();
    sink.clear();
    if (received) *received = total;
    if (r == Read::closed) return true;
    if (r == Read::timeout) return false;
  }
}

// ---- HTTP ----

std::string HttpResponse::describe() const {
  if (status == 0) return "no response: " + error;
  constexpr size_t kMaxBody = 300;
  std::string shown;
  for (char c : body.substr(0, kMaxBody)) shown += (c >= 0x20 && c < 0x7f) ? c : '.';
  return std::to_string(status) + " " + header("content-type") + " [" + std::to_string(body.size()) +
         " bytes] " + shown;
}

std::string post_request(const std::string& path, const std::string& content_type, std::string_view body,
                         const std::string& extra_headers) {
  std::string request = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!content_type.empty()) request += "Content-Type: " + content_type + "\r\n";
  request += "Content-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n";
  request.append(body);
  return request;
}

namespace {

// read_response over any byte source: `read_some(into, deadline)` appends what arrives, like
// Connection::read_some.
template <typename ReadSome>
HttpResponse read_response_with(ReadSome&& read_some, std::string& buffer, SteadyClock::time_point deadline) {
  HttpResponse r;
  size_t head_end = std::string::npos;
  for (;;) {
    if (head_end == std::string::npos) {
      head_end = buffer.find("\r\n\r\n");
      if (head_end != std::string::npos && !parse_head(buffer.substr(0, head_end), &r)) {
        r = HttpResponse{};
        r.error = "unparsable response head: " + buffer.substr(0, std::min<size_t>(head_end, 200));
        return r;
      }
    }
    if (head_end != std::string::npos && r.status >= 100 && r.status < 200) {
      // An interim response (100 Continue) has no body; the final one follows.
      buffer.erase(0, head_end + 4);
      r = HttpResponse{};
      head_end = std::string::npos;
      continue;
    }
    if (head_end != std::string::npos) {
      const size_t length = std::strtoull(r.header("content-length").c_str(), nullptr, 10);
      if (buffer.size() >= head_end + 4 + length) {
        r.body = buffer.substr(head_end + 4, length);
        buffer.erase(0, head_end + 4 + length);
        return r;
      }
    }
    const Connection::Read got = read_some(buffer, deadline);
    if (got != Connection::Read::data) {
      const int status = r.status;
      r = HttpResponse{};
      r.error = std::string(got == Connection::Read::closed ? "connection closed" : "timed out") +
                (status ? " in the middle of a response" : " before a response");
      return r;
    }
  }
}

}  // namespace

HttpResponse read_response(Connection& c, std::string& buffer, SteadyClock::time_point deadline) {
  return read_response_with([&c](std::string& into, SteadyClock::time_point until) { return c.read_some(into, until); },
                            buffer, deadline);
}

HttpResponse HttpClient::send(std::string_view request, Millis timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  if (!conn_) {
    conn_.emplace(port_);
    buffer_.clear();
  }
  HttpResponse r;
  if (!conn_->connected()) {
    r.error = "cannot connect";
  } else if (!conn_->send_all(request, deadline)) {
    r.error = "send failed (connection closed or timed out)";
  } else {
    r = read_response(*conn_, buffer_, deadline);
  }
  if (r.status == 0 || r.closes()) conn_.reset();
  return r;
}

HttpResponse http_post(int port, const std::string& path, const std::string& content_type, std::string_view body,
                       const std::string& extra_headers, Millis timeout) {
  HttpClient client(port);
  return client.send(post_request(path, content_type, body, extra_headers), timeout);
}

// ---- TLS ----

namespace {

using otlpd::test::BioPtr;
using otlpd::test::PkeyPtr;
using otlpd::test::SslCtxPtr;
using otlpd::test::SslPtr;
using otlpd::test::X509Ptr;

// OpenSSL's error queue as text ("error:0A000418:SSL routines::tlsv1 alert unknown ca; ..."),
// emptied.
std::string ssl_errors() {
  std::string text;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text;
}

BioPtr pem_bio(const std::string& pem) { return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))); }

// The client context for `tls`; an empty pointer and *error when something does not load.
SslCtxPtr client_context(const ClientTls& tls, std::string* error) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) {
    *error = "SSL_CTX_new: " + ssl_errors();
    return nullptr;
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (tls.max_version != 0 && SSL_CTX_set_max_proto_version(ctx.get(), tls.max_version) != 1) {
    *error = "SSL_CTX_set_max_proto_version: " + ssl_errors();
    return nullptr;
  }
  int roots = 0;
  BioPtr ca = pem_bio(tls.trusted_ca);
  while (X509Ptr cert{PEM_read_bio_X509(ca.get(), nullptr, nullptr, nullptr)}) {
    if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), cert.get()) == 1) ++roots;
  }
  ERR_clear_error();  // the end of the PEM text leaves "no start line"
  if (roots == 0) {
    *error = "no trusted CA certificate in trusted_ca";
    return nullptr;
  }
  if (tls.cert_chain.empty()) return ctx;
  BioPtr chain = pem_bio(tls.cert_chain);
  X509Ptr leaf{PEM_read_bio_X509(chain.get(), nullptr, nullptr, nullptr)};
  if (!leaf || SSL_CTX_use_certificate(ctx.get(), leaf.get()) != 1) {
    *error = "client certificate: " + ssl_errors();
    return nullptr;
  }
  while (X509Ptr extra{PEM_read_bio_X509(chain.get(), nullptr, nullptr, nullptr)}) {
    if (SSL_CTX_add_extra_chain_cert(ctx.get(), extra.get()) == 1) extra.release();  // the context owns it now
  }
  ERR_clear_error();
  BioPtr key_bio = pem_bio(tls.private_key);
  PkeyPtr key{PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr)};
  if (!key || SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1 || SSL_CTX_check_private_key(ctx.get()) != 1) {
    *error = "client key: " + ssl_errors();
    return nullptr;
  }
  return ctx;
}

// One TLS client connection: an SSL object on memory BIOs, whose bytes this class carries over a
// Connection (non-blocking, every wait bounded by a deadline, send with MSG_NOSIGNAL).
class TlsConnection {
 public:
  enum class Step { ok, failed, timeout };

  TlsConnection(Connection conn, SSL_CTX* ctx) : conn_(std::move(conn)), ssl_(SSL_new(ctx)) {
    rbio_ = BIO_new(BIO_s_mem());
    wbio_ = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_.get(), rbio_, wbio_);  // the SSL object owns both
    SSL_set_connect_state(ssl_.get());
  }

  SSL* ssl() const { return ssl_.get(); }
  // Why the last step failed or timed out.
  const std::string& error() const { return error_; }

  // Calls `op` (SSL_connect, SSL_write, SSL_read) until it returns > 0 (Step::ok, *result its
  // value), fails, or `deadline` passes. After each call, what the SSL object wrote goes out; when
  // it wants to read, the server's next bytes come in (or the EOF, which makes it fail).
  template <typename Op>
  Step run(Op op, SteadyClock::time_point deadline, int* result = nullptr) {
    for (;;) {
      ERR_clear_error();
      const int rc = op(ssl_.get());
      const int err = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_.get(), rc);
      const int saved_errno = errno;
      const std::string reason = (err == SSL_ERROR_SSL || err == SSL_ERROR_SYSCALL) ? ssl_errors() : "";
      flush(deadline);  // our handshake messages, request, or alert
      if (rc > 0) {
        if (result) *result = rc;
        return Step::ok;
      }
      if (err == SSL_ERROR_WANT_READ && !eof_) {
        std::string in;
        const Connection::Read got = conn_.read_some(in, deadline);
        if (got == Connection::Read::timeout) {
          error_ = "timed out";
          return Step::timeout;
        }
        if (got == Connection::Read::closed) {
          eof_ = true;
          BIO_set_mem_eof_return(rbio_, 0);  // an empty read BIO is now the end of the stream
        } else {
          BIO_write(rbio_, in.data(), static_cast<int>(in.size()));
        }
        continue;
      }
      switch (err) {
        case SSL_ERROR_ZERO_RETURN:
          error_ = "closed by the server (close_notify)";
          break;
        case SSL_ERROR_SSL:
          error_ = reason.empty() ? "TLS error" : reason;
          break;
        case SSL_ERROR_SYSCALL:
          error_ = !reason.empty() ? reason : eof_ ? "connection closed (EOF or reset)" : std::strerror(saved_errno);
          break;
        default:
          error_ = "SSL error " + std::to_string(err);
      }
      if (send_failed_) error_ += " (a send failed: connection reset)";
      return Step::failed;
    }
  }

  // Connection::read_some over TLS: appends decrypted bytes to `into`.
  Connection::Read read_some(std::string& into, SteadyClock::time_point deadline) {
    char chunk[16384];
    int n = 0;
    const Step s = run([&](SSL* ssl) { return SSL_read(ssl, chunk, sizeof chunk); }, deadline, &n);
    if (s == Step::timeout) return Connection::Read::timeout;
    if (s == Step::failed) return Connection::Read::closed;
    into.append(chunk, static_cast<size_t>(n));
    return Connection::Read::data;
  }

 private:
  // Sends what the SSL object has written. A failed send (the server reset the connection) is
  // noted; its alert may still be there to read.
  void flush(SteadyClock::time_point deadline) {
    char chunk[16384];
    for (;;) {
      const int n = BIO_read(wbio_, chunk, sizeof chunk);
      if (n <= 0) return;
      if (send_failed_) continue;  // drained and dropped
      send_failed_ = !conn_.send_all(std::string_view(chunk, static_cast<size_t>(n)), deadline);
    }
  }

  Connection conn_;
  SslPtr ssl_;
  BIO* rbio_ = nullptr;  // owned by ssl_
  BIO* wbio_ = nullptr;  // owned by ssl_
  bool eof_ = false;
  bool send_failed_ = false;
  std::string error_;
};

const char* end_name(TlsHttpResult::End end) {
  switch (end) {
    case TlsHttpResult::End::setup_failed: return "client setup failed";
    case TlsHttpResult::End::connect_failed: return "connect failed";
    case TlsHttpResult::End::handshake_failed: return "handshake failed";
    case TlsHttpResult::End::closed: return "closed without a response";
    case TlsHttpResult::End::timeout: return "client timeout";
    case TlsHttpResult::End::response: return "response";
  }
  return "?";
}

}  // namespace

std::string TlsHttpResult::describe() const {
  std::string d = end_name(end);
  if (version == TLS1_2_VERSION) d += " (TLSv1.2)";
  if (version == TLS1_3_VERSION) d += " (TLSv1.3)";
  if (end == End::response) return d + ": " + response.describe();
  return d + ": " + error;
}

TlsHttpResult https_send(int port, const ClientTls& tls, std::string_view request, Millis timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  TlsHttpResult out;
  SslCtxPtr ctx = client_context(tls, &out.error);
  if (!ctx) {
    out.end = TlsHttpResult::End::setup_failed;
    return out;
  }
  Connection conn(port);
  if (!conn.connected()) {
    out.end = TlsHttpResult::End::connect_failed;
    out.error = "cannot connect";
    return out;
  }
  TlsConnection c(std::move(conn), ctx.get());
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c.ssl()), "127.0.0.1");
  static constexpr unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_set_alpn_protos(c.ssl(), kAlpn, sizeof kAlpn);

  switch (c.run([](SSL* ssl) { return SSL_connect(ssl); }, deadline)) {
    case TlsConnection::Step::ok:
      break;
    case TlsConnection::Step::failed:
      out.end = TlsHttpResult::End::handshake_failed;
      out.error = c.error();
      return out;
    case TlsConnection::Step::timeout:
      out.end = TlsHttpResult::End::timeout;
      out.error = "timed out in the handshake";
      return out;
  }
  out.version = SSL_version(c.ssl());
  // A memory BIO takes the whole request at once; it goes out on the socket in run's flush.
  switch (c.run([&](SSL* ssl) { return SSL_write(ssl, request.data(), static_cast<int>(request.size())); }, deadline)) {
    case TlsConnection::Step::ok:
      break;
    case TlsConnection::Step::failed:
      out.end = TlsHttpResult::End::closed;
      out.error = "write: " + c.error();
      return out;
    case TlsConnection::Step::timeout:
      out.end = TlsHttpResult::End::timeout;
      out.error = "timed out writing the request";
      return out;
  }
  std::string buffer;
  out.response = read_response_with(
      [&c](std::string& into, SteadyClock::time_point until) { return c.read_some(into, until); }, buffer, deadline);
  if (out.response.status != 0) {
    out.end = TlsHttpResult::End::response;
  } else if (c.error() == "timed out") {
    out.end = TlsHttpResult::End::timeout;
    out.error = out.response.error;
  } else {
    out.end = TlsHttpResult::End::closed;
    out.error = out.response.error + (c.error().empty() ? "" : ": " + c.error());
  }
  return out;
}

// ---- gRPC ----

std::string GrpcAnswer::describe() const { return "gRPC status " + std::to_string(static_cast<int>(code)) + ": " + message; }

namespace {

// The C core API needs grpc_init() before use; taken once for the whole test process and never
// released, so that each call does not start up and tear down gRPC's threads again.
void init_grpc_core() {
  static const bool initialized = [] {
    grpc_init();
    return true;
  }();
  (void)initialized;
}

}  // namespace

struct GrpcClient::Impl {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<grpc::GenericStub> stub;
};

GrpcClient::GrpcClient(int port, const std::optional<ClientTls>& tls) : impl_(std::make_unique<Impl>()) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // the answers are small; no client-side limit in the way
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (tls) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = tls->trusted_ca;
    options.pem_cert_chain = tls->cert_chain;
    options.pem_private_key = tls->private_key;
    creds = grpc::SslCredentials(options);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  }
  impl_->channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), creds, args);
  impl_->stub = std::make_unique<grpc::GenericStub>(impl_->channel);
}

GrpcClient::~GrpcClient() = default;

GrpcAnswer GrpcClient::call(const std::string& method, const std::string& message, bool gzip, Millis timeout,
                            const Metadata& metadata) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  if (gzip) ctx.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  for (const auto& [key, value] : metadata) ctx.AddMetadata(key, value);
  grpc::Slice slice(message);
  grpc::ByteBuffer request(&slice, 1);
  grpc::CompletionQueue cq;
  grpc::ByteBuffer response;
  grpc::Status status;
  auto call = impl_->stub->PrepareUnaryCall(&ctx, method, request, &cq);
  call->StartCall();
  call->Finish(&response, &status, nullptr);
  void* tag = nullptr;
  bool ok = false;
  // The context's deadline bounds this wait: the call completes by then at the latest.
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return GrpcAnswer{status.error_code(), status.error_message()};
}

GrpcAnswer grpc_call(int port, const std::string& method, const std::string& message, bool gzip, Millis timeout,
                     const Metadata& metadata) {
  GrpcClient client(port);
  return client.call(method, message, gzip, timeout, metadata);
}

GrpcAnswer grpc_call_tls(int port, const ClientTls& tls, const std::string& method, const std::string& message,
                         Millis timeout, const Metadata& metadata) {
  GrpcClient client(port, tls);
  return client.call(method, message, false, timeout, metadata);
}

GrpcAnswer grpc_call_precompressed(int port, const std::string& method, const std::string& gzip_bytes,
                                   Millis timeout, const Metadata& metadata) {
  // The C core API: only it can send a message as already compressed (a compressed raw byte
  // buffer is written with the compressed flag and is not compressed again).
  init_grpc_core();
  GrpcAnswer answer;
  grpc_channel_credentials* creds = grpc_insecure_credentials_create();
  grpc_channel* channel = grpc_channel_create(("127.0.0.1:" + std::to_string(port)).c_str(), creds, nullptr);
  grpc_channel_credentials_release(creds);
  grpc_completion_queue* cq = grpc_completion_queue_create_for_next(nullptr);
  const gpr_timespec deadline =
      gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(timeout.count(), GPR_TIMESPAN));
  grpc_slice method_slice = grpc_slice_from_copied_string(method.c_str());
  ::grpc_call* call =
      grpc_channel_create_call(channel, nullptr, GRPC_PROPAGATE_DEFAULTS, cq, method_slice, nullptr, deadline, nullptr);

  // The first entry makes the channel send grpc-encoding: gzip, as
  // ClientContext::set_compression_algorithm does; then the caller's metadata.
  std::vector<grpc_metadata> initial(1 + metadata.size());
  initial[0].key = grpc_slice_from_static_string(GRPC_COMPRESSION_REQUEST_ALGORITHM_MD_KEY);
  initial[0].value = grpc_slice_from_static_string("gzip");
  for (size_t i = 0; i < metadata.size(); ++i) {
    initial[i + 1].key = grpc_slice_from_copied_buffer(metadata[i].first.data(), metadata[i].first.size());
    initial[i + 1].value = grpc_slice_from_copied_buffer(metadata[i].second.data(), metadata[i].second.size());
  }
  grpc_slice payload = grpc_slice_from_copied_buffer(gzip_bytes.data(), gzip_bytes.size());
  grpc_byte_buffer* message = grpc_raw_compressed_byte_buffer_create(&payload, 1, GRPC_COMPRESS_GZIP);
  grpc_slice_unref(payload);
  grpc_metadata_array initial_md, trailing_md;
  grpc_metadata_array_init(&initial_md);
  grpc_metadata_array_init(&trailing_md);
  grpc_byte_buffer* response = nullptr;
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice();

  grpc_op ops[6];
  std::memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = initial.size();
  ops[0].data.send_initial_metadata.metadata = initial.data();
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = message;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &response;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &details;
  const grpc_call_error started = grpc_call_start_batch(call, ops, 6, nullptr, nullptr);
  if (started != GRPC_CALL_OK) {
    answer.message = "grpc_call_start_batch failed: " + std::to_string(started);
  } else {
    // The call's deadline bounds it; the queue waits a little longer so that it sees the end.
    grpc_event ev =
        grpc_completion_queue_next(cq, gpr_time_add(deadline, gpr_time_from_seconds(5, GPR_TIMESPAN)), nullptr);
    if (ev.type == GRPC_OP_COMPLETE) {
      answer.code = static_cast<grpc::StatusCode>(status);
      char* text = grpc_slice_to_c_string(details);
      answer.message = text;
      gpr_free(text);
    } else {
      answer.message = "the call did not complete";
      // The batch still writes into the buffers above: cancel it and wait for its completion
      // before any of them is freed (a cancelled batch completes promptly).
      grpc_call_cancel(call, nullptr);
      do {
        ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), nullptr);
      } while (ev.type != GRPC_OP_COMPLETE);
    }
  }
  grpc_call_unref(call);
  grpc_byte_buffer_destroy(message);
  if (response) grpc_byte_buffer_destroy(response);
  grpc_slice_unref(details);
  grpc_slice_unref(method_slice);
  for (size_t i = 1; i < initial.size(); ++i) {
    grpc_slice_unref(initial[i].key);
    grpc_slice_unref(initial[i].value);
  }
  grpc_metadata_array_destroy(&initial_md);
  grpc_metadata_array_destroy(&trailing_md);
  grpc_channel_destroy(channel);
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), nullptr).type != GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(cq);
  return answer;
}

// ---- HTTP/2 ----

namespace h2 {

std::string frame(uint8_t type, uint8_t flags, uint32_t stream_id, std::string_view payload) {
  std::string f;
  const size_t n = payload.size();
  f += static_cast<char>((n >> 16) & 0xff);
  f += static_cast<char>((n >> 8) & 0xff);
  f += static_cast<char>(n & 0xff);
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  f += static_cast<char>((stream_id >> 24) & 0x7f);
  f += static_cast<char>((stream_id >> 16) & 0xff);
  f += static_cast<char>((stream_id >> 8) & 0xff);
  f += static_cast<char>(stream_id & 0xff);
  f.append(payload);
  return f;
}

std::string rst_stream(uint32_t stream_id, uint32_t error) {
  const char code[4] = {static_cast<char>(error >> 24), static_cast<char>(error >> 16), static_cast<char>(error >> 8),
                        static_cast<char>(error)};
  return frame(kRstStream, 0, stream_id, std::string_view(code, 4));
}

std::string hpack_literal(std::string_view name, std::string_view value) {
  std::string out(1, '\0');  // 0000 0000: without indexing, literal name
  out += static_cast<char>(name.size());  // H=0, 7-bit length (< 127)
  out.append(name);
  out += static_cast<char>(value.size());
  out.append(value);
  return out;
}

std::string post_header_block(const std::string& path) {
  return hpack_literal(":method", "POST") + hpack_literal(":scheme", "http") + hpack_literal(":path", path) +
         hpack_literal(":authority", "127.0.0.1") + hpack_literal("content-type", "application/x-protobuf");
}

std::vector<Frame> take_frames(std::string& buffer) {
  std::vector<Frame> frames;
  size_t at = 0;
  while (buffer.size() - at >= 9) {
    const auto* p = reinterpret_cast<const unsigned char*>(buffer.data() + at);
    const size_t length = (size_t{p[0]} << 16) | (size_t{p[1]} << 8) | p[2];
    if (buffer.size() - at < 9 + length) break;
    Frame f;
    f.type = p[3];
    f.flags = p[4];
    f.stream_id = ((uint32_t{p[5]} & 0x7f) << 24) | (uint32_t{p[6]} << 16) | (uint32_t{p[7]} << 8) | p[8];
    f.payload = buffer.substr(at + 9, length);
    frames.push_back(std::move(f));
    at += 9 + length;
  }
  buffer.erase(0, at);
  return frames;
}

std::string Outcome::describe() const {
  std::string s = std::to_string(frames_received) + " frame(s) received";
  if (goaway) {
    s += ", GOAWAY last-stream-id " + std::to_string(goaway_last_stream) + " error " + std::to_string(goaway_error);
  } else {
    s += ", no GOAWAY";
  }
  return s + (closed ? ", closed by the server" : ", still open");
}

void Outcome::note(std::string& buffer) {
  for (const Frame& f : take_frames(buffer)) {
    ++frames_received;
    if (f.type != kGoaway || f.payload.size() < 8) continue;
    const auto* p = reinterpret_cast<const unsigned char*>(f.payload.data());
    goaway = true;
    goaway_last_stream = ((uint32_t{p[0]} & 0x7f) << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
    goaway_error = (uint32_t{p[4]} << 24) | (uint32_t{p[5]} << 16) | (uint32_t{p[6]} << 8) | p[7];
  }
}

}  // namespace h2

namespace {

// The state of one h2c_post: nghttp2 calls back into it from mem_recv and mem_send.
struct H2Post {
  std::string_view body;
  size_t sent = 0;
  int32_t stream_id = -1;
  bool closed = false;
  HttpResponse response;

  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                           nghttp2_data_source* source, void*) {
    auto& self = *static_cast<H2Post*>(source->ptr);
    const size_t n = std::min(length, self.body.size() - self.sent);
    std::memcpy(buf, self.body.data() + self.sent, n);
    self.sent += n;
    if (self.sent == self.body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t, void* user_data) {
    auto& self = *static_cast<H2Post*>(user_data);
    if (frame->hd.stream_id != self.stream_id) return 0;
    const std::string n(reinterpret_cast<const char*>(name), namelen);
    const std::string v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      self.response.status = std::atoi(v.c_str());
    } else {
      self.response.headers[n] = v;
    }
    return 0;
  }
  static int on_data(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* user_data) {
    auto& self = *static_cast<H2Post*>(user_data);
    if (id == self.stream_id) self.response.body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }
  static int on_close(nghttp2_session*, int32_t id, uint32_t error_code, void* user_data) {
    auto& self = *static_cast<H2Post*>(user_data);
    if (id != self.stream_id) return 0;
    self.closed = true;
    if (error_code != 0) self.response.error = "stream reset with error " + std::to_string(error_code);
    return 0;
  }
};

}  // namespace

HttpResponse h2c_post(int port, const std::string& path, const std::string& content_type, std::string_view body,
                      Millis timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  H2Post post;
  post.body = body;
  Connection c(port);
  if (!c.connected()) {
    post.response.error = "cannot connect";
    return post.response;
  }
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &H2Post::on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &H2Post::on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &H2Post::on_close);
  nghttp2_session* session = nullptr;
  nghttp2_session_client_new(&session, cbs, &post);
  nghttp2_session_callbacks_del(cbs);
  std::unique_ptr<nghttp2_session, void (*)(nghttp2_session*)> owner(session, &nghttp2_session_del);

  nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0);
  const std::string length = std::to_string(body.size());
  const std::pair<std::string, std::string> fields[] = {{":method", "POST"},       {":scheme", "http"},
                                                        {":authority", "127.0.0.1"}, {":path", path},
                                                        {"content-type", content_type}, {"content-length", length}};
  std::vector<nghttp2_nv> nva;
  for (const auto& [name, value] : fields) {
    nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                   reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
                   NGHTTP2_NV_FLAG_NONE});
  }
  nghttp2_data_provider provider{};
  provider.source.ptr = &post;
  provider.read_callback = &H2Post::read_body;
  post.stream_id = nghttp2_submit_request(session, nullptr, nva.data(), nva.size(), &provider, nullptr);
  if (post.stream_id < 0) {
    post.response.error = std::string("nghttp2_submit_request: ") + nghttp2_strerror(post.stream_id);
    return post.response;
  }
  std::string in;
  while (!post.closed) {
    for (;;) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session, &data);
      if (n <= 0) break;
      if (!c.send_all(std::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(n)), deadline)) {
        post.response = HttpResponse{};
        post.response.error = "send failed (connection closed or timed out)";
        return post.response;
      }
    }
    if (post.closed) break;
    in.clear();
    const Connection::Read got = c.read_some(in, deadline);
    if (got != Connection::Read::data) {
      post.response = HttpResponse{};
      post.response.error = got == Connection::Read::closed ? "connection closed" : "timed out";
      return post.response;
    }
    const ssize_t rv = nghttp2_session_mem_recv(session, reinterpret_cast<const uint8_t*>(in.data()), in.size());
    if (rv < 0) {
      post.response = HttpResponse{};
      post.response.error = std::string("nghttp2_session_mem_recv: ") + nghttp2_strerror(static_cast<int>(rv));
      return post.response;
    }
  }
  if (!post.response.error.empty()) post.response.status = 0;
  return post.response;
}

}  // namespace security

// The OTLP/HTTP receiver's HttpServer speaking HTTP/2 (h2c with prior knowledge, Http2Codec on
// nghttp2) to arbitrary frames from a client: one server (127.0.0.1:0, 64 KiB body limit, 200 ms
// header/read timeouts) for the whole run; each input is what a client sends after the 24-byte
// preface, which the target writes first on a new connection (the client's SETTINGS frame is part
// of the input). The server's bytes are read as the input is written, then the connection is
// half-closed and read to EOF.
// Properties: the server's bytes are complete HTTP/2 frames, each no longer than the largest
// frame the client allowed (16384 unless its SETTINGS raised it), its SETTINGS first, the fixed
// sizes and stream 0 / non-0 of SETTINGS, PING, GOAWAY, RST_STREAM and WINDOW_UPDATE right
// (a non-zero window increment), no PUSH_PROMISE, nothing interleaved in a header block; every
// header block decodes (HPACK, one decoder for the connection) and a response starts with a
// 3-digit :status; response HEADERS only on an odd stream the input opened with HEADERS, not
// above the last-stream-id of a GOAWAY the server sent before, one final response per stream;
// DATA only after it, nothing after the server's END_STREAM or RST_STREAM on the stream; a body
// ended with END_STREAM is as long as its content-length (or empty: a HEAD answer); GOAWAY
// last-stream-ids never increase; and the server closes the connection itself within 5 s. A
// cut frame (or no bytes at all) is only accepted after a reset, or when the exchange lasted
// longer than the 200 ms write timeout that may have cut it. Every 200 inputs a well-formed h2c
// POST /v1/traces on a fresh connection must still get :status 200, so a server that stopped
// accepting or answering fails the run.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdarg>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nghttp2/nghttp2.h>

#include "fuzz/fuzz_target.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/compression.h"
#include "fuzz/fuzz_http_server.h"
#include "receivers/otlp/http_server.h"

using namespace otlpd;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr uint64_t kBodyLimit = 64 << 10;
constexpr auto kServerTimeout = 200ms;   // read_header_timeout and read_timeout (which bounds writes too)
constexpr auto kDeadline = 5s;           // the server must have closed the connection by then
constexpr size_t kMaxInput = 256 << 10;  // larger inputs are skipped: they only test the socket buffers
constexpr int kCheckEvery = 200;         // inputs between two "does it still answer?" checks
constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum : uint8_t { kData, kHeaders, kPriority, kRst, kSettings, kPushPromise, kPing, kGoaway, kWindowUpdate, kContinuation };
enum : uint8_t { kEndStream = 0x1, kAck = 0x1, kEndHeaders = 0x4, kPadded = 0x8, kPriorityFlag = 0x20 };

// What the run saw, printed at exit.
struct Stats {
  std::atomic<unsigned long> inputs{0}, frames{0}, responses{0}, goaways{0}, resets{0}, cut{0}, handler_calls{0};
  std::atomic<unsigned long> by_class[6]{};  // 1xx..5xx
};
Stats stats;
Stats ignored;  // what the liveness checks see

void print_stats() {
  std::fprintf(stderr,
               "fuzz_http2: %lu connections, %lu server frames, %lu responses (1xx %lu, 2xx %lu, 3xx %lu, 4xx %lu, "
               "5xx %lu), %lu GOAWAYs, %lu connections reset, %lu ended in a cut frame, %lu handler calls\n",
               stats.inputs.load(), stats.frames.load(), stats.responses.load(), stats.by_class[1].load(),
               stats.by_class[2].load(), stats.by_class[3].load(), stats.by_class[4].load(), stats.by_class[5].load(),
               stats.goaways.load(), stats.resets.load(), stats.cut.load(), stats.handler_calls.load());
}

HttpServerSettings server_settings() {
  HttpServerSettings s;
  s.max_request_body_size = kBodyLimit;
  s.read_header_timeout = kServerTimeout;
  s.read_timeout = kServerTimeout;
  s.idle_timeout = 500ms;
  s.max_connections = 256;
  s.max_concurrent_streams = 100;
  return s;
}

fuzz::FuzzHttpServer& server() {
  static fuzz::FuzzHttpServer s("fuzz_http2", server_settings(), &stats.handler_calls);
  static const int stats_at_exit = std::atexit(print_stats);
  (void)stats_at_exit;
  return s;
}

using fuzz::Exchange;

// One connection: writes `bytes` (while reading), half-closes, reads until the server closes, the
// deadline passes or `enough` says so.
Exchange exchange(std::string_view bytes, SteadyClock::duration limit,
                  const std::function<bool(const std::string&)>& enough = nullptr) {
  Exchange x;
  const auto start = SteadyClock::now();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    std::perror("fuzz_http2: socket");
    std::abort();
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server().port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return x;
  }
  x.connected = true;
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  size_t sent = 0;
  bool writing = true;
  char buf[16384];
  for (;;) {
    if (writing && sent == bytes.size()) {
      ::shutdown(fd, SHUT_WR);
      writing = false;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(start + limit - SteadyClock::now());
    if (left.count() <= 0) {
      x.timeout = true;
      break;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (writing ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) {
      std::perror("fuzz_http2: poll");
      std::abort();
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        x.response.append(buf, static_cast<size_t>(n));
        if (enough && enough(x.response)) break;
        continue;
      }
      if (n == 0) {
        x.eof = true;
        break;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        x.reset = true;
        break;
      }
    }
    if (writing && (p.revents & POLLOUT)) {
      ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        writing = false;  // the server closed early: read what it said
      }
    }
  }
  x.took = SteadyClock::now() - start;
  ::close(fd);
  return x;
}

uint32_t be(const unsigned char* p, int n) {
  uint32_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

struct Frame {
  uint32_t length;
  uint8_t type, flags;
  uint32_t stream;
  std::string_view payload;
};

// The frame at the start of `s` (which holds at least 9 bytes); its payload may be cut short.
Frame frame_at(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  Frame f{be(p, 3), p[3], p[4], be(p + 5, 4) & 0x7fffffff, {}};
  f.payload = s.substr(9, f.length);
  return f;
}

// What the input may have done: the streams its HEADERS frames opened and the largest frame it
// lets the server send (SETTINGS_MAX_FRAME_SIZE). Both over-approximated: every frame counts,
// including those the server may have refused or never read.
struct InputScan {
  std::set<uint32_t> opened;
  uint32_t max_frame = 16384;
};

InputScan scan_input(std::string_view in) {
  InputScan scan;
  while (in.size() >= 9) {
    Frame f = frame_at(in);
    if (f.type == kHeaders) scan.opened.insert(f.stream);
    if (f.type == kSettings && !(f.flags & kAck)) {
      for (size_t i = 0; i + 6 <= f.payload.size(); i += 6) {
        const auto* p = reinterpret_cast<const unsigned char*>(f.payload.data() + i);
        const uint32_t value = be(p + 2, 4);
        if (be(p, 2) == NGHTTP2_SETTINGS_MAX_FRAME_SIZE && value >= 16384 && value <= 16777215) {
          scan.max_frame = std::max(scan.max_frame, value);
        }
      }
    }
    in.remove_prefix(std::min<size_t>(in.size(), 9 + f.length));
  }
  return scan;
}

struct Inflater {
  nghttp2_hd_inflater* p = nullptr;
  Inflater() {
    if (nghttp2_hd_inflate_new(&p) != 0) std::abort();
  }
  ~Inflater() { nghttp2_hd_inflate_del(p); }
};

// Decodes one complete header block; false when it does not decode.
bool inflate(Inflater& inflater, std::string_view block, std::vector<std::pair<std::string, std::string>>* fields) {
  const auto* in = reinterpret_cast<const uint8_t*>(block.data());
  size_t left = block.size();
  for (;;) {
    nghttp2_nv nv;
    int flags = 0;
    ssize_t n = nghttp2_hd_inflate_hd2(inflater.p, &nv, &flags, in, left, 1);
    if (n < 0) return false;
    in += n;
    left -= static_cast<size_t>(n);
    if (flags & NGHTTP2_HD_INFLATE_EMIT) {
      fields->emplace_back(std::string(reinterpret_cast<char*>(nv.name), nv.namelen),
                           std::string(reinterpret_cast<char*>(nv.value), nv.valuelen));
    }
    if (flags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(inflater.p);
      return true;
    }
    if (n == 0 && left == 0) return false;  // cannot happen with in_final set
  }
}

// A frame's payload without its padding (and HEADERS priority fields); false when the padding
// does not fit.
bool unpad(const Frame& f, std::string_view* out) {
  std::string_view p = f.payload;
  size_t pad = 0;
  if (f.flags & kPadded) {
    if (p.empty()) return false;
    pad = static_cast<unsigned char>(p[0]);
    p.remove_prefix(1);
  }
  if (f.type == kHeaders && (f.flags & kPriorityFlag)) {
    if (p.size() < 5) return false;
    p.remove_prefix(5);
  }
  if (pad > p.size()) return false;
  *out = p.substr(0, p.size() - pad);
  return true;
}

std::string fmt(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* format, ...) {
  char m[256];
  va_list args;
  va_start(args, format);
  std::vsnprintf(m, sizeof m, format, args);
  va_end(args);
  return m;
}

struct StreamState {
  bool final = false;  // a final (non-1xx) response's HEADERS was sent
  bool ended = false;  // END_STREAM or RST_STREAM from the server
  long long content_length = -1;
  unsigned long long data = 0;
};

// Checks the server's bytes. `cut_ok`: they may end in the middle of a frame (or be empty).
// Returns an error, or "" when they hold; `*status` gets the :status of stream 1's response.
std::string check_frames(std::string_view out, const InputScan& scan, bool cut_ok, int* status = nullptr) {
  Stats& stats = status ? ignored : ::stats;
  Inflater inflater;
  std::map<uint32_t, StreamState> streams;
  uint32_t goaway_last = UINT32_MAX;
  int64_t block_stream = -1;  // a header block in progress: its stream, flags and bytes so far
  uint8_t block_flags = 0;
  std::string block;
  bool first = true;
  auto end_block = [&]() -> std::string {
    const uint32_t id = static_cast<uint32_t>(block_stream);
    block_stream = -1;
    std::vector<std::pair<std::string, std::string>> fields;
    if (!inflate(inflater, block, &fields)) return fmt("the header block on stream %u does not decode (HPACK)", id);
    StreamState& st = streams[id];
    if (fields.empty() || fields[0].first != ":status") {
      if (st.final && (block_flags & kEndStream)) return "";  // trailers
      return fmt("a header block on stream %u does not start with :status", id);
    }
    if (st.final) return fmt("a second response on stream %u", id);
    const std::string& s = fields[0].second;
    if (s.size() != 3 || s[0] < '1' || s[0] > '5' || !std::isdigit(static_cast<unsigned char>(s[1])) ||
        !std::isdigit(static_cast<unsigned char>(s[2]))) {
      return fmt("a :status on stream %u that is not 3 digits 100-599", id);
    }
    const int code = std::atoi(s.c_str());
    if (id == 1 && status) *status = code;
    ++stats.responses;
    ++stats.by_class[code / 100];
    if (code >= 200) st.final = true;
    for (const auto& [name, value] : fields) {
      if (name == "content-length") st.content_length = std::atoll(value.c_str());
    }
    if (block_flags & kEndStream) {
      if (code < 200) return fmt("a 1xx response with END_STREAM on stream %u", id);
      st.ended = true;
    }
    return "";
  };
  while (out.size() >= 9) {
    Frame f = frame_at(out);
    if (f.length > scan.max_frame) return fmt("a frame of %u bytes, over the max frame size %u", f.length, scan.max_frame);
    if (f.payload.size() < f.length) break;  // cut short
    out.remove_prefix(9 + f.length);
    ++stats.frames;
    const uint32_t id = f.stream;
    if (first && (f.type != kSettings || (f.flags & kAck))) return "the server's first frame is not its SETTINGS";
    first = false;
    if (block_stream >= 0 && (f.type != kContinuation || id != block_stream)) {
      return fmt("a frame of type %u interleaves the header block on stream %lld", f.type,
                 static_cast<long long>(block_stream));
    }
    const bool on_stream0 = f.type == kSettings || f.type == kPing || f.type == kGoaway;
    if (on_stream0 != (id == 0) && f.type != kWindowUpdate && f.type <= kContinuation) {
      return on_stream0 ? fmt("a frame of type %u on stream %u, not 0", f.type, id) : fmt("a frame of type %u on stream 0", f.type);
    }
    std::string_view payload;
    switch (f.type) {
      case kData: {
        StreamState& st = streams[id];
        if (!st.final || st.ended) return fmt("DATA on stream %u %s", id, st.ended ? "after its end" : "before a response");
        if (!unpad(f, &payload)) return fmt("a DATA frame on stream %u with more padding than payload", id);
        st.data += payload.size();
        if (f.flags & kEndStream) {
          st.ended = true;
          if (st.content_length >= 0 && st.data != 0 && st.data != static_cast<unsigned long long>(st.content_length)) {
            return fmt("a body of %llu bytes on stream %u, not its content-length %lld", st.data, id, st.content_length);
          }
        }
        break;
      }
      case kHeaders:
        if (id % 2 == 0) return fmt("HEADERS on stream %u, not an odd (client) stream", id);
        if (!scan.opened.count(id)) return fmt("HEADERS on stream %u, which the input never opened", id);
        if (streams[id].ended) return fmt("HEADERS on stream %u after the server ended it", id);
        if (id > goaway_last) return fmt("HEADERS on stream %u after a GOAWAY with last-stream-id %u", id, goaway_last);
        if (!unpad(f, &payload)) return fmt("a HEADERS frame on stream %u with more padding than payload", id);
        block_stream = id;
        block_flags = f.flags;
        block.assign(payload);
        if (f.flags & kEndHeaders) {
          if (std::string e = end_block(); !e.empty()) return e;
        }
        break;
      case kContinuation:
        if (block_stream < 0) return fmt("CONTINUATION on stream %u outside a header block", id);
        block.append(f.payload);
        if (f.flags & kEndHeaders) {
          if (std::string e = end_block(); !e.empty()) return e;
        }
        break;
      case kPriority:
        if (f.length != 5) return fmt("PRIORITY of %u bytes on stream %u", f.length, id);
        break;
      case kRst:
        if (f.length != 4) return fmt("RST_STREAM of %u bytes on stream %u", f.length, id);
        streams[id].ended = true;
        break;
      case kSettings:
        if ((f.flags & kAck) ? f.length != 0 : f.length % 6 != 0) return fmt("SETTINGS of %u bytes (flags %u)", f.length, f.flags);
        break;
      case kPushPromise:
        return fmt("PUSH_PROMISE on stream %u: the server never pushes", id);
      case kPing:
        if (f.length != 8) return fmt("PING of %u bytes", f.length);
        break;
      case kGoaway: {
        if (f.length < 8) return fmt("GOAWAY of %u bytes", f.length);
        ++stats.goaways;
        const uint32_t last = be(reinterpret_cast<const unsigned char*>(f.payload.data()), 4) & 0x7fffffff;
        if (last > goaway_last) return fmt("GOAWAY last-stream-id %u after %u: it increased", last, goaway_last);
        goaway_last = last;
        break;
      }
      case kWindowUpdate:
        if (f.length != 4) return fmt("WINDOW_UPDATE of %u bytes on stream %u", f.length, id);
        if ((be(reinterpret_cast<const unsigned char*>(f.payload.data()), 4) & 0x7fffffff) == 0) {
          return fmt("WINDOW_UPDATE with increment 0 on stream %u", id);
        }
        break;
      default:  // an extension frame: allowed
        break;
    }
  }
  if (first && !cut_ok) return "the server closed the connection without sending its SETTINGS";
  if (!out.empty()) {
    ++stats.cut;
    if (!cut_ok) return fmt("the server's bytes end in the middle of a frame (%zu bytes left over)", out.size());
  }
  if (block_stream >= 0 && !cut_ok) {
    return fmt("the connection ended inside the header block on stream %lld", static_cast<long long>(block_stream));
  }
  return "";
}

std::string hex(std::string_view s) {
  std::string out;
  char b[4];
  for (unsigned char c : s.substr(0, 4096)) {
    std::snprintf(b, sizeof b, "%02x", c);
    out += b;
  }
  return out;
}

[[noreturn]] void fail(const std::string& why, std::string_view input, const Exchange& x) {
  std::fprintf(stderr, "fuzz_http2: %s\n(connection %s after %.0f ms)\ninput after the preface (%zu bytes, hex):\n%s\n"
               "server bytes (%zu, hex):\n%s\n",
               why.c_str(), x.eof ? "closed" : x.reset ? "reset" : x.timeout ? "still open" : "?",
               std::chrono::duration<double, std::milli>(x.took).count(), input.size(), hex(input).c_str(),
               x.response.size(), hex(x.response).c_str());
  std::abort();
}

// ---- Building client frames (seeds and the liveness check) ----

std::string u32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload) {
  const size_t n = payload.size();
  std::string f{static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n), static_cast<char>(type),
                static_cast<char>(flags)};
  return f + u32(stream) + std::string(payload);
}

// An HPACK integer (RFC 7541 5.1) with an N-bit prefix, `first` holding the bits above it.
std::string hpack_int(int prefix_bits, uint8_t first, size_t v) {
  const size_t max = (size_t{1} << prefix_bits) - 1;
  if (v < max) return std::string(1, static_cast<char>(first | v));
  std::string out(1, static_cast<char>(first | max));
  for (v -= max; v >= 128; v >>= 7) out += static_cast<char>(0x80 | (v & 0x7f));
  return out + static_cast<char>(v);
}

// A literal field with a new name, no Huffman; `indexing`: added to the dynamic table.
std::string literal(std::string_view name, std::string_view value, bool indexing = false) {
  std::string out = indexing ? std::string(1, '\x40') : std::string(1, '\0');
  return out + hpack_int(7, 0, name.size()) + std::string(name) + hpack_int(7, 0, value.size()) + std::string(value);
}

std::string request_block(std::string_view method, std::string_view path, std::string_view type,
                          std::string_view extra = {}) {
  return literal(":method", method) + literal(":scheme", "http") + literal(":path", path) +
         literal(":authority", "127.0.0.1:4318") + (type.empty() ? "" : literal("content-type", type)) +
         std::string(extra);
}

std::string settings(const std::vector<std::pair<uint16_t, uint32_t>>& entries = {}) {
  std::string p;
  for (const auto& [id, value] : entries) p += std::string{static_cast<char>(id >> 8), static_cast<char>(id)} + u32(value);
  return frame(kSettings, 0, 0, p);
}

std::string headers(uint32_t stream, std::string_view block, bool end_stream = false) {
  return frame(kHeaders, kEndHeaders | (end_stream ? kEndStream : 0), stream, block);
}

std::string data(uint32_t stream, std::string_view body, bool end_stream = true) {
  return frame(kData, end_stream ? kEndStream : 0, stream, body);
}

std::string traces_pb() {
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest traces;
  auto* span = traces.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(std::string(16, '\x01'));
  span->set_span_id(std::string(8, '\x02'));
  span->set_name("GET /");
  return traces.SerializeAsString();
}

constexpr char kPb[] = "application/x-protobuf";
constexpr char kJson[] = "application/json";

std::string valid_post() {
  const std::string body = traces_pb();
  return settings() +
         headers(1, request_block("POST", "/v1/traces", kPb, literal("content-length", std::to_string(body.size())))) +
         data(1, body);
}

// A well-formed POST must still get :status 200.
void check_alive(std::string_view last_input) {
  const std::string request = std::string(kPreface) + valid_post();
  const InputScan scan = scan_input(valid_post());
  for (int attempt = 0;; ++attempt) {
    int status = 0;
    Exchange x = exchange(request, 2s, [&](const std::string& r) {
      status = 0;
      return check_frames(r, scan, true, &status).empty() && status != 0;
    });
    if (x.connected && status == 200) return;
    if (attempt == 1) {
      fail(!x.connected ? "the server no longer accepts connections (after the input below)"
                        : "the server no longer answers a well-formed h2c POST with :status 200 (after the input below)",
           last_input, x);
    }
    std::this_thread::sleep_for(500ms);  // once more, in case the machine is just very busy
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static unsigned long count = 0;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (size > kMaxInput) return 0;
  if (count++ % kCheckEvery == 0) check_alive(input);
  Exchange x = exchange(std::string(kPreface) + std::string(input), kDeadline);
  if (!x.connected) {
    check_alive(input);  // fails unless it was a passing hiccup
    return 0;
  }
  ++stats.inputs;
  if (x.reset) ++stats.resets;
  if (x.timeout) fail("the server did not close the connection within 5 s (the client half-closes after its input)", input, x);
  // The server writes all it has before it reads again, and only its write timeout closes the
  // connection in the middle of a write: a cut is only possible after that long.
  const bool cut_ok = x.reset || x.took >= kServerTimeout;
  if (std::string why = check_frames(x.response, scan_input(input), cut_ok); !why.empty()) fail(why, input, x);
  return 0;
}

std::vector<std::string> fuzz_seeds() {
  const std::string pb = traces_pb();
  std::string gz;
  otlp::gzip_compress(pb, &gz);
  const std::string logs_json = R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]})";
  const std::string metrics_json =
      R"({"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","sum":{"dataPoints":[{"asInt":"5"}]}}]}]}]})";
  const std::string post = request_block("POST", "/v1/traces", kPb);
  std::vector<std::string> seeds;
  // 0: a POST /v1/traces, HEADERS then DATA with END_STREAM.
  seeds.push_back(valid_post());
  // 1: the same header block split over HEADERS and two CONTINUATION frames.
  seeds.push_back(settings() + frame(kHeaders, 0, 1, post.substr(0, 20)) + frame(kContinuation, 0, 1, post.substr(20, 30)) +
                  frame(kContinuation, kEndHeaders, 1, post.substr(50)) + data(1, pb));
  // 2: three streams open at once, their DATA interleaved, the body of one in two frames.
  seeds.push_back(settings() + headers(1, post) + headers(3, request_block("POST", "/v1/logs", kJson)) +
                  headers(5, request_block("POST", "/v1/metrics", kJson)) + data(3, logs_json.substr(0, 10), false) +
                  data(1, pb) + data(5, metrics_json) + data(3, logs_json.substr(10)));
  // 3: a stream reset by the client after its HEADERS, then another request.
  seeds.push_back(settings() + headers(1, post) + frame(kRst, 0, 1, u32(NGHTTP2_CANCEL)) + headers(3, post) + data(3, pb));
  // 4: SETTINGS with values, the ACK of the server's, PING, WINDOW_UPDATE on the connection and a stream.
  seeds.push_back(settings({{NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 256},
                            {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                            {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 100},
                            {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 32768},
                            {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 8192}}) +
                  frame(kSettings, kAck, 0, "") + frame(kPing, 0, 0, "pingpong") + frame(kWindowUpdate, 0, 0, u32(1 << 20)) +
                  headers(1, post) + data(1, pb) + frame(kWindowUpdate, 0, 1, u32(4096)) + frame(kPing, kAck, 0, "12345678"));
  // 5: a request, then GOAWAY from the client.
  seeds.push_back(valid_post() + frame(kGoaway, 0, 0, u32(0) + u32(NGHTTP2_NO_ERROR) + "bye"));
  // 6: DATA padded, HEADERS padded and with priority fields, a PRIORITY frame, an unknown frame type.
  seeds.push_back(settings() + frame(kHeaders, kEndHeaders | kPadded | kPriorityFlag, 1,
                                     std::string(1, '\x03') + u32(0) + "\x10" + post + std::string(3, '\0')) +
                  frame(kPriority, 0, 3, u32(1) + "\x20") + frame(0xfa, 0, 0, "extension") +
                  frame(kData, kEndStream | kPadded, 1, std::string(1, '\x07') + pb + std::string(7, '\0')));
  // 7: a gzip-encoded body.
  seeds.push_back(settings() + headers(1, request_block("POST", "/v1/traces", kPb, literal("content-encoding", "gzip"))) +
                  data(1, gz));
  // 8: a header list over the 16 KiB limit (a 4000-byte field indexed once, then referred to
  // five times), then a request on another stream.
  seeds.push_back(settings() + headers(1, post + literal("x-big", std::string(4000, 'b'), true) + std::string(5, '\xbe')) +
                  headers(3, post) + data(3, pb));
  // 9: more CONTINUATION frames than allowed (8).
  {
    std::string s = settings() + frame(kHeaders, 0, 1, post);
    for (int i = 0; i < 10; ++i) s += frame(kContinuation, i == 9 ? kEndHeaders : 0, 1, literal("x-c", "continued"));
    seeds.push_back(s + data(1, pb));
  }
  // 10: a declared content-length over the 64 KiB limit (413 from the headers), then the start of the body.
  seeds.push_back(settings() + headers(1, request_block("POST", "/v1/traces", kPb, literal("content-length", "100000"))) +
                  data(1, pb, false));
  // 11: an answer with a body (404) held back by a window of 10 bytes (a WINDOW_UPDATE in the
  // same write would arrive before the answer is written).
  seeds.push_back(settings({{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 10}}) +
                  headers(1, request_block("POST", "/v1/nope", kJson)) + data(1, "{}"));
  // 12: trailers after the body; wrong method, unknown path, no content type.
  seeds.push_back(settings() + headers(1, post) + data(1, pb, false) + headers(1, literal("x-trailer", "t"), true) +
                  headers(3, request_block("GET", "/v1/traces", ""), true) +
                  headers(5, request_block("POST", "/v2/nope", kJson)) + data(5, "{}") +
                  headers(7, request_block("POST", "/v1/logs", "")) + data(7, logs_json));
  // 13: rapid reset, a few rounds of HEADERS + RST_STREAM.
  {
    std::string s = settings();
    for (uint32_t id = 1; id < 40; id += 2) s += headers(id, post) + frame(kRst, 0, id, u32(NGHTTP2_CANCEL));
    seeds.push_back(s);
  }
  return seeds;
}

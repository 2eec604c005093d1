#include "otlp/compression.h"

#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <memory>

namespace otlpd::otlp {

namespace {

// zlib counts in uInt (32 bits); larger inputs are fed in slices of this size.
constexpr size_t kZlibSlice = size_t{1} << 30;
// First output buffer when the input gives no better guess.
constexpr size_t kMinInitialOutput = 16 * 1024;
// zstd window allowed even when max_output is smaller: common streaming encoders (zstd levels up
// to ~18, Go's klauspost default) declare up to 8 MiB windows for frames without a content size.
constexpr int kMinWindowLog = 23;
// zstd's own default cap (ZSTD_WINDOWLOG_LIMIT_DEFAULT, only visible with ZSTD_STATIC_LINKING_ONLY).
constexpr int kMaxWindowLog = 27;

// Grows *s to `size` bytes allocating exactly `size` when the capacity is short. libstdc++'s own
// growth may double the capacity, which could overshoot max_output by up to 2x.
void grow_exact(std::string* s, size_t size) {
  if (size <= s->capacity()) {
    s->resize(size);
    return;
  }
  std::string bigger;
  bigger.reserve(size);
  bigger.append(*s);
  bigger.resize(size);
  s->swap(bigger);
}

// The output buffer of a decompression: grows geometrically but never beyond max_output. Once
// full it hands out a one-byte probe so the caller learns whether the data goes on (too_large)
// or ends exactly at the limit (ok).
class OutputWindow {
 public:
  OutputWindow(std::string* out, size_t input_size, size_t max_output) : out_(out), max_(max_output) {
    out_->clear();
    initial_ = std::min(max_, std::max(kMinInitialOutput, input_size * 4));
  }

  // Where the next bytes go and how many fit.
  char* next() { return probing() ? &probe_ : out_->data() + used_; }
  size_t avail() {
    if (used_ == out_->size() && out_->size() < max_) {
      size_t want = out_->empty() ? initial_ : out_->size() * 2;
      grow_exact(out_, std::min(max_, want));
    }
    return probing() ? 1 : out_->size() - used_;
  }
  // Records that `n` bytes were written to next(); false if that went past max_output.
  bool advance(size_t n) {
    if (probing()) return n == 0;
    used_ += n;
    return true;
  }
  void finish() { out_->resize(used_); }

 private:
  bool probing() const { return used_ == max_; }

  std::string* out_;
  size_t max_;
  size_t initial_ = 0;
  size_t used_ = 0;
  char probe_ = 0;
};

struct InflateStream {
  z_stream zs{};
  bool ready = false;
  explicit InflateStream(int window_bits) { ready = inflateInit2(&zs, window_bits) == Z_OK; }
  ~InflateStream() {
    if (ready) inflateEnd(&zs);
  }
};

struct DeflateStream {
  z_stream zs{};
  bool ready = false;
  explicit DeflateStream(int level) {
    ready = deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~DeflateStream() {
    if (ready) deflateEnd(&zs);
  }
};

// Moves the next slice of `in` into zs.next_in when zlib has used up the previous one.
void refill(z_stream& zs, std::string_view& rest) {
  if (zs.avail_in != 0 || rest.empty()) return;
  size_t n = std::min(rest.size(), kZlibSlice);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(rest.data()));
  zs.avail_in = static_cast<uInt>(n);
  rest.remove_prefix(n);
}

int zstd_window_log_max(size_t max_output) {
  // A window wider than the whole output is never needed; bound the decoder's buffer by it.
  int log = max_output <= 1 ? 1 : static_cast<int>(std::bit_width(max_output - 1));
  return std::clamp(log, kMinWindowLog, kMaxWindowLog);
}

using DCtxPtr = std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)>;

}  // namespace

void gzip_compress(std::string_view in, std::string* out, int level) {
  DeflateStream d(std::clamp(level, 1, 9));
  if (!d.ready) return;
  size_t start = out->size();
  std::string_view rest = in;
  int ret = Z_OK;
  while (ret != Z_STREAM_END) {
    refill(d.zs, rest);
    if (out->size() - start == d.zs.total_out) {
      // Output full (or first round): room for the bound of what is left, at least 64 bytes.
      out->resize(out->size() + std::max<size_t>(64, deflateBound(&d.zs, d.zs.avail_in + rest.size())));
    }
    size_t used = start + d.zs.total_out;
    d.zs.next_out = reinterpret_cast<Bytef*>(out->data() + used);
    d.zs.avail_out = static_cast<uInt>(std::min(out->size() - used, kZlibSlice));
    ret = deflate(&d.zs, rest.empty() ? Z_FINISH : Z_NO_FLUSH);
    if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR) break;
  }
  out->resize(start + d.zs.total_out);
}

void zstd_compress(std::string_view in, std::string* out, int level) {
  size_t start = out->size();
  out->resize(start + ZSTD_compressBound(in.size()));
  level = std::clamp(level, ZSTD_minCLevel(), ZSTD_maxCLevel());
  size_t n = ZSTD_compress(out->data() + start, out->size() - start, in.data(), in.size(), level);
  out->resize(ZSTD_isError(n) ? start : start + n);
}

namespace {

// window_bits selects the framing: 15 + 16 gzip only, 15 zlib only.
DecompressResult inflate_framed(std::string_view in, size_t max_output, std::string* out, int window_bits) {
  OutputWindow window(out, in.size(), max_output);
  if (in.empty()) return DecompressResult::malformed;  // not even a header
  InflateStream s(window_bits);
  if (!s.ready) return DecompressResult::malformed;
  std::string_view rest = in;
  for (;;) {
    refill(s.zs, rest);
    size_t avail = window.avail();
    s.zs.next_out = reinterpret_cast<Bytef*>(window.next());
    s.zs.avail_out = static_cast<uInt>(std::min(avail, kZlibSlice));
    uInt before = s.zs.avail_out;
    int ret = inflate(&s.zs, Z_NO_FLUSH);
    if (!window.advance(before - s.zs.avail_out)) return DecompressResult::too_large;
    if (ret == Z_STREAM_END) {
      if (s.zs.avail_in == 0 && rest.empty()) break;
      // Concatenated members (RFC 1952 2.2) decode as one stream, as gunzip does.
      if (inflateReset(&s.zs) != Z_OK) return DecompressResult::malformed;
      continue;
    }
    if (ret == Z_BUF_ERROR) {
      // No progress: with output room left that means the input ended mid-stream.
      if (s.zs.avail_out > 0) return DecompressResult::malformed;
      continue;
    }
    if (ret != Z_OK) return DecompressResult::malformed;
  }
  window.finish();
  return DecompressResult::ok;
}

}  // namespace

DecompressResult gzip_decompress(std::string_view in, size_t max_output, std::string* out) {
  return inflate_framed(in, max_output, out, 15 + 16);
}

DecompressResult zlib_decompress(std::string_view in, size_t max_output, std::string* out) {
  return inflate_framed(in, max_output, out, 15);
}

DecompressResult zstd_decompress(std::string_view in, size_t max_output, std::string* out) {
  OutputWindow window(out, in.size(), max_output);
  if (in.empty()) return DecompressResult::malformed;
  // A frame that declares its size up front is refused before any work when too big.
  unsigned long long declared = ZSTD_getFrameContentSize(in.data(), in.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) return DecompressResult::malformed;
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared > max_output) return DecompressResult::too_large;

  DCtxPtr dctx(ZSTD_createDCtx(), &ZSTD_freeDCtx);
  if (!dctx) return DecompressResult::malformed;
  ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_windowLogMax, zstd_window_log_max(max_output));
  ZSTD_inBuffer src{in.data(), in.size(), 0};
  for (;;) {
    size_t avail = window.avail();
    ZSTD_outBuffer dst{window.next(), avail, 0};
    size_t ret = ZSTD_decompressStream(dctx.get(), &dst, &src);
    if (ZSTD_isError(ret)) {
      // A window beyond what the limit allows is a size refusal, not corrupt data.
      bool window_too_large = ZSTD_getErrorCode(ret) == ZSTD_error_frameParameter_windowTooLarge;
      return window_too_large ? DecompressResult::too_large : DecompressResult::malformed;
    }
    if (!window.advance(dst.pos)) return DecompressResult::too_large;
    bool input_done = src.pos == src.size;
    if (ret == 0 && input_done) break;      // last frame complete and flushed
    if (ret == 0) continue;                 // next frame follows (the context resets itself)
    if (input_done && dst.pos < dst.size) return DecompressResult::malformed;  // truncated frame
  }
  window.finish();
  return DecompressResult::ok;
}

}  // namespace otlpd::otlp

#include "security/attack_payloads.h"

#include <zlib.h>
#include <zstd.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <vector>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace security {

namespace {

constexpr size_t kMiB = size_t{1} << 20;

const std::string& zero_mib() {
  static const std::string zeros(kMiB, '\0');
  return zeros;
}

void put_le32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

// A gzip deflate stream fed piece by piece; each run() returns the bytes that piece produced.
class Deflater {
 public:
  Deflater() {
    if (deflateInit2(&zs_, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) throw std::runtime_error("deflateInit2");
  }
  ~Deflater() { deflateEnd(&zs_); }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  std::string run(std::string_view in, int flush) {
    std::string out;
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = static_cast<uInt>(in.size());
    char buf[1 << 16];
    for (;;) {
      zs_.next_out = reinterpret_cast<Bytef*>(buf);
      zs_.avail_out = sizeof buf;
      const int ret = deflate(&zs_, flush);
      if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR) throw std::runtime_error("deflate");
      out.append(buf, sizeof buf - zs_.avail_out);
      // Done once the input is used and the flush did not stop for lack of output room.
      if (ret == Z_STREAM_END || (zs_.avail_in == 0 && zs_.avail_out != 0 && flush != Z_FINISH)) return out;
    }
  }

 private:
  z_stream zs_{};
};

// The same for a zstd frame (level 1, no checksum, content size unknown).
class ZstdCompressor {
 public:
  ZstdCompressor() : cctx_(ZSTD_createCCtx(), &ZSTD_freeCCtx) {
    if (!cctx_) throw std::runtime_error("ZSTD_createCCtx");
    ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_compressionLevel, 1);
  }

  std::string run(std::string_view in, ZSTD_EndDirective mode) {
    std::string out;
    ZSTD_inBuffer src{in.data(), in.size(), 0};
    char buf[1 << 16];
    for (;;) {
      ZSTD_outBuffer dst{buf, sizeof buf, 0};
      const size_t left = ZSTD_compressStream2(cctx_.get(), &dst, &src, mode);
      if (ZSTD_isError(left)) throw std::runtime_error(ZSTD_getErrorName(left));
      out.append(buf, dst.pos);
      if (left == 0 && src.pos == src.size) return out;
    }
  }

 private:
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx_;
};

// Compressing gigabytes of zeros for real takes seconds per GiB. But the encoders are periodic:
// once they are in their steady state, every further MiB of zeros followed by a flush encodes to
// the same bytes. So compress three MiB for real (the first carries the header and the warm-up,
// the third proves the second is the repeating unit), repeat the unit, and end with the encoder's
// own ending. Returns {first, unit, end}.
template <typename Encoder, typename Mode>
std::vector<std::string> periodic_parts(Encoder& e, Mode flush, Mode finish) {
  std::string first = e.run(zero_mib(), flush);
  std::string unit = e.run(zero_mib(), flush);
  if (e.run(zero_mib(), flush) != unit) throw std::logic_error("the encoder's output for zeros does not repeat");
  std::string end = e.run({}, finish);
  return {std::move(first), std::move(unit), std::move(end)};
}

std::string repeat_parts(const std::vector<std::string>& parts, size_t mib, size_t end_size) {
  std::string out;
  out.reserve(parts[0].size() + (mib - 1) * parts[1].size() + parts[2].size());
  out += parts[0];
  for (size_t i = 1; i < mib; ++i) out += parts[1];
  out.append(parts[2], 0, end_size);
  return out;
}

// protobuf wire format: a length-delimited field's key for field `number`, and varints.
char len_key(int number) { return static_cast<char>((number << 3) | 2); }

size_t varint_size(size_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void put_varint(std::string& out, size_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

// One message level of a nested protobuf: `before` (its leading fields), then field `field`
// holding the next level.
struct Level {
  std::string before;
  int field;
};

// The levels (outermost first) around `core`, written front to back with no recursion and no
// copying: a message's length is known once the lengths of those inside it are, so they are
// computed from the inside out first.
std::string nest(const std::vector<Level>& levels, const std::string& core) {
  std::vector<size_t> size(levels.size() + 1);
  size[levels.size()] = core.size();
  for (size_t i = levels.size(); i-- > 0;) {
    size[i] = levels[i].before.size() + 1 + varint_size(size[i + 1]) + size[i + 1];
  }
  std::string out;
  out.reserve(size[0]);
  for (size_t i = 0; i < levels.size(); ++i) {
    out += levels[i].before;
    out += len_key(levels[i].field);
    put_varint(out, size[i + 1]);
  }
  out += core;
  return out;
}

}  // namespace

std::string gzip_zeros(size_t mib) {
  if (mib == 0) throw std::invalid_argument("gzip_zeros: at least 1 MiB");
  Deflater d;
  const auto parts = periodic_parts(d, Z_FULL_FLUSH, Z_FINISH);
  // The encoder's ending is its last block, then the gzip trailer: CRC-32 and length (mod 2^32)
  // of what it saw. Those two are recomputed for `mib` MiB.
  std::string out = repeat_parts(parts, mib, parts[2].size() - 8);
  const uLong chunk_crc = crc32(0, reinterpret_cast<const Bytef*>(zero_mib().data()), kMiB);
  uLong crc = chunk_crc;
  for (size_t i = 1; i < mib; ++i) crc = crc32_combine(crc, chunk_crc, kMiB);
  put_le32(out, static_cast<uint32_t>(crc));
  put_le32(out, static_cast<uint32_t>(mib * kMiB));
  return out;
}

std::string zstd_zeros(size_t mib, bool declare_size) {
  if (mib == 0) throw std::invalid_argument("zstd_zeros: at least 1 MiB");
  ZstdCompressor z;
  // Without a checksum the frame ends with its last block alone: nothing depends on the length.
  const auto parts = periodic_parts(z, ZSTD_e_flush, ZSTD_e_end);
  std::string out = repeat_parts(parts, mib, parts[2].size());
  if (declare_size) {
    // The frame header (RFC 8878 3.1.1.1): magic (4 bytes), descriptor, window descriptor, then
    // the optional content size. A streamed frame has neither a content size nor a dictionary
    // and is not single-segment; set the descriptor's size flag to 3 (8 bytes) and insert the
    // size after the window descriptor. The decoder checks it against what the blocks produce.
    const auto descriptor = static_cast<unsigned char>(out.at(4));
    if ((descriptor & 0xE3) != 0) throw std::logic_error("zstd_zeros: unexpected frame header layout");
    out[4] = static_cast<char>(descriptor | 0xC0);
    std::string size;
    const uint64_t bytes = uint64_t{mib} * kMiB;
    for (int i = 0; i < 8; ++i) size += static_cast<char>((bytes >> (8 * i)) & 0xff);
    out.insert(6, size);
  }
  return out;
}

std::string gzip_bytes(std::string_view in) {
  Deflater d;
  return d.run(in, Z_FINISH);
}

std::string zstd_bytes(std::string_view in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 1);
  if (ZSTD_isError(n)) throw std::runtime_error(ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

std::optional<std::string> gunzip(std::string_view in, size_t max_output) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return std::nullopt;
  std::string out;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  char buf[1 << 16];
  int ret = Z_OK;
  while (ret == Z_OK && out.size() <= max_output) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    ret = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
  }
  const bool complete = ret == Z_STREAM_END && zs.avail_in == 0 && out.size() <= max_output;
  inflateEnd(&zs);
  return complete ? std::optional<std::string>(std::move(out)) : std::nullopt;
}

std::optional<std::string> unzstd(std::string_view in, size_t max_output) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(ZSTD_createDCtx(), &ZSTD_freeDCtx);
  std::string out;
  ZSTD_inBuffer src{in.data(), in.size(), 0};
  char buf[1 << 16];
  size_t ret = 1;
  while (out.size() <= max_output) {
    ZSTD_outBuffer dst{buf, sizeof buf, 0};
    ret = ZSTD_decompressStream(dctx.get(), &dst, &src);
    if (ZSTD_isError(ret)) return std::nullopt;
    out.append(buf, dst.pos);
    if (ret == 0 && src.pos == src.size) break;
    if (src.pos == src.size && dst.pos == 0) return std::nullopt;  // truncated
  }
  return out.size() <= max_output ? std::optional<std::string>(std::move(out)) : std::nullopt;
}

std::string nested_any_value_protobuf(size_t depth) {
  // ExportTraceServiceRequest.resource_spans(1) > ResourceSpans.resource(1) > Resource.attributes(1)
  // > KeyValue{key(1) "k", value(2)} > AnyValue ...
  const std::string key_k = std::string(1, len_key(1)) + '\x01' + 'k';
  std::vector<Level> levels = {{"", 1}, {"", 1}, {"", 1}, {key_k, 2}};
  for (size_t i = 0; i < depth - 1; ++i) {
    if (i % 2 == 0) {
      // AnyValue.kvlist_value(6) > KeyValueList.values(1) > KeyValue{key "k", value(2)} > AnyValue
      levels.push_back({"", 6});
      levels.push_back({"", 1});
      levels.push_back({key_k, 2});
    } else {
      // AnyValue.array_value(5) > ArrayValue.values(1) > AnyValue
      levels.push_back({"", 5});
      levels.push_back({"", 1});
    }
  }
  // The innermost AnyValue: string_value(1) "x".
  return nest(levels, std::string(1, len_key(1)) + '\x01' + 'x');
}

std::string nested_any_value_json(size_t depth) {
  const std::string kv_open = R"({"kvlistValue":{"values":[{"key":"k","value":)";
  const std::string kv_close = "}]}}";
  const std::string array_open = R"({"arrayValue":{"values":[)";
  const std::string array_close = "]}}";
  std::string out = R"({"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":)";
  for (size_t i = 0; i < depth - 1; ++i) out += i % 2 == 0 ? kv_open : array_open;
  out += R"({"stringValue":"x"})";
  for (size_t i = depth - 1; i-- > 0;) out += i % 2 == 0 ? kv_close : array_close;
  out += "}]}}]}";
  return out;
}

std::string random_bytes(std::mt19937_64& rng, size_t n) {
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

std::string one_span_request(const std::string& name) {
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest request;
  auto* span = request.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(std::string(16, '\x11'));
  span->set_span_id(std::string(8, '\x22'));
  span->set_name(name);
  span->set_start_time_unix_nano(1'700'000'000'000'000'000);
  span->set_end_time_unix_nano(1'700'000'000'100'000'000);
  return request.SerializeAsString();
}

std::string span_with_zero_name(size_t bytes) { return one_span_request(std::string(bytes, '\0')); }

}  // namespace security

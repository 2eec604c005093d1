// Body compression for OTLP/HTTP and gRPC messages: gzip, zlib and zstd. Pure functions: safe from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace otlpd::otlp {

enum class DecompressResult { ok, malformed, too_large };

// Appends the gzip encoding of `in` to *out (level 1..9; 1 is fastest).
void gzip_compress(std::string_view in, std::string* out, int level = 1);
// Appends the zstd encoding of `in` to *out.
void zstd_compress(std::string_view in, std::string* out, int level = 1);
// Inflate into *out (replacing it). Stops with too_large as soon as the output would exceed
// `max_output` bytes, so a small hostile body cannot make otlpd allocate more than the limit.
DecompressResult gzip_decompress(std::string_view in, size_t max_output, std::string* out);
// zlib framing (RFC 1950): what gRPC calls "deflate".
DecompressResult zlib_decompress(std::string_view in, size_t max_output, std::string* out);
DecompressResult zstd_decompress(std::string_view in, size_t max_output, std::string* out);

}  // namespace otlpd::otlp

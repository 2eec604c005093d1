// Hostile request bodies for the attack tests: decompression bombs, deeply nested AnyValues and
// random bytes, plus the small valid requests a normal client sends. The big ones are built in
// time and memory proportional to their encoded size, never to what they expand to.
#pragma once

#include <cstddef>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace security {

// One gzip member holding `mib` MiB of zeros (about 1 KiB per MiB: deflate's ~1000:1 limit).
std::string gzip_zeros(size_t mib);
// One zstd frame holding `mib` MiB of zeros. Without `declare_size` its content size is not
// declared: a decoder cannot refuse it from the frame header and has to stream it. With it the
// header declares the true size (a decoder that trusts it to size its buffer allocates that much).
std::string zstd_zeros(size_t mib, bool declare_size = false);

// Plain gzip (one member) and zstd (one frame) encodings of `in`, for the valid control requests.
std::string gzip_bytes(std::string_view in);
std::string zstd_bytes(std::string_view in);

// Full decompressions for checking the bombs themselves: the output, or nullopt when the input
// is not one complete valid stream or its output would pass `max_output` bytes.
std::optional<std::string> gunzip(std::string_view in, size_t max_output);
std::optional<std::string> unzstd(std::string_view in, size_t max_output);

// An ExportTraceServiceRequest whose resource attribute holds `depth` AnyValues nested in each
// other (kvlist and array values alternately) around a string, as protobuf and as OTLP/JSON.
std::string nested_any_value_protobuf(size_t depth);
std::string nested_any_value_json(size_t depth);

// `n` bytes drawn from `rng` (the same bytes for the same seed on every platform).
std::string random_bytes(std::mt19937_64& rng, size_t n);

// A valid ExportTraceServiceRequest of one span named `name`, serialized.
std::string one_span_request(const std::string& name);
// The same with a name of `bytes` zeros: tiny once compressed, over any limit once not.
std::string span_with_zero_name(size_t bytes);

}  // namespace security

// gzip and zstd inflation of arbitrary bytes: never crash, never produce more than the limit.
#include <cstdlib>

#include "fuzz/fuzz_target.h"
#include "otlp/compression.h"

using namespace otlpd::otlp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kLimit = 1 << 20;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string out;
  if (gzip_decompress(in, kLimit, &out) == DecompressResult::ok && out.size() > kLimit) std::abort();
  out.clear();
  if (zstd_decompress(in, kLimit, &out) == DecompressResult::ok && out.size() > kLimit) std::abort();
  return 0;
}

std::vector<std::string> fuzz_seeds() {
  std::string text(4096, 'a');
  for (size_t i = 0; i < text.size(); i += 7) text[i] = static_cast<char>('a' + i % 26);
  std::string gz, zs, bomb_gz;
  gzip_compress(text, &gz);
  zstd_compress(text, &zs);
  gzip_compress(std::string(3 << 20, '\0'), &bomb_gz);
  return {gz, zs, bomb_gz};
}

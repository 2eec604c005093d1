#include "otlp/compression.h"

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#if defined(OTLPD_SANITIZED)
#include <sanitizer/allocator_interface.h>
#endif

// Records the largest single allocation, so the bomb tests can assert that no buffer near the
// inflated size was ever allocated (zlib and zstd use malloc only for small state).
namespace {
std::atomic<size_t> g_largest_allocation{0};

void note_allocation(size_t size) noexcept {
  size_t seen = g_largest_allocation.load(std::memory_order_relaxed);
  while (size > seen && !g_largest_allocation.compare_exchange_weak(seen, size, std::memory_order_relaxed)) {
  }
}
}  // namespace

#if defined(OTLPD_SANITIZED)
// A sanitizer runtime owns operator new (clang links its own statically, so it cannot be
// replaced); its allocator reports every allocation to this hook instead.
namespace {
[[maybe_unused]] const int g_hooks_installed = __sanitizer_install_malloc_and_free_hooks(
    [](const volatile void*, size_t size) { note_allocation(size); }, [](const volatile void*) {});
}  // namespace
#else
namespace {
void* tracked_malloc(size_t size) noexcept {
  note_allocation(size);
  return std::malloc(size == 0 ? 1 : size);
}
}  // namespace

// Every plain and nothrow form is replaced, so all of them pair with free().
void* operator new(size_t size) {
  if (void* p = tracked_malloc(size)) return p;
  throw std::bad_alloc();
}
void* operator new(size_t size, const std::nothrow_t&) noexcept { return tracked_malloc(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
#endif

namespace otlpd::otlp {
namespace {

using Decompress = DecompressResult (*)(std::string_view, size_t, std::string*);
using Compress = void (*)(std::string_view, std::string*, int);

struct Codec {
  const char* name;
  Compress compress;
  Decompress decompress;
};

const Codec kCodecs[] = {
    {"gzip", &gzip_compress, &gzip_decompress},
    {"zstd", &zstd_compress, &zstd_decompress},
};

std::string random_text(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>('a' + rng() % 8);  // compressible but not trivially
  return s;
}

std::string compressed(const Codec& c, std::string_view in, int level = 1) {
  std::string out;
  c.compress(in, &out, level);
  return out;
}

TEST_CASE("round trips for sizes around buffer boundaries", "[compression]") {
  for (const Codec& c : kCodecs) {
    for (size_t n : {size_t{1}, size_t{100}, size_t{16 * 1024}, size_t{65537}, size_t{3'000'000}}) {
      INFO(c.name << " size " << n);
      std::string in = random_text(n, static_cast<unsigned>(n));
      std::string out = "previous contents are replaced";
      REQUIRE(c.decompress(compressed(c, in), 10 << 20, &out) == DecompressResult::ok);
      CHECK(out == in);
    }
  }
}

TEST_CASE("compress appends to existing output", "[compression]") {
  for (const Codec& c : kCodecs) {
    std::string out = "prefix";
    c.compress("hello", &out, 6);
    REQUIRE(out.substr(0, 6) == "prefix");
    std::string plain;
    REQUIRE(c.decompress(std::string_view(out).substr(6), 100, &plain) == DecompressResult::ok);
    CHECK(plain == "hello");
  }
}

TEST_CASE("empty input", "[compression]") {
  for (const Codec& c : kCodecs) {
    INFO(c.name);
    std::string out = "x";
    // The encoding of nothing is a valid stream that decodes to nothing.
    REQUIRE(c.decompress(compressed(c, ""), 100, &out) == DecompressResult::ok);
    CHECK(out.empty());
    // Zero bytes are not a stream at all.
    CHECK(c.decompress("", 100, &out) == DecompressResult::malformed);
  }
}

TEST_CASE("malformed input", "[compression]") {
  std::string in = random_text(10000, 7);
  for (const Codec& c : kCodecs) {
    INFO(c.name);
    std::string out;
    CHECK(c.decompress("this is not compressed data", 1 << 20, &out) == DecompressResult::malformed);
    std::string good = compressed(c, in);
    // Truncated anywhere: never ok with the full text.
    for (size_t cut : {size_t{1}, size_t{5}, good.size() / 2, good.size() - 1}) {
      INFO("cut at " << cut);
      CHECK(c.decompress(std::string_view(good).substr(0, cut), 1 << 20, &out) == DecompressResult::malformed);
    }
    std::string corrupt = good;
    corrupt[corrupt.size() / 2] ^= 0x5a;
    corrupt[corrupt.size() / 2 + 1] ^= 0x5a;
    auto r = c.decompress(corrupt, 1 << 20, &out);
    CHECK((r == DecompressResult::malformed || out != in));
    // Trailing garbage after a complete stream.
    CHECK(c.decompress(good + "junk", 1 << 20, &out) == DecompressResult::malformed);
  }
}

TEST_CASE("gzip: concatenated members decode as one stream", "[compression]") {
  std::string two = compressed(kCodecs[0], "hello, ") + compressed(kCodecs[0], "world");
  std::string out;
  REQUIRE(gzip_decompress(two, 100, &out) == DecompressResult::ok);
  CHECK(out == "hello, world");
}

TEST_CASE("zstd: concatenated frames and frames without content size", "[compression]") {
  std::string two = compressed(kCodecs[1], "hello, ") + compressed(kCodecs[1], "world");
  std::string out;
  REQUIRE(zstd_decompress(two, 100, &out) == DecompressResult::ok);
  CHECK(out == "hello, world");
  // The smallest frame without a content size: magic, descriptor 0x00 (no size, window byte
  // follows), window descriptor, then one last raw block "abc".
  const unsigned char frame[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, 0x19, 0x00, 0x00, 'a', 'b', 'c'};
  REQUIRE(zstd_decompress(std::string_view(reinterpret_cast<const char*>(frame), sizeof frame), 100, &out) ==
          DecompressResult::ok);
  CHECK(out == "abc");
  CHECK(zstd_decompress(std::string_view(reinterpret_cast<const char*>(frame), sizeof frame), 2, &out) ==
        DecompressResult::too_large);
}

TEST_CASE("bomb: 100 MB of zeros stops at a 1 MB limit without a big allocation", "[compression]") {
  g_largest_allocation = 0;
  const std::string zeros(100u << 20, '\0');
  REQUIRE(g_largest_allocation.load() > (100u << 20));  // the tracking sees this process's allocations
  for (const Codec& c : kCodecs) {
    INFO(c.name);
    std::string bomb = compressed(c, zeros, 9);
    REQUIRE(bomb.size() < (1u << 20));
    std::string out;
    g_largest_allocation = 0;
    CHECK(c.decompress(bomb, 1u << 20, &out) == DecompressResult::too_large);
    CHECK(g_largest_allocation.load() <= (1u << 20) + 1);  // +1: std::string's terminating NUL
    CHECK(out.capacity() <= (1u << 20));
  }
}

TEST_CASE("zstd bomb without content size is stopped incrementally", "[compression]") {
  // Many copies of the small raw-block frame above have no declared size, so only the running
  // count can stop them.
  const unsigned char frame[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, 0x19, 0x00, 0x00, 'a', 'b', 'c'};
  std::string many;
  for (int i = 0; i < 1000; ++i) many.append(reinterpret_cast<const char*>(frame), sizeof frame);
  std::string out;
  CHECK(zstd_decompress(many, 2999, &out) == DecompressResult::too_large);
  CHECK(zstd_decompress(many, 3000, &out) == DecompressResult::ok);
  CHECK(out.size() == 3000);
}

TEST_CASE("exact limit: max_output bytes is ok, one more is too_large", "[compression]") {
  for (const Codec& c : kCodecs) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{16 * 1024}, size_t{1'000'003}}) {
      INFO(c.name << " size " << n);
      std::string in = random_text(n, 3);
      std::string body = compressed(c, in);
      std::string out;
      REQUIRE(c.decompress(body, n, &out) == DecompressResult::ok);
      CHECK(out == in);
      CHECK(out.capacity() <= std::max<size_t>(n, 30));  // 30: libstdc++'s smallest heap string
      if (n > 0) CHECK(c.decompress(body, n - 1, &out) == DecompressResult::too_large);
    }
  }
}

}  // namespace
}  // namespace otlpd::otlp

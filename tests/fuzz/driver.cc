// Runs a fuzz target without libFuzzer: every seed, then random mutations of them, until the time
// budget is spent. Usage: fuzz_x [--seconds N] [--seed S]. Exit code 0 unless the target aborted.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

#include "fuzz/fuzz_target.h"

namespace {

std::string mutate(const std::string& in, const std::vector<std::string>& seeds, std::mt19937_64& rng) {
  std::string s = in;
  const int edits = 1 + static_cast<int>(rng() % 8);
  for (int e = 0; e < edits; ++e) {
    switch (rng() % 6) {
      case 0:  // flip a bit
        if (!s.empty()) s[rng() % s.size()] ^= static_cast<char>(1u << (rng() % 8));
        break;
      case 1:  // set a byte to an interesting value
        if (!s.empty()) {
          static const char interesting[] = {0, 1, 0x7f, static_cast<char>(0x80), static_cast<char>(0xff), '"', '{', '['};
          s[rng() % s.size()] = interesting[rng() % sizeof interesting];
        }
        break;
      case 2:  // insert random bytes
        s.insert(s.begin() + static_cast<long>(s.empty() ? 0 : rng() % s.size()), 1 + rng() % 4,
                 static_cast<char>(rng()));
        break;
      case 3:  // delete a range
        if (!s.empty()) {
          size_t at = rng() % s.size();
          s.erase(at, 1 + rng() % std::min<size_t>(16, s.size() - at));
        }
        break;
      case 4: {  // splice with another seed
        const std::string& other = seeds[rng() % seeds.size()];
        if (!other.empty()) {
          size_t at = s.empty() ? 0 : rng() % s.size();
          size_t from = rng() % other.size();
          s = s.substr(0, at) + other.substr(from);
        }
        break;
      }
      case 5:  // duplicate a range
        if (!s.empty()) {
          size_t at = rng() % s.size();
          s.insert(at, s.substr(at, 1 + rng() % 32));
        }
        break;
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5;
  uint64_t seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--seed")) seed = std::strtoull(argv[i + 1], nullptr, 10);
  }
  std::vector<std::string> seeds = fuzz_seeds();
  seeds.push_back("");
  for (const auto& s : seeds) LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());

  std::mt19937_64 rng(seed);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  uint64_t runs = 0;
  std::vector<std::string> pool = seeds;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string input = mutate(pool[rng() % pool.size()], seeds, rng);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
    ++runs;
    // Keep some mutants as parents so edits compound, without growing without bound.
    if (pool.size() < 256 && rng() % 16 == 0) pool.push_back(std::move(input));
  }
  std::printf("%llu inputs, no failures\n", static_cast<unsigned long long>(runs));
  return 0;
}

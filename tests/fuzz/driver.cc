// Runs a fuzz target without libFuzzer: every seed and corpus file, then random mutations of them,
// until the time budget is spent. Exit code 0 unless the target aborted.
// Usage: fuzz_x [--seconds N] [--seed S] [--timeout T] [--corpus DIR]... [--write-seeds DIR]
//   --timeout T        one input running longer than T seconds (default 30; 0: no limit) fails the run
//   --corpus DIR       every regular file in DIR is one more input (replayed first, then mutated);
//                      tests/fuzz/corpus/<target>/ holds them, crash-* files among them
//   --write-seeds DIR  writes fuzz_seeds() to DIR/seed-<n> and exits (to refresh a corpus)
// When an input makes the process abort or crash, it is written to ./fuzz-crash-input first
// (to turn into tests/fuzz/corpus/<target>/crash-<what>).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "fuzz/fuzz_target.h"

// Present when a sanitizer runtime is linked in (it then reports crashes itself).
extern "C" void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

namespace {

// The input being run and, for a corpus file, its path: for the crash handlers (which may only
// use async-signal-safe calls).
const std::string* volatile current_input = nullptr;
const std::string* volatile current_path = nullptr;
constexpr char kCrashFile[] = "fuzz-crash-input";

void write_current_input() {
  if (const std::string* path = current_path) {
    static const char msg[] = "fuzz driver: failed on corpus file ";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    ignored = ::write(2, path->data(), path->size());
    ignored = ::write(2, "\n", 1);
    (void)ignored;
  }
  const std::string* in = current_input;
  if (!in) return;
  int fd = ::open(kCrashFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  size_t done = 0;
  while (done < in->size()) {
    ssize_t n = ::write(fd, in->data() + done, in->size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  static const char msg[] = "fuzz driver: the failing input is in ./fuzz-crash-input\n";
  ssize_t ignored = ::write(2, msg, sizeof msg - 1);
  (void)ignored;
}

void on_timeout(int) {
  static const char msg[] = "fuzz driver: an input ran longer than --timeout\n";
  ssize_t ignored = ::write(2, msg, sizeof msg - 1);
  (void)ignored;
  std::abort();
}

void on_fatal_signal(int sig) {
  write_current_input();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void install_crash_handlers() {
  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(write_current_input);
  static char alt_stack[64 * 1024];  // so that a stack overflow can still be reported
  stack_t ss{};
  ss.ss_sp = alt_stack;
  ss.ss_size = sizeof alt_stack;
  ::sigaltstack(&ss, nullptr);
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sa.sa_flags = SA_ONSTACK;
  ::sigaction(SIGABRT, &sa, nullptr);
  if (!__sanitizer_set_death_callback) {  // a sanitizer handles these itself
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL}) ::sigaction(sig, &sa, nullptr);
  }
  ::signal(SIGALRM, on_timeout);
}

unsigned timeout_seconds = 30;

void run(const std::string& input, const std::string* path = nullptr) {
  current_input = &input;
  current_path = path;
  ::alarm(timeout_seconds);
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  ::alarm(0);
  current_input = nullptr;
  current_path = nullptr;
}

struct CorpusFile {
  std::string path;
  std::string bytes;
};

// The regular files of `dir`, by name.
std::vector<CorpusFile> read_corpus(const char* dir) {
  namespace fs = std::filesystem;
  std::vector<fs::path> paths;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file()) paths.push_back(entry.path());
  }
  if (ec) {
    std::fprintf(stderr, "cannot read corpus directory %s: %s\n", dir, ec.message().c_str());
    std::exit(2);
  }
  std::sort(paths.begin(), paths.end());
  std::vector<CorpusFile> out;
  for (const auto& p : paths) {
    std::ifstream in(p, std::ios::binary);
    out.push_back({p.string(), std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>())});
  }
  return out;
}

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
  std::vector<const char*> corpus_dirs;
  const char* write_seeds = nullptr;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--seed")) seed = std::strtoull(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--timeout")) timeout_seconds = static_cast<unsigned>(std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--corpus")) corpus_dirs.push_back(argv[i + 1]);
    if (!std::strcmp(argv[i], "--write-seeds")) write_seeds = argv[i + 1];
  }
  std::vector<std::string> seeds = fuzz_seeds();
  if (write_seeds) {
    for (size_t i = 0; i < seeds.size(); ++i) {
      std::ofstream(std::string(write_seeds) + "/seed-" + std::to_string(i), std::ios::binary) << seeds[i];
    }
    return 0;
  }
  install_crash_handlers();
  seeds.push_back("");
  const auto start = std::chrono::steady_clock::now();
  for (const auto& s : seeds) run(s);
  size_t corpus_files = 0;
  for (const char* dir : corpus_dirs) {
    for (auto& f : read_corpus(dir)) {
      run(f.bytes, &f.path);
      seeds.push_back(std::move(f.bytes));
      ++corpus_files;
    }
  }

  std::mt19937_64 rng(seed);
  const auto deadline = start + std::chrono::duration<double>(seconds);
  uint64_t runs = 0;
  std::vector<std::string> pool = seeds;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string input = mutate(pool[rng() % pool.size()], seeds, rng);
    run(input);
    ++runs;
    // Keep some mutants as parents so edits compound, without growing without bound.
    if (pool.size() < 256 && rng() % 16 == 0) pool.push_back(std::move(input));
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%zu seeds, %zu corpus files and %llu mutated inputs in %.1f s (%.0f/s), no failures\n",
              seeds.size() - corpus_files, corpus_files, static_cast<unsigned long long>(runs), elapsed,
              elapsed > 0 ? static_cast<double>(runs) / elapsed : 0.0);
  return 0;
}

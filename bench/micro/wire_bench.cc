// Micro benchmark of the receivers' per-request wire checks on one core: otlp::check_request,
// otlp::decodes_as_request and otlp::count_items on otlpd-loadgen's protobuf payloads (traces,
// metrics, logs), in ns/item and items/s.
//
// Usage: otlpd-wire-bench [--seconds S] [--iterations N] [--only check|decodes|count]
//                         [--signal traces|metrics|logs]
//   --seconds S     time budget per measurement (default 1)
//   --iterations N  instead of timing, run each selected function N times over the payloads and
//                   print nothing but the item total: for callgrind, where two runs with different
//                   N subtracted give instructions per item without setup costs, e.g.
//     valgrind --tool=callgrind --toggle-collect='otlpd::otlp::check_request*'
//         otlpd-wire-bench --iterations 20 --only check --signal traces
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "bench/loadgen/payload.h"
#include "otlp/validate.h"
#include "otlp/wire.h"

namespace {

using namespace otlpd;
constexpr size_t kItemsPerRequest = 100;
constexpr size_t kRequests = 32;  // distinct requests cycled through (ids differ in each)

struct Options {
  double seconds = 1.0;
  long iterations = 0;  // > 0: callgrind mode
  std::string only;     // empty: all three functions
  std::string signal;   // empty: all three signals
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds")) o.seconds = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--iterations")) o.iterations = std::atol(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--only")) o.only = argv[i + 1];
    else if (!std::strcmp(argv[i], "--signal")) o.signal = argv[i + 1];
  }
  return o;
}

std::vector<std::string> make_payloads(otlp::Signal signal) {
  loadgen::PayloadOptions options;
  options.signal = signal;
  options.format = loadgen::Format::protobuf;
  options.items_per_request = kItemsPerRequest;
  const loadgen::PayloadGenerator generator(options);
  std::vector<std::string> payloads(kRequests);
  for (size_t i = 0; i < kRequests; ++i) generator.make(i, &payloads[i]);
  return payloads;
}

// Each function under test, reduced to "items found" (0 when refused) so all can be checked and
// timed alike. decodes_as_request counts nothing: a success counts as the known item count.
size_t run_check(otlp::Signal s, std::string_view b) {
  const otlp::CheckResult r = otlp::check_request(s, b);
  return r.ok ? r.items : 0;
}
size_t run_decodes(otlp::Signal s, std::string_view b) {
  return otlp::decodes_as_request(s, b) ? kItemsPerRequest : 0;
}
size_t run_count(otlp::Signal s, std::string_view b) {
  const otlp::WalkResult r = otlp::count_items(s, b);
  return r.ok ? r.items : 0;
}

struct Subject {
  const char* name;
  size_t (*run)(otlp::Signal, std::string_view);
};
constexpr Subject kSubjects[] = {{"check", run_check}, {"decodes", run_decodes}, {"count", run_count}};

// One pass over all payloads; exits if any is refused, as a refused payload would time nothing.
size_t pass(const Subject& subject, otlp::Signal signal, const std::vector<std::string>& payloads) {
  size_t items = 0;
  for (const std::string& p : payloads) {
    const size_t n = subject.run(signal, p);
    if (n != kItemsPerRequest) {
      std::fprintf(stderr, "%s refused a generated %s payload\n", subject.name, otlp::signal_name(signal).data());
      std::exit(1);
    }
    items += n;
  }
  return items;
}

// Runs passes for about `seconds`; returns ns per item.
double time_ns_per_item(const Subject& subject, otlp::Signal signal, const std::vector<std::string>& payloads,
                        double seconds) {
  using Clock = std::chrono::steady_clock;
  pass(subject, signal, payloads);  // warm caches and branch predictors
  size_t items = 0;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  do {
    items += pass(subject, signal, payloads);
  } while (Clock::now() < deadline);
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  return elapsed * 1e9 / static_cast<double>(items);
}

bool selected(const std::string& filter, std::string_view name) { return filter.empty() || filter == name; }

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  size_t total = 0;
  for (otlp::Signal signal : {otlp::Signal::traces, otlp::Signal::metrics, otlp::Signal::logs}) {
    if (!selected(options.signal, otlp::signal_name(signal))) continue;
    const std::vector<std::string> payloads = make_payloads(signal);
    size_t bytes = 0;
    for (const std::string& p : payloads) bytes += p.size();
    if (options.iterations <= 0) {
      std::printf("%s: %zu items/request, %zu bytes/request\n", otlp::signal_name(signal).data(), kItemsPerRequest,
                  bytes / kRequests);
    }
    for (const Subject& subject : kSubjects) {
      if (!selected(options.only, subject.name)) continue;
      if (options.iterations > 0) {
        for (long i = 0; i < options.iterations; ++i) total += pass(subject, signal, payloads);
        continue;
      }
      const double ns = time_ns_per_item(subject, signal, payloads, options.seconds);
      std::printf("  %-8s %7.1f ns/item  %6.2f M items/s\n", subject.name, ns, 1e3 / ns);
    }
  }
  if (options.iterations > 0) std::printf("%zu items\n", total);
  return 0;
}

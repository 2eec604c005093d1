// otlpd-loadgen: entry point. Dispatches `send` and `sink`; usage errors exit 2.
// Runs on the main thread; run_sink() must be called before any other thread starts (signals).
#include <absl/synchronization/mutex.h>

#include <iostream>
#include <string>
#include <vector>

#include "bench/loadgen/cli.h"
#include "bench/loadgen/sender.h"
#include "bench/loadgen/sink.h"

int main(int argc, char** argv) {
  using namespace otlpd::loadgen;
  // As in otlpd: no lock-order tracking in gRPC's mutexes, so the tool measures otlpd, not abseil.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    (args.empty() ? std::cerr : std::cout) << usage();
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "send") {
    SendOptions o;
    std::string error = parse_send_args(args, &o);
    if (!error.empty()) {
      std::cerr << "otlpd-loadgen send: " << error << "\n" << usage();
      return 2;
    }
    return run_send(o, std::cout, std::cerr);
  }
  if (command == "sink") {
    SinkOptions o;
    std::string error = parse_sink_args(args, &o);
    if (!error.empty()) {
      std::cerr << "otlpd-loadgen sink: " << error << "\n" << usage();
      return 2;
    }
    return run_sink(o, std::cout, std::cerr);
  }
  std::cerr << "otlpd-loadgen: unknown command \"" << command << "\"\n" << usage();
  return 2;
}

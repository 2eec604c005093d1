// otlpd entry point: command line, logging, signals, and the start/stop sequence.
//
//   otlpd --config FILE            run in the foreground until SIGTERM or SIGINT
//   otlpd validate --config FILE   check a config file; exit 1 listing every error
//   otlpd --version
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include <absl/synchronization/mutex.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "config/service_config.h"
#include "daemon/builtins.h"
#include "daemon/io_pool.h"
#include "daemon/metrics_server.h"
#include "daemon/systemd_notify.h"
#include "pipeline/buffer_pool.h"
#include "pipeline/graph.h"
#include "pipeline/telemetry.h"

namespace {

void usage(std::FILE* out) {
  std::fputs(
      "usage: otlpd --config FILE\n"
      "       otlpd validate --config FILE\n"
      "       otlpd --version\n",
      out);
}

struct Args {
  bool validate = false;
  bool version = false;
  bool help = false;
  std::string config;
  std::string error;
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "validate" && i == 1) {
      a.validate = true;
    } else if (arg == "--version" || arg == "-v") {
      a.version = true;
    } else if (arg == "--help" || arg == "-h") {
      a.help = true;
    } else if (arg == "--config" || arg == "-c") {
      if (i + 1 >= argc) {
        a.error = "--config needs a file";
        return a;
      }
      a.config = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      a.config = arg.substr(9);
    } else {
      a.error = "unknown argument " + arg;
      return a;
    }
  }
  if (!a.version && !a.help && a.config.empty()) a.error = "--config is required";
  return a;
}

bool load(const std::string& path, const otlpd::Registry& registry, otlpd::ServiceConfig* config) {
  otlpd::config::Errors errors;
  if (otlpd::load_service_config(path, registry, config, &errors)) return true;
  std::fprintf(stderr, "%s: %zu error%s:\n", path.c_str(), errors.size(), errors.size() == 1 ? "" : "s");
  for (const auto& e : errors.list()) {
    std::fprintf(stderr, "  %s%s%s\n", e.path.c_str(), e.path.empty() ? "" : ": ", e.message.c_str());
  }
  return false;
}

// What this run carried, so an operator can see at a glance whether anything was refused or lost.
void log_totals(const otlpd::Telemetry& telemetry) {
  for (const auto& sample : telemetry.snapshot()) {
    if (sample.value == 0) continue;
    std::string labels;
    for (const auto& [k, v] : sample.labels) labels += (labels.empty() ? "" : ",") + k + "=" + v;
    spdlog::info("total {}{{{}}} = {}", sample.name, labels, sample.value);
  }
}

int run(const otlpd::ServiceConfig& config, const otlpd::Registry& registry, const sigset_t& stop_signals,
        otlpd::Clock::time_point process_start) {
  size_t threads = config.worker_threads > 0 ? static_cast<size_t>(config.worker_threads)
                                             : std::max(1u, std::thread::hardware_concurrency());
  otlpd::Telemetry telemetry;
  otlpd::BatchPools pools(telemetry);
  otlpd::IoPool pool(threads);
  otlpd::Host host{pool.io(), telemetry, &pools, threads, &config.file_storages};
  otlpd::Status status;
  auto graph = otlpd::Graph::build(config, registry, host, &status);
  if (!graph) {
    spdlog::critical("cannot build pipelines: {}", status.to_string());
    return 1;
  }
  status = graph->start();
  if (!status.is_ok()) {
    spdlog::critical("cannot start: {}", status.message());
    pool.stop();
    return 1;
  }
  // After the pipelines, so a scrape never sees a half-built graph; a port that is taken is a
  // start error, as with the Collector.
  std::unique_ptr<otlpd::MetricsServer> metrics;
  if (!config.metrics_address.empty()) {
    metrics = std::make_unique<otlpd::MetricsServer>(pool.io(), config.metrics_address, telemetry, process_start);
    status = metrics->start();
    if (!status.is_ok()) {
      spdlog::critical("cannot serve self-metrics on {} (service.telemetry.metrics.address): {}",
                       config.metrics_address, status.message());
      graph->shutdown(otlpd::Clock::now() + config.shutdown_timeout);
      pool.stop();
      return 1;
    }
    spdlog::info("self-metrics on {}", metrics->url());
  }
  spdlog::info("otlpd {} running {} pipeline(s) on {} I/O thread(s)", OTLPD_VERSION, config.pipelines.size(), threads);
  const auto notifier = otlpd::SystemdNotifier::from_environment();
  notifier.notify("READY=1\nSTATUS=running " + std::to_string(config.pipelines.size()) + " pipeline(s)");
  otlpd::StatusReporter status_reporter(notifier, telemetry);  // watchdog pings go on through the drain
  status_reporter.start();

  int signal_number = 0;
  for (;;) {
    sigwait(&stop_signals, &signal_number);
    if (signal_number != SIGHUP) break;
    // Blocked rather than left to its default action, which would end otlpd.
    spdlog::warn("received SIGHUP: reloading the configuration is not supported yet; otlpd keeps running");
  }
  notifier.notify("STOPPING=1\nSTATUS=draining");
  spdlog::info("received {}, draining (up to {} ms)", strsignal(signal_number), config.shutdown_timeout.count());
  graph->shutdown(otlpd::Clock::now() + config.shutdown_timeout);
  // Served through the drain so its counts can be watched; stopped while the I/O threads still
  // run, since stop() waits for them.
  if (metrics) metrics->stop();
  status_reporter.stop();
  pool.stop();
  log_totals(telemetry);
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const auto process_start = otlpd::Clock::now();  // otlpd_process_uptime counts from here
  Args args = parse_args(argc, argv);
  if (args.help) {
    usage(stdout);
    return 0;
  }
  if (args.version) {
    std::printf("otlpd %s\n", OTLPD_VERSION);
    return 0;
  }
  if (!args.error.empty()) {
    std::fprintf(stderr, "otlpd: %s\n", args.error.c_str());
    usage(stderr);
    return 2;
  }

  otlpd::Registry registry;
  otlpd::register_builtins(registry);
  otlpd::ServiceConfig config;
  if (!load(args.config, registry, &config)) return 1;
  if (args.validate) {
    std::printf("%s: valid\n", args.config.c_str());
    return 0;
  }

  // gRPC's mutexes come from abseil, whose Debian build tracks lock order on every acquisition to
  // report deadlocks: a few percent of CPU under load, for a debugging aid.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  auto logger = spdlog::stderr_color_mt("otlpd");
  // Under systemd, journald stamps each line itself: no second timestamp.
  if (std::getenv("JOURNAL_STREAM")) logger->set_pattern("[%l] %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(config.log_level));

  // Block the stop signals before any thread starts, so every thread inherits the mask and only
  // sigwait() in main sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  return run(config, registry, stop_signals, process_start);
}

// otlpd entry point: command line, logging, signals, and the start/stop sequence.
//
//   otlpd --config FILE... [--set K=V]...   run in the foreground until SIGTERM or SIGINT
//   otlpd validate | print-config | components | --version | --help   (see usage())
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

#include "config/env.h"
#include "config/service_config.h"
#include "config/sources.h"
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
      "usage: otlpd --config FILE [--config FILE]... [--set KEY=VALUE]...\n"
      "           run in the foreground until SIGTERM or SIGINT; later files override earlier\n"
      "           ones, and --set overrides them (KEY as processors::batch::timeout or\n"
      "           processors.batch.timeout)\n"
      "       otlpd validate --config FILE... [--set KEY=VALUE]...\n"
      "           check the config: every error with its path; exit 1 when there is any\n"
      "       otlpd print-config --config FILE... [--set KEY=VALUE]...\n"
      "           print the effective config (merged, environment expanded, secrets redacted)\n"
      "       otlpd components     list every receiver, processor, exporter and extension type\n"
      "       otlpd --version\n"
      "       otlpd --help\n",
      out);
}

enum class Command { run, validate, print_config, components, version, help };

struct Args {
  Command command = Command::run;
  otlpd::config::Sources sources;
  std::string error;
};

Args parse_args(int argc, char** argv) {
  Args a;
  int i = 1;
  if (argc > 1) {
    const std::string first = argv[1];
    const std::pair<const char*, Command> commands[] = {
        {"validate", Command::validate}, {"print-config", Command::print_config}, {"components", Command::components}};
    for (const auto& [name, command] : commands) {
      if (first == name) {
        a.command = command;
        i = 2;
      }
    }
  }
  // A value from "--name=value" or from the next argument.
  auto value_of = [&](const std::string& arg, const std::string& name, std::string* out) {
    if (arg.rfind(name + "=", 0) == 0) {
      *out = arg.substr(name.size() + 1);
      return true;
    }
    if (arg != name) return false;
    if (i + 1 >= argc) {
      a.error = name + " needs a value";
      return true;
    }
    *out = argv[++i];
    return true;
  };
  for (; i < argc && a.error.empty(); ++i) {
    const std::string arg = argv[i];
    std::string value;
    if (arg == "--version" || arg == "-v") {
      a.command = Command::version;
    } else if (arg == "--help" || arg == "-h") {
      a.command = Command::help;
    } else if (value_of(arg, "--config", &value) || value_of(arg, "-c", &value)) {
      if (a.error.empty()) a.sources.files.push_back(value);
    } else if (value_of(arg, "--set", &value)) {
      if (a.error.empty()) a.sources.sets.push_back(value);
    } else {
      a.error = "unknown argument " + arg;
    }
  }
  const bool needs_config = a.command == Command::run || a.command == Command::validate ||
                            a.command == Command::print_config;
  if (a.error.empty() && needs_config && a.sources.files.empty()) a.error = "--config is required";
  return a;
}

void print_errors(const otlpd::config::Sources& sources, const otlpd::config::Errors& errors) {
  std::string names;
  for (const auto& f : sources.files) names += (names.empty() ? "" : ", ") + f;
  std::fprintf(stderr, "%s: %zu error%s:\n", names.c_str(), errors.size(), errors.size() == 1 ? "" : "s");
  for (const auto& e : errors.list()) {
    std::fprintf(stderr, "  %s%s%s\n", e.path.c_str(), e.path.empty() ? "" : ": ", e.message.c_str());
  }
}

bool load(const otlpd::config::Sources& sources, const otlpd::Registry& registry, otlpd::ServiceConfig* config) {
  otlpd::config::Errors errors;
  if (otlpd::load_service_config(sources, registry, config, &errors)) return true;
  print_errors(sources, errors);
  return false;
}

// `otlpd print-config`: the merged tree with environment references expanded and secrets hidden.
int print_config(const otlpd::config::Sources& sources) {
  otlpd::config::Errors errors;
  YAML::Node root;
  if (otlpd::config::load_sources(sources, &root, &errors)) otlpd::config::expand_env_tree(root, "", errors);
  if (!errors.empty()) {
    print_errors(sources, errors);
    return 1;
  }
  YAML::Emitter out;
  out << otlpd::config::redacted(root);
  std::printf("%s\n", out.c_str());
  return 0;
}

// `otlpd components`: every type a config may name, with what it does.
int print_components(const otlpd::Registry& registry) {
  auto section = [](const char* title, const std::vector<const otlpd::Factory*>& factories) {
    std::printf("%s:\n", title);
    for (const auto* f : factories) {
      std::printf("  %-16s %s\n", std::string(f->type()).c_str(), std::string(f->description()).c_str());
    }
  };
  section("receivers", registry.receivers());
  section("processors", registry.processors());
  section("exporters", registry.exporters());
  std::printf("extensions:\n  %-16s %s\n", "file_storage",
              "a directory for persistent sending queues (sending_queue.storage)");
  return 0;
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
  if (!args.error.empty()) {
    std::fprintf(stderr, "otlpd: %s\n", args.error.c_str());
    usage(stderr);
    return 2;
  }
  otlpd::Registry registry;
  otlpd::register_builtins(registry);
  switch (args.command) {
    case Command::help: usage(stdout); return 0;
    case Command::version: std::printf("otlpd %s\n", OTLPD_VERSION); return 0;
    case Command::components: return print_components(registry);
    case Command::print_config: return print_config(args.sources);
    case Command::validate:
    case Command::run: break;
  }

  otlpd::ServiceConfig config;
  if (!load(args.sources, registry, &config)) return 1;
  if (args.command == Command::validate) {
    for (const auto& f : args.sources.files) std::printf("%s: valid\n", f.c_str());
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

// otlpd entry point: command line, logging, signals, and the start/stop sequence.
//
//   otlpd --config FILE... [--set K=V]...   run in the foreground until SIGTERM or SIGINT;
//                                           SIGHUP reloads the configuration
//   otlpd validate | print-config | components | --version | --help   (see usage())
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include <absl/synchronization/mutex.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "config/env.h"
#include "config/service_config.h"
#include "config/sources.h"
#include "daemon/builtins.h"
#include "daemon/daemon.h"

namespace {

void usage(std::FILE* out) {
  std::fputs(
      "usage: otlpd --config FILE [--config FILE]... [--set KEY=VALUE]...\n"
      "           run in the foreground until SIGTERM or SIGINT (SIGHUP: reread the files and\n"
      "           apply what changed); later files override earlier ones, and --set overrides\n"
      "           them (KEY as processors::batch::schedule_delay or processors.batch.schedule_delay)\n"
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
  std::printf("extensions:\n");
  std::printf("  %-16s %s\n", "bearertokenauth", "a bearer token receivers require (auth) and exporters send");
  std::printf("  %-16s %s\n", "file_storage", "a directory for persistent sending queues (sending_queue.storage)");
  std::printf("  %-16s %s\n", "health_check", "an HTTP endpoint answering 200 when otlpd is healthy, 503 when not");
  return 0;
}

// Runs until SIGTERM or SIGINT; SIGHUP reloads the configuration.
int run(const otlpd::config::Sources& sources, std::shared_ptr<const otlpd::ServiceConfig> config,
        const otlpd::Registry& registry, const sigset_t& signals, otlpd::Clock::time_point process_start) {
  otlpd::Daemon daemon(sources, registry, process_start);
  if (!daemon.start(std::move(config))) return 1;
  int signal_number = 0;
  for (;;) {
    sigwait(&signals, &signal_number);
    if (signal_number != SIGHUP) break;
    daemon.reload();
  }
  spdlog::info("received {}", strsignal(signal_number));
  daemon.stop();
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

  auto config = std::make_shared<otlpd::ServiceConfig>();
  if (!load(args.sources, registry, config.get())) return 1;
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
  spdlog::set_level(spdlog::level::from_str(config->log_level));

  // Block the signals before any thread starts, so every thread inherits the mask and only
  // sigwait() in main sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  return run(args.sources, std::move(config), registry, signals, process_start);
}

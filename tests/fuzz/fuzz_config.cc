// Config loading (parse_service_config, what `otlpd validate`, start-up and reload run on a file's
// text, with every built-in component registered) on arbitrary text of at most 64 KiB. Properties:
// it returns, never crashes nor throws; false exactly when it reports errors, each with a message
// and a path (only errors about the file as a whole have none: invalid YAML, not a mapping, "the
// config ..."); a valid config has pipelines, each with receivers and exporters, whose components
// and service.extensions are all configured; parsing the same text twice reports the same. Deep
// nesting and aliases are part of it: yaml-cpp parses recursively (its depth guard stops at about
// 500 levels) and so do the loader's own tree walks.
//
// A YAML::Exception escaping the loader is a bug: it is reported on stderr (input included) and
// the run goes on, unless OTLPD_FUZZ_STRICT is set, which makes it abort instead.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>

#include <yaml-cpp/yaml.h>

#include "config/service_config.h"
#include "daemon/builtins.h"
#include "fuzz/fuzz_target.h"

using namespace otlpd;

namespace {

constexpr size_t kMaxInput = 64 << 10;

const Registry& registry() {
  static const Registry* r = [] {
    auto* registry = new Registry;
    register_builtins(*registry);
    return registry;
  }();
  return *r;
}

void print_input(std::string_view input) {
  std::fprintf(stderr, "input (%zu bytes):\n", input.size());
  std::fwrite(input.data(), 1, std::min<size_t>(input.size(), 2048), stderr);
  std::fprintf(stderr, "%s\n", input.size() > 2048 ? "\n[...]" : "");
}

[[noreturn]] void fail(const std::string& why, std::string_view input, const config::Errors& errors) {
  std::fprintf(stderr, "fuzz_config: %s\n", why.c_str());
  print_input(input);
  std::fprintf(stderr, "errors:\n%s\n", errors.to_string().c_str());
  std::abort();
}

unsigned long escaped = 0;
void print_escaped() {
  if (escaped) std::fprintf(stderr, "fuzz_config: BUG: %lu inputs made a YAML::Exception escape the loader\n", escaped);
}

// Errors about the file as a whole, which have no path ("the config is empty", ...).
bool whole_file_error(const std::string& message) {
  return message.rfind("invalid YAML: ", 0) == 0 || message.rfind("the config ", 0) == 0 ||
         message == "expected a mapping";
}

struct Result {
  bool ok = false;
  ServiceConfig config;
  config::Errors errors;
  std::string exception;  // what() of a YAML::Exception that escaped
};

Result parse(std::string_view yaml) {
  Result r;
  try {
    r.ok = parse_service_config(yaml, registry(), &r.config, &r.errors);
  } catch (const YAML::Exception& e) {
    r.exception = e.what();
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxInput) return 0;
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  Result r = parse(yaml);
  if (!r.exception.empty()) {
    if (escaped++ == 0) std::atexit(print_escaped);
    if (escaped <= 3 || std::getenv("OTLPD_FUZZ_STRICT")) {
      std::fprintf(stderr, "fuzz_config: BUG: parse_service_config let a YAML::Exception escape: %s\n",
                   r.exception.c_str());
      print_input(yaml);
    }
    if (std::getenv("OTLPD_FUZZ_STRICT")) std::abort();
    return 0;
  }
  if (r.ok != r.errors.empty()) {
    fail(r.ok ? "valid, yet errors were reported" : "invalid without an error", yaml, r.errors);
  }
  // When the file is not a mapping at all, every error is about the file as a whole.
  bool not_a_mapping = false;
  for (const auto& e : r.errors.list()) not_a_mapping |= e.path.empty() && e.message == "expected a mapping";
  for (const auto& e : r.errors.list()) {
    if (e.message.empty()) fail("an error without a message", yaml, r.errors);
    if (e.path.empty() && !not_a_mapping && !whole_file_error(e.message)) {
      fail("an error without a path: " + e.message, yaml, r.errors);
    }
  }
  if (r.ok) {
    const ServiceConfig& c = r.config;
    if (c.pipelines.empty()) fail("a valid config without pipelines", yaml, r.errors);
    std::map<std::string, std::set<std::string>> ids;
    for (const auto& [name, entry] : c.receivers) ids["receivers"].insert(entry.id.type + "/" + entry.id.name);
    for (const auto& [name, entry] : c.processors) ids["processors"].insert(entry.id.type + "/" + entry.id.name);
    for (const auto& [name, entry] : c.exporters) ids["exporters"].insert(entry.id.type + "/" + entry.id.name);
    for (const auto& p : c.pipelines) {
      if (p.receivers.empty() || p.exporters.empty()) {
        fail("a valid pipeline without receivers or exporters", yaml, r.errors);
      }
      auto check = [&](const char* kind, const std::vector<ComponentId>& list) {
        for (const auto& id : list) {
          if (!ids[kind].count(id.type + "/" + id.name)) {
            fail(std::string("pipeline ") + p.name + " uses an unconfigured " + kind + " entry", yaml, r.errors);
          }
        }
      };
      check("receivers", p.receivers);
      check("processors", p.processors);
      check("exporters", p.exporters);
    }
    for (const auto& ext : c.extensions) {
      if (!c.file_storages.count(ext) && !c.health_checks.count(ext) && !c.bearer_tokens.count(ext)) {
        fail("service.extensions names an unconfigured extension: " + ext, yaml, r.errors);
      }
    }
  }
  // The same text, the same verdict and errors (nothing depends on uninitialised state).
  Result again = parse(yaml);
  if (again.ok != r.ok || again.errors.to_string() != r.errors.to_string()) {
    fail("a second parse of the same text disagrees:\n" + again.errors.to_string(), yaml, r.errors);
  }
  return 0;
}

std::vector<std::string> fuzz_seeds() {
  std::vector<std::string> seeds;
  std::ifstream shipped(OTLPD_SOURCE_DIR "/config/otlpd.yaml");
  if (shipped) {
    seeds.emplace_back(std::istreambuf_iterator<char>(shipped), std::istreambuf_iterator<char>());
  } else {
    std::fprintf(stderr, "fuzz_config: cannot read %s/config/otlpd.yaml; going on without it\n", OTLPD_SOURCE_DIR);
  }
  // Receivers: both protocols with every key, TLS, CORS and auth; extensions of every type.
  seeds.push_back(R"(receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
        max_recv_msg_size_mib: 16
        max_concurrent_streams: 100
        transport: tcp
        auth: {authenticator: bearertokenauth}
      http:
        endpoint: "[::1]:4318"
        max_request_body_size: 1048576
        traces_url_path: /t
        read_timeout: 10s
        read_header_timeout: 500ms
        idle_timeout: 0
        max_connections: 100
        cors:
          allowed_origins: ["https://*.example.com"]
          allowed_headers: ["*"]
          max_age: 7200
        tls:
          cert_file: /etc/otlpd/server.crt
          key_file: /etc/otlpd/server.key
          min_version: "1.3"
          reload_interval: 1h
  otlp/second:
    protocols:
      grpc:
extensions:
  bearertokenauth:
    token: "${env:OTLPD_TOKEN}"
  bearertokenauth/file:
    filename: /etc/otlpd/token
    scheme: ""
    header: X-Api-Key
  health_check:
    endpoint: 127.0.0.1:0
    path: /health
    check_collector_pipeline: {enabled: true, interval: 5m, exporter_failure_threshold: 5}
  file_storage/q:
    directory: /var/lib/otlpd/q
    create_directory: true
    fsync: false
    fsync_interval: 250ms
exporters:
  otlp:
    endpoint: https://backend:4317
    auth: {authenticator: bearertokenauth/file}
    headers: {x-tenant: a}
    sending_queue: {storage: file_storage/q, max_size_mib: 512}
service:
  extensions: [bearertokenauth, bearertokenauth/file, health_check]
  pipelines:
    traces:
      receivers: [otlp, otlp/second]
      exporters: [otlp]
)");
  // Processors and exporters with their queue and retry keys.
  seeds.push_back(R"(receivers:
  otlp: {protocols: {http: {}}}
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 512
    spike_limit_mib: 128
  batch/big:
    send_batch_size: 1000
    send_batch_max_size: 1000
    timeout: 200ms
    when_full: block
    block_timeout: 1s
exporters:
  otlphttp:
    endpoint: http://collector:4318
    logs_endpoint: https://logs.example.com/v1/logs
    encoding: json
    compression: zstd
    timeout: 10s
    headers: {X-Scope-OrgID: tenant}
    tls: {ca_file: /etc/ssl/ca.pem, insecure_skip_verify: false, server_name_override: logs}
    sending_queue:
      enabled: true
      num_consumers: 4
      block_on_overflow: true
      sizer: items
      queue_size: 100000
    retry_on_failure:
      enabled: true
      initial_interval: 1s
      max_interval: 10s
      multiplier: 2
      randomization_factor: 0.25
      max_elapsed_time: 0
  file:
    path: /var/lib/otlpd/out.json
    format: proto
    rotation: {max_megabytes: 10, max_days: 3, max_backups: 5, localtime: true}
    flush_interval: 1s
  debug/verbose: {verbosity: detailed}
service:
  shutdown_timeout: 1m
  telemetry:
    logs: {level: debug}
    metrics: {level: none}
  runtime: {worker_threads: 2}
  pipelines:
    metrics: {receivers: [otlp], processors: [memory_limiter, batch/big], exporters: [otlphttp, file]}
    logs/all: {receivers: [otlp], processors: [memory_limiter], exporters: [debug/verbose, otlphttp]}
)");
  // YAML features: anchors, aliases, merge keys, flow style, quoting, env references, a comment.
  seeds.push_back(R"(---
defaults: &queue {enabled: true, queue_size: 10}
receivers: {"otlp": {protocols: {grpc: {endpoint: 'localhost:${env:PORT}'}}}}
exporters:
  otlp/a: &exp
    endpoint: "backend:4317"
    tls: {insecure: true}
    sending_queue: *queue
    compression: none
  otlp/b:
    <<: *exp
    endpoint: other:4317  # overrides the merged key
service:
  telemetry: {metrics: {address: "127.0.0.1:$${literal}"}}
  pipelines:
    traces: {receivers: [otlp], exporters: [otlp/a, otlp/b]}
...
)");
  // Many errors at once: unknown keys and types, bad values, undefined references.
  seeds.push_back(R"(receivers:
  otlp:
    protocols: {grpc: {endpoint: "", max_recv_msg_size_mib: 99999, keepalive: {}}, udp: {}}
  nope/x: {}
  "bad id/with/slashes": {}
processors:
  batch: {schedule_delay: 5 parsecs, max_export_batch_size: -1, timeout: 1s}
exporters:
  otlp: {tls: {insecure: maybe}}
  file: {format: xml}
extensions:
  pprof: {}
  file_storage: {directory: ""}
service:
  extensions: [missing]
  shutdown_timeout: 0s
  telemetry: {logs: {level: loud}, metrics: {address: nowhere}}
  runtime: {worker_threads: 1000}
  pipelines:
    traces: {receivers: [otlp, otlp], processors: [batch, missing], exporters: []}
    spans: {receivers: [otlp], exporters: [otlp]}
    metrics:
unknown_top_level: 1
)");
  // Nesting, for the recursive parts of yaml-cpp and of the loader.
  seeds.push_back("receivers: " + std::string(64, '[') + std::string(64, ']') + "\nservice: {pipelines: {traces: " +
                  std::string(32, '{') + "a: " + std::string(32, '}') + "}}\n");
  return seeds;
}

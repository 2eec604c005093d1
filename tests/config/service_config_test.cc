#include <catch2/catch.hpp>

#include <cstdlib>

#include "config/node.h"
#include "config/service_config.h"
#include "daemon/builtins.h"
#include "exporters/otlp/otlp_exporter.h"
#include "pipeline/batch_processor.h"

using namespace otlpd;

namespace {

struct Loaded {
  bool ok;
  ServiceConfig config;
  config::Errors errors;
};

Loaded load(const std::string& yaml) {
  Registry registry;
  register_builtins(registry);
  Loaded l;
  l.ok = parse_service_config(yaml, registry, &l.config, &l.errors);
  return l;
}

bool has_error(const config::Errors& errors, const std::string& path, const std::string& fragment) {
  for (const auto& e : errors.list()) {
    if (e.path == path && e.message.find(fragment) != std::string::npos) return true;
  }
  return false;
}

const char* kValid = R"(
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:4317
      http:
        endpoint: 127.0.0.1:4318
processors:
  batch:
  batch/fast:
    schedule_delay: 200ms
    max_export_batch_size: 100
exporters:
  debug:
    verbosity: detailed
  otlp/backend:
    endpoint: backend:4317
    tls:
      insecure: true
service:
  telemetry:
    logs:
      level: debug
  runtime:
    worker_threads: 3
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug, otlp/backend]
    traces/fast:
      receivers: [otlp]
      processors: [batch/fast]
      exporters: [otlp/backend]
    logs:
      receivers: [otlp]
      exporters: [debug]
)";

}  // namespace

TEST_CASE("a valid config is parsed into pipelines and component configs", "[config]") {
  Loaded l = load(kValid);
  INFO(l.errors.to_string());
  REQUIRE(l.ok);
  CHECK(l.config.log_level == "debug");
  CHECK(l.config.worker_threads == 3);
  REQUIRE(l.config.pipelines.size() == 3);  // in the file's order
  const auto& logs = l.config.pipelines[2];
  CHECK(logs.name == "logs");
  CHECK(logs.signal == Signal::logs);
  CHECK(logs.processors.empty());
  CHECK(l.config.pipelines[1].name == "traces/fast");
  const auto& traces = l.config.pipelines[0];
  CHECK(traces.name == "traces");
  REQUIRE(traces.exporters.size() == 2);
  CHECK(traces.exporters[1].type == "otlp");
  CHECK(traces.exporters[1].name == "backend");
  const auto& fast = static_cast<const BatchConfig&>(*l.config.processors.at("batch/fast").config);
  CHECK(fast.schedule_delay == std::chrono::milliseconds(200));
  CHECK(fast.max_export_batch_size == 100);
  const auto& defaults = static_cast<const BatchConfig&>(*l.config.processors.at("batch").config);
  CHECK(defaults.max_queue_size == 2048);
  CHECK(defaults.schedule_delay == std::chrono::seconds(5));
  CHECK(defaults.max_export_batch_size == 512);
  CHECK(defaults.max_export_timeout == std::chrono::seconds(30));
  CHECK(defaults.when_full == BatchConfig::WhenFull::refuse);
}

TEST_CASE("every error is reported at once with its path", "[config]") {
  Loaded l = load(R"(
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:4317
        max_recv_msg_size_mib: lots
      websocket: {}
  kafka: {}
processors:
  batch:
    schedule_delay: 5 parsecs
    when_full: explode
    colour: blue
exporters:
  otlp:
    tls:
      insecure: maybe
  debug:
    verbosity: loud
service:
  pipelines:
    traces:
      receivers: [otlp, zipkin]
      processors: [batch, batch]
      exporters: [debug]
    spans:
      receivers: [otlp]
      exporters: [debug]
    metrics:
      receivers: [otlp]
unknown_top: 1
)");
  CHECK_FALSE(l.ok);
  INFO(l.errors.to_string());
  CHECK(has_error(l.errors, "receivers.otlp.protocols.grpc.max_recv_msg_size_mib", "expected an integer"));
  CHECK(has_error(l.errors, "receivers.otlp.protocols.websocket", "unknown protocol"));
  CHECK(has_error(l.errors, "receivers.kafka", "unknown receiver type \"kafka\""));
  CHECK(has_error(l.errors, "processors.batch.schedule_delay", "invalid duration \"5 parsecs\""));
  CHECK(has_error(l.errors, "processors.batch.when_full", "expected one of: refuse, block, drop"));
  CHECK(has_error(l.errors, "processors.batch.colour", "unknown key"));
  CHECK(has_error(l.errors, "exporters.otlp.endpoint", "required"));
  CHECK(has_error(l.errors, "exporters.otlp.tls.insecure", "expected true or false"));
  CHECK(has_error(l.errors, "exporters.debug.verbosity", "invalid value \"loud\""));
  CHECK(has_error(l.errors, "service.pipelines.traces.receivers[1]", "receiver \"zipkin\" which is not configured"));
  CHECK(has_error(l.errors, "service.pipelines.traces.processors[1]", "listed twice"));
  CHECK(has_error(l.errors, "service.pipelines.spans", "pipeline name must be traces, metrics or logs"));
  CHECK(has_error(l.errors, "service.pipelines.metrics.exporters", "at least one exporter is required"));
  CHECK(has_error(l.errors, "unknown_top", "unknown key"));
  CHECK(l.errors.size() == 14);
}

TEST_CASE("the Collector's batch keys are aliases, and one name per setting is allowed", "[config]") {
  Loaded l = load(R"(
receivers: {otlp: {protocols: {grpc: }}}
processors:
  batch:
    timeout: 1s
    send_batch_size: 8192
    send_batch_max_size: 10000
    max_queue_size: 20000
  batch/both:
    schedule_delay: 1s
    timeout: 2s
exporters: {debug: }
service:
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: [debug]}
)");
  CHECK_FALSE(l.ok);
  CHECK(has_error(l.errors, "processors.batch/both.timeout", "set only one of schedule_delay and timeout"));
  CHECK(l.errors.size() == 1);
  const auto& b = static_cast<const BatchConfig&>(*l.config.processors.at("batch").config);
  CHECK(b.schedule_delay == std::chrono::seconds(1));
  CHECK(b.max_export_batch_size == 8192);
}

TEST_CASE("environment references are expanded in values", "[config]") {
  setenv("OTLPD_TEST_ENDPOINT", "collector.example:4317", 1);
  setenv("OTLPD_TEST_LEVEL", "warn", 1);
  unsetenv("OTLPD_TEST_UNSET");
  Loaded l = load(R"(
receivers: {otlp: {protocols: {grpc: {endpoint: "${env:OTLPD_TEST_ENDPOINT}"}}}}
exporters:
  otlp:
    endpoint: ${OTLPD_TEST_ENDPOINT}
    headers:
      price: "$$5${OTLPD_TEST_UNSET}"
service:
  telemetry: {logs: {level: "${env:OTLPD_TEST_LEVEL}"}}
  pipelines:
    logs: {receivers: [otlp], exporters: [otlp]}
)");
  INFO(l.errors.to_string());
  REQUIRE(l.ok);
  CHECK(l.config.log_level == "warn");
}

TEST_CASE("malformed environment references and YAML are errors", "[config]") {
  Loaded bad_ref = load("receivers: {otlp: {protocols: {grpc: {endpoint: \"${env:1BAD}\"}}}}\n");
  CHECK(has_error(bad_ref.errors, "receivers.otlp.protocols.grpc.endpoint", "invalid environment variable name"));
  Loaded bad_yaml = load("receivers: [unclosed\n");
  CHECK_FALSE(bad_yaml.ok);
  REQUIRE(bad_yaml.errors.size() == 1);
  CHECK(bad_yaml.errors.list()[0].message.rfind("invalid YAML", 0) == 0);
  Loaded empty = load("");
  CHECK(has_error(empty.errors, "", "the config is empty"));
  Loaded no_service = load("receivers: {otlp: {protocols: {grpc: }}}\n");
  CHECK(has_error(no_service.errors, "service", "required"));
  Loaded extension = load(R"(
extensions: {zpages: }
receivers: {otlp: {protocols: {grpc: }}}
exporters: {debug: }
service:
  extensions: [zpages]
  pipelines: {traces: {receivers: [otlp], exporters: [debug]}}
)");
  CHECK(has_error(extension.errors, "extensions.zpages", "unknown extension type (otlpd has: bearertokenauth, file_storage, health_check)"));
  CHECK(has_error(extension.errors, "service.extensions[0]", "extension \"zpages\" is not configured"));
}

TEST_CASE("health_check extensions: defaults, Collector keys, errors; only listed ones run", "[config]") {
  Loaded ok = load(R"(
extensions:
  health_check:
  health_check/custom:
    endpoint: 0.0.0.0:13134
    path: /health/status
    check_collector_pipeline: {enabled: false, interval: 30s, exporter_failure_threshold: 2}
receivers: {otlp: {protocols: {grpc: }}}
exporters: {debug: }
service:
  extensions: [health_check/custom]
  pipelines: {traces: {receivers: [otlp], exporters: [debug]}}
)");
  INFO(ok.errors.to_string());
  REQUIRE(ok.ok);
  REQUIRE(ok.config.health_checks.size() == 2);
  const HealthCheckConfig& d = ok.config.health_checks.at("health_check");
  CHECK(d.endpoint == "127.0.0.1:13133");
  CHECK(d.path == "/");
  CHECK(d.check_exporters);
  CHECK(d.exporter_failure_interval == std::chrono::minutes(5));
  CHECK(d.exporter_failure_threshold == 5);
  const HealthCheckConfig& c = ok.config.health_checks.at("health_check/custom");
  CHECK(c.endpoint == "0.0.0.0:13134");
  CHECK(c.path == "/health/status");
  CHECK_FALSE(c.check_exporters);
  CHECK(c.exporter_failure_interval == std::chrono::seconds(30));
  CHECK(c.exporter_failure_threshold == 2);
  CHECK(ok.config.extensions == std::vector<std::string>{"health_check/custom"});

  Loaded bad = load(R"(
extensions:
  health_check:
    endpoint: nowhere
    path: health
    port: 1
    check_collector_pipeline: {interval: 0s, exporter_failure_threshold: 0}
receivers: {otlp: {protocols: {grpc: }}}
exporters: {debug: }
service:
  extensions: [health_check]
  pipelines: {traces: {receivers: [otlp], exporters: [debug]}}
)");
  CHECK(bad.errors.size() == 5);
  CHECK(has_error(bad.errors, "extensions.health_check.endpoint", "expected host:port"));
  CHECK(has_error(bad.errors, "extensions.health_check.path", "must start with /"));
  CHECK(has_error(bad.errors, "extensions.health_check.port", "unknown key"));
  CHECK(has_error(bad.errors, "extensions.health_check.check_collector_pipeline.interval", "must be positive"));
  CHECK(has_error(bad.errors, "extensions.health_check.check_collector_pipeline.exporter_failure_threshold",
                  "must be between 1 and 1000000, got 0"));
}

TEST_CASE("a component's fingerprint ignores key order and changes with any value", "[config]") {
  auto fingerprint = [](const char* exporter) {
    Loaded l = load(std::string("receivers: {otlp: {protocols: {grpc: }}}\nexporters:\n  otlp: ") + exporter +
                    "\nservice: {pipelines: {traces: {receivers: [otlp], exporters: [otlp]}}}\n");
    INFO(l.errors.to_string());
    REQUIRE(l.ok);
    return l.config.exporters.at("otlp").fingerprint;
  };
  const std::string a = fingerprint("{endpoint: \"b:4317\", timeout: 5s, headers: {x: \"1\"}}");
  CHECK(a == fingerprint("{headers: {x: \"1\"}, timeout: 5s, endpoint: \"b:4317\"}"));
  CHECK(a != fingerprint("{endpoint: \"b:4317\", timeout: 6s, headers: {x: \"1\"}}"));
  CHECK(a != fingerprint("{endpoint: \"b:4317\", timeout: 5s, headers: {x: \"2\"}}"));
  CHECK(a != fingerprint("{endpoint: \"b:4317\", timeout: 5s}"));
}

TEST_CASE("file_storage extensions, shutdown_timeout and self-metrics settings are read", "[config]") {
  Loaded ok = load(R"(
extensions:
  file_storage: {directory: /var/lib/otlpd/queues}
  file_storage/fast: {directory: /tmp/q, create_directory: true, fsync: true, fsync_interval: 0s}
receivers: {otlp: {protocols: {grpc: }}}
exporters:
  otlp: {endpoint: "backend:4317", sending_queue: {storage: file_storage/fast}}
  otlp/dir: {endpoint: "backend:4317", sending_queue: {storage: /srv/otlpd/queue}}
service:
  extensions: [file_storage, file_storage/fast]
  shutdown_timeout: 45s
  telemetry: {metrics: {address: "127.0.0.1:9999"}}
  pipelines: {traces: {receivers: [otlp], exporters: [otlp, otlp/dir]}}
)");
  REQUIRE(ok.ok);
  REQUIRE(ok.config.file_storages.size() == 2);
  const FileStorageSettings& plain = ok.config.file_storages.at("file_storage");
  CHECK(plain.directory == "/var/lib/otlpd/queues");
  CHECK_FALSE(plain.create_directory);
  CHECK_FALSE(plain.fsync);
  CHECK(plain.fsync_interval == std::chrono::seconds(1));
  const FileStorageSettings& fast = ok.config.file_storages.at("file_storage/fast");
  CHECK(fast.create_directory);
  CHECK(fast.fsync);
  CHECK(fast.fsync_interval.count() == 0);
  CHECK(ok.config.shutdown_timeout == std::chrono::seconds(45));
  CHECK(ok.config.metrics_address == "127.0.0.1:9999");

  Loaded defaults = load("receivers: {otlp: {protocols: {grpc: }}}\nexporters: {debug: }\n"
                         "service: {telemetry: {metrics: {level: none}}, pipelines: {traces: {receivers: [otlp], "
                         "exporters: [debug]}}}\n");
  REQUIRE(defaults.ok);
  CHECK(defaults.config.shutdown_timeout == std::chrono::seconds(30));
  CHECK(defaults.config.metrics_address.empty());

  Loaded bad = load(R"(
extensions:
  file_storage: {directory: "", compaction: {on_start: true}}
receivers: {otlp: {protocols: {grpc: }}}
exporters:
  otlp: {endpoint: "backend:4317", sending_queue: {storage: file_storage/missing}}
service:
  shutdown_timeout: 0s
  telemetry: {metrics: {level: loud, address: nohostport}}
  pipelines: {traces: {receivers: [otlp], exporters: [otlp]}}
)");
  CHECK_FALSE(bad.ok);
  CHECK(has_error(bad.errors, "extensions.file_storage.directory", "must not be empty"));
  CHECK(has_error(bad.errors, "extensions.file_storage.compaction", "unknown"));
  CHECK(has_error(bad.errors, "exporters.otlp.sending_queue.storage",
                  "extension \"file_storage/missing\" is not configured under extensions"));
  CHECK(has_error(bad.errors, "service.shutdown_timeout", "must be positive"));
  CHECK(has_error(bad.errors, "service.telemetry.metrics.level", "invalid value \"loud\""));
  CHECK(has_error(bad.errors, "service.telemetry.metrics.address", "expected host:port"));
}

TEST_CASE("durations accept units from ns to h", "[config]") {
  using std::chrono::milliseconds;
  milliseconds d{};
  CHECK(config::parse_duration("200ms", &d));
  CHECK(d == milliseconds(200));
  CHECK(config::parse_duration("5s", &d));
  CHECK(d == milliseconds(5000));
  CHECK(config::parse_duration("1.5s", &d));
  CHECK(d == milliseconds(1500));
  CHECK(config::parse_duration("1m", &d));
  CHECK(d == milliseconds(60000));
  CHECK(config::parse_duration("2h", &d));
  CHECK(d == milliseconds(7'200'000));
  CHECK(config::parse_duration("0", &d));
  CHECK(d == milliseconds(0));
  CHECK_FALSE(config::parse_duration("5", &d));
  CHECK_FALSE(config::parse_duration("s", &d));
  CHECK_FALSE(config::parse_duration("-1s", &d));
  CHECK_FALSE(config::parse_duration("1.2.3s", &d));
  CHECK_FALSE(config::parse_duration("10 s", &d));
}

TEST_CASE("the shipped config is valid", "[config]") {
  Registry registry;
  register_builtins(registry);
  ServiceConfig config;
  config::Errors errors;
  bool ok = load_service_config(config::Sources{{OTLPD_SOURCE_DIR "/config/otlpd.yaml"}, {}}, registry, &config, &errors);
  INFO(errors.to_string());
  REQUIRE(ok);
  CHECK(config.pipelines.size() == 3);
}

TEST_CASE("otlp exporter headers become lowercase gRPC metadata; invalid ones are errors", "[config]") {
  Loaded l = load(R"(
receivers: {otlp: {protocols: {grpc: }}}
exporters:
  otlp:
    endpoint: backend:4317
    headers:
      X-Scope-OrgID: tenant-1
      "bad key": x
      api-key: "caf\u00e9"
service:
  pipelines: {traces: {receivers: [otlp], exporters: [otlp]}}
)");
  CHECK(has_error(l.errors, "exporters.otlp.headers.bad key", "invalid gRPC metadata key"));
  CHECK(has_error(l.errors, "exporters.otlp.headers.api-key", "printable ASCII"));
  CHECK(l.errors.size() == 2);
  const auto& c = static_cast<const OtlpExporterConfig&>(*l.config.exporters.at("otlp").config);
  CHECK(c.headers == std::map<std::string, std::string>{{"x-scope-orgid", "tenant-1"}});
}

TEST_CASE("a Collector batch config with a large send_batch_size works as written", "[config]") {
  Loaded l = load(R"(
receivers: {otlp: {protocols: {grpc: }}}
processors: {batch: {send_batch_size: 8192, timeout: 200ms}}
exporters: {debug: }
service:
  pipelines: {traces: {receivers: [otlp], processors: [batch], exporters: [debug]}}
)");
  INFO(l.errors.to_string());
  REQUIRE(l.ok);
  const auto& b = static_cast<const BatchConfig&>(*l.config.processors.at("batch").config);
  CHECK(b.max_export_batch_size == 8192);
  CHECK(b.max_queue_size == 4 * 8192);
}

TEST_CASE("sending_queue takes a byte bound and the Collector's sizer", "[config]") {
  Loaded l = load(R"(
receivers: {otlp: {protocols: {grpc: }}}
exporters:
  otlp/defaults: {endpoint: backend:4317}
  otlp/bytes:
    endpoint: backend:4317
    sending_queue: {sizer: bytes, queue_size: 33554432, max_size_mib: 0}
  otlp/items:
    endpoint: backend:4317
    sending_queue: {sizer: items, queue_size: 50000, max_size_mib: 16}
service:
  pipelines: {traces: {receivers: [otlp], exporters: [otlp/defaults, otlp/bytes, otlp/items]}}
)");
  INFO(l.errors.to_string());
  REQUIRE(l.ok);
  auto queue = [&](const std::string& id) {
    return static_cast<const OtlpExporterConfig&>(*l.config.exporters.at(id).config).exporter.queue;
  };
  CHECK(queue("otlp/defaults").sizer == QueueSizer::requests);
  CHECK(queue("otlp/defaults").queue_size == 1000);
  CHECK(queue("otlp/defaults").max_size_mib == 64);
  CHECK(queue("otlp/defaults").max_size_bytes() == 64u << 20);
  CHECK(queue("otlp/bytes").sizer == QueueSizer::bytes);
  CHECK(queue("otlp/bytes").queue_size == 33554432);
  CHECK(queue("otlp/bytes").max_size_mib == 0);
  CHECK(queue("otlp/items").sizer == QueueSizer::items);
  CHECK(queue("otlp/items").queue_size == 50000);
  CHECK(queue("otlp/items").max_size_mib == 16);
}

TEST_CASE("bad sending_queue sizes are errors with their paths", "[config]") {
  Loaded l = load(R"(
receivers: {otlp: {protocols: {grpc: }}}
exporters:
  otlp/a:
    endpoint: backend:4317
    sending_queue: {sizer: pages, max_size_mib: -1}
  otlp/b:
    endpoint: backend:4317
    sending_queue: {sizer: bytes}
  otlp/c:
    endpoint: backend:4317
    sending_queue: {sizer: items, queue_size: 1000000001, max_size_mib: 1048577}
  otlp/d:
    endpoint: backend:4317
    sending_queue: {queue_size: 1000001, max_size_mib: lots}
service:
  pipelines: {traces: {receivers: [otlp], exporters: [otlp/a, otlp/b, otlp/c, otlp/d]}}
)");
  CHECK_FALSE(l.ok);
  INFO(l.errors.to_string());
  CHECK(has_error(l.errors, "exporters.otlp/a.sending_queue.sizer",
                  "invalid value \"pages\" (expected one of: requests, items, bytes)"));
  CHECK(has_error(l.errors, "exporters.otlp/a.sending_queue.max_size_mib", "must be between 0 and 1048576, got -1"));
  CHECK(has_error(l.errors, "exporters.otlp/b.sending_queue.queue_size", "required when sizer is items or bytes"));
  CHECK(has_error(l.errors, "exporters.otlp/c.sending_queue.queue_size",
                  "must be between 1 and 1000000000, got 1000000001"));
  CHECK(has_error(l.errors, "exporters.otlp/c.sending_queue.max_size_mib",
                  "must be between 0 and 1048576, got 1048577"));
  CHECK(has_error(l.errors, "exporters.otlp/d.sending_queue.queue_size", "must be between 1 and 1000000, got 1000001"));
  CHECK(has_error(l.errors, "exporters.otlp/d.sending_queue.max_size_mib", "expected an integer"));
  CHECK(l.errors.size() == 7);
}


TEST_CASE("config sources: files merge map by map, later ones win, lists are replaced", "[config][sources]") {
  YAML::Node base = YAML::Load("a: {x: 1, y: [1, 2], z: {deep: old, keep: yes}}\nb: base\n");
  YAML::Node over = YAML::Load("a: {y: [3], z: {deep: new}}\nc: added\n");
  YAML::Node merged = config::merge_trees(base, over);
  CHECK(merged["a"]["x"].as<int>() == 1);
  REQUIRE(merged["a"]["y"].size() == 1);
  CHECK(merged["a"]["y"][0].as<int>() == 3);
  CHECK(merged["a"]["z"]["deep"].as<std::string>() == "new");
  CHECK(merged["a"]["z"]["keep"].as<std::string>() == "yes");
  CHECK(merged["b"].as<std::string>() == "base");
  CHECK(merged["c"].as<std::string>() == "added");
  CHECK(base["a"]["z"]["deep"].as<std::string>() == "old");  // inputs untouched
}

TEST_CASE("config sources: --set takes :: or . paths and YAML values; bad ones are errors", "[config][sources]") {
  const std::string dir = std::string(OTLPD_SOURCE_DIR) + "/config/otlpd.yaml";
  config::Sources sources{{dir},
                          {"processors::batch::timeout=2s", "exporters.debug.verbosity=detailed",
                           "service::pipelines::traces::exporters=[debug, debug/extra]", "exporters::debug/extra="}};
  YAML::Node root;
  config::Errors errors;
  REQUIRE(config::load_sources(sources, &root, &errors));
  CHECK(root["processors"]["batch"]["timeout"].as<std::string>() == "2s");
  CHECK(root["processors"]["batch"]["max_queue_size"].as<int>() == 2048);  // the file's keys stay
  CHECK(root["exporters"]["debug"]["verbosity"].as<std::string>() == "detailed");
  CHECK(root["service"]["pipelines"]["traces"]["exporters"].size() == 2);
  CHECK(root["exporters"]["debug/extra"].IsNull());

  config::Errors bad;
  YAML::Node ignored;
  CHECK_FALSE(config::load_sources(config::Sources{{dir, "/nonexistent/otlpd.yaml"}, {"novalue", "a..b=1", "=x"}},
                                   &ignored, &bad));
  REQUIRE(bad.size() == 4);
  CHECK(bad.list()[0].message == "cannot read config file /nonexistent/otlpd.yaml");
  CHECK(bad.list()[1].message.find("--set novalue: expected KEY=VALUE") == 0);
  CHECK(bad.list()[2].message.find("--set a..b=1: expected KEY=VALUE") == 0);
  CHECK(bad.list()[3].message.find("--set =x: expected KEY=VALUE") == 0);
}

TEST_CASE("config sources: redaction hides headers and secret-looking keys only", "[config][sources]") {
  YAML::Node root = YAML::Load(R"(
exporters:
  otlp: {endpoint: "backend:4317", headers: {authorization: "Bearer abc", x-tenant: acme}}
  otlphttp: {endpoint: "https://x", auth_token: t0k3n, tls: {ca_file: /etc/ca.pem}}
extensions: {oauth: {client_secret: s3cr3t, scopes: [a, b]}}
)");
  YAML::Node r = config::redacted(root);
  CHECK(r["exporters"]["otlp"]["endpoint"].as<std::string>() == "backend:4317");
  CHECK(r["exporters"]["otlp"]["headers"]["authorization"].as<std::string>() == "[REDACTED]");
  CHECK(r["exporters"]["otlp"]["headers"]["x-tenant"].as<std::string>() == "[REDACTED]");
  CHECK(r["exporters"]["otlphttp"]["auth_token"].as<std::string>() == "[REDACTED]");
  CHECK(r["exporters"]["otlphttp"]["tls"]["ca_file"].as<std::string>() == "/etc/ca.pem");
  CHECK(r["extensions"]["oauth"]["client_secret"].as<std::string>() == "[REDACTED]");
  CHECK(r["extensions"]["oauth"]["scopes"].size() == 2);
  CHECK(root["exporters"]["otlp"]["headers"]["x-tenant"].as<std::string>() == "acme");  // a copy
}

TEST_CASE("bearertokenauth: token or filename, and an auth block must name a running one", "[config][auth]") {
  Loaded ok = load(R"(
extensions:
  bearertokenauth: {token: abc}
  bearertokenauth/file: {filename: /etc/otlpd/token, scheme: Token, header: X-Auth}
receivers:
  otlp: {protocols: {grpc: {auth: {authenticator: bearertokenauth}}}}
exporters:
  otlp: {endpoint: "backend:4317", auth: {authenticator: bearertokenauth/file}}
service:
  extensions: [bearertokenauth, bearertokenauth/file]
  pipelines: {traces: {receivers: [otlp], exporters: [otlp]}}
)");
  INFO(ok.errors.to_string());
  REQUIRE(ok.ok);
  CHECK(ok.config.bearer_tokens.at("bearertokenauth").token == "abc");
  CHECK(ok.config.bearer_tokens.at("bearertokenauth").header == "Authorization");
  CHECK(ok.config.bearer_tokens.at("bearertokenauth").scheme == "Bearer");
  CHECK(ok.config.bearer_tokens.at("bearertokenauth/file").filename == "/etc/otlpd/token");
  CHECK(ok.config.receivers.at("otlp").extensions == std::vector<std::string>{"bearertokenauth"});
  CHECK(ok.config.exporters.at("otlp").extensions == std::vector<std::string>{"bearertokenauth/file"});

  Loaded bad = load(R"(
extensions:
  bearertokenauth: {}
  bearertokenauth/both: {token: a, filename: /t}
  bearertokenauth/unlisted: {token: a}
receivers:
  otlp: {protocols: {grpc: {auth: {authenticator: bearertokenauth/unlisted}}}}
  otlp/2: {protocols: {grpc: {endpoint: "127.0.0.1:0", auth: {authenticator: nothing}}}}
  otlp/3: {protocols: {grpc: {endpoint: "127.0.0.1:1", auth: {}}}}
exporters:
  otlp: {endpoint: "backend:4317", auth: {authenticator: health_check}}
service:
  extensions: [bearertokenauth, bearertokenauth/both]
  pipelines: {traces: {receivers: [otlp, otlp/2, otlp/3], exporters: [otlp]}}
)");
  INFO(bad.errors.to_string());
  CHECK(has_error(bad.errors, "extensions.bearertokenauth", "token or filename is required"));
  CHECK(has_error(bad.errors, "extensions.bearertokenauth/both", "set only one of token and filename"));
  CHECK(has_error(bad.errors, "receivers.otlp.protocols.grpc.auth.authenticator",
                  "extension \"bearertokenauth/unlisted\" is not listed in service.extensions"));
  CHECK(has_error(bad.errors, "receivers.otlp/2.protocols.grpc.auth.authenticator",
                  "extension \"nothing\" is not a configured bearertokenauth extension"));
  CHECK(has_error(bad.errors, "receivers.otlp/3.protocols.grpc.auth.authenticator", "required"));
  CHECK(has_error(bad.errors, "exporters.otlp.auth.authenticator",
                  "extension \"health_check\" is not a configured bearertokenauth extension"));
  CHECK(bad.errors.size() == 6);
}

TEST_CASE("config shape: alias cycles, complex keys, empty keys and no pipelines are errors with a path",
          "[config][shape]") {
  const std::string valid_rest =
      "exporters: {debug: {}}\n"
      "service: {pipelines: {traces: {receivers: [otlp], exporters: [debug]}}}\n";
  Loaded cycle = load("receivers: &r\n  otlp: *r\n" + valid_rest);
  CHECK_FALSE(cycle.ok);
  REQUIRE(cycle.errors.size() == 1);
  CHECK(cycle.errors.list()[0].message == "nested deeper than 64 levels (or an alias that contains itself)");
  CHECK(cycle.errors.list()[0].path.rfind("receivers.otlp.otlp.", 0) == 0);

  Loaded complex_key = load("receivers:\n  ? [otlp]\n  : {}\n" + valid_rest);
  CHECK_FALSE(complex_key.ok);
  CHECK(complex_key.errors.to_string() == "receivers: a mapping key must be a plain value, not a list or mapping");
  Loaded top_complex_key = load("? [a]\n: b\n");
  CHECK(top_complex_key.errors.to_string() ==
        "(top level): a mapping key must be a plain value, not a list or mapping");

  Loaded empty_key = load("receivers: {otlp: {protocols: {http: {}}}}\n" + valid_rest + "\"\": x\n");
  CHECK(empty_key.errors.to_string() == "\"\": unknown key");

  Loaded no_pipelines = load("receivers: {otlp: {protocols: {http: {}}}}\nexporters: {debug: {}}\n"
                             "service: {pipelines: {}}\n");
  CHECK(no_pipelines.errors.to_string() == "service.pipelines: at least one pipeline is required");

  // "Billion laughs": nine levels of ten aliases, 10^9 values in a few hundred bytes.
  std::string laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int level = 1; level <= 9; ++level) {
    const std::string prev = "*a" + std::to_string(level - 1);
    laughs += "a" + std::to_string(level) + ": &a" + std::to_string(level) + " [";
    for (int i = 0; i < 10; ++i) laughs += (i ? ", " : "") + prev;
    laughs += "]\n";
  }
  Loaded bomb = load(laughs + valid_rest);
  CHECK_FALSE(bomb.ok);
  REQUIRE(bomb.errors.size() == 1);
  CHECK(bomb.errors.list()[0].message == "more than 100000 values once aliases are expanded");
  CHECK(bomb.errors.list()[0].path.rfind("a4[", 0) == 0);
}

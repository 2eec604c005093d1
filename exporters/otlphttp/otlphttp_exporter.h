// The `otlphttp` exporter: OTLP/HTTP (protobuf or JSON) to a backend, as the Collector's otlphttp.
//
// Each batch is POSTed to <endpoint>/v1/<signal> (or the signal's own *_endpoint) over HTTP/1.1,
// optionally gzip/zstd-compressed, on keep-alive connections to the one host of that URL.
// Responses map to Status per the OTLP spec: 2xx OK (a partial_success rejection is logged),
// 429/502/503/504 retryable with the Retry-After hint, other statuses permanent, transport errors
// retryable (unavailable, or deadline_exceeded at the send() deadline).
//
// Ownership and threads: the factory builds a QueuedExporter owning one OtlpHttpSender per signal.
// The sender owns a connection pool that it shares (shared_ptr) with the exchanges in flight, so
// completions arriving after the sender is gone are harmless. send() may be called from any thread
// and supports several sends in flight (one per connection); each connection runs on its own strand
// of the Host's io_context and `done` is called from that strand (or inline for errors found before
// any I/O). start()/shutdown() are called from the main thread. Beast stays out of this header.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <string_view>

#include "exporters/common/exporter_settings.h"
#include "exporters/common/sender.h"
#include "extensions/bearertokenauth/bearer_token.h"
#include "net/tls_settings.h"
#include "pipeline/registry.h"

namespace boost::asio {
class io_context;
}

namespace otlpd {

enum class HttpEncoding { proto, json };
enum class HttpCompression { none, gzip, zstd };

struct OtlpHttpExporterConfig : ComponentConfig {
  std::string endpoint;          // base URL; /v1/traces, /v1/metrics or /v1/logs is appended
  std::string traces_endpoint;   // full URL for traces, overriding `endpoint`
  std::string metrics_endpoint;  // full URL for metrics, overriding `endpoint`
  std::string logs_endpoint;     // full URL for logs, overriding `endpoint`
  HttpEncoding encoding = HttpEncoding::proto;           // body: protobuf or OTLP/JSON
  HttpCompression compression = HttpCompression::gzip;   // Content-Encoding of each request
  std::map<std::string, std::string> headers;            // sent on every request
  TlsClientSettings tls;      // https only; `insecure` is ignored: the URL's scheme decides
  std::string authenticator;  // auth.authenticator: a bearertokenauth whose header goes on every request
  ExporterSettings exporter;  // timeout defaults to 30s here, as in the Collector
};

// A parsed http:// or https:// URL.
struct HttpUrl {
  bool tls = false;
  std::string host;    // without brackets for IPv6
  uint16_t port = 0;   // 80 or 443 when the URL gives none
  std::string target;  // path and query, at least "/"
};
// "" on success, else why `text` is not a usable URL.
std::string parse_http_url(std::string_view text, HttpUrl* out);

// The URL `signal` is sent to: its *_endpoint, else `endpoint` plus "/v1/<signal>" (one slash
// between them however `endpoint` ends), else "".
std::string signal_url(const OtlpHttpExporterConfig& config, Signal signal);

class OtlpHttpSender : public Sender {
 public:
  struct Options {
    std::string exporter_name = "otlphttp";  // for log lines
    Signal signal = Signal::traces;
    std::string url;  // full URL for this signal; start() fails when empty or malformed
    HttpEncoding encoding = HttpEncoding::proto;
    HttpCompression compression = HttpCompression::gzip;
    std::map<std::string, std::string> headers;
    TlsClientSettings tls;
    std::optional<BearerTokenSettings> auth;  // its header (token re-read on change) on every request
    size_t max_idle_connections = 10;  // keep-alive connections kept for reuse (num_consumers)
  };
  // `tokens`: the config's bearertokenauth extensions (Host::bearer_tokens; may be null).
  static Options options_from(const ComponentId& id, const OtlpHttpExporterConfig& config, Signal signal,
                              const BearerTokens* tokens = nullptr);

  OtlpHttpSender(boost::asio::io_context& io, Options options);
  ~OtlpHttpSender() override;

  Status start() override;  // parses the URL, loads TLS roots, reads the bearer token
  void send(BatchPtr batch, Clock::time_point deadline, Done done) override;
  void shutdown() override;  // closes every connection; later sends fail with unavailable

  // TCP connections established so far (for tests and telemetry). Any thread.
  uint64_t connections_opened() const;

  class Client;  // the pool and protocol logic, in the .cc

 private:
  boost::asio::io_context& io_;
  Options options_;
  std::shared_ptr<Client> client_;  // set by start()
};

class OtlpHttpExporterFactory : public ExporterFactory {
 public:
  std::string_view type() const override { return "otlphttp"; }
  std::string_view description() const override {
    return "sends OTLP over HTTP, protobuf or JSON (gzip or zstd, TLS, headers)";
  }
  ComponentConfigPtr parse(config::Node& node) const override;
  ExporterPtr create(const ComponentId& id, const ComponentConfig& config, Signal signal,
                     Host& host) const override;
};

}  // namespace otlpd

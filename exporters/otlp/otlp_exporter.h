// The `otlp` exporter: OTLP/gRPC client, configured like the Collector's:
//
//   exporters:
//     otlp:
//       endpoint: backend:4317        # or http://host:port (plaintext), https://host:port (TLS)
//       tls: {insecure: true}         # plaintext; otherwise TLS: ca_file, cert_file/key_file (mTLS),
//                                     # insecure_skip_verify, server_name_override
//       compression: gzip             # gzip (default) | none
//       headers: {api-key: secret}
//       timeout: 5s
//       sending_queue: {...}; retry_on_failure: {...}
//
// Sends the batch bytes as they are, through a generic (raw bytes) gRPC stub: nothing is decoded
// or encoded again, and the request buffer shares the batch memory.
#pragma once

#include <map>
#include <string>

#include "exporters/common/exporter_settings.h"
#include "net/tls_settings.h"
#include "pipeline/registry.h"

namespace otlpd {

struct OtlpExporterConfig : ComponentConfig {
  std::string endpoint;                        // required
  TlsClientSettings tls;                       // min_version is always 1.2 (gRPC 1.51 sets no minimum)
  bool gzip = true;                            // compression: gzip | none
  std::map<std::string, std::string> headers;  // gRPC metadata on every call
  std::string authenticator;                   // auth.authenticator: a bearertokenauth whose header goes on every call
  ExporterSettings exporter;
};

class OtlpExporterFactory : public ExporterFactory {
 public:
  std::string_view type() const override { return "otlp"; }
  std::string_view description() const override {
    return "sends OTLP over gRPC (gzip optional, TLS, headers)";
  }
  ComponentConfigPtr parse(config::Node& node) const override;
  ExporterPtr create(const ComponentId& id, const ComponentConfig& config, Signal signal, Host& host) const override;
};

}  // namespace otlpd

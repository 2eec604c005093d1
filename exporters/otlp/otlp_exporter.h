// The `otlp` exporter: OTLP/gRPC client, configured like the Collector's:
//
//   exporters:
//     otlp:
//       endpoint: backend:4317        # or http://host:port (plaintext), https://host:port (TLS)
//       tls: {insecure: true}         # plaintext; otherwise TLS with the system roots or ca_file
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
#include "pipeline/registry.h"

namespace otlpd {

struct OtlpExporterConfig : ComponentConfig {
  std::string endpoint;                        // required
  bool insecure = false;                       // tls.insecure: plaintext instead of TLS
  std::string ca_file;                         // tls.ca_file: PEM roots instead of the system's
  bool gzip = true;                            // compression: gzip | none
  std::map<std::string, std::string> headers;  // gRPC metadata on every call
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

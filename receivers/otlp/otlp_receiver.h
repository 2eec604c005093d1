// The `otlp` receiver: OTLP over gRPC and/or HTTP, configured like the Collector's:
//
//   receivers:
//     otlp:
//       protocols:
//         grpc: {endpoint: 127.0.0.1:4317, max_recv_msg_size_mib: 4, auth: {authenticator: bearertokenauth}}
//         http: {endpoint: 127.0.0.1:4318, max_request_body_size: 20971520, traces_url_path: /v1/traces}
//
// A protocol runs only when its key is present. Both transports hand request bytes to one
// ExportHandler, which offers them to the pipelines.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "pipeline/registry.h"
#include "receivers/otlp/grpc_server.h"
#include "receivers/otlp/http_server.h"

namespace otlpd {

struct OtlpReceiverConfig : ComponentConfig {
  std::optional<GrpcServerSettings> grpc;
  std::optional<HttpServerSettings> http;
};

class BearerToken;
class ExportHandler;
struct BearerTokenSettings;

class OtlpReceiver : public Receiver {
 public:
  OtlpReceiver(ComponentId id, const OtlpReceiverConfig& config, ReceiverConsumers consumers, Host& host);
  ~OtlpReceiver() override;

  Status start() override;
  void shutdown(Clock::time_point deadline) override;

  // Bound ports after start() (0 when the protocol is off); useful with port 0 in tests.
  uint16_t grpc_port() const;
  uint16_t http_port() const;

 private:
  // The token its `auth.authenticator` names; null and token_error_ set when it cannot be read.
  std::shared_ptr<BearerToken> open_token(const std::string& authenticator);

  const ComponentId id_;
  const std::map<std::string, BearerTokenSettings>* const bearer_tokens_;  // the config's; may be null
  std::string grpc_auth_;  // the gRPC side's authenticator id; empty: none
  std::string http_auth_;  // the HTTP side's
  Status token_error_;
  std::unique_ptr<ExportHandler> handler_;
  std::unique_ptr<GrpcServer> grpc_;
  std::unique_ptr<HttpServer> http_;
};

class OtlpReceiverFactory : public ReceiverFactory {
 public:
  std::string_view type() const override { return "otlp"; }
  std::string_view description() const override {
    return "OTLP traces, metrics and logs over gRPC and HTTP (protobuf or JSON; gzip, zstd)";
  }
  ComponentConfigPtr parse(config::Node& node) const override;
  ReceiverPtr create(const ComponentId& id, const ComponentConfig& config, ReceiverConsumers next,
                     Host& host) const override;
};

}  // namespace otlpd

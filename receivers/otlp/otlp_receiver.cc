#include "receivers/otlp/otlp_receiver.h"

#include <spdlog/spdlog.h>

#include "pipeline/buffer_pool.h"
#include "receivers/otlp/export_handler.h"

namespace otlpd {

OtlpReceiver::OtlpReceiver(ComponentId id, const OtlpReceiverConfig& config, ReceiverConsumers consumers, Host& host)
    : id_(std::move(id)), handler_(std::make_unique<ExportHandler>(id_, std::move(consumers), host.telemetry, host.pools)) {
  ExportHandler* handler = handler_.get();
  if (config.grpc) {
    GrpcServerSettings grpc_settings = *config.grpc;
    grpc_settings.threads = host.threads;
    grpc_ = std::make_unique<GrpcServer>(
        grpc_settings, host.pools ? &host.pools->request_buffers : nullptr,
        [handler](Signal s, std::string&& request) { return handler->handle(Transport::grpc, s, std::move(request)); },
        [handler](Signal s) { return handler->serves(s); });
  }
  if (config.http) {
    http_ = std::make_unique<HttpServer>(host.io, *config.http, [handler](Signal s, std::string&& request) {
      return handler->handle(Transport::http, s, std::move(request));
    });
  }
}

OtlpReceiver::~OtlpReceiver() = default;

Status OtlpReceiver::start() {
  if (grpc_) {
    Status s = grpc_->start();
    if (!s.is_ok()) return s;
    spdlog::info("receiver {}: OTLP/gRPC listening on port {}", id_.str(), grpc_->port());
  }
  if (http_) {
    Status s = http_->start();
    if (!s.is_ok()) {
      if (grpc_) grpc_->shutdown(Clock::now());
      return s;
    }
    spdlog::info("receiver {}: OTLP/HTTP listening on port {}", id_.str(), http_->port());
  }
  return Status::ok();
}

void OtlpReceiver::shutdown(Clock::time_point deadline) {
  if (http_) http_->shutdown(deadline);
  if (grpc_) grpc_->shutdown(deadline);
}

uint16_t OtlpReceiver::grpc_port() const { return grpc_ ? grpc_->port() : 0; }
uint16_t OtlpReceiver::http_port() const { return http_ ? http_->port() : 0; }

namespace {

GrpcServerSettings parse_grpc(config::Node node) {
  GrpcServerSettings s;
  node.read("endpoint", s.endpoint);
  std::string transport = "tcp";
  node.read("transport", transport);
  if (transport != "tcp") node.error("transport", "only tcp is supported");
  node.read("max_recv_msg_size_mib", s.max_recv_msg_size_mib);
  node.check_range("max_recv_msg_size_mib", s.max_recv_msg_size_mib, 1, 2047);
  node.read("max_concurrent_streams", s.max_concurrent_streams);
  node.check_range("max_concurrent_streams", s.max_concurrent_streams, 0, 1 << 20);
  if (s.endpoint.empty()) node.error("endpoint", "required");
  node.finish();
  return s;
}

void check_path(config::Node& node, const char* key, const std::string& path) {
  if (path.empty() || path[0] != '/') node.error(key, "must start with /");
}

HttpServerSettings parse_http(config::Node node) {
  HttpServerSettings s;
  node.read("endpoint", s.endpoint);
  node.read("max_request_body_size", s.max_request_body_size);
  node.read("traces_url_path", s.traces_url_path);
  node.read("metrics_url_path", s.metrics_url_path);
  node.read("logs_url_path", s.logs_url_path);
  node.read_duration("read_timeout", s.read_timeout);
  node.read_duration("idle_timeout", s.idle_timeout);
  if (s.endpoint.empty()) node.error("endpoint", "required");
  if (s.max_request_body_size == 0) node.error("max_request_body_size", "must be positive");
  check_path(node, "traces_url_path", s.traces_url_path);
  check_path(node, "metrics_url_path", s.metrics_url_path);
  check_path(node, "logs_url_path", s.logs_url_path);
  node.finish();
  return s;
}

}  // namespace

ComponentConfigPtr OtlpReceiverFactory::parse(config::Node& node) const {
  auto config = std::make_unique<OtlpReceiverConfig>();
  config::Node protocols = node.child("protocols");
  for (auto& [key, proto] : protocols.entries()) {
    if (key == "grpc") {
      config->grpc = parse_grpc(proto);
    } else if (key == "http") {
      config->http = parse_http(proto);
    } else {
      proto.error_here("unknown protocol (expected grpc or http)");
    }
  }
  if (!config->grpc && !config->http) node.error("protocols", "at least one of grpc and http is required");
  node.finish();
  return config;
}

ReceiverPtr OtlpReceiverFactory::create(const ComponentId& id, const ComponentConfig& config, ReceiverConsumers next,
                                        Host& host) const {
  return std::make_unique<OtlpReceiver>(id, static_cast<const OtlpReceiverConfig&>(config), std::move(next), host);
}

}  // namespace otlpd

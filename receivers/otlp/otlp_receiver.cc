#include "receivers/otlp/otlp_receiver.h"

#include <algorithm>
#include <cctype>
#include <string_view>

#include <spdlog/spdlog.h>

#include "extensions/bearertokenauth/bearer_token.h"
#include "pipeline/buffer_pool.h"
#include "receivers/otlp/export_handler.h"

namespace otlpd {

OtlpReceiver::OtlpReceiver(ComponentId id, const OtlpReceiverConfig& config, ReceiverConsumers consumers, Host& host)
    : id_(std::move(id)),
      bearer_tokens_(host.bearer_tokens),
      handler_(std::make_unique<ExportHandler>(id_, std::move(consumers), host.telemetry, host.pools)) {
  ExportHandler* handler = handler_.get();
  if (config.grpc) {
    grpc_auth_ = config.grpc->authenticator;
    GrpcServerSettings grpc_settings = *config.grpc;
    grpc_settings.threads = host.threads;
    grpc_ = std::make_unique<GrpcServer>(
        grpc_settings, host.pools ? &host.pools->request_buffers : nullptr,
        [handler](Signal s, std::string&& request) { return handler->handle(Transport::grpc, s, std::move(request)); },
        [handler](Signal s) { return handler->serves(s); });
  }
  if (config.http) {
    http_auth_ = config.http->authenticator;
    http_ = std::make_unique<HttpServer>(host.io, *config.http, [handler](Signal s, std::string&& request) {
      return handler->handle(Transport::http, s, std::move(request));
    });
  }
}

OtlpReceiver::~OtlpReceiver() = default;

std::shared_ptr<BearerToken> OtlpReceiver::open_token(const std::string& authenticator) {
  const BearerTokenSettings* settings = find_bearer_token(bearer_tokens_, authenticator);
  if (!settings) {
    token_error_ = Status::invalid_argument("authenticator " + authenticator + " is not a configured bearertokenauth");
    return nullptr;
  }
  return BearerToken::open(*settings, &token_error_);
}

Status OtlpReceiver::start() {
  // Every token is read before anything listens: no port is ever open without its check.
  if (grpc_ && !grpc_auth_.empty()) {
    std::shared_ptr<BearerToken> token = open_token(grpc_auth_);
    if (!token) return token_error_;
    grpc_->require(token);
  }
  if (http_ && !http_auth_.empty()) {
    std::shared_ptr<BearerToken> token = open_token(http_auth_);
    if (!token) return token_error_;
    http_->require(token);
  }
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
  read_authenticator(node, &s.authenticator);
  s.tls = read_tls_server(node);
  if (s.tls && s.tls->min_version == TlsVersion::v1_3) {
    // gRPC 1.51 offers no way to raise its minimum above TLS 1.2.
    node.error("tls.min_version", "1.3 is not supported on the gRPC receiver (it always accepts 1.2 and 1.3)");
  }
  if (s.endpoint.empty()) node.error("endpoint", "required");
  node.finish();
  return s;
}

void check_path(config::Node& node, const char* key, const std::string& path) {
  if (path.empty() || path[0] != '/') node.error(key, "must start with /");
}

// An HTTP field name (RFC 9110 token): it is written into preflight answers as given.
bool is_header_name(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  });
}

CorsSettings parse_cors(config::Node node) {
  CorsSettings c;
  node.read("allowed_origins", c.allowed_origins);
  node.read("allowed_headers", c.allowed_headers);
  int64_t max_age = c.max_age.count();
  node.read("max_age", max_age);
  node.check_range("max_age", max_age, 0, 86400);  // seconds; browsers cap it lower still
  c.max_age = std::chrono::seconds(std::clamp<int64_t>(max_age, 0, 86400));
  if (c.allowed_origins.empty()) node.error("allowed_origins", "at least one origin is required");
  for (size_t i = 0; i < c.allowed_origins.size(); ++i) {
    const std::string& origin = c.allowed_origins[i];
    std::string key = "allowed_origins[" + std::to_string(i) + "]";
    if (origin.empty()) node.error(key, "must not be empty");
    if (std::count(origin.begin(), origin.end(), '*') > 1) node.error(key, "at most one * is allowed");
  }
  for (size_t i = 0; i < c.allowed_headers.size(); ++i) {
    if (c.allowed_headers[i] != "*" && !is_header_name(c.allowed_headers[i])) {
      node.error("allowed_headers[" + std::to_string(i) + "]", "not a header name");
    }
  }
  node.finish();
  return c;
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
  node.read_duration("read_header_timeout", s.read_header_timeout);
  int64_t max_connections = s.max_connections;
  node.read("max_connections", max_connections);
  node.check_range("max_connections", max_connections, 1, 1 << 20);
  s.max_connections = static_cast<uint32_t>(std::clamp<int64_t>(max_connections, 1, 1 << 20));
  int64_t max_streams = s.max_concurrent_streams;
  node.read("max_concurrent_streams", max_streams);
  node.check_range("max_concurrent_streams", max_streams, 1, 1 << 16);
  s.max_concurrent_streams = static_cast<uint32_t>(std::clamp<int64_t>(max_streams, 1, 1 << 16));
  if (node.has("cors")) s.cors = parse_cors(node.child("cors"));
  read_authenticator(node, &s.authenticator);
  s.tls = read_tls_server(node);
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

#include "exporters/otlp/otlp_exporter.h"

#include <cctype>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <pthread.h>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <spdlog/spdlog.h>

#include "exporters/common/queued_exporter.h"
#include "extensions/bearertokenauth/bearer_token.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "net/tls_client_context.h"
#include "otlp/response.h"

namespace otlpd {

namespace {

const char* method_for(Signal s) {
  switch (s) {
    case Signal::traces: return "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    case Signal::metrics: return "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    case Signal::logs: return "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
  }
  return "";
}

// The server's RetryInfo hint from grpc-status-details-bin, zero when absent.
std::chrono::milliseconds retry_delay(const grpc::Status& status) {
  if (status.error_details().empty()) return {};
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return {};
  for (const auto& any : details.details()) {
    google::rpc::RetryInfo info;
    if (any.UnpackTo(&info)) {
      return std::chrono::milliseconds(info.retry_delay().seconds() * 1000 + info.retry_delay().nanos() / 1'000'000);
    }
  }
  return {};
}

// Whether `endpoint` starts with `scheme` (lowercase), in any case: URL schemes are case-insensitive.
bool has_scheme(std::string_view endpoint, std::string_view scheme) {
  if (endpoint.size() < scheme.size()) return false;
  for (size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(endpoint[i])) != scheme[i]) return false;
  }
  return true;
}

// TLS credentials from the exporter's files: verified against ca_file or the system's roots, or
// (insecure_skip_verify) encrypted without checking the server's certificate or name.
std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const TlsClientSettings& tls, const TlsClientFiles& files) {
  if (!tls.insecure_skip_verify) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = files.ca_pem;
    options.pem_private_key = files.key_pem;
    options.pem_cert_chain = files.cert_pem;
    return grpc::SslCredentials(options);
  }
  namespace gx = grpc::experimental;
  std::vector<gx::IdentityKeyCertPair> identity;
  if (!files.cert_pem.empty()) identity.push_back({files.key_pem, files.cert_pem});
  gx::TlsChannelCredentialsOptions options;
  if (!identity.empty()) {
    options.set_certificate_provider(std::make_shared<gx::StaticDataCertificateProvider>(identity));
    options.watch_identity_key_cert_pairs();
  }
  options.set_verify_server_certs(false);
  options.set_certificate_verifier(std::make_shared<gx::NoOpCertificateVerifier>());
  options.set_check_call_host(false);
  return gx::TlsCredentials(options);
}

class GrpcSender : public Sender {
 public:
  GrpcSender(ComponentId id, Signal signal, const OtlpExporterConfig& config, std::optional<BearerTokenSettings> auth)
      : id_(std::move(id)), signal_(signal), config_(config), auth_settings_(std::move(auth)) {}

  Status start() override {
    if (auth_settings_) {
      Status error;
      auth_ = BearerToken::open(*auth_settings_, &error);
      if (!auth_) return error;
    }
    std::string target = config_.endpoint;
    bool tls = !config_.tls.insecure;
    if (has_scheme(target, "http://")) {
      target = target.substr(7);
      tls = false;
    } else if (has_scheme(target, "https://")) {
      target = target.substr(8);
      tls = true;
    }
    while (!target.empty() && target.back() == '/') target.pop_back();
    if (!tls && config_.tls.sets_tls_options()) {
      return Status::invalid_argument(id_.str() + ": endpoint " + config_.endpoint +
                                      " is plaintext (http://) but tls settings are given");
    }
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 64 << 20);
    args.SetString(GRPC_ARG_PRIMARY_USER_AGENT_STRING, std::string("otlpd/") + OTLPD_VERSION);
    std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
    if (tls) {
      TlsClientFiles files;
      if (Status s = read_tls_client_files(config_.tls, &files); !s.is_ok()) {
        return Status::invalid_argument(id_.str() + ": " + s.message());
      }
      creds = channel_credentials(config_.tls, files);
      if (!config_.tls.server_name_override.empty()) {
        args.SetSslTargetNameOverride(config_.tls.server_name_override);
      }
    }
    channel_ = grpc::CreateCustomChannel(target, creds, args);
    stub_ = std::make_unique<grpc::GenericStub>(channel_);
    poller_ = std::thread([this] { poll(); });
    return Status::ok();
  }

  ~GrpcSender() override { shutdown(); }

  // Cancels calls still in flight, so their completions (counted by the QueuedExporter) come now,
  // then drains the completion queue and stops its thread.
  void shutdown() override {
    {
      std::lock_guard lock(calls_mu_);
      if (stopped_) return;
      stopped_ = true;
      for (auto* call : live_) call->context.TryCancel();
    }
    if (!poller_.joinable()) return;
    cq_.Shutdown();
    poller_.join();
  }

  // PrepareUnaryCall only queues the call with gRPC; the completion queue's thread finishes it.
  // But gRPC compresses the message on the thread that starts the call: with gzip, sends go to the
  // I/O threads, so batches compress in parallel and the thread that filled a batch is not held.
  bool sends_without_blocking() const override { return !config_.gzip; }

  void send(BatchPtr batch, Clock::time_point deadline, Done done) override {
    auto* call = new Call;
    call->done = std::move(done);
    call->context.set_deadline(std::chrono::system_clock::now() + (deadline - Clock::now()));
    if (config_.gzip) call->context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
    for (const auto& [k, v] : config_.headers) call->context.AddMetadata(k, v);
    if (auth_) call->context.AddMetadata(auth_->header(), auth_->header_value());  // per call: it may rotate
    // The slice borrows the batch's bytes; it keeps a share of the batch until gRPC is done.
    auto* keep = new BatchPtr(batch);
    grpc::Slice slice(const_cast<char*>(batch->payload.data()), batch->payload.size(),
                      [](void* p) { delete static_cast<BatchPtr*>(p); }, keep);
    call->request = grpc::ByteBuffer(&slice, 1);
    {
      std::lock_guard lock(calls_mu_);
      if (stopped_) {
        Done finished = std::move(call->done);
        delete call;
        finished(Status::unavailable("exporter is shut down"));
        return;
      }
      live_.insert(call);
      call->reader = stub_->PrepareUnaryCall(&call->context, method_for(signal_), call->request, &cq_);
      call->reader->StartCall();
      call->reader->Finish(&call->response, &call->status, call);
    }
  }

 private:
  struct Call {
    grpc::ClientContext context;
    grpc::ByteBuffer request;
    grpc::ByteBuffer response;
    grpc::Status status;
    std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
    Done done;
  };

  // The completion queue's thread: it also polls the channel's connections, so a call's answer
  // is read and handled here without a thread switch.
  void poll() {
    pthread_setname_np(pthread_self(), "otlpd-grpc-out");
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
      auto* call = static_cast<Call*>(tag);
      {
        std::lock_guard lock(calls_mu_);
        live_.erase(call);
      }
      Status result = finish(call->status, call->response);
      Done done = std::move(call->done);
      delete call;
      done(result);
    }
  }

  Status finish(const grpc::Status& status, grpc::ByteBuffer& response) {
    if (!status.ok()) {
      return status_from_grpc(status.error_code(), "gRPC " + std::to_string(status.error_code()) + ": " +
                                                       status.error_message(),
                              retry_delay(status));
    }
    std::vector<grpc::Slice> slices;
    if (response.Length() > 0 && response.Dump(&slices).ok()) {
      std::string bytes;
      for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
      auto reply = otlp::new_response(signal_);
      otlp::PartialSuccess partial;
      if (reply->ParseFromString(bytes)) partial = otlp::partial_success_of(signal_, *reply);
      if (partial.rejected > 0) {
        spdlog::warn("exporter {}: the server rejected {} {}: {}", id_.str(), partial.rejected,
                     otlp::item_name(signal_), partial.message);
        return Status::partial(partial.rejected, partial.message);
      }
    }
    return Status::ok();
  }

  const ComponentId id_;
  const Signal signal_;
  const OtlpExporterConfig config_;
  const std::optional<BearerTokenSettings> auth_settings_;
  std::shared_ptr<const BearerToken> auth_;  // set by start(); read by send() on any thread after
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::GenericStub> stub_;
  grpc::CompletionQueue cq_;
  std::thread poller_;
  std::mutex calls_mu_;  // guards live_ and stopped_, and starting calls on cq_ (not after its Shutdown)
  std::set<Call*> live_;
  bool stopped_ = false;
};

}  // namespace

ComponentConfigPtr OtlpExporterFactory::parse(config::Node& node) const {
  auto config = std::make_unique<OtlpExporterConfig>();
  node.read("endpoint", config->endpoint);
  if (config->endpoint.empty()) node.error("endpoint", "required");
  config->tls = read_tls_client(node);
  if (has_scheme(config->endpoint, "http://") && config->tls.sets_tls_options()) {
    node.error("tls", "TLS settings are given but the endpoint is http:// (plaintext)");
  }
  if (config->tls.min_version == TlsVersion::v1_3) {
    node.error("tls.min_version", "1.3 is not supported by the otlp exporter (it always offers 1.2 and 1.3)");
  }
  std::string compression = "gzip";
  node.read_enum("compression", compression,
                 {{"gzip", std::string("gzip")}, {"none", std::string("none")}, {"", std::string("none")}});
  config->gzip = compression == "gzip";
  std::map<std::string, std::string> headers;
  node.read("headers", headers);
  for (const auto& [key, value] : headers) {
    // gRPC metadata keys are lowercase (the Collector lowercases them too); anything else would
    // make every call fail.
    std::string lower;
    for (char c : key) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool key_ok = !lower.empty() && lower.find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyz-_.") ==
                                              std::string::npos;
    if (!key_ok) {
      node.error("headers." + key, "invalid gRPC metadata key (letters, digits, -, _, . only)");
      continue;
    }
    const bool binary = lower.size() > 4 && lower.compare(lower.size() - 4, 4, "-bin") == 0;
    bool value_ok = true;
    for (unsigned char c : value) value_ok = value_ok && (binary || (c >= 0x20 && c < 0x7f));
    if (!value_ok) {
      node.error("headers." + key, "value must be printable ASCII");
      continue;
    }
    config->headers[lower] = value;
  }
  read_authenticator(node, &config->authenticator);
  config->exporter.parse(node);
  node.finish();
  return config;
}

ExporterPtr OtlpExporterFactory::create(const ComponentId& id, const ComponentConfig& config, Signal signal,
                                        Host& host) const {
  const auto& c = static_cast<const OtlpExporterConfig&>(config);
  std::optional<BearerTokenSettings> auth;
  if (const BearerTokenSettings* settings = find_bearer_token(host.bearer_tokens, c.authenticator)) auth = *settings;
  return std::make_shared<QueuedExporter>(id, signal, c.exporter, std::make_unique<GrpcSender>(id, signal, c, auth),
                                          host);
}

}  // namespace otlpd

#include "exporters/otlp/otlp_exporter.h"

#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <pthread.h>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "exporters/common/queued_exporter.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
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

class GrpcSender : public Sender {
 public:
  GrpcSender(ComponentId id, Signal signal, const OtlpExporterConfig& config)
      : id_(std::move(id)), signal_(signal), config_(config) {}

  Status start() override {
    std::string target = config_.endpoint;
    bool tls = !config_.insecure;
    if (target.rfind("http://", 0) == 0) {
      target = target.substr(7);
      tls = false;
    } else if (target.rfind("https://", 0) == 0) {
      target = target.substr(8);
      tls = true;
    }
    while (!target.empty() && target.back() == '/') target.pop_back();
    std::shared_ptr<grpc::ChannelCredentials> creds;
    if (tls) {
      grpc::SslCredentialsOptions options;
      if (!config_.ca_file.empty()) {
        std::ifstream in(config_.ca_file);
        if (!in) return Status::invalid_argument("cannot read tls.ca_file " + config_.ca_file);
        std::stringstream pem;
        pem << in.rdbuf();
        options.pem_root_certs = pem.str();
      }
      creds = grpc::SslCredentials(options);
    } else {
      creds = grpc::InsecureChannelCredentials();
    }
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 64 << 20);
    args.SetString(GRPC_ARG_PRIMARY_USER_AGENT_STRING, std::string("otlpd/") + OTLPD_VERSION);
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
  config::Node tls = node.child("tls");
  tls.read("insecure", config->insecure);
  tls.read("ca_file", config->ca_file);
  tls.finish();
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
  config->exporter.parse(node);
  node.finish();
  return config;
}

ExporterPtr OtlpExporterFactory::create(const ComponentId& id, const ComponentConfig& config, Signal signal,
                                        Host& host) const {
  const auto& c = static_cast<const OtlpExporterConfig&>(config);
  return std::make_shared<QueuedExporter>(id, signal, c.exporter, std::make_unique<GrpcSender>(id, signal, c), host);
}

}  // namespace otlpd

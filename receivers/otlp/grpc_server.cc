#include "receivers/otlp/grpc_server.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>
#include <spdlog/spdlog.h>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "otlp/response.h"
#include "pipeline/buffer_pool.h"

namespace otlpd {

namespace {

std::optional<otlp::Signal> signal_for_method(const std::string& method) {
  if (method == "/opentelemetry.proto.collector.trace.v1.TraceService/Export") return otlp::Signal::traces;
  if (method == "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export") return otlp::Signal::metrics;
  if (method == "/opentelemetry.proto.collector.logs.v1.LogsService/Export") return otlp::Signal::logs;
  return std::nullopt;
}

// The Export<Signal>ServiceResponse: empty on full success, partial_success otherwise.
std::string response_bytes(otlp::Signal signal, const Status& s) {
  if (s.rejected_items() == 0) return {};
  return otlp::make_response(signal, {static_cast<int64_t>(s.rejected_items()), s.message()})->SerializeAsString();
}

// A refusal carries google.rpc.RetryInfo in grpc-status-details-bin, as OTLP asks for retryable
// RESOURCE_EXHAUSTED / UNAVAILABLE answers.
grpc::Status to_grpc(const Status& s) {
  auto code = static_cast<grpc::StatusCode>(grpc_code(s));
  if (s.retry_after().count() <= 0) return grpc::Status(code, s.message());
  google::rpc::RetryInfo retry;
  retry.mutable_retry_delay()->set_seconds(s.retry_after().count() / 1000);
  retry.mutable_retry_delay()->set_nanos(static_cast<int32_t>((s.retry_after().count() % 1000) * 1'000'000));
  google::rpc::Status details;
  details.set_code(static_cast<int32_t>(code));
  details.set_message(s.message());
  details.add_details()->PackFrom(retry);
  return grpc::Status(code, s.message(), details.SerializeAsString());
}

}  // namespace

// One reactor per call: read the single request message, answer, finish.
class ExportReactor final : public grpc::ServerGenericBidiReactor {
 public:
  ExportReactor(grpc::GenericCallbackServerContext* ctx, BufferPool* buffers, const GrpcServer::Handler& handler,
                const GrpcServer::Serves& serves)
      : buffers_(buffers), handler_(handler) {
    auto signal = signal_for_method(ctx->method());
    if (!signal || !serves(*signal)) {
      Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method " + ctx->method()));
      return;
    }
    signal_ = *signal;
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
      return;
    }
    std::vector<grpc::Slice> slices;
    if (!request_.Dump(&slices).ok()) {
      Finish(grpc::Status(grpc::StatusCode::INTERNAL, "cannot read request"));
      return;
    }
    std::string payload;
    if (buffers_) {
      payload = buffers_->acquire(request_.Length());
    } else {
      payload.reserve(request_.Length());
    }
    for (const auto& slice : slices) payload.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    request_.Clear();
    Status s;
    try {
      s = handler_(signal_, std::move(payload));
    } catch (const std::exception& e) {  // e.g. bad_alloc: fail this call, not the process
      s = Status::internal(e.what());
    }
    if (!s.is_ok()) {
      Finish(to_grpc(s));
      return;
    }
    std::string body = response_bytes(signal_, s);
    grpc::Slice slice(body);
    response_ = grpc::ByteBuffer(&slice, 1);
    StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
  }

  void OnDone() override { delete this; }

 private:
  BufferPool* const buffers_;
  const GrpcServer::Handler& handler_;
  otlp::Signal signal_ = otlp::Signal::traces;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

class GrpcServer::Service final : public grpc::CallbackGenericService {
 public:
  Service(BufferPool* buffers, const GrpcServer::Handler& handler, const GrpcServer::Serves& serves)
      : buffers_(buffers), handler_(handler), serves_(serves) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    return new ExportReactor(ctx, buffers_, handler_, serves_);
  }

 private:
  BufferPool* const buffers_;
  const GrpcServer::Handler& handler_;
  const GrpcServer::Serves& serves_;
};

GrpcServer::GrpcServer(GrpcServerSettings settings, BufferPool* buffers, Handler handler, Serves serves)
    : settings_(std::move(settings)), buffers_(buffers), handler_(std::move(handler)), serves_(std::move(serves)) {}

GrpcServer::~GrpcServer() { shutdown(Clock::now()); }

Status GrpcServer::start() {
  service_ = std::make_unique<Service>(buffers_, handler_, serves_);
  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(settings_.endpoint, grpc::InsecureServerCredentials(), &selected_port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(settings_.max_recv_msg_size_mib * 1024 * 1024));
  if (settings_.max_concurrent_streams > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, static_cast<int>(settings_.max_concurrent_streams));
  }
  // A second otlpd on the same port must fail, not share it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterCallbackGenericService(service_.get());
  auto server = builder.BuildAndStart();
  if (!server || selected_port == 0) {
    return Status::unavailable("cannot listen for gRPC on " + settings_.endpoint);
  }
  server_ = std::move(server);
  port_ = static_cast<uint16_t>(selected_port);
  return Status::ok();
}

void GrpcServer::shutdown(Clock::time_point deadline) {
  if (!server_) return;
  auto wall_deadline = std::chrono::system_clock::now() + (deadline - Clock::now());
  server_->Shutdown(wall_deadline);
  server_->Wait();
  server_.reset();
}

}  // namespace otlpd

// GrpcTransport: GenericStub unary calls on raw bytes. Threads: see grpc_client.h.
#include "bench/loadgen/grpc_client.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "otlp/response.h"

namespace otlpd::loadgen {

namespace {

const char* method_for(otlp::Signal s) {
  switch (s) {
    case otlp::Signal::traces: return "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    case otlp::Signal::metrics: return "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    case otlp::Signal::logs: return "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
  }
  return "";
}

// One call in flight: the context and buffers gRPC writes into; freed in the completion callback.
struct Call {
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  Transport::Done done;
};

uint64_t rejected_in(otlp::Signal signal, grpc::ByteBuffer& response) {
  if (response.Length() == 0) return 0;
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return 0;
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  auto reply = otlp::new_response(signal);
  if (!reply->ParseFromString(bytes)) return 0;
  auto partial = otlp::partial_success_of(signal, *reply);
  return partial.rejected > 0 ? static_cast<uint64_t>(partial.rejected) : 0;
}

}  // namespace

GrpcTransport::GrpcTransport(GrpcClientOptions options) : options_(std::move(options)), method_(method_for(options_.signal)) {}

GrpcTransport::~GrpcTransport() = default;

bool GrpcTransport::start(std::string* error) {
  if (options_.endpoint.empty()) {
    *error = "empty endpoint";
    return false;
  }
  for (size_t i = 0; i < options_.connections; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 64 << 20);
    args.SetInt(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, 64 << 20);
    // Without these, channels with equal arguments share one TCP connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("otlpd.loadgen.channel", static_cast<int>(i));
    args.SetString(GRPC_ARG_PRIMARY_USER_AGENT_STRING, std::string("otlpd-loadgen/") + OTLPD_VERSION);
    if (options_.gzip) args.SetCompressionAlgorithm(GRPC_COMPRESS_GZIP);
    auto channel = grpc::CreateCustomChannel(options_.endpoint, grpc::InsecureChannelCredentials(), args);
    stubs_.push_back(std::make_unique<grpc::GenericStub>(channel));
    channels_.push_back(std::move(channel));
  }
  return true;
}

void GrpcTransport::send(size_t conn, std::string payload, Done done) {
  auto* call = new Call;
  call->done = std::move(done);
  call->context.set_deadline(std::chrono::system_clock::now() + options_.timeout);
  call->context.set_wait_for_ready(false);
  if (options_.gzip) call->context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  // The slice takes the payload string over; gRPC frees it when it no longer needs the bytes.
  auto* owned = new std::string(std::move(payload));
  grpc::Slice slice(owned->data(), owned->size(), [](void* p) { delete static_cast<std::string*>(p); }, owned);
  call->request = grpc::ByteBuffer(&slice, 1);
  const otlp::Signal signal = options_.signal;
  stubs_[conn % stubs_.size()]->UnaryCall(
      &call->context, method_, grpc::StubOptions(), &call->request, &call->response,
      [call, signal](grpc::Status status) {
        Outcome o;
        const auto code = status.error_code();
        if (status.ok()) {
          o.kind = Outcome::Kind::ok;
          o.rejected_items = rejected_in(signal, call->response);
        } else if (code == grpc::StatusCode::DEADLINE_EXCEEDED || code == grpc::StatusCode::CANCELLED ||
                   (code == grpc::StatusCode::UNAVAILABLE && status.error_details().empty())) {
          o.kind = Outcome::Kind::failed;
          o.code = code;
          o.error = "grpc " + std::to_string(code) + ": " + status.error_message();
        } else {
          o.kind = Outcome::Kind::refused;
          o.code = code;
        }
        Done d = std::move(call->done);
        delete call;
        d(std::move(o));
      });
}

void GrpcTransport::shutdown() {
  stubs_.clear();
  channels_.clear();
}

}  // namespace otlpd::loadgen

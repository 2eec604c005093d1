#include "receivers/otlp/grpc_server.h"

#include <pthread.h>

#include <shared_mutex>

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

// One call, driven by completions on its completion queue: requested -> reading -> finishing.
// Every step runs on the queue's thread, which also polls the sockets, so receiving, handling
// and answering a request needs no thread switch.
class GrpcServer::Call {
 public:
  Call(GrpcServer& server, grpc::ServerCompletionQueue* cq) : server_(server), cq_(cq), stream_(&ctx_) {
    server_.service_->RequestCall(&ctx_, &stream_, cq_, cq_, this);
  }

  // Called on the completion queue's thread with the outcome of the last operation started.
  void proceed(bool ok) {
    switch (state_) {
      case State::requested:
        if (!ok) {  // the server is shutting down
          delete this;
          return;
        }
        new Call(server_, cq_);  // the next call on this queue
        start();
        return;
      case State::reading:
        if (!ok) {
          finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
          return;
        }
        answer();
        return;
      case State::finishing:
        delete this;
        return;
    }
  }

 private:
  enum class State { requested, reading, finishing };

  void start() {
    auto signal = signal_for_method(ctx_.method());
    if (!signal || !server_.serves_(*signal)) {
      finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method " + ctx_.method()));
      return;
    }
    signal_ = *signal;
    state_ = State::reading;
    stream_.Read(&request_, this);
  }

  void answer() {
    // Per thread and reused, so its capacity survives from one request to the next.
    thread_local std::vector<grpc::Slice> slices;
    slices.clear();
    if (!request_.Dump(&slices).ok()) {
      finish(grpc::Status(grpc::StatusCode::INTERNAL, "cannot read request"));
      return;
    }
    std::string payload;
    if (server_.buffers_) {
      payload = server_.buffers_->acquire(request_.Length());
    } else {
      payload.reserve(request_.Length());
    }
    for (const auto& slice : slices) payload.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    slices.clear();  // drop the slice references now, not at the next request
    request_.Clear();
    Status s;
    try {
      s = server_.handler_(signal_, std::move(payload));
    } catch (const std::exception& e) {  // e.g. bad_alloc: fail this call, not the process
      s = Status::internal(e.what());
    }
    if (!s.is_ok()) {
      finish(to_grpc(s));
      return;
    }
    std::string body = response_bytes(signal_, s);
    grpc::Slice slice(body);
    response_ = grpc::ByteBuffer(&slice, 1);
    state_ = State::finishing;
    stream_.WriteAndFinish(response_, grpc::WriteOptions(), grpc::Status::OK, this);
  }

  void finish(const grpc::Status& status) {
    state_ = State::finishing;
    stream_.Finish(status, this);
  }

  GrpcServer& server_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::GenericServerContext ctx_;
  grpc::GenericServerAsyncReaderWriter stream_;
  State state_ = State::requested;
  otlp::Signal signal_ = otlp::Signal::traces;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

GrpcServer::GrpcServer(GrpcServerSettings settings, BufferPool* buffers, Handler handler, Serves serves)
    : settings_(std::move(settings)), buffers_(buffers), handler_(std::move(handler)), serves_(std::move(serves)) {}

GrpcServer::~GrpcServer() { shutdown(Clock::now()); }

Status GrpcServer::start() {
  service_ = std::make_unique<grpc::AsyncGenericService>();
  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(settings_.endpoint, grpc::InsecureServerCredentials(), &selected_port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(settings_.max_recv_msg_size_mib * 1024 * 1024));
  if (settings_.max_concurrent_streams > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, static_cast<int>(settings_.max_concurrent_streams));
  }
  // A second otlpd on the same port must fail, not share it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterAsyncGenericService(service_.get());
  // One queue served by all the threads: a handler that takes long holds up only its own thread.
  queue_ = builder.AddCompletionQueue();
  auto server = builder.BuildAndStart();
  if (!server || selected_port == 0) {
    queue_.reset();
    return Status::unavailable("cannot listen for gRPC on " + settings_.endpoint);
  }
  server_ = std::move(server);
  port_ = static_cast<uint16_t>(selected_port);
  grpc::ServerCompletionQueue* queue = queue_.get();
  new Call(*this, queue);
  for (size_t i = 0; i < std::max<size_t>(1, settings_.threads); ++i) {
    threads_.emplace_back([this, queue] {
      pthread_setname_np(pthread_self(), "otlpd-grpc");
      void* tag;
      bool ok;
      while (queue->Next(&tag, &ok)) dispatch(static_cast<Call*>(tag), ok);
    });
  }
  return Status::ok();
}

void GrpcServer::dispatch(Call* call, bool ok) {
  // Shared: steps run in parallel; shutdown() takes it exclusively to close the queue between steps.
  std::shared_lock lock(steps_mu_);
  if (queue_closed_) {  // no operation may start on a shut-down queue: just drain
    delete call;
    return;
  }
  call->proceed(ok);
}

void GrpcServer::shutdown(Clock::time_point deadline) {
  if (!server_) return;
  auto wall_deadline = std::chrono::system_clock::now() + (deadline - Clock::now());
  server_->Shutdown(wall_deadline);  // pending calls complete (or are cancelled) through the queue
  {
    // Waits for handlers still running (a handler may outlast the deadline: its answer then goes
    // nowhere, but it must not start an operation on a closed queue).
    std::unique_lock lock(steps_mu_);
    queue_closed_ = true;
    queue_->Shutdown();
  }
  for (auto& t : threads_) t.join();  // the threads drain the queue, deleting its calls
  threads_.clear();
  server_.reset();
  queue_.reset();
}

}  // namespace otlpd

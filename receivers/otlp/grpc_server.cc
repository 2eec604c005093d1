#include "receivers/otlp/grpc_server.h"

#include <pthread.h>

#include <algorithm>
#include <shared_mutex>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/support/byte_buffer.h>
#include <spdlog/spdlog.h>

#include "extensions/bearertokenauth/bearer_token.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "net/tls_server_context.h"
#include "otlp/compression.h"
#include "receivers/otlp/grpc_tls_staging.h"
#include "otlp/response.h"
#include "pipeline/buffer_pool.h"

// The one door gRPC leaves to a received message's C buffer, which says how it is compressed.
// Declared by grpcpp as a friend of ByteBuffer; otlpd defines it, gRPC's library does not.
namespace grpc::internal {
class GrpcByteBufferPeer {
 public:
  explicit GrpcByteBufferPeer(ByteBuffer* buffer) : buffer_(buffer) {}
  grpc_byte_buffer* c_buffer() { return buffer_->c_buffer(); }

 private:
  ByteBuffer* buffer_;
};
}  // namespace grpc::internal

namespace otlpd {

namespace {

// Appends a received message's bytes, as they came over the wire, to *out.
void append_raw(grpc_byte_buffer* buffer, std::string* out) {
  const grpc_slice_buffer& slices = buffer->data.raw.slice_buffer;
  for (size_t i = 0; i < slices.count; ++i) {
    out->append(reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(slices.slices[i])),
                GRPC_SLICE_LENGTH(slices.slices[i]));
  }
}

// Inflates a compressed message into *out, stopping at `limit` bytes: gRPC 1.51 would inflate it
// whole before checking its size, so its own decompression is turned off (see start()).
grpc::Status inflate_message(grpc_compression_algorithm algorithm, std::string_view in, size_t limit,
                             std::string* out) {
  otlp::DecompressResult result;
  const char* name;
  switch (algorithm) {
    case GRPC_COMPRESS_GZIP:
      name = "gzip";
      result = otlp::gzip_decompress(in, limit, out);
      break;
    case GRPC_COMPRESS_DEFLATE:
      name = "deflate";
      result = otlp::zlib_decompress(in, limit, out);
      break;
    default:
      return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unsupported message compression");
  }
  switch (result) {
    case otlp::DecompressResult::ok:
      return grpc::Status::OK;
    case otlp::DecompressResult::too_large:
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "message larger than " + std::to_string(limit) + " bytes once decompressed");
    case otlp::DecompressResult::malformed:
      break;
  }
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string("malformed ") + name + " message");
}

std::optional<otlp::Signal> signal_for_method(const std::string& method) {
  if (method == "/opentelemetry.proto.collector.trace.v1.TraceService/Export") return otlp::Signal::traces;
  if (method == "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export") return otlp::Signal::metrics;
  if (method == "/opentelemetry.proto.collector.logs.v1.LogsService/Export") return otlp::Signal::logs;
  return std::nullopt;
}

// Plaintext, or TLS from the settings' files: checked here first so that a bad file is a start
// error naming it (gRPC itself would only log it and fail every handshake).
// With reload_interval, gRPC watches *staging's checked copy of the files (see GrpcTlsStaging).
Status server_credentials(const std::optional<TlsServerSettings>& tls, std::unique_ptr<GrpcTlsStaging>* staging,
                          std::shared_ptr<grpc::ServerCredentials>* out) {
  if (!tls) {
    *out = grpc::InsecureServerCredentials();
    return Status::ok();
  }
  TlsServerFiles files;
  if (Status s = read_tls_server_files(*tls, &files); !s.is_ok()) return s;
  namespace gx = grpc::experimental;
  std::shared_ptr<gx::CertificateProviderInterface> provider;
  if (tls->reload_interval.count() > 0) {
    Status error;
    *staging = GrpcTlsStaging::create(*tls, &error);
    if (!*staging) return error;
    // The copy changes only every reload_interval, and only to a checked pair: reading it each
    // second costs little and makes a rotation visible soon after otlpd has published it.
    provider = std::make_shared<gx::FileWatcherCertificateProvider>(
        (*staging)->key_file(), (*staging)->cert_file(), (*staging)->client_ca_file(), 1);
  } else if (files.client_ca_pem.empty()) {
    provider = std::make_shared<gx::StaticDataCertificateProvider>(
        std::vector<gx::IdentityKeyCertPair>{{files.key_pem, files.cert_pem}});
  } else {
    provider = std::make_shared<gx::StaticDataCertificateProvider>(
        files.client_ca_pem, std::vector<gx::IdentityKeyCertPair>{{files.key_pem, files.cert_pem}});
  }
  gx::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (tls->client_ca_file.empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  *out = gx::TlsServerCredentials(options);
  return *out ? Status::ok() : Status::internal("gRPC refused the TLS settings");
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
    if (server_.auth_ && !authenticated()) {
      finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or invalid credentials"));
      return;
    }
    auto signal = signal_for_method(ctx_.method());
    if (!signal || !server_.serves_(*signal)) {
      finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method " + ctx_.method()));
      return;
    }
    signal_ = *signal;
    state_ = State::reading;
    stream_.Read(&request_, this);
  }

  // Before the message is read (or decompressed): only the metadata has arrived.
  bool authenticated() const {
    const auto& metadata = ctx_.client_metadata();
    auto it = metadata.find(server_.auth_->header());
    const std::string_view value = it == metadata.end() ? std::string_view()
                                                         : std::string_view(it->second.data(), it->second.size());
    return server_.auth_->accepts(value);
  }

  void answer() {
    grpc_byte_buffer* raw = grpc::internal::GrpcByteBufferPeer(&request_).c_buffer();
    if (raw == nullptr || raw->type != GRPC_BB_RAW) {
      finish(grpc::Status(grpc::StatusCode::INTERNAL, "cannot read request"));
      return;
    }
    const grpc_compression_algorithm algorithm = raw->data.raw.compression;
    const size_t wire_size = grpc_byte_buffer_length(raw);
    std::string payload = server_.buffers_ ? server_.buffers_->acquire(wire_size) : std::string();
    append_raw(raw, &payload);
    request_.Clear();
    if (algorithm != GRPC_COMPRESS_NONE) {
      std::string inflated = server_.buffers_ ? server_.buffers_->acquire(std::min(wire_size * 4, server_.max_message_bytes())) : std::string();
      grpc::Status inflate_status = inflate_message(algorithm, payload, server_.max_message_bytes(), &inflated);
      if (server_.buffers_) server_.buffers_->release(std::move(payload));
      if (!inflate_status.ok()) {
        if (server_.buffers_) server_.buffers_->release(std::move(inflated));
        finish(inflate_status);
        return;
      }
      payload = std::move(inflated);
    }
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
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (Status s = server_credentials(settings_.tls, &tls_staging_, &credentials); !s.is_ok()) return s;
  service_ = std::make_unique<grpc::AsyncGenericService>();
  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(settings_.endpoint, credentials, &selected_port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_message_bytes()));
  // Compressed messages are inflated by Call::answer, which stops at the size limit.
  builder.AddChannelArgument(GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION, 0);
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

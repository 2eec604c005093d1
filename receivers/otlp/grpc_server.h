// GrpcServer: the OTLP/gRPC side of the `otlp` receiver.
//
// Serves TraceService/Export, MetricsService/Export and LogsService/Export as a generic (raw
// bytes) service: request messages arrive as the client's serialized bytes (gRPC has already
// undone message compression) and are never parsed into message objects here. Requests are
// handled on the threads of the server's own completion queue (otlpd-grpc, `threads` of them),
// which also poll the connections; the handler must not block on I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "net/tls_settings.h"
#include "pipeline/component.h"
#include "pipeline/status.h"
#include "otlp/signal.h"

namespace grpc {
class AsyncGenericService;
class Server;
class ServerCompletionQueue;
}

namespace otlpd {

class BearerToken;
class BufferPool;
class GrpcTlsStaging;

struct GrpcServerSettings {
  std::string endpoint = "localhost:4317";  // host:port; port 0 picks a free one
  int64_t max_recv_msg_size_mib = 4;        // larger messages, before or after decompression: RESOURCE_EXHAUSTED
  int64_t max_concurrent_streams = 0;       // per connection; 0 = gRPC's default
  size_t threads = 1;                       // completion-queue threads (service.runtime.worker_threads)
  std::string authenticator;                // auth.authenticator: a bearertokenauth id; empty: none
  std::optional<TlsServerSettings> tls;     // absent: plaintext (h2c)
};

class GrpcServer {
 public:
  // Called on a gRPC thread with the request bytes; returns the pipeline's answer.
  using Handler = std::function<Status(otlp::Signal signal, std::string&& request)>;
  // `serves` tells which signals have a pipeline; the others answer UNIMPLEMENTED.
  using Serves = std::function<bool(otlp::Signal)>;

  // `buffers` (may be null) provides the buffers request bytes are copied into.
  GrpcServer(GrpcServerSettings settings, BufferPool* buffers, Handler handler, Serves serves);
  ~GrpcServer();

  // From now on a call whose metadata lacks auth's header with its value is answered
  // UNAUTHENTICATED before its message is read. Called before start().
  void require(std::shared_ptr<const BearerToken> auth) { auth_ = std::move(auth); }

  // Binds and starts serving; an error names the endpoint when binding fails.
  Status start();
  uint16_t port() const { return port_; }
  // Stops accepting calls and waits for in-flight calls until `deadline`. Idempotent.
  void shutdown(Clock::time_point deadline);

 private:
  class Call;
  void dispatch(Call* call, bool ok);  // a completion-queue thread: the call's next step
  size_t max_message_bytes() const { return static_cast<size_t>(settings_.max_recv_msg_size_mib) * 1024 * 1024; }

  GrpcServerSettings settings_;
  BufferPool* const buffers_;
  Handler handler_;
  Serves serves_;
  std::shared_ptr<const BearerToken> auth_;
  std::unique_ptr<GrpcTlsStaging> tls_staging_;  // with tls.reload_interval; outlives server_
  std::unique_ptr<grpc::AsyncGenericService> service_;
  std::unique_ptr<grpc::ServerCompletionQueue> queue_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::thread> threads_;
  std::shared_mutex steps_mu_;  // shared by running steps; exclusive while closing the queue
  bool queue_closed_ = false;
  uint16_t port_ = 0;
};

}  // namespace otlpd

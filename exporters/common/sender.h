// Sender: one protocol's way to deliver a batch (OTLP/gRPC, OTLP/HTTP, file, console...).
//
// A Sender does only delivery; the QueuedExporter around it owns the sending queue, retries with
// backoff, the per-attempt timeout, and the counters. One send() is in flight per Sender at a time
// per queue consumer; a Sender that supports several in flight says so in its header.
#pragma once

#include <functional>
#include <memory>

#include "pipeline/batch.h"
#include "pipeline/component.h"
#include "pipeline/status.h"

namespace otlpd {

class Sender {
 public:
  using Done = std::function<void(Status)>;

  virtual ~Sender() = default;
  // Called once from the main thread before any send(). Returns quickly.
  virtual Status start() { return Status::ok(); }
  // Delivers `batch` and calls `done` exactly once, from any thread (possibly inline), with OK, a
  // retryable error (the QueuedExporter will retry) or a permanent one (dropped and counted).
  // The attempt must give up by `deadline` with deadline_exceeded.
  virtual void send(BatchPtr batch, Clock::time_point deadline, Done done) = 0;
  // True when send() only starts the delivery and returns at once (never blocks on I/O), so the
  // QueuedExporter may call it on the thread that queued the batch instead of the io_context.
  virtual bool sends_without_blocking() const { return false; }
  // Called from the main thread after the last send() completed or at the final deadline. Idempotent.
  virtual void shutdown() {}
};

using SenderPtr = std::unique_ptr<Sender>;

}  // namespace otlpd

// Consumer: the one interface that carries data between components.
#pragma once

#include <memory>

#include "pipeline/batch.h"
#include "pipeline/status.h"

namespace otlpd {

class Consumer {
 public:
  virtual ~Consumer() = default;

  // Hands a share of `batch` to this consumer. Called from any thread (receiver I/O threads, gRPC
  // threads, a batch stage); implementations are thread-safe. Never blocks on network I/O; may wait
  // a bounded time only where configured (batch `when_full: block`).
  // OK: otlpd is now responsible for the data (partial(): except the counted rejected items).
  // A retryable error: nothing of `batch` was kept, the caller may offer it again later.
  virtual Status consume(BatchPtr batch) = 0;

  // True when consume() never waits (not even a bounded time), so an upstream stage may call it
  // on its own caller's thread (a client's) instead of handing the batch to a thread of its own.
  virtual bool never_waits() const { return false; }

  // True when consume() returns OK only once the data is on disk (an exporter's persistent queue,
  // or a stage passing batches straight to one). Stages that would otherwise hold accepted data in
  // memory pass it on at once instead, so a client's acknowledgement means its data is durable.
  virtual bool persists() const { return false; }
};

using ConsumerPtr = std::shared_ptr<Consumer>;

}  // namespace otlpd

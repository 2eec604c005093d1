// Batch: the unit that flows through a pipeline, one signal held as serialized OTLP bytes.
//
// `payload` is a serialized Export<Signal>ServiceRequest. Because such a request is only a repeated
// field 1, concatenating two payloads yields one valid request holding both: batching appends bytes
// and export sends them unchanged. A Batch is immutable once shared (BatchPtr), so fan-out hands the
// same object to every exporter from any thread without copying.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "otlp/signal.h"
#include "pipeline/buffer_pool.h"

namespace otlpd {

using otlp::Signal;

struct Batch {
  // A constructor rather than an aggregate: make_shared builds it with parentheses, which clang 14
  // (the sanitizer and libFuzzer builds) does not accept for aggregates.
  Batch(Signal signal, std::string payload, size_t items, BufferPool* recycle = nullptr)
      : signal(signal), payload(std::move(payload)), items(items), recycle(recycle) {}
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  Signal signal;
  std::string payload;    // serialized Export<Signal>ServiceRequest
  size_t items;           // spans, metric data points or log records in `payload`
  BufferPool* recycle;    // when set, takes back `payload`'s memory as the batch dies

  ~Batch() {
    if (recycle) recycle->release(std::move(payload));
  }
};

using BatchPtr = std::shared_ptr<const Batch>;

inline BatchPtr make_batch(Signal signal, std::string payload, size_t items) {
  return std::make_shared<const Batch>(signal, std::move(payload), items);
}

// The same from pools: the Batch and its control block from `objects`, and `payload`'s memory
// back to `buffers` when the last share is gone.
inline BatchPtr make_pooled_batch(BlockPool& objects, BufferPool& buffers, Signal signal, std::string payload,
                                  size_t items) {
  return std::allocate_shared<const Batch>(PoolAllocator<Batch>(&objects), signal, std::move(payload), items,
                                           &buffers);
}

}  // namespace otlpd

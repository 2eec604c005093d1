// Pools for the hot path's heap objects: byte buffers (request and batch payloads) and the
// blocks that hold a Batch with its shared_ptr control block.
//
// A collector under steady load allocates and frees the same few sizes over and over: a
// request's bytes (tens of KiB), a batch's bytes (hundreds of KiB), a Batch object. Keeping a
// bounded number of each for reuse avoids the allocator's work and fresh pages (page faults) on
// every request, and keeps memory flat. Each pool reports, labelled pool=<name>:
//   otlpd_pool_hits, otlpd_pool_misses (counters), otlpd_pool_size (objects held now).
//
// Threads: every member function is thread-safe (one short mutex per pool). Pools are owned by
// the daemon (BatchPools in Host) and outlive every component and batch.
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

#include "pipeline/telemetry.h"

namespace otlpd {

class BufferPool {
 public:
  // Keeps at most `max_buffers` buffers, none with more than `max_capacity` bytes of capacity.
  BufferPool(const std::string& name, size_t max_buffers, size_t max_capacity, Telemetry& telemetry);

  // An empty buffer with at least `capacity` bytes reserved: a pooled one if there is one (hit),
  // else a new one (miss).
  std::string acquire(size_t capacity);
  // Takes `buffer` back for reuse, or frees it when the pool is full or the buffer too large.
  void release(std::string&& buffer);

 private:
  const size_t max_buffers_;
  const size_t max_capacity_;
  Counter& hits_;
  Counter& misses_;
  Counter& size_;
  std::mutex mu_;
  std::vector<std::string> free_;  // LIFO: the most recently used buffer is the warmest
};

// Fixed-size memory blocks; the size is set by the first allocation (a pool serves one type).
class BlockPool {
 public:
  BlockPool(const std::string& name, size_t max_blocks, Telemetry& telemetry);
  ~BlockPool();

  void* allocate(size_t bytes);
  void deallocate(void* block, size_t bytes);

 private:
  const size_t max_blocks_;
  Counter& hits_;
  Counter& misses_;
  Counter& size_;
  std::mutex mu_;
  size_t block_size_ = 0;
  std::vector<void*> free_;
};

// An allocator over a BlockPool, for std::allocate_shared (which rebinds it to its control block
// type, so every allocation through one pool has the same size).
template <typename T>
class PoolAllocator {
 public:
  using value_type = T;
  explicit PoolAllocator(BlockPool* pool) : pool_(pool) {}
  template <typename U>
  PoolAllocator(const PoolAllocator<U>& other) : pool_(other.pool()) {}

  T* allocate(size_t n) { return static_cast<T*>(pool_->allocate(n * sizeof(T))); }
  void deallocate(T* p, size_t n) { pool_->deallocate(p, n * sizeof(T)); }
  BlockPool* pool() const { return pool_; }
  template <typename U>
  bool operator==(const PoolAllocator<U>& other) const { return pool_ == other.pool(); }

 private:
  BlockPool* pool_;
};

// The daemon's pools for batches, handed to components through Host.
struct BatchPools {
  explicit BatchPools(Telemetry& telemetry);

  BufferPool request_buffers;  // one client request's bytes, from receive until it is batched
  BufferPool batch_buffers;    // a batch's bytes, from the batch stage until every exporter is done
  BlockPool batch_objects;     // Batch + control block
};

}  // namespace otlpd

#include "pipeline/buffer_pool.h"

#include <cstdlib>
#include <new>

namespace otlpd {

namespace {
Telemetry::Labels pool_labels(const std::string& name) { return {{"pool", name}}; }
}  // namespace

BufferPool::BufferPool(const std::string& name, size_t max_buffers, size_t max_capacity, Telemetry& telemetry)
    : max_buffers_(max_buffers),
      max_capacity_(max_capacity),
      hits_(telemetry.counter("otlpd_pool_hits", pool_labels(name))),
      misses_(telemetry.counter("otlpd_pool_misses", pool_labels(name))),
      size_(telemetry.gauge("otlpd_pool_size", pool_labels(name))) {
  free_.reserve(max_buffers);
}

std::string BufferPool::acquire(size_t capacity) {
  std::string buffer;
  bool pooled = false;
  {
    std::lock_guard lock(mu_);
    if (!free_.empty()) {
      buffer = std::move(free_.back());
      free_.pop_back();
      size_.set(free_.size());
      pooled = true;
    }
  }
  if (pooled) {
    hits_.add(1);
  } else {
    misses_.add(1);
  }
  buffer.reserve(capacity);
  return buffer;
}

void BufferPool::release(std::string&& buffer) {
  if (buffer.capacity() <= sizeof(std::string) || buffer.capacity() > max_capacity_) return;
  buffer.clear();
  std::lock_guard lock(mu_);
  if (free_.size() >= max_buffers_) return;
  free_.push_back(std::move(buffer));
  size_.set(free_.size());
}

BlockPool::BlockPool(const std::string& name, size_t max_blocks, Telemetry& telemetry)
    : max_blocks_(max_blocks),
      hits_(telemetry.counter("otlpd_pool_hits", pool_labels(name))),
      misses_(telemetry.counter("otlpd_pool_misses", pool_labels(name))),
      size_(telemetry.gauge("otlpd_pool_size", pool_labels(name))) {
  free_.reserve(max_blocks);
}

BlockPool::~BlockPool() {
  for (void* block : free_) ::operator delete(block);
}

void* BlockPool::allocate(size_t bytes) {
  {
    std::lock_guard lock(mu_);
    if (block_size_ == 0) block_size_ = bytes;
    if (bytes == block_size_ && !free_.empty()) {
      void* block = free_.back();
      free_.pop_back();
      size_.set(free_.size());
      hits_.add(1);
      return block;
    }
  }
  misses_.add(1);
  return ::operator new(bytes);
}

void BlockPool::deallocate(void* block, size_t bytes) {
  {
    std::lock_guard lock(mu_);
    if (bytes == block_size_ && free_.size() < max_blocks_) {
      free_.push_back(block);
      size_.set(free_.size());
      return;
    }
  }
  ::operator delete(block);
}

// Sizes: requests are typically up to a few hundred KiB and batches up to a few MiB; a pool
// holds about what one busy pipeline cycles through, so its memory stays small when idle.
BatchPools::BatchPools(Telemetry& telemetry)
    : request_buffers("request_buffers", 64, 4 << 20, telemetry),
      batch_buffers("batch_buffers", 32, 16 << 20, telemetry),
      batch_objects("batch_objects", 1024, telemetry) {}

}  // namespace otlpd

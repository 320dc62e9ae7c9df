#include "lb/net/buffer_pool.h"

#include <cstdlib>
#include <new>

namespace lb::net {

BufferPool::BufferPool(BufferBudget& budget, size_t buffer_bytes, size_t keep_free)
    : budget_(budget), buffer_bytes_(buffer_bytes), keep_free_(keep_free) {}

BufferPool::~BufferPool() {
  while (free_) {
    Buffer* b = free_;
    free_ = b->next;
    budget_.bytes.fetch_sub(sizeof(Buffer) + b->capacity, std::memory_order_relaxed);
    std::free(b);
  }
}

Buffer* BufferPool::take() {
  Buffer* b = free_;
  if (b) {
    free_ = b->next;
    --free_count_;
  } else {
    void* mem = std::malloc(sizeof(Buffer) + buffer_bytes_);
    if (!mem) return nullptr;
    b = new (mem) Buffer;
    b->capacity = buffer_bytes_;
    budget_.bytes.fetch_add(sizeof(Buffer) + buffer_bytes_, std::memory_order_relaxed);
  }
  b->next = nullptr;
  b->clear();
  ++in_use_;
  budget_.in_use.fetch_add(b->capacity, std::memory_order_relaxed);
  return b;
}

Buffer* BufferPool::try_acquire() {
  if (!free_ && budget_.bytes.load(std::memory_order_relaxed) + buffer_bytes_ >
                    budget_.limit.load(std::memory_order_relaxed)) {
    budget_.refused.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  return take();
}

Buffer* BufferPool::acquire() {
  Buffer* b = take();
  if (!b) std::abort();  // out of memory for bytes we already hold: nothing sane remains
  return b;
}

void BufferPool::release(Buffer* b) {
  if (!b) return;
  --in_use_;
  budget_.in_use.fetch_sub(b->capacity, std::memory_order_relaxed);
  if (free_count_ >= keep_free_ || b->capacity != buffer_bytes_) {
    budget_.bytes.fetch_sub(sizeof(Buffer) + b->capacity, std::memory_order_relaxed);
    std::free(b);
    return;
  }
  b->next = free_;
  free_ = b;
  ++free_count_;
}

void BufferPool::resize(size_t buffer_bytes) {
  if (buffer_bytes == buffer_bytes_) return;
  buffer_bytes_ = buffer_bytes;
  while (free_) {  // wrong size now
    Buffer* b = free_;
    free_ = b->next;
    budget_.bytes.fetch_sub(sizeof(Buffer) + b->capacity, std::memory_order_relaxed);
    std::free(b);
  }
  free_count_ = 0;
}

}  // namespace lb::net

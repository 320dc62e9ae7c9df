#include "lb/net/buffer_pool.h"

#include <cstdlib>
#include <new>

namespace lb::net {

uint64_t BufferBudget::in_use_bytes() {
  std::lock_guard lock(mu_);
  uint64_t sum = 0;
  for (const BufferPool* p : pools_) sum += p->in_use_bytes();
  return sum;
}

void BufferBudget::enroll(const BufferPool* p) {
  std::lock_guard lock(mu_);
  pools_.push_back(p);
}

void BufferBudget::withdraw(const BufferPool* p) {
  std::lock_guard lock(mu_);
  std::erase(pools_, p);
}

BufferPool::BufferPool(BufferBudget& budget, size_t buffer_bytes, size_t keep_free)
    : budget_(budget), buffer_bytes_(buffer_bytes), keep_free_(keep_free) {
  budget_.enroll(this);
}

BufferPool::~BufferPool() {
  budget_.withdraw(this);
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
  in_use_bytes_.store(in_use_bytes_.load(std::memory_order_relaxed) + b->capacity,
                      std::memory_order_relaxed);
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
  in_use_bytes_.store(in_use_bytes_.load(std::memory_order_relaxed) - b->capacity,
                      std::memory_order_relaxed);
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

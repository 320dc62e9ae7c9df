#pragma once
// Connection buffers on demand (DESIGN.md "Threads"): a connection holds a buffer only
// while it has bytes to hold, taken from its worker's free list, so an idle keep-alive
// connection costs no buffer and steady traffic allocates nothing. All buffers of the
// process together are bounded (limits.max_buffer_memory): at the bound, reading pauses
// (try_acquire fails) while writes of bytes already read still get theirs, so data in
// flight is never lost.
#include <uv.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace lb::net {

// A fixed-size byte buffer: [start, end) holds unconsumed bytes.
struct Buffer {
  uv_write_t req;          // a write queue flushing this buffer first uses it
  Buffer* next = nullptr;  // free list / write chain link
  size_t start = 0, end = 0;
  size_t capacity = 0;
  char* data() { return reinterpret_cast<char*>(this + 1); }
  const char* begin() const { return reinterpret_cast<const char*>(this + 1) + start; }
  size_t size() const { return end - start; }
  size_t room() const { return capacity - end; }
  bool empty() const { return start == end; }
  void clear() { start = end = 0; }
};

class BufferPool;

// Process-wide accounting shared by every worker's pool.
struct BufferBudget {
  std::atomic<uint64_t> bytes{0};           // bytes of buffers in use or on free lists
  std::atomic<uint64_t> limit{UINT64_MAX};  // limits.max_buffer_memory
  std::atomic<uint64_t> refused{0};         // reads paused at the limit

  // Of `bytes`, those held by connections now (not on free lists), summed over the pools
  // at the time of asking, so taking a buffer never touches a line other workers share.
  uint64_t in_use_bytes();
  void enroll(const BufferPool* p);
  void withdraw(const BufferPool* p);

 private:
  std::mutex mu_;
  std::vector<const BufferPool*> pools_;
};

class BufferPool {
 public:
  // buffer_bytes: payload size of each buffer; keep_free: buffers kept on the free list.
  BufferPool(BufferBudget& budget, size_t buffer_bytes, size_t keep_free = 256);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer for reading, or nullptr when the process is at its buffer budget.
  Buffer* try_acquire();
  // A buffer for bytes already read (writes): never refused.
  Buffer* acquire();
  void release(Buffer* b);

  size_t buffer_bytes() const { return buffer_bytes_; }
  size_t in_use() const { return in_use_; }
  uint64_t in_use_bytes() const { return in_use_bytes_.load(std::memory_order_relaxed); }
  size_t free_count() const { return free_count_; }
  // A reload changed limits.buffer_bytes: new buffers get the new size; old ones are
  // freed as they come back.
  void resize(size_t buffer_bytes);

 private:
  Buffer* take();
  BufferBudget& budget_;
  size_t buffer_bytes_;
  size_t keep_free_;
  Buffer* free_ = nullptr;
  size_t free_count_ = 0;
  size_t in_use_ = 0;
  // Written by the owning worker only (a plain store, no locked add); read by the admin.
  alignas(64) std::atomic<uint64_t> in_use_bytes_{0};
};

}  // namespace lb::net

#pragma once
// A backend's recent live checkpoints (issue 13): the (slot, header hash) points its Kupo
// data responses named (health/live_points), written by any worker, read by the control
// loop's fork rounds. A point is written only when a response names a newer checkpoint
// than the last one kept, so the request path pays one relaxed load per response; a
// checkpoint older than that one (the backend rolled back, or an answer overtaken by a
// newer one), or another block at the same slot, wipes the points at and past its slot,
// because they may be on a chain the backend left.
#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

namespace lb::net {

class LivePoints {
 public:
  // About 16 minutes of mainnet blocks: enough for fork_depth_slots up to several
  // hundred slots to find points below the lowest tip.
  static constexpr size_t kSize = 48;

  // A response's packed point (health::pack_live_point; 0 is ignored).
  void record(uint64_t point) {
    if (point == 0) return;
    uint64_t last = last_.load(std::memory_order_relaxed);
    if (point == last) return;
    if ((point >> 32) <= (last >> 32))
      // Older, or the same slot with another block (a slot battle the backend lost and
      // switched): what lies at or past it may be on a chain it left.
      forget_from(point);
    else if (!last_.compare_exchange_strong(last, point, std::memory_order_relaxed))
      return;  // another worker recorded a checkpoint at the same moment
    const uint32_t i = next_.fetch_add(1, std::memory_order_relaxed) % kSize;
    ring_[i].store(point, std::memory_order_relaxed);
  }

  // The points kept now (zeros for empty places).
  std::vector<uint64_t> snapshot() const {
    std::vector<uint64_t> out(kSize);
    for (size_t i = 0; i < kSize; ++i) out[i] = ring_[i].load(std::memory_order_relaxed);
    return out;
  }

 private:
  void forget_from(uint64_t point) {
    last_.store(point, std::memory_order_relaxed);
    for (std::atomic<uint64_t>& p : ring_) {
      uint64_t v = p.load(std::memory_order_relaxed);
      if ((v >> 32) >= (point >> 32)) p.compare_exchange_strong(v, 0, std::memory_order_relaxed);
    }
  }

  std::atomic<uint64_t> last_{0};  // the newest point kept
  std::atomic<uint32_t> next_{0};
  std::array<std::atomic<uint64_t>, kSize> ring_{};
};

}  // namespace lb::net

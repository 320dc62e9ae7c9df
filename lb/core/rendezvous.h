#pragma once
// Weighted rendezvous (highest random weight) hashing.
//
// Thaler & Ravishankar, "Using Name-Based Mappings to Increase Hit Rates", IEEE/ACM ToN
// 1998: every backend draws a pseudo-random score for the key and the highest score wins.
// Weighted variant (Schindelhauer & Schomaker, "Weighted Distributed Hash Tables", SPAA
// 2005; the same rule as Ceph's straw2 buckets): score = -w / ln(u), u = hash(key,
// backend.id) mapped into (0, 1). -ln(u) / w is exponential with rate w, so the minimum
// of these (the maximum score) falls on backend i with probability exactly w_i / W.
//
// Scores depend only on (key, id, weight), never on the other backends, so removing a
// backend moves exactly the keys it held, and adding one moves keys only onto it.
#include <cstdint>
#include <span>
#include <vector>

#include "lb/core/selector.h"

namespace lb {

// The weighted rendezvous score of a backend (`id`, `weight`) for `key`: larger wins.
// Always finite and positive for weight >= 1.
double rendezvous_score(uint64_t key, uint64_t id, uint32_t weight);

class RendezvousSelector final : public Selector {
 public:
  // Builds over the first 65535 entries of `backends`; a weight of 0 counts as 1.
  explicit RendezvousSelector(std::span<const SelectorBackend> backends);

  size_t size() const override { return backends_.size(); }
  size_t rank(uint64_t key, std::span<uint16_t> out) const override;

 private:
  struct Entry {
    uint64_t id;
    uint32_t weight;
  };
  std::vector<Entry> backends_;
};

}  // namespace lb

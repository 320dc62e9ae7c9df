#pragma once
// Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI 2016, §3.4): every backend owns a permutation of a prime-sized lookup
// table (offset and skip from two independent hashes of its id) and backends take turns
// claiming their next free preferred slot until the table is full. A lookup is one table
// read; balance is near perfect; a change in the backend set moves the departing
// backend's slots plus a small extra fraction (the paper's "minimal disruption" goal is
// approximate, unlike rendezvous hashing).
//
// Weights: a backend takes turns in proportion to its weight (w_i / w_max turns per
// round, as Envoy's weighted Maglev does), so it claims about a w_i / W share of slots.
#include <cstdint>
#include <span>
#include <vector>

#include "lb/core/selector.h"

namespace lb {

// The lookup table size for `n` backends: 65537, or the smallest listed prime >= 100 * n
// when that is larger (100 slots per backend keep the per-backend share within ~1%).
uint32_t maglev_table_size(size_t n);

class MaglevSelector final : public Selector {
 public:
  // Builds the lookup table over the first 65535 entries of `backends`; a weight of 0
  // counts as 1. Allocates the table (2 bytes per slot) here, never in rank().
  explicit MaglevSelector(std::span<const SelectorBackend> backends);

  size_t size() const override { return n_; }
  // First choice is table[key % M]. Further candidates are the distinct backends met while
  // walking the table forward from that slot; if the bounded walk stalls (a backend with a
  // tiny share), the remaining backends follow in index order.
  size_t rank(uint64_t key, std::span<uint16_t> out) const override;

  // The lookup table (slot -> backend index), for tests and the ring lab.
  std::span<const uint16_t> table() const { return table_; }

 private:
  size_t n_ = 0;
  std::vector<uint16_t> table_;
};

}  // namespace lb

#include "lb/core/maglev.h"

#include <xxhash.h>

#include <algorithm>
#include <array>

namespace lb {

namespace {

constexpr size_t kMaxBackends = 65535;   // indices are uint16_t
constexpr uint16_t kEmptySlot = 0xFFFF;  // never an index, since n <= 65535

// Primes for the table size; the largest covers 100 slots for each of 65535 backends.
constexpr std::array<uint32_t, 8> kPrimes = {65537,   131071,  262139,  524287,
                                             1048573, 2097143, 4194301, 8388593};

// Seeds of the two hashes of a backend id; distinct seeds make offset and skip
// independent, as the paper requires.
constexpr uint64_t kOffsetSeed = 0x6d61676c65762d6fULL;  // "maglev-o"
constexpr uint64_t kSkipSeed = 0x6d61676c65762d73ULL;    // "maglev-s"

// Hashes an id as 8 little-endian bytes, so the table is identical on every host.
uint64_t id_hash(uint64_t id, uint64_t seed) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(id >> (8 * i));
  return XXH3_64bits_withSeed(bytes, sizeof bytes, seed);
}

}  // namespace

uint32_t maglev_table_size(size_t n) {
  for (uint32_t p : kPrimes)
    if (p >= 100 * static_cast<uint64_t>(n)) return p;
  return kPrimes.back();
}

// Population (paper, Pseudocode 1) with weighted turns: in round r backend i may have
// claimed floor(r * w_i / w_max) slots, so it takes at most one turn per round and the
// heaviest backend takes one every round. Each permutation visits every slot (M is prime
// and 1 <= skip < M), so every turn finds a free slot while the table is not full.
MaglevSelector::MaglevSelector(std::span<const SelectorBackend> backends) {
  n_ = std::min(backends.size(), kMaxBackends);
  if (n_ == 0) return;
  const uint32_t m = maglev_table_size(n_);
  std::vector<uint32_t> next(n_), skip(n_), weight(n_);
  std::vector<uint64_t> taken(n_, 0);
  uint32_t w_max = 1;
  for (size_t i = 0; i < n_; ++i) {
    next[i] = static_cast<uint32_t>(id_hash(backends[i].id, kOffsetSeed) % m);
    skip[i] = static_cast<uint32_t>(id_hash(backends[i].id, kSkipSeed) % (m - 1)) + 1;
    weight[i] = std::max<uint32_t>(backends[i].weight, 1);
    w_max = std::max(w_max, weight[i]);
  }
  table_.assign(m, kEmptySlot);
  uint32_t filled = 0;
  for (uint64_t round = 1; filled < m; ++round) {
    for (size_t i = 0; i < n_ && filled < m; ++i) {
      if (taken[i] >= round * weight[i] / w_max) continue;
      ++taken[i];
      uint32_t slot = next[i];
      while (table_[slot] != kEmptySlot)
        slot = slot + skip[i] >= m ? slot + skip[i] - m : slot + skip[i];
      table_[slot] = static_cast<uint16_t>(i);
      next[i] = slot + skip[i] >= m ? slot + skip[i] - m : slot + skip[i];
      ++filled;
    }
  }
}

// Fallback candidates come from the table itself, so they keep Maglev's consistency: the
// neighbours of a slot mostly stay when the backend set changes. Seen backends are tracked
// in a stack bitset (8 KiB at most; only the words in use are cleared). The walk is bounded
// to 16 reads per backend plus 64, so a ranking costs O(n) whatever the weights.
size_t MaglevSelector::rank(uint64_t key, std::span<uint16_t> out) const {
  const size_t want = std::min(out.size(), n_);
  if (want == 0) return 0;
  const size_t m = table_.size();
  size_t slot = static_cast<size_t>(key % m);
  out[0] = table_[slot];
  if (want == 1) return 1;

  std::array<uint64_t, (kMaxBackends + 63) / 64> seen;
  std::fill_n(seen.begin(), (n_ + 63) / 64, 0);
  auto mark = [&seen](uint16_t b) {
    const uint64_t bit = uint64_t{1} << (b % 64);
    const bool was = seen[b / 64] & bit;
    seen[b / 64] |= bit;
    return !was;
  };
  mark(out[0]);
  size_t count = 1;
  const size_t limit = std::min(m, 16 * n_ + 64);
  for (size_t step = 1; step < limit && count < want; ++step) {
    if (++slot == m) slot = 0;
    if (mark(table_[slot])) out[count++] = table_[slot];
  }
  for (size_t i = 0; i < n_ && count < want; ++i)
    if (mark(static_cast<uint16_t>(i))) out[count++] = static_cast<uint16_t>(i);
  return count;
}

}  // namespace lb

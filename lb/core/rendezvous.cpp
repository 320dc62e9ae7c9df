#include "lb/core/rendezvous.h"

// Inlined: a lookup hashes once per backend, and a 16-byte input lets the compiler drop
// XXH3's length dispatch. Same function and output as the library's XXH3_64bits.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace lb {

namespace {

constexpr size_t kMaxBackends = 65535;  // indices are uint16_t

// One backend's standing for a key. Ties in score (astronomically rare) go to the higher
// id, so the ranking does not depend on the order of the construction list; the index
// only separates duplicate ids.
struct Candidate {
  double score;
  uint64_t id;
  uint16_t index;
};

bool ranks_before(const Candidate& a, const Candidate& b) {
  if (a.score != b.score) return a.score > b.score;
  if (a.id != b.id) return a.id > b.id;
  return a.index < b.index;
}

// Hashes the pair (key, id) as 16 little-endian bytes: XXH3's 9..16-byte path mixes both
// words through a 128-bit multiply, and the explicit byte order keeps the golden vectors
// identical on every host.
uint64_t pair_hash(uint64_t key, uint64_t id) {
  unsigned char bytes[16];
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(bytes, &key, 8);
    std::memcpy(bytes + 8, &id, 8);
  } else {
    for (int i = 0; i < 8; ++i) {
      bytes[i] = static_cast<unsigned char>(key >> (8 * i));
      bytes[8 + i] = static_cast<unsigned char>(id >> (8 * i));
    }
  }
  return XXH3_64bits(bytes, sizeof bytes);
}

// Maps a hash into the open interval (0, 1): the top 52 bits plus half a step, so u is
// never 0 (ln u = -inf) nor 1 (ln u = 0, a division by zero); both ends are exact doubles.
double open_unit(uint64_t h) { return (static_cast<double>(h >> 12) + 0.5) * 0x1p-52; }

}  // namespace

double rendezvous_score(uint64_t key, uint64_t id, uint32_t weight) {
  const double w = weight == 0 ? 1.0 : static_cast<double>(weight);
  return -w / std::log(open_unit(pair_hash(key, id)));
}

RendezvousSelector::RendezvousSelector(std::span<const SelectorBackend> backends) {
  const size_t n = std::min(backends.size(), kMaxBackends);
  backends_.reserve(n);
  for (size_t i = 0; i < n; ++i)
    backends_.push_back({backends[i].id, backends[i].weight == 0 ? 1u : backends[i].weight});
}

// Partial selection without allocating: keeps the best candidates of one pass sorted in a
// fixed stack buffer (insertion: few moves for the usual handful, and most candidates of a
// larger pool are rejected by one comparison with the worst kept). A ranking longer than
// the buffer takes further passes, each keeping only candidates strictly after the last
// one written; the order is total, so passes neither skip nor repeat a backend.
size_t RendezvousSelector::rank(uint64_t key, std::span<uint16_t> out) const {
  constexpr size_t kBuffer = 64;
  const size_t n = backends_.size();
  const size_t want = std::min(out.size(), n);
  Candidate best[kBuffer];
  Candidate floor{};
  size_t done = 0;
  while (done < want) {
    const size_t chunk = std::min(kBuffer, want - done);
    size_t count = 0;
    for (size_t i = 0; i < n; ++i) {
      const Entry& b = backends_[i];
      const Candidate c{rendezvous_score(key, b.id, b.weight), b.id, static_cast<uint16_t>(i)};
      if (done > 0 && !ranks_before(floor, c)) continue;  // written by an earlier pass
      if (count == chunk) {
        if (!ranks_before(c, best[count - 1])) continue;
        --count;  // the new candidate evicts the worst kept one
      }
      size_t j = count++;
      for (; j > 0 && ranks_before(c, best[j - 1]); --j) best[j] = best[j - 1];
      best[j] = c;
    }
    for (size_t j = 0; j < count; ++j) out[done + j] = best[j].index;
    done += count;
    floor = best[count - 1];
  }
  return want;
}

}  // namespace lb

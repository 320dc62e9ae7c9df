#pragma once
// SplitMix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number generators",
// OOPSLA 2014): x plus the golden gamma, through the finaliser. Cheap, well mixed and
// deterministic: lab keys that look like session hashes, simulated chain data, and the
// slow-start draw per (user, backend).
#include <cstdint>

namespace lb {

inline constexpr uint64_t kGoldenGamma = 0x9e3779b97f4a7c15ULL;

inline uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + kGoldenGamma;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace lb

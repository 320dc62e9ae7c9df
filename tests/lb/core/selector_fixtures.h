#pragma once
// Shared fixtures of the selector tests: well-mixed keys, pools of named backends, and
// the first choice of every key.
#include <cstdint>
#include <string>
#include <vector>

#include "lb/core/selector.h"
#include "lb/core/session_key.h"
#include "lb/core/splitmix.h"

namespace selector_test {

// SplitMix64 (Steele, Lea, Flood 2014): well-mixed 64-bit keys, like the session key hashes
// the selectors see in production.
inline uint64_t mix_key(uint64_t i) { return lb::splitmix64(i); }

inline std::vector<lb::SelectorBackend> pool(const std::string& prefix, int n) {
  std::vector<lb::SelectorBackend> b;
  for (int i = 1; i <= n; ++i) b.push_back({lb::name_hash(prefix + std::to_string(i)), 1});
  return b;
}

// The top choice for `key`; plain code, not an assertion, since it runs 100,000 times.
inline uint16_t first(const lb::Selector& s, uint64_t key) {
  uint16_t out[1] = {0xFFFF};
  s.rank(key, out);
  return out[0];
}

constexpr int kKeys = 100000;

// Which backend id each of kKeys keys lands on first.
inline std::vector<uint64_t> assign(const lb::Selector& s,
                                    const std::vector<lb::SelectorBackend>& b) {
  std::vector<uint64_t> ids(kKeys);
  for (int k = 0; k < kKeys; ++k) ids[k] = b.at(first(s, mix_key(k))).id;
  return ids;
}

}  // namespace selector_test

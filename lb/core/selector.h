#pragma once
// The selector seam (Envoy's chooseHost, Pingora's selection): given a key hash, a
// selector ranks a pool's backends in preference order. It knows nothing of health:
// the caller walks the ranking and filters by state and load.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lb {

struct SelectorBackend {
  uint64_t id = 0;      // stable identity, e.g. name_hash(backend name): survives reloads
  uint32_t weight = 1;  // relative share of new users (>= 1)
};

class Selector {
 public:
  virtual ~Selector() = default;
  // Number of backends the selector was built over.
  virtual size_t size() const = 0;
  // Writes up to out.size() distinct backend indices (into the construction list) in
  // preference order for `key` and returns how many were written. Never allocates.
  virtual size_t rank(uint64_t key, std::span<uint16_t> out) const = 0;
};

enum class SelectorKind : uint8_t { rendezvous, maglev };

// Builds a selector over `backends` (at most 65535).
std::unique_ptr<const Selector> make_selector(SelectorKind kind,
                                              std::span<const SelectorBackend> backends);

}  // namespace lb

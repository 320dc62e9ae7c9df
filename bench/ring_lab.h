#pragma once
// The selector lab behind `corral-bench ring`: balance, disruption and lookup cost of the
// real lb/core selectors (rendezvous: Thaler & Ravishankar, IEEE/ACM ToN 1998; Maglev:
// Eisenbud et al., NSDI 2016), without and with bounded loads (Mirrokni, Thorup,
// Zadimoghaddam, SODA 2018). Pure computation (no I/O) so that the numbers the command
// prints are the numbers the unit tests check.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lb/core/selector.h"

namespace bench {

// SplitMix64 (Steele, Lea, Flood, OOPSLA 2014) of i: the lab's i-th key. A strong mix, so
// that consecutive integers look like the XXH3 session hashes the proxy ranks.
uint64_t lab_key(uint64_t i);

// n equal-weight backends named kupo-1..kupo-n, identified by lb::name_hash(name) as the
// proxy identifies configured backends. Pools of n-1 and n+1 are prefixes/extensions of it,
// so "remove one" drops kupo-n and "add one" appends kupo-(n+1).
std::vector<lb::SelectorBackend> lab_backends(size_t n);

// The first choice (no load bound) of keys lab_key(0..keys-1).
std::vector<uint16_t> assign_first(const lb::Selector& selector, size_t keys);

// Keys lab_key(0..keys-1) assigned one after another, as new users arrive: each is placed
// by lb::place() (the proxy's placement: full ranking, bounded loads) over equal-weight up
// backends, given the loads so far.
std::vector<uint16_t> assign_bounded(const lb::Selector& selector, size_t keys,
                                     double balance_factor);

// Keys per backend, maximum over mean (1 = perfect). n = backend count.
double balance(std::span<const uint16_t> assignment, size_t n);

// Fraction of keys whose backend identity differs between two assignments of the same keys
// (indices resolved through each pool's ids, so pools may differ in size and order).
double moved_fraction(std::span<const uint16_t> before,
                      std::span<const lb::SelectorBackend> before_pool,
                      std::span<const uint16_t> after,
                      std::span<const lb::SelectorBackend> after_pool);

// Fraction of keys assigned to backend index `b`.
double share_of(std::span<const uint16_t> assignment, uint16_t b);

// Median nanoseconds per first-choice lookup (rank into an output of size 1) over
// lab_key(0..keys-1), of `passes` timed passes (std::chrono::steady_clock).
double ns_first_lookup(const lb::Selector& selector, size_t keys, int passes);

struct RingRow {
  std::string selector;  // "rendezvous" | "maglev"
  size_t n = 0;
  bool bounded = false;       // with bounded loads
  double balance_factor = 0;  // c, when bounded
  size_t keys = 0;
  double balance = 0;        // max / mean keys per backend, n backends
  double removed_share = 0;  // share of keys kupo-n held before it was removed
  double moved_remove = 0;   // fraction of all keys that changed backend on removing kupo-n
  double ideal_remove = 0;   // 1 / n
  double added_share = 0;    // share of keys kupo-(n+1) gets once added
  double moved_add = 0;      // fraction of all keys that changed backend on adding it
  double ideal_add = 0;      // 1 / (n + 1)
  double ns_per_lookup = 0;  // median of the timed passes
};

const char* selector_name(lb::SelectorKind kind);

// One row: builds pools of n-1, n and n+1, assigns `keys` keys in each and times lookups.
// Unbounded lookups time rank() of the first choice; bounded ones time what the proxy does
// for a new user (lb::place() and a load update), i.e. a whole assignment pass divided by
// the keys. `passes` timed passes, median reported.
RingRow measure_ring(lb::SelectorKind kind, size_t n, size_t keys, bool bounded,
                     double balance_factor, int passes = 3);

// One JSON object per row, and {"rows": [...]} around them.
std::string ring_row_json(const RingRow& row);
std::string ring_rows_json(std::span<const RingRow> rows);

// An aligned text table, one line per row, with a header line.
std::string ring_table(std::span<const RingRow> rows);

}  // namespace bench

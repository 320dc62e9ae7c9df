#pragma once
// The `--mix lucid` request mix of `corral-bench load`: what a Lucid/Kupmios dApp backend
// asks a Kupo. Pure (no I/O, no clock): the load client draws a request per sequence
// number, formats its target into a fixed buffer and checks the answer with the helpers here.
//   - lookup_share of the requests are lookups of a hash: two thirds GET /datums/<64 hex>,
//     one third GET /scripts/<56 hex>; the hash's rank follows a Zipf law of exponent s over
//     `hashes` ranks (rank r has P ∝ 1/r^s), the hash text is hex(splitmix(rank)), so every
//     run and every tool agrees on it.
//   - the rest are GET /matches/<user's base address>?unspent, the address one of the user's
//     four (format_base_address(user, seq % 4)), so matches are distinct per user.
//   - a lookup answered 200 `null` (Kupo: "not indexed yet") is re-sent after retry_ms, up to
//     `retries` attempts in all, as Kupmios' awaitTx-style polling does.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "bench/hdr_histogram.h"

namespace bench {

struct LucidMix {
  uint32_t hashes = 10000;    // distinct ranks per lookup kind
  double s = 1.0;             // Zipf exponent
  double lookup_share = 0.6;  // the rest are /matches
  uint32_t retries = 10;      // attempts in all for a lookup answered `null` (1: no retry)
  uint32_t retry_ms = 10;     // wait before re-sending a `null`-answered lookup
};

// Ranks 1..n with P(r) ∝ 1/r^s, drawn from a precomputed CDF by binary search.
class ZipfSampler {
 public:
  ZipfSampler(uint32_t n, double s);
  // The rank for a uniform u in [0, 1).
  uint32_t rank(double u) const;
  // The exact probability of rank r (1..n).
  double probability(uint32_t r) const;
  uint32_t size() const { return uint32_t(cdf_.size()); }

 private:
  std::vector<double> cdf_;  // cdf_[r - 1] = P(rank <= r); the last is 1
};

enum class MixKind : uint8_t { datum, script, matches };

struct MixDraw {
  MixKind kind = MixKind::matches;
  uint32_t rank = 0;  // lookups only (1..hashes)
};

// Fixed-capacity target buffer: the longest is /matches/<103-char address>?unspent.
inline constexpr size_t kMixTargetMax = 128;
inline constexpr size_t kDatumHashHex = 64;
inline constexpr size_t kScriptHashHex = 56;

class MixSampler {
 public:
  explicit MixSampler(const LucidMix& mix);
  // The request number `seq` (deterministic: the same seq, the same draw).
  MixDraw draw(uint64_t seq) const;
  const LucidMix& mix() const { return mix_; }
  const ZipfSampler& zipf() const { return zipf_; }

 private:
  LucidMix mix_;
  ZipfSampler zipf_;
};

// The hash text of `rank` for a lookup of `kind` (64 hex for a datum, 56 for a script) into
// `out`; returns its length.
size_t mix_hash(MixKind kind, uint32_t rank, char* out);
// The target of `d` for `user`'s request `seq` (no prefix, no query beyond ?unspent) into
// out[kMixTargetMax]; returns its length. `hash` gets the lookup's hash text (nothing for
// matches) and `hash_len` its length.
size_t format_mix_target(const MixDraw& d, uint32_t user, uint64_t seq, char* out, char* hash,
                         size_t& hash_len);

// What a decoded body says, from its first bytes (at most kBodyKeep) and its length.
inline constexpr size_t kBodyKeep = 192;
// True for Kupo's "not found yet": a body of exactly `null`.
bool is_null_body(std::string_view head, uint64_t length);
// True when a 200 answer to a lookup cannot be right: a non-null answer for a hash in the null
// set (kupo_api::is_null_hash(hash, null_percent)), a `null` for a hash outside it, a datum
// body without hash[0:56] (the simulated Kupo's datum embeds it), a script body without a
// "script" member, or a body longer than kBodyKeep whose kept head lacks the check.
bool wrong_lookup_answer(MixKind kind, std::string_view hash, uint64_t null_percent,
                         std::string_view head, uint64_t length);

// The mix's counters over the measurement window (a lookup counts when its final answer
// does; its latency runs from the first attempt's due time to that answer).
struct MixResult {
  uint64_t lookups = 0;          // logical lookups finished
  uint64_t lookup_requests = 0;  // HTTP requests for lookups, retries included
  // Of lookup_requests: those answered 200 `null` (retried or final), so a report can split
  // the null set's lookups (never cacheable) from the others.
  uint64_t null_answers = 0;
  uint64_t null_final = 0;  // lookups still `null` after every attempt
  uint64_t retries = 0;     // re-sends after a `null`
  uint64_t matches = 0;     // /matches answered
  uint64_t wrong_answers = 0;
  HdrHistogram lookup_latency;   // logical, retries included (µs)
  HdrHistogram matches_latency;  // µs

  void merge(const MixResult& o);
};

}  // namespace bench

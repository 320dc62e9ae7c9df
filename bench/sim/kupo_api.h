#pragma once
// Kupo-shaped response bodies for the simulated backend, after Kupo's HTTP API reference
// (CardanoSolutions/kupo docs/api) and its sources (Kupo.Data.Http.Error, Kupo.Data.Health):
// deterministic fake data derived from the request, so that two instances answer the same
// query the same way. Pure functions, no I/O.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/sim/sim_chain.h"

namespace bench::kupo_api {

inline constexpr std::string_view kContentType = "application/json;charset=utf-8";
inline constexpr std::string_view kVersion = "v2.11.0-corral-sim";

// Kupo's error shape ({"hint": "..."}) with short hints in the spirit of Kupo's own.
std::string error_body(std::string_view hint);
extern const char* const kHintNotFound;
extern const char* const kHintMethodNotAllowed;    // Kupo answers 406 for this
extern const char* const kHintServiceUnavailable;  // the 503 of an overloaded Kupo
extern const char* const kHintInvalidPattern;
extern const char* const kHintInvalidStatusFlag;
extern const char* const kHintInvalidSortDirection;
extern const char* const kHintInvalidSlotNo;
extern const char* const kHintInvalidStrictMode;
extern const char* const kHintMalformedDatumHash;
extern const char* const kHintMalformedScriptHash;
extern const char* const kHintUnsupportedContentType;

struct MatchQuery {
  bool spent = false;
  bool unspent = false;
  bool oldest_first = false;
  uint64_t count = 0;  // 0: two to four matches per pattern; else exactly this many (filtered)
};

// One JSON object per match of `pattern`, in the requested order: two to four outputs,
// created before `checkpoint`, every other one spent (filtered by ?spent / ?unspent); their
// points carry the hashes of the chain forked at `fork_at` (honest without).
// With q.count set, exactly that many (after the filter), about 500 bytes each: the large
// streamed answers of the simulator's match_count.
std::vector<std::string> matches(std::string_view pattern, const MatchQuery& q, uint64_t checkpoint,
                                 std::optional<uint64_t> fork_at = std::nullopt);
// The same objects one at a time, so a large answer is never held whole.
void matches_each(std::string_view pattern, const MatchQuery& q, uint64_t checkpoint,
                  std::optional<uint64_t> fork_at,
                  const std::function<void(const std::string&)>& each);

// {"slot_no":..,"header_hash":..} on the chain forked at `fork_at` (honest without).
std::string point(uint64_t slot, std::optional<uint64_t> fork_at = std::nullopt);
// A sample of checkpoints, most recent first, as Kupo's GET /checkpoints gives.
std::vector<std::string> checkpoint_sample(const SimChain& chain, uint64_t now_ms);
// {"datum": "<cbor hex>"} for a datum hash.
std::string datum(std::string_view hash);
// {"language": .., "script": ..} for a script hash.
std::string script(std::string_view hash);
// The metadata objects of the block at `slot` (one per transaction with metadata).
std::vector<std::string> metadata(uint64_t slot);

// GET /health bodies: JSON, or the Prometheus text exposition.
std::string health_json(const SimChain& chain, uint64_t now_ms);
std::string health_prometheus(const SimChain& chain, uint64_t now_ms);

// The simulated "not indexed yet" set: true when fnv1a(hash) % 100 < pct. It depends only on
// the hash text, so every instance and the bench agree without coordination; pct >= 100 makes
// every hash null, 0 none.
bool is_null_hash(std::string_view hash, uint64_t pct);
// The wait before a data request is answered: latency_ms + splitmix(seq) % (jitter_ms + 1),
// deterministic in the request's sequence number so a run can be replayed.
uint64_t delay_ms(uint64_t latency_ms, uint64_t jitter_ms, uint64_t seq);

bool is_hex(std::string_view s, size_t length);
bool is_slot(std::string_view s);

}  // namespace bench::kupo_api

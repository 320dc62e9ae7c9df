#pragma once
// Which requests may be answered from the cache, and which answers may be stored
// (plan-16 §2 "The rules in cache_rules"). Pure: the pool's best tip is a parameter.
//
// Kupo's built-in rules: /datums/{64 hex} and /scripts/{56 hex} (no query) are immutable;
// /metadata/{slot} (no query or ?transaction_id={64 hex}) and /checkpoints/{slot} (no query
// or ?strict) are bound to their slot, cacheable once slot + immutable_after_slots <= the
// pool's best tip. Any kind: a path under an operator prefix is cached for max_age.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lb/core/header_view.h"

namespace lb {

struct CacheRules {
  bool kupo = false;  // the pool is a Kupo pool: its built-in rules apply
  uint64_t immutable_after_slots = 129600;
  std::vector<std::string> prefixes;  // operator prefixes, matched on the forwarded path
  uint64_t max_age_ms = 0;            // for prefixes; > 0 when prefixes is non-empty
};

enum class CacheClass : uint8_t { none, immutable, slot_bound, max_age };

struct CacheVerdict {
  CacheClass kind = CacheClass::none;
  uint64_t slot = 0;        // slot_bound: the slot the answer is about
  const char* reason = "";  // none: why (for logs and tests), a static string
  bool cacheable() const { return kind != CacheClass::none; }
};

// What classify needs from the request head. Header values are views into the read buffer.
struct ReqFacts {
  bool range = false;
  bool if_match = false;
  bool if_range = false;
  bool if_modified_since = false;
  bool if_none_match = false;  // allowed: answered with 304 from the entry
  bool authorization = false;
  bool cookie = false;
  bool upgrade = false;
  bool expect = false;
  bool has_body = false;  // Content-Length > 0 or chunked; set by the caller
  std::string_view accept;
  std::string_view accept_encoding;
};

// ReqFacts from a request's header fields (has_body is left false for the caller).
ReqFacts req_facts(std::span<const HeaderView> headers);

// The verdict for one request. `path` is the forwarded path without the query, `query` the
// bytes after "?". `best_tip` is the pool's best tip (forked and down backends excluded),
// nullopt while unknown: slot-bound answers are then not cacheable.
CacheVerdict classify(const CacheRules& rules, std::string_view method, std::string_view path,
                      std::string_view query, const ReqFacts& req,
                      std::optional<uint64_t> best_tip);

// The largest body one entry may hold.
inline constexpr size_t kMaxEntryBytes = 1u << 20;

// What storable needs from the answer and its producer.
struct AnswerFacts {
  int status = 0;
  bool get = true;           // the request was a GET (HEAD answers have no body)
  std::string_view body;     // the decoded body, complete
  size_t budget = SIZE_MAX;  // the shard's byte budget for one entry
  std::string_view content_encoding;
  std::string_view cache_control;
  std::string_view vary;
  bool acao_present = false;
  std::string_view acao;  // Access-Control-Allow-Origin
  bool set_cookie = false;
  bool repeated = false;  // one of the fields above came twice: not understood, not stored
  std::optional<uint64_t> checkpoint;  // the producer's X-Most-Recent-Checkpoint
  bool producer_healthy = true;        // the producer is neither forked nor down
};

// AnswerFacts' header part from a response's fields (status, get, body, budget and
// producer_healthy are the caller's).
AnswerFacts answer_facts(std::span<const HeaderView> headers);

struct StoreCheck {
  bool ok = false;
  const char* reason = "";  // not ok: a metrics label (null, status, too_large, ...)
};

// Whether a complete answer to a request with `verdict` may be stored.
StoreCheck storable(const AnswerFacts& a, const CacheVerdict& verdict, const CacheRules& rules);

// True if `body` is JSON null once surrounding whitespace is trimmed (Kupo's "not found yet").
bool is_null_body(std::string_view body);

}  // namespace lb

#pragma once
// The answer of a cache miss on its way into the pool's cache (issue 16, plan-16.md §2
// "cache_fill"). The miss is forwarded to its client exactly as any other request; the
// fill keeps a copy of what storable() and the entry need from the answer's head (the
// parser's views die with the head) and of the body's raw bytes, up to the entry limit.
// At the end it decodes a chunked body, checks storable() and puts the entry, or counts
// why not. Lives in the pooled RequestState, so its small strings keep their capacity;
// the body's memory goes into the entry (or is freed), and while it is held it is
// charged to the process's buffer budget (limits.max_buffer_memory).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "lb/core/cache_key.h"
#include "lb/core/cache_rules.h"
#include "lb/http/message_parser.h"
#include "lb/net/backend_stats.h"
#include "lb/net/buffer_pool.h"
#include "lb/net/pool_cache.h"

namespace lb::net {

class FillFlight;

class CacheFill {
 public:
  CacheFill() = default;
  ~CacheFill() { reset(); }
  CacheFill(const CacheFill&) = delete;
  CacheFill& operator=(const CacheFill&) = delete;

  // Starts collecting the answer to a cacheable GET: `verdict` from classify(), `key` and
  // `canonical` the entry's identity. The cache's generation is read now, so a purge
  // while the answer streams keeps it out. `budget` is charged for the body's memory.
  void begin(std::shared_ptr<PoolCache> cache, const CacheVerdict& verdict, const CacheKey& key,
             std::string_view canonical, BufferBudget& budget);
  // A fill is under way (begun, not finished, not abandoned).
  bool active() const { return cache_ != nullptr; }

  // The final answer's head from backend `producer` (its stats, alive while the request
  // is): copies what finish() needs. A non-200 stops collecting (finish() counts it).
  void head(const http::MessageParser& r, std::shared_ptr<const BackendStats> producer);
  // Raw answer bytes as they come from the backend (chunk framing included).
  void body(const char* data, size_t len);
  // The answer is complete: stores it (counted as a store) or counts why not. `now_ms`:
  // monotonic ms, for a max_age entry's deadline. Ends the fill.
  void finish(uint64_t now_ms);
  // Ends the fill without storing or counting (the client left, the answer broke off).
  void reset();

  // [fill flights] This fill's answer ends `f` (flight_fill.h): finish() hands it the
  // stored entry or, not stored, a copy of the answer (then bodies of any status are
  // kept, up to the same cap); reset() and abandoning dissolve it (followers go solo).
  void attach_flight(FillFlight* f);
  FillFlight* flight() const { return flight_; }
  // The flight ended otherwise (the stop deadline): forget it.
  void detach_flight() { flight_ = nullptr; }

  // The raw body bytes this fill may hold: the entry limit, plus room for chunk framing.
  size_t raw_cap() const { return raw_cap_; }

 private:
  // Gives up on this answer, counting `why`; the client's answer goes on.
  void abandon(NotStored why);
  // Room for `total` raw bytes, charged to the budget; false when the budget refuses.
  // `exact`: the length is known (Content-Length), so no more is reserved.
  bool reserve(size_t total, bool exact = false);
  void release_memory();
  // Ends the attached flight, if any, with `kind` (entry / copy as FillResult says).
  void end_flight(int kind, std::shared_ptr<const CachedAnswer> entry = {});

  std::shared_ptr<PoolCache> cache_;  // null: no fill under way
  FillFlight* flight_ = nullptr;      // [fill flights] the flight this fill leads
  BufferBudget* budget_ = nullptr;
  CacheVerdict verdict_;
  CacheKey key_;
  uint64_t generation_ = 0;
  size_t limit_ = 0;    // decoded body bytes at most
  size_t raw_cap_ = 0;  // raw bytes at most
  std::string canonical_;
  // From the head.
  bool have_head_ = false;
  bool collecting_ = false;
  bool chunked_ = false;
  int status_ = 0;
  std::string reason_;  // [fill flights] for a copy
  std::string fields_;  // the stored header lines, rendered
  std::string content_encoding_, cache_control_, vary_, acao_;
  bool acao_present_ = false;
  bool set_cookie_ = false;
  bool repeated_ = false;
  std::optional<uint64_t> checkpoint_;
  std::shared_ptr<const BackendStats> producer_;
  // The body.
  std::string raw_;
  size_t charged_ = 0;  // bytes charged to the budget for raw_'s capacity
};

}  // namespace lb::net

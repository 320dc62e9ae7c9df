#include "lb/net/cache_fill.h"

#include <algorithm>

#include "lb/core/cached_answer.h"
#include "lb/core/etag.h"
#include "lb/http/dechunk.h"
#include "lb/net/flight_fill.h"

namespace lb::net {
namespace {

// The first growth of a body whose length is not known ahead (chunked).
constexpr size_t kFirstReserve = 16 * 1024;

// Appends "Name: value\r\n".
void add_line(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

void CacheFill::begin(std::shared_ptr<PoolCache> cache, const CacheVerdict& verdict,
                      const CacheKey& key, std::string_view canonical, BufferBudget& budget) {
  reset();
  budget_ = &budget;
  verdict_ = verdict;
  key_ = key;
  generation_ = cache->cache.generation();
  limit_ = static_cast<size_t>(std::min<uint64_t>(kMaxEntryBytes, cache->cache.max_entry_bytes()));
  raw_cap_ = limit_;
  canonical_.assign(canonical);
  cache_ = std::move(cache);
}

void CacheFill::head(const http::MessageParser& r, std::shared_ptr<const BackendStats> producer) {
  if (!active() || have_head_) return;
  have_head_ = true;
  status_ = r.status_code();
  if (flight_) reason_.assign(r.reason());
  producer_ = std::move(producer);
  AnswerFacts a = answer_facts(r.headers());
  content_encoding_.assign(a.content_encoding);
  cache_control_.assign(a.cache_control);
  vary_.assign(a.vary);
  acao_.assign(a.acao);
  acao_present_ = a.acao_present;
  set_cookie_ = a.set_cookie;
  repeated_ = a.repeated;
  checkpoint_ = a.checkpoint;
  // Only these lines are replayed on a hit: anything else (X-Backend, Date, the backend's
  // own ETag and checkpoint) belongs to the answer that was forwarded, not to the entry.
  fields_.clear();
  bool ct = false, bh = false;
  for (const HeaderView& h : r.headers()) {
    if (!ct && iequals(h.name, "content-type")) {
      add_line(fields_, "Content-Type", h.value);
      ct = true;
    } else if (!bh && iequals(h.name, "x-block-header-hash")) {
      add_line(fields_, "X-Block-Header-Hash", h.value);
      bh = true;
    }
  }
  if (acao_present_ && trim_ows(acao_) == "*")
    add_line(fields_, "Access-Control-Allow-Origin", "*");
  // finish() counts it; no body is kept, unless followers may get a copy of it.
  if (status_ != 200 && !flight_) return;
  chunked_ = r.chunked();
  // An answer read until the backend closes cannot be told from one cut short: neither
  // stored nor copied.
  if (!chunked_ && !r.has_content_length())
    return abandon(status_ == 200 ? NotStored::headers : NotStored::status);
  if (chunked_) {
    // Framing costs a few bytes per chunk; a body that needs more than an eighth on top
    // of the limit is abandoned rather than held.
    raw_cap_ = limit_ + limit_ / 8;
  } else if (r.has_content_length()) {
    if (r.content_length() > limit_) return abandon(NotStored::too_large);
    if (!reserve(static_cast<size_t>(r.content_length()), true)) return abandon(NotStored::budget);
  }
  collecting_ = true;
}

bool CacheFill::reserve(size_t total, bool exact) {
  if (total <= raw_.capacity()) return true;
  size_t want =
      exact ? total
            : std::max(total, std::min(raw_cap_, std::max(kFirstReserve, 2 * raw_.capacity())));
  size_t more = want - charged_;
  uint64_t used = budget_->bytes.load(std::memory_order_relaxed);
  if (used + more > budget_->limit.load(std::memory_order_relaxed)) return false;
  budget_->bytes.fetch_add(more, std::memory_order_relaxed);
  charged_ += more;
  raw_.reserve(want);
  return true;
}

void CacheFill::body(const char* data, size_t len) {
  if (!collecting_ || len == 0) return;
  if (raw_.size() + len > raw_cap_) return abandon(NotStored::too_large);
  if (!reserve(raw_.size() + len)) return abandon(NotStored::budget);
  raw_.append(data, len);
}

void CacheFill::attach_flight(FillFlight* f) {
  flight_ = f;
  f->set_leader_fill(this);
}

void CacheFill::end_flight(int kind, std::shared_ptr<const CachedAnswer> entry) {
  FillFlight* f = flight_;
  if (!f) return;
  flight_ = nullptr;
  f->set_leader_fill(nullptr);
  FillResult r;
  r.kind = static_cast<FillResult::Kind>(kind);
  if (r.kind == FillResult::Kind::stored) {
    r.entry = std::move(entry);
  } else if (r.kind == FillResult::Kind::unstored && entry && !set_cookie_ &&
             (!acao_present_ || trim_ows(acao_) == "*")) {
    // A Set-Cookie or an origin-echoing answer belongs to its own client: never copied
    // (the followers go solo).
    auto copy = std::make_shared<FillCopy>();
    // After a refused put the fill was reset already: the answer was a storable 200.
    copy->status = status_ ? status_ : 200;
    copy->reason = status_ ? reason_ : "OK";
    copy->answer.fields = entry->fields.empty() ? fields_ : entry->fields;
    copy->answer.body = entry->body;
    r.copy = std::move(copy);
  }
  f->end(std::move(r));
}

void CacheFill::finish(uint64_t now_ms) {
  if (!active()) return;
  if (!have_head_) return reset();
  PoolCache& pc = *cache_;
  auto entry = std::make_shared<CachedAnswer>();
  if (collecting_ && chunked_) {
    if (!http::dechunk(raw_, entry->body)) return abandon(NotStored::headers);
  } else if (collecting_) {
    entry->body = std::move(raw_);
  }
  // What a follower pinned to the producer may be given when the cache takes nothing.
  std::shared_ptr<const CachedAnswer> copy = collecting_ ? entry : nullptr;
  // The cache charges the body's size: spare capacity (a chunked body's growth) would be
  // memory it does not count. A Content-Length body was reserved exactly: no copy.
  entry->body.shrink_to_fit();
  const CacheRules& rules = pc.rules();
  AnswerFacts a;
  a.status = status_;
  a.get = true;
  a.body = entry->body;
  uint64_t fixed = canonical_.size() + fields_.size() + kCachedAnswerOverhead;
  uint64_t shard = pc.cache.max_entry_bytes();
  a.budget = static_cast<size_t>(shard > fixed ? shard - fixed : 0);
  a.content_encoding = content_encoding_;
  a.cache_control = cache_control_;
  a.vary = vary_;
  a.acao_present = acao_present_;
  a.acao = acao_;
  a.set_cookie = set_cookie_;
  a.repeated = repeated_;
  a.checkpoint = checkpoint_;
  // A forked or down producer may have answered from a chain the pool left behind.
  a.producer_healthy = producer_ && producer_->state.load() != BackendState::down &&
                       producer_->evict.load() != MoveReason::fork;
  if (StoreCheck ok = storable(a, verdict_, rules); !ok.ok) {
    NotStored why = not_stored_of(ok.reason);
    pc.count_not_stored(why);
    end_flight(static_cast<int>(FillResult::Kind::unstored), copy);
    reset();
    return;
  }
  entry->key = canonical_;
  entry->fields = fields_;
  std::string tag = body_etag(entry->body);
  std::copy_n(tag.data(), std::min(tag.size(), sizeof entry->etag - 1), entry->etag);
  if (verdict_.kind == CacheClass::max_age) entry->expires_ms = now_ms + rules.max_age_ms;
  entry->charge = static_cast<uint32_t>(answer_charge(*entry));
  std::shared_ptr<PoolCache> keep = cache_;  // reset() drops ours
  CacheKey key = key_;
  uint64_t generation = generation_;
  FillFlight* flight = flight_;
  flight_ = nullptr;  // reset() must not dissolve it: it ends with the answer below
  reset();            // the body is the entry's now: the budget's charge ends here
  flight_ = flight;
  std::shared_ptr<const CachedAnswer> kept = entry;
  int kind = static_cast<int>(FillResult::Kind::stored);
  switch (keep->cache.put(key, std::move(entry), generation)) {
    case PutResult::stored:
    case PutResult::replaced:
      keep->local().stores.fetch_add(1, std::memory_order_relaxed);
      break;
    case PutResult::too_large:
      keep->count_not_stored(NotStored::too_large);
      kind = static_cast<int>(FillResult::Kind::unstored);
      break;
    case PutResult::stale:
      keep->count_not_stored(NotStored::purged);
      kind = static_cast<int>(FillResult::Kind::unstored);
      break;
  }
  end_flight(kind, std::move(kept));
}

void CacheFill::abandon(NotStored why) {
  if (cache_) cache_->count_not_stored(why);
  reset();
}

void CacheFill::release_memory() {
  if (budget_ && charged_) budget_->bytes.fetch_sub(charged_, std::memory_order_relaxed);
  charged_ = 0;
  std::string().swap(raw_);
}

void CacheFill::reset() {
  // The answer will not come through this fill: the followers go solo.
  end_flight(static_cast<int>(FillResult::Kind::solo));
  reason_.clear();
  release_memory();
  cache_.reset();
  producer_.reset();
  have_head_ = collecting_ = chunked_ = false;
  acao_present_ = set_cookie_ = repeated_ = false;
  checkpoint_.reset();
  status_ = 0;
}

}  // namespace lb::net

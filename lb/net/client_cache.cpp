// ClientConn, the response cache's part (issue 16, plan-16.md §3): the lookup before
// placement, a hit written from the shared entry, and a miss's answer handed to its fill.
// A hit reads the user's pin (peek) for its checkpoint header and nothing else: it
// creates, moves and refreshes no pin, records no slot, spends no quota and tells health
// nothing, so stickiness and every health input stay as the misses make them.
#include <algorithm>
#include <charconv>
#include <cstring>

#include "lb/core/cache_key.h"
#include "lb/core/cache_rules.h"
#include "lb/core/etag.h"
#include "lb/core/flight_key.h"
#include "lb/net/client_conn.h"
#include "lb/net/worker.h"

namespace lb::net {
namespace {

// One year: what "immutable" means to a browser (RFC 8246).
constexpr const char* kImmutableControl = "public, max-age=31536000, immutable";

bool removed(std::span<const std::string> remove, std::string_view name) {
  for (const std::string& r : remove)
    if (iequals(r, name)) return true;
  return false;
}

// Appends "Name: value\r\n" unless remove_headers.response names it.
void add_field(std::string& out, std::span<const std::string> remove, std::string_view name,
               std::string_view value) {
  if (removed(remove, name)) return;
  out.append(name).append(": ").append(value).append("\r\n");
}

// The end of a head corral writes for the cache: the user's backend's checkpoint (0: none),
// the connection's fate, the blank line.
void end_head(std::string& out, std::span<const std::string> remove, uint64_t tip, bool close_after,
              bool http10) {
  if (tip != 0) {
    char num[24];
    auto r = std::to_chars(num, num + sizeof num, tip);
    add_field(out, remove, "X-Most-Recent-Checkpoint", {num, static_cast<size_t>(r.ptr - num)});
  }
  if (close_after)
    out.append("Connection: close\r\n");
  else if (http10)
    out.append("Connection: keep-alive\r\n");
  out.append("\r\n");
}

// Appends the entry's stored lines ("Name: value\r\n" each) that remove_headers allows.
void add_stored(std::string& out, std::span<const std::string> remove, std::string_view fields) {
  while (!fields.empty()) {
    size_t end = fields.find("\r\n");
    size_t len = end == std::string_view::npos ? fields.size() : end + 2;
    std::string_view line = fields.substr(0, len);
    if (!removed(remove, line.substr(0, line.find(':')))) out.append(line);
    fields.remove_prefix(len);
  }
}

}  // namespace

bool ClientConn::try_cache(const RuntimePool& pool, std::string_view method, const RouteMatch& m,
                           std::span<const HeaderView> headers, bool has_body,
                           const SessionKey* user_key) {
  RequestState& rs = *rs_;
  rs.lookup = {};
  if (method != "GET" && method != "HEAD") return false;
  // The bare root of a stripped route ("/kupo" forwarded as "/"): no rule covers it.
  if (m.needs_slash) return false;
  PoolCache& pc = *pool.cache;
  size_t q = m.forward.find('?');
  std::string_view path = m.forward.substr(0, q);
  std::string_view query =
      q == std::string_view::npos ? std::string_view{} : m.forward.substr(q + 1);
  ReqFacts facts = req_facts(headers);
  facts.has_body = has_body;
  // Classified once: placement reads this verdict (rs.lookup), never a later tip's.
  CacheVerdict v = classify(pc.rules(), method, path, query, facts, pc.known_tip());
  if (!v.cacheable()) {
    // [stream flights] an uncacheable GET may share its backend's answer (kupo pools).
    if (pc.collapse() && !facts.upgrade &&
        collapsible(method, facts, v, m.route->websocket, pool.kind == config::PoolKind::kupo).ok) {
      canonical_request(rs.cache_canonical, path, query, facts.accept, facts.accept_encoding);
      rs.lookup.key = cache_key(pool.salt, rs.cache_canonical);
      rs.lookup.stream_ok = true;
    }
    return false;
  }

  canonical_request(rs.cache_canonical, path, query, facts.accept, facts.accept_encoding);
  CacheKey key = cache_key(pool.salt, rs.cache_canonical);
  uint64_t now = worker_.deadlines().now();
  rs.access.pool = pool.name;
  if (std::shared_ptr<const CachedAnswer> entry = pc.cache.get(key, rs.cache_canonical, now)) {
    bool not_modified = false;
    if (facts.if_none_match)
      not_modified = if_none_match(find_header(headers, "if-none-match").value, entry->etag);
    serve_hit(pool, std::move(entry), user_key, not_modified, now);
    return true;
  }
  rs.access.cache = "miss";
  // A HEAD answer has no body to store; its GET will fill. HEAD never leads or joins a
  // fill flight.
  if (method != "GET") {
    pc.local().misses.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  rs.fill.begin(pool.cache, v, key, rs.cache_canonical, worker_.state().buffers);
  // [fill flights] pool-wide: the identical GETs that miss meanwhile wait for this one.
  // A follower is no miss (it sends nothing upstream): it counts as a hit when the entry
  // serves it, or as a miss when it goes solo (fill_go_solo).
  if (pc.collapse() && !fill_solo_ &&
      collapsible(method, facts, v, m.route->websocket, pool.kind == config::PoolKind::kupo).ok &&
      fill_flight_join(pool, key))
    return true;
  pc.local().misses.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void ClientConn::serve_hit(const RuntimePool& pool, std::shared_ptr<const CachedAnswer> entry,
                           const SessionKey* user_key, bool not_modified, uint64_t now_ms) {
  RequestState& rs = *rs_;
  CacheShard& counts = pool.cache->local();
  counts.hits.fetch_add(1, std::memory_order_relaxed);
  if (not_modified) counts.not_modified.fetch_add(1, std::memory_order_relaxed);

  // The checkpoint of the backend the user is pinned to, read without touching the pin.
  uint64_t tip = 0;
  if (user_key) {
    SessionKey pin_key = pool_session_key(*user_key, pool.salt);
    rs.access.session = pin_key;
    rs.access.pinned = true;
    if (std::optional<Pin> pin = worker_.state().sessions.peek(pin_key))
      for (const RuntimeBackend& b : pool.backends)
        if (b.ref == pin->backend) {
          tip = b.stats->tip_slot.load(std::memory_order_relaxed);
          break;
        }
  }

  // classify() refused any request with a body, so the request is whole: the connection
  // is kept exactly when an exchange would keep it.
  req_done_ = true;
  if (!keep_alive_ || stop_ || client_eof_) close_after_ = true;
  const std::span<const std::string> remove = pool.remove_response;
  std::string& out = rs.resp_head;
  out.assign(not_modified ? "HTTP/1.1 304 Not Modified\r\n" : "HTTP/1.1 200 OK\r\n");
  char num[24];
  if (!not_modified) {
    add_stored(out, remove, entry->fields);
    auto r = std::to_chars(num, num + sizeof num, entry->body.size());
    add_field(out, remove, "Content-Length", {num, static_cast<size_t>(r.ptr - num)});
  }
  add_field(out, remove, "ETag", entry->etag);
  if (entry->expires_ms == 0) {
    add_field(out, remove, "Cache-Control", kImmutableControl);
  } else {
    uint64_t left = entry->expires_ms > now_ms ? (entry->expires_ms - now_ms) / 1000 : 0;
    std::string_view head = "public, max-age=";
    char cc[48];
    std::memcpy(cc, head.data(), head.size());
    auto r = std::to_chars(cc + head.size(), cc + sizeof cc, left);
    add_field(out, remove, "Cache-Control", {cc, static_cast<size_t>(r.ptr - cc)});
  }
  add_field(out, remove, "X-Corral-Cache", "hit");
  end_head(out, remove, tip, close_after_, http10_);

  rs.access.status = not_modified ? 304 : 200;
  rs.access.backend = "-";  // no backend answered
  rs.access.cache = "hit";
  resp_started_ = true;
  resp_head_pending_ = true;  // goes out with the first slice of the body
  phase_ = Phase::waiting;
  rs.hit = std::move(entry);
  // A 304 and a HEAD answer carry no body: the head alone is written.
  rs.hit_off = not_modified || head_request_ ? rs.hit->body.size() : 0;
  arm_timer();
  continue_hit_body();
}

// [fill flights] A follower pinned to the producing backend gets the leader's answer that
// the cache did not take (null, 404, 503, ...): its status, the stored-field set and the
// decoded body with a Content-Length, and that backend's checkpoint as a hit would.
void ClientConn::serve_copy(const RuntimePool& pool, std::shared_ptr<const FillCopy> copy) {
  RequestState& rs = *rs_;
  pool.cache->local().collapsed.fetch_add(1, std::memory_order_relaxed);
  uint64_t tip = 0;
  if (rs.head.has_key) {
    SessionKey pin_key = pool_session_key(rs.head.key, pool.salt);
    rs.access.session = pin_key;
    rs.access.pinned = true;
    if (std::optional<Pin> pin = worker_.state().sessions.peek(pin_key))
      for (const RuntimeBackend& b : pool.backends)
        if (b.ref == pin->backend) {
          tip = b.stats->tip_slot.load(std::memory_order_relaxed);
          rs.access.backend = b.name;
          break;
        }
  }
  req_done_ = true;
  if (!keep_alive_ || stop_ || client_eof_) close_after_ = true;
  const std::span<const std::string> remove = pool.remove_response;
  std::string& out = rs.resp_head;
  char num[24];
  auto st = std::to_chars(num, num + sizeof num, copy->status);
  out.assign("HTTP/1.1 ").append(num, st.ptr).append(" ").append(copy->reason).append("\r\n");
  add_stored(out, remove, copy->answer.fields);
  auto r = std::to_chars(num, num + sizeof num, copy->answer.body.size());
  add_field(out, remove, "Content-Length", {num, static_cast<size_t>(r.ptr - num)});
  add_field(out, remove, "X-Corral-Cache", "collapsed");
  end_head(out, remove, tip, close_after_, http10_);
  rs.access.status = copy->status;
  rs.access.cache = "collapsed";
  resp_started_ = true;
  resp_head_pending_ = true;
  phase_ = Phase::waiting;
  rs.hit = std::shared_ptr<const CachedAnswer>(copy, &copy->answer);  // same lifetime
  rs.hit_off = 0;
  arm_timer();
  continue_hit_body();
}

void ClientConn::continue_hit_body() {
  RequestState& rs = *rs_;
  std::string_view body = rs.hit->body;
  const size_t max = worker_.max_pending();
  while (rs.hit_off < body.size() || resp_head_pending_) {
    if (stream_->pending() >= max) {
      note_output();  // send_timeout watches a client that stops reading
      return;         // on_drained resumes
    }
    std::string_view slice = body.substr(rs.hit_off, std::min(max, body.size() - rs.hit_off));
    rs.hit_off += slice.size();
    note_sent(slice.size());
    bool ok;
    if (resp_head_pending_) {
      resp_head_pending_ = false;
      note_sent(rs.resp_head.size());
      ok = stream_->write(rs.resp_head, slice);
    } else {
      ok = stream_->write(slice);
    }
    note_output();
    if (!ok) return;  // the failure comes from the loop (on_stream_error closes)
  }
  // All of it is queued: the stream copied what it could not write at once, so the entry
  // is no longer needed.
  rs.hit.reset();
  if (close_after_) {
    end_response_and_close();
    return;
  }
  next_request();
}

// ---- a miss's answer into the cache -------------------------------------------------

void ClientConn::fill_head(const http::MessageParser& r) {
  if (!rs_->fill.active()) return;
  const RuntimeBackend* b = rs_->exchange.backend();
  if (!b) {
    rs_->fill.reset();
    return;
  }
  // [fill flights] the producing backend: a follower pinned to it may get a copy.
  if (FillFlight* f = rs_->fill.flight()) f->set_producer(b->ref);
  rs_->fill.head(r, b->stats);
}

void ClientConn::finish_fill() {
  if (rs_->fill.active()) rs_->fill.finish(worker_.deadlines().now());
}

}  // namespace lb::net

// Placing a request's user (DESIGN.md "Behaviour"): the local session table first, then,
// with sticky.store, the shared store (park on pin_claim / pin_cas, resume on the answer),
// then lb::place's decision, committed to the table. The rest of the exchange is in
// exchange.cpp, moves and regressions in exchange_moves.cpp.
#include <string>
#include <vector>

#include "lb/core/refresh_epoch.h"
#include "lb/net/exchange.h"
#include "lb/net/store_ops.h"
#include "lb/net/worker.h"

namespace lb::net {

const char* store_mark_name(StoreMark m) {
  switch (m) {
    case StoreMark::hit:
      return "hit";
    case StoreMark::claimed:
      return "claimed";
    case StoreMark::adopted:
      return "adopted";
    case StoreMark::moved:
      return "moved";
    case StoreMark::timeout:
      return "timeout";
    case StoreMark::down:
      return "down";
    case StoreMark::none:
      break;
  }
  return "-";
}

bool Exchange::place(Decision& out) {
  Placing p;
  out = decide({}, MoveReason::down, false, p);
  StoreClient* store = pinned_ ? worker_->store() : nullptr;
  if (!store) {
    commit(out, p, true);
    return true;
  }
  if (out.kind == Placement::pinned) {
    // The common case: the local table answers, Redis is not asked; at most once per
    // refresh epoch the pin's TTL there is renewed in the background.
    store_mark_ = StoreMark::hit;
    if (p.refresh_due) store->note_refresh({pin_key_, pool_->backends[out.index].ref, p.last_slot});
    return true;
  }
  if (out.kind == Placement::none) return true;
  pending_ = out;
  placing_ = p;
  if (store->up() && ask_store(*store)) return false;
  // The store is down: decide alone now; the write waits in PendingWrites.
  commit(out, p, true);
  store_mark_ = StoreMark::down;
  if (out.kind == Placement::new_user)
    store->queue_claim(pin_key_, stored_pin(out, p));
  else
    store->queue_cas(pin_key_, backend_name(p.from), stored_pin(out, p));
  return true;
}

bool Exchange::ask_store(StoreClient& store) {
  const StoredPin mine = stored_pin(pending_, placing_);
  bool sent = pending_.kind == Placement::new_user
                  ? store.claim(pin_key_, mine, this)
                  : store.cas(pin_key_, backend_name(placing_.from), mine, this);
  if (!sent) return false;
  parked_ = true;
  worker_->park(this);
  return true;
}

void Exchange::unpark() {
  if (!parked_) return;
  parked_ = false;
  worker_->unpark(this);
}

void Exchange::store_answer(const StoreAnswer& a) {
  unpark();
  Decision d = pending_;
  const bool move = pending_.kind == Placement::moved;
  switch (a.outcome) {
    case StoreOutcome::won:
      commit(d, placing_, true);
      if (store_mark_ != StoreMark::adopted)
        store_mark_ = move ? StoreMark::moved : StoreMark::claimed;
      break;
    case StoreOutcome::failed:
      // No answer in time (or the link went): the local decision stands; the store client
      // queued the write for the control loop's flush.
      commit(d, placing_, true);
      store_mark_ = std::string_view(a.why) == "timeout" ? StoreMark::timeout : StoreMark::down;
      break;
    case StoreOutcome::adopted:
      if (!adopt_stored(a.stored, d)) return;  // parked again: one more cas
      break;
  }
  client_->exchange_placed(d);
}

bool Exchange::adopt_stored(const StoredPin& stored, Decision& d) {
  // Only a backend this request's pool has now (the Registry never forgets a name).
  const std::optional<BackendRef> found = resolve_stored(*rt_, pool_->name, stored.backend);
  if (found) {
    // Another instance placed this user first: follow it, then decide again on that pin
    // (a usable one keeps it; an unusable one is a move like any other).
    SessionTable& sessions = worker_->state().sessions;
    sessions.adopt(pin_key_, *found, stored.last_slot, static_cast<uint8_t>(stored.reason),
                   uv_now(worker_->loop()));
    Placing p;
    d = decide({}, MoveReason::down, false, p);
    if (d.kind != Placement::moved) {
      if (d.kind == Placement::new_user) commit(d, p, true);  // evicted at once: a full table
      store_mark_ = StoreMark::adopted;
      return true;
    }
    pending_ = d;
    placing_ = p;
  } else {
    // A backend this pool does not have (another instance's configuration differs): the
    // local decision stands, as a move away from it.
    pending_.kind = Placement::moved;
    pending_.reason = MoveReason::removed;
    placing_.from = SessionTable::kMaxBackends;
    d = pending_;
  }
  StoreClient* store = worker_->store();
  if (!cas_again_spent_ && store && store->up()) {
    cas_again_spent_ = true;
    const StoredPin mine = stored_pin(pending_, placing_);
    if (store->cas(pin_key_, stored.backend, mine, this)) {
      parked_ = true;
      worker_->park(this);
      store_mark_ = StoreMark::adopted;
      return false;
    }
  }
  // The second loss (or no link): keep the local decision, and queue it against what the
  // store holds so the control loop's flush makes Redis agree.
  if (!found) d.kind = Placement::new_user;  // nothing local to move from
  commit(d, placing_, true);
  if (store) store->queue_cas(pin_key_, stored.backend, stored_pin(pending_, placing_));
  store_mark_ = StoreMark::adopted;
  return true;
}

StoredPin Exchange::stored_pin(const Decision& d, const Placing& p) const {
  StoredPin s;
  s.backend = pool_->backends[d.index].name;
  s.reason = d.kind == Placement::moved ? d.reason : MoveReason::none;
  s.last_slot = s.reason == MoveReason::fork ? 0 : p.last_slot;
  return s;
}

std::string Exchange::backend_name(BackendRef ref) const {
  for (const RuntimeBackend& b : pool_->backends)
    if (b.ref == ref) return b.name;
  // Not in this request's snapshot: the worker's current one may have it (a reload moved
  // it). Never Registry::name_of, a scan of every ref under the process-wide mutex.
  if (const std::shared_ptr<const Runtime>& now = worker_->runtime(); now && now.get() != rt_)
    for (const RuntimePool& p : now->pools)
      for (const RuntimeBackend& b : p.backends)
        if (b.ref == ref) return b.name;
  // Removed by a reload: expect nothing. pin_cas then loses to the name the store holds,
  // and adopt_stored() writes the move again against that name.
  return std::string();
}

Decision Exchange::place_excluding(const ExcludedBackends& exclude, bool count_move, MoveReason why,
                                   bool require_slot) {
  Placing p;
  Decision d = decide(exclude, why, require_slot, p);
  commit(d, p, count_move);
  // A failover or a regression resend never waits for the store: the move is pinned here
  // and written by the control loop's flush (the refresh path repairs a lost race).
  if (StoreClient* store = pinned_ ? worker_->store() : nullptr;
      store && (d.kind == Placement::new_user || d.kind == Placement::moved)) {
    if (d.kind == Placement::new_user)
      store->queue_claim(pin_key_, stored_pin(d, p));
    else
      store->queue_cas(pin_key_, backend_name(p.from), stored_pin(d, p));
  }
  return d;
}

Decision Exchange::decide(const ExcludedBackends& exclude, MoveReason why, bool require_slot,
                          Placing& p) {
  const RuntimePool& pool = *pool_;
  SessionTable& sessions = worker_->state().sessions;
  uint64_t now = uv_now(worker_->loop());
  p.now = now;
  static thread_local std::vector<Candidate> cands;
  cands.resize(pool.backends.size());
  for (size_t i = 0; i < pool.backends.size(); ++i) {
    const RuntimeBackend& b = pool.backends[i];
    Candidate& c = cands[i];
    c.ref = b.ref;
    c.state = b.stats->state.load(std::memory_order_relaxed);
    c.reachable = b.reachable();
    c.admin = b.stats->admin.load(std::memory_order_relaxed);
    c.evict = b.stats->evict.load(std::memory_order_relaxed);
  }
  PlacementRequest r;
  r.hash = hash_;
  r.exclude = exclude;
  r.excluded_reason = why;
  r.require_slot = require_slot;
  r.now_ms = now;
  const bool shared = rt_->store.has_value();
  if (pinned_) {
    // An expired pin is simply gone: that user is new.
    std::optional<Pin> pin;
    if (shared) {
      const uint16_t epoch = refresh_epoch(now, rt_->config.sticky.ttl_ms);
      if (std::optional<TouchResult> t = sessions.touch(pin_key_, now, epoch)) {
        pin = t->pin;
        p.refresh_due = t->refresh_due;
      }
    } else {
      pin = sessions.touch(pin_key_, now);
    }
    if (pin) {
      r.has_pin = true;
      r.pinned_to = pin->backend;
      r.last_slot = pin->last_slot;
    }
    // What the user had seen when this request left: an answer is a regression only
    // against that (a parallel request's newer answer arriving first is not one).
    user_slot_ = r.last_slot;
  }
  p.has_pin = r.has_pin;
  p.from = r.pinned_to;
  p.last_slot = r.last_slot;
  // A returning user on a usable pin, the common case, needs no loads or tips.
  if (std::optional<Decision> stay = keep_pin(cands, r)) return *stay;
  const FleetCounts* fleet = shared ? &worker_->state().store.fleet : nullptr;
  for (size_t i = 0; i < pool.backends.size(); ++i) {
    const BackendStats& st = *pool.backends[i].stats;
    Candidate& c = cands[i];
    c.weight = pool.backends[i].weight;
    // Bounded loads count every instance's pins when the store shares them.
    c.pinned = sessions.pinned(c.ref) + (fleet ? fleet->others(c.ref) : 0);
    c.tip_slot = st.tip_slot.load(std::memory_order_relaxed);
    c.ramp_start_ms = st.ramp_start_ms.load(std::memory_order_relaxed);
  }
  PoolView view{cands, pool.selector.get(), rt_->config.sticky.balance_factor, pool.slow_start_ms};
  return lb::place(view, r);
}

void Exchange::commit(const Decision& d, const Placing& p, bool count_move) {
  if (d.kind != Placement::new_user && d.kind != Placement::moved) return;
  const RuntimeBackend& b = pool_->backends[d.index];
  if (pinned_) {  // the reason stays with the pin for GET /sessions/<hash>
    const MoveReason why = d.kind == Placement::moved ? d.reason : MoveReason::none;
    worker_->state().sessions.pin(pin_key_, b.ref, p.now, static_cast<uint8_t>(why),
                                  why == MoveReason::fork);
    if (why == MoveReason::fork) user_slot_ = 0;
  }
  BackendShard& sh = b.stats->local();
  sh.new_pins.fetch_add(1, std::memory_order_relaxed);
  if (d.kind == Placement::moved) move_reason_ = d.reason;
  if (d.kind == Placement::moved && count_move && p.has_pin) note_move(d, p.from);
  // A new or moved user has no state on its new backend: its 503 may be retried.
  fresh_user_ = true;
}

}  // namespace lb::net

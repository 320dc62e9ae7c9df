#pragma once
// One worker loop's connection to the shared pin store (issue 15): the data path's only
// door to Redis. A request whose user is not in the local session table (or who must move)
// parks on claim()/cas() for at most sticky.store.timeout; the answer resumes it through
// StoreWaiter. Everything else is fire-and-forget: TTL refreshes are batched and
// pipelined per loop, and writes made while the link is down go to the process-wide
// PendingWrites, which the control loop flushes once Redis is back.
// Single-threaded: every call on the worker's loop. Never calls a waiter inside claim/cas.
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "lb/core/pin_codec.h"
#include "lb/core/refresh_batch.h"
#include "lb/core/session_key.h"

namespace lb {
class QuotaGuard;
}

namespace lb::net {

struct ProxyState;
struct Runtime;
struct StoreShared;

enum class StoreOutcome : uint8_t {
  won,      // the store now holds our pin (claim: first writer; cas: moved)
  adopted,  // the store holds another instance's pin: `stored`
  failed,   // timeout, error or link lost: decide locally (the write is queued)
};

struct StoreAnswer {
  StoreOutcome outcome = StoreOutcome::failed;
  StoredPin stored;      // adopted: the pin the store holds
  const char* why = "";  // failed: "timeout", "error" or "down" (access log, counters)
};

// Who waits for a claim or cas (the Exchange).
class StoreWaiter {
 public:
  virtual void store_answer(const StoreAnswer& a) = 0;

 protected:
  ~StoreWaiter() = default;
};

class StoreClient {
 public:
  StoreClient(uv_loop_t* loop, ProxyState& state);
  // Frees the link; the loop must run once more to finish closing its handles.
  ~StoreClient();
  StoreClient(const StoreClient&) = delete;
  StoreClient& operator=(const StoreClient&) = delete;

  // Takes the runtime's store settings (at start and after every reload); reconnects when
  // the address or password changed. A runtime without a store: the link closes and
  // up() is false for good.
  void configure(const Runtime& rt);
  // The link is up: claim/cas will be sent.
  bool up() const;

  // pin_claim: read-through and first writer wins in one round trip. `key` is the pool's
  // session key (pool_session_key). False when the link is not up (nothing is sent; the
  // caller places locally and calls queue_claim). Otherwise exactly one
  // w->store_answer() follows, unless cancel(w) comes first.
  bool claim(const SessionKey& key, const StoredPin& mine, StoreWaiter* w);
  // pin_cas: replaces the stored pin if it still names `expected_backend` (or is gone), and
  // publishes the move. As claim().
  bool cas(const SessionKey& key, std::string_view expected_backend, const StoredPin& mine,
           StoreWaiter* w);
  // The waiter's request is gone: its answer is dropped.
  void cancel(StoreWaiter* w);

  // Writes that could not be sent (down) or got no answer (failed): queued in the shared
  // PendingWrites for the control loop's flush.
  void queue_claim(const SessionKey& key, const StoredPin& mine);
  void queue_cas(const SessionKey& key, std::string_view expected_backend, const StoredPin& mine);
  // A pinned user's request in a new refresh epoch (SessionTable::touch's refresh_due):
  // pin_touch is batched and pipelined; a mismatch adopts the stored pin locally.
  void note_refresh(const RefreshItem& item);

  // Shared quota (rate_limit pools): sends quota_take for guard.lease_size() tokens and
  // reports the answer with guard.grant() or guard.lease_failed(). False when not up (the
  // caller calls lease_failed()).
  bool quota_take(const std::string& pool, QuotaGuard& guard);
  // A quota cool-down this process tripped (402/418/429 from Blockfrost): quota_cool
  // stores it and publishes it, so every instance holds off until `until_unix_ms`.
  void quota_cool(const std::string& pool, int status, uint64_t until_unix_ms);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lb::net

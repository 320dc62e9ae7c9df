#pragma once
// One connection to Redis on one libuv loop, for the shared pin store (plan-15 §1):
// hiredis 0.14's async API through a libuv adapter (hiredis 1.0's: redis_uv_adapter.h).
// hiredis 0.14 has no command or connect timeouts, so the link adds them: every command
// carries its own deadline on one uv timer; a reply that arrives after its deadline (or
// after cancel) is dropped by a generation check. A link whose oldest command is older than
// max(4×timeout, 500 ms), or whose connect takes longer than max(10×timeout, 1 s), is
// declared stuck: the context is freed (from the timer, never from inside a hiredis
// callback), every outstanding command fails at once, and the link reconnects with back-off
// (100 ms doubling to 5 s, ±20% jitter).
//
// The link is up only once Redis has answered on the new connection (AUTH, then the
// scripts' SCRIPT LOADs or a PING), within the connect limit: a SIGSTOPped Redis still
// completes TCP handshakes from its listen backlog. The back-off starts over only then. A
// command link idle for 1 s sends a PING, so a frozen Redis is found without traffic (stuck
// after max(4×timeout, 500 ms) more); every link has TCP keepalive (half-open peers).
//
// The address must be numeric (resolved once on the control thread): hiredis' connect calls
// getaddrinfo, which never blocks on a numeric host. AUTH is the first command; a refused
// password keeps the link down (logged once, never with the password) and retries at the
// back-off's pace. Single-threaded: every call on the loop's thread.
#include <hiredis/hiredis.h>
#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <queue>
#include <string>
#include <string_view>
#include <vector>

struct redisAsyncContext;

namespace lb::net {

enum class LinkState : uint8_t { connecting, up, down };
const char* link_state_name(LinkState s);

// How a command ended: `reply` (the reply may still be a Redis error: check its type),
// `timeout` (no reply within the command's timeout) or `failed` (the link went down or was
// freed before the reply).
enum class LinkResult : uint8_t { reply, timeout, failed };

// Identifies one command until its callback has run; 0 is "not sent".
using Ticket = uint64_t;

struct RedisLinkOptions {
  std::string ip;  // numeric IPv4 or IPv6
  uint16_t port = 6379;
  std::string password;  // empty: no AUTH
  uint64_t timeout_ms = 50;
  uint64_t backoff_min_ms = 100;
  uint64_t backoff_max_ms = 5000;
};

// The back-off before reconnect attempt `attempt` (0-based): min·2^attempt capped at max,
// scaled by `jitter` in [0.8, 1.2]. Pure, for the tests.
uint64_t link_backoff_ms(unsigned attempt, uint64_t min_ms, uint64_t max_ms, double jitter);

class RedisLink {
 public:
  // `reply` is valid only during the call (hiredis frees it after).
  using ReplyFn = std::function<void(LinkResult, const redisReply* reply)>;
  using StateFn = std::function<void(LinkState)>;

  explicit RedisLink(uv_loop_t* loop);
  // Frees the context (no callback runs after destruction begins) and closes the timer; the
  // loop must run once more to finish the closes. Never destroy a link from inside one of
  // its own callbacks.
  ~RedisLink();
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  // Starts connecting (dropping any current connection). False, with last_error(), when the
  // address is not numeric; the link then stays down without retrying.
  bool connect(RedisLinkOptions opts);
  // A new default command timeout (sticky.store.timeout reloaded) without reconnecting:
  // it also moves the stuck and connect deadlines (from max(4×, 10×timeout)).
  void set_timeout(uint64_t timeout_ms);
  uint64_t timeout_ms() const { return opts_.timeout_ms; }
  // Sends argv; `done` runs exactly once (reply, timeout or failed) unless cancelled, never
  // from inside this call. Returns 0 (and never calls `done`) when the link is not up.
  // timeout_ms 0: the link's default.
  Ticket command(const std::vector<std::string_view>& argv, ReplyFn done, uint64_t timeout_ms = 0);
  // Forgets a command: its callback will not run (a later reply is dropped). A no-op for a
  // ticket that has already finished.
  void cancel(Ticket t);

  // Lua scripts sent as SCRIPT LOAD on every connect, before any command can be sent (so an
  // EVALSHA that follows finds them), and again after a NOSCRIPT reply (a SCRIPT FLUSH, a
  // failover): that one command gets the NOSCRIPT error (the caller falls back as for any
  // error), the next finds the script. Set before connect().
  void set_scripts(std::vector<std::string> bodies);
  // EVALSHA of script `index` (of set_scripts) with `keys` and `args`; as command().
  Ticket evalsha(size_t index, const std::vector<std::string_view>& keys,
                 const std::vector<std::string_view>& args, ReplyFn done, uint64_t timeout_ms = 0);
  const std::string& script_sha(size_t index) const { return shas_[index]; }

  // Subscribe mode (the store's subscriber link): `channels` are SUBSCRIBEd every time the
  // link comes up, so a reconnect subscribes again, and `fn` runs for every message on them
  // (hiredis keeps a SUBSCRIBE's callback for every message). Set before connect(); a change
  // takes effect at the next connect(). Such a link carries nothing else: Redis accepts only
  // (P)SUBSCRIBE on a subscribed connection, and hiredis 0.14 would hand a message to a
  // pending command's callback. The subscription has no deadline and never counts toward
  // stuck detection: a silent subscriber is noticed only when TCP reports it (a missed
  // invalidation is repaired by the refresh path within ttl/10).
  using MessageFn = std::function<void(std::string_view channel, std::string_view message)>;
  void subscribe(std::vector<std::string> channels, MessageFn fn);
  // Channels Redis confirmed on the current connection (0 while not up).
  size_t subscribed() const { return subscribed_; }

  LinkState state() const { return state_; }
  void on_state(StateFn fn) { on_state_ = std::move(fn); }
  const std::string& last_error() const { return last_error_; }
  size_t outstanding() const { return live_; }
  // Counters (for /status): commands that timed out, links declared stuck, connects made.
  uint64_t timeouts() const { return timeouts_; }
  uint64_t stuck() const { return stuck_; }
  uint64_t connects() const { return connects_; }
  uint64_t noscripts() const { return noscripts_; }

 private:
  struct Waiter {
    uint32_t gen = 0;
    bool live = false;
    uint64_t deadline_ms = 0;
    ReplyFn fn;
  };
  struct Sent {  // a command handed to hiredis, in send (= reply) order
    Ticket ticket;
    uint64_t at_ms;
  };
  using Due = std::pair<uint64_t, Ticket>;  // deadline, ticket

  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_auth(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_timer(uv_timer_t* t);
  static void on_script_load(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_message(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_handshake(redisAsyncContext* ac, void* reply, void* privdata);
  // One reply of the connect handshake; the last one brings the link up.
  void handshake_reply(redisAsyncContext* ac, const redisReply* reply);
  bool idle_ping_due() const;
  void send_ping();
  void load_scripts();
  void send_subscribe();

  void start_connect();
  void lost(const char* why);  // the context is gone (hiredis freed it): down + back-off
  void drop(const char* why);  // we free the context (timer context only)
  void set_state(LinkState s);
  void fail_all();
  void finish(uint32_t slot, LinkResult r, const redisReply* reply);
  Waiter* find(Ticket t, uint32_t* slot);
  void rearm();
  uint64_t now() const { return uv_now(loop_); }
  uint64_t stuck_ms() const;
  uint64_t connect_stuck_ms() const;

  uv_loop_t* loop_;
  uv_timer_t* timer_;  // heap: freed in its close callback, after the link
  redisAsyncContext* ctx_ = nullptr;
  RedisLinkOptions opts_;
  LinkState state_ = LinkState::down;
  StateFn on_state_;
  std::string last_error_;

  std::vector<Waiter> slab_;
  std::vector<uint32_t> free_;
  size_t live_ = 0;
  std::deque<Sent> sent_;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due_;

  bool configured_ = false;
  bool auth_failed_logged_ = false;
  bool closing_ = false;
  bool kill_pending_ = false;  // AUTH refused inside a callback: the timer frees
  unsigned attempt_ = 0;
  bool was_up_ = false;           // the current (or last) connection came up
  uint64_t connect_at_ms_ = 0;    // when the current connect started
  uint64_t reconnect_at_ms_ = 0;  // 0: none scheduled
  uint64_t down_since_ms_ = 0;
  uint64_t rng_;
  uint64_t timeouts_ = 0, stuck_ = 0, connects_ = 0, noscripts_ = 0;
  std::vector<std::string> scripts_;
  std::vector<std::string> shas_;  // lowercase hex SHA1 of each script
  bool script_error_logged_ = false;
  size_t loading_ = 0;                 // SCRIPT LOADs not yet answered
  size_t handshake_ = 0;               // connect handshake replies not yet answered
  uint64_t last_io_ms_ = 0;            // last reply or idle PING (the idle PING's clock)
  std::vector<std::string> channels_;  // subscribe mode: empty = a command link
  MessageFn on_message_;
  size_t subscribed_ = 0;
};

}  // namespace lb::net

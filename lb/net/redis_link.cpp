#include "lb/net/redis_link.h"

#include <arpa/inet.h>
#include <hiredis/async.h>

#include <algorithm>

#include "lb/net/log.h"
#include "lb/net/redis_uv_adapter.h"

namespace lb::net {

namespace {

constexpr uint64_t kNoWake = UINT64_MAX;
// A command link with nothing outstanding for this long sends a PING, so a Redis that
// froze (SIGSTOP, a dead host without RST) is noticed by stuck detection without traffic.
constexpr uint64_t kIdlePingMs = 1000;

Ticket make_ticket(uint32_t slot, uint32_t gen) {
  return (uint64_t{gen} << 32) | (uint64_t{slot} + 1);
}

void* as_privdata(Ticket t) { return reinterpret_cast<void*>(static_cast<uintptr_t>(t)); }

bool numeric_ip(const std::string& ip) {
  unsigned char buf[16];
  return inet_pton(AF_INET, ip.c_str(), buf) == 1 || inet_pton(AF_INET6, ip.c_str(), buf) == 1;
}

}  // namespace

const char* link_state_name(LinkState s) {
  switch (s) {
    case LinkState::connecting:
      return "connecting";
    case LinkState::up:
      return "up";
    case LinkState::down:
      return "down";
  }
  return "down";
}

uint64_t link_backoff_ms(unsigned attempt, uint64_t min_ms, uint64_t max_ms, double jitter) {
  uint64_t d = min_ms;
  for (unsigned i = 0; i < attempt && d < max_ms; ++i) d *= 2;
  d = std::min(d, max_ms);
  jitter = std::clamp(jitter, 0.8, 1.2);
  return std::max<uint64_t>(1, static_cast<uint64_t>(static_cast<double>(d) * jitter));
}

RedisLink::RedisLink(uv_loop_t* loop) : loop_(loop), timer_(new uv_timer_t) {
  uv_timer_init(loop_, timer_);
  timer_->data = this;
  rng_ = uv_hrtime() ^ reinterpret_cast<uintptr_t>(this);
  if (rng_ == 0) rng_ = 1;
}

RedisLink::~RedisLink() {
  closing_ = true;
  // No callback into an owner that is going away: forget every waiter first, then free
  // (hiredis runs the pending callbacks with NULL; they find no live waiter).
  for (auto& w : slab_) w = Waiter{w.gen + 1, false, 0, {}};
  live_ = 0;
  on_state_ = nullptr;
  on_message_ = nullptr;
  state_ = LinkState::down;
  if (ctx_) {
    redisAsyncContext* ac = ctx_;
    ctx_ = nullptr;
    ac->data = nullptr;  // the callbacks the free runs see no link
    redisAsyncFree(ac);
  }
  uv_timer_stop(timer_);
  timer_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

uint64_t RedisLink::stuck_ms() const { return std::max<uint64_t>(4 * opts_.timeout_ms, 500); }
uint64_t RedisLink::connect_stuck_ms() const {
  return std::max<uint64_t>(10 * opts_.timeout_ms, 1000);
}

bool RedisLink::connect(RedisLinkOptions opts) {
  if (ctx_) drop("reconnecting with new settings");
  opts_ = std::move(opts);
  if (opts_.timeout_ms == 0) opts_.timeout_ms = 1;
  attempt_ = 0;
  reconnect_at_ms_ = 0;
  auth_failed_logged_ = false;
  if (!numeric_ip(opts_.ip)) {
    configured_ = false;
    last_error_ = "address is not a numeric IP: " + opts_.ip;
    set_state(LinkState::down);
    rearm();
    return false;
  }
  configured_ = true;
  start_connect();
  return true;
}

void RedisLink::start_connect() {
  reconnect_at_ms_ = 0;
  ++connects_;
  connect_at_ms_ = now();  // also for an attempt that fails at once: its back-off counts
  was_up_ = false;
  redisAsyncContext* ac = redisAsyncConnect(opts_.ip.c_str(), opts_.port);
  if (ac == nullptr || ac->err) {
    last_error_ = ac ? ac->errstr : "out of memory";
    if (ac) redisAsyncFree(ac);
    lost(last_error_.c_str());
    return;
  }
  if (!redis_uv_attach(ac, loop_)) {
    redisAsyncFree(ac);
    last_error_ = "cannot attach to the loop";
    lost(last_error_.c_str());
    return;
  }
  ac->data = this;
  ctx_ = ac;
  loading_ = 0;
  handshake_ = 0;
  // A peer that vanished without a FIN or RST (half-open TCP) is found by the kernel, also
  // on the subscriber link, which has no deadline of its own.
  redisEnableKeepAlive(&ac->c);
  redisAsyncSetConnectCallback(ac, &RedisLink::on_connect);
  redisAsyncSetDisconnectCallback(ac, &RedisLink::on_disconnect);
  if (!opts_.password.empty()) {
    // Queued before the connect completes, so it is the first command on the wire.
    const char* argv[2] = {"AUTH", opts_.password.data()};
    size_t len[2] = {4, opts_.password.size()};
    redisAsyncCommandArgv(ac, &RedisLink::on_auth, nullptr, 2, argv, len);
  }
  // The link is up only once Redis answers on it: a frozen Redis still completes the TCP
  // handshake from its listen backlog. The scripts' SCRIPT LOADs are that first answer (a
  // PING when there are none); connect_stuck_ms bounds the wait.
  if (!scripts_.empty()) {
    load_scripts();
    handshake_ = loading_;
  }
  if (handshake_ == 0) {
    const char* argv[1] = {"PING"};
    size_t len[1] = {4};
    if (redisAsyncCommandArgv(ac, &RedisLink::on_handshake, nullptr, 1, argv, len) == REDIS_OK)
      handshake_ = 1;
  }
  set_state(LinkState::connecting);
  rearm();
}

void RedisLink::handshake_reply(redisAsyncContext* ac, const redisReply* reply) {
  // NULL: the context is being freed; the connect or disconnect path handles the state.
  if (ctx_ != ac || reply == nullptr || state_ != LinkState::connecting || kill_pending_) return;
  if (reply->type == REDIS_REPLY_ERROR && reply->len >= 6 &&
      std::string_view(reply->str, 6) == "NOAUTH") {
    // Redis wants a password and none was configured: as a refused one.
    last_error_ = "authentication required";
    kill_pending_ = true;
    uv_timer_start(timer_, &RedisLink::on_timer, 0, 0);
    return;
  }
  if (handshake_ > 0) --handshake_;
  if (handshake_ == 0) set_state(LinkState::up);
  rearm();
}

void RedisLink::on_handshake(redisAsyncContext* ac, void* r, void*) {
  auto* self = static_cast<RedisLink*>(ac->data);
  if (self) self->handshake_reply(ac, static_cast<redisReply*>(r));
}

void RedisLink::on_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisLink*>(ac->data);
  if (self == nullptr || self->ctx_ != ac) return;
  if (status != REDIS_OK) {
    // hiredis frees the context right after this callback.
    self->last_error_ = std::string("connect: ") + ac->errstr;
    self->ctx_ = nullptr;
    self->lost(self->last_error_.c_str());
    return;
  }
  self->rearm();  // up once the handshake is answered (start_connect)
}

void RedisLink::on_auth(redisAsyncContext* ac, void* r, void*) {
  auto* self = static_cast<RedisLink*>(ac->data);
  auto* reply = static_cast<redisReply*>(r);
  // NULL: the context is being freed; the connect or disconnect path handles the state.
  if (self == nullptr || self->ctx_ != ac || reply == nullptr) return;
  if (reply->type == REDIS_REPLY_ERROR) {
    self->last_error_ = "authentication failed";
    if (!self->auth_failed_logged_) {
      // Debug: the owner (StoreControl) logs the outage once, with this reason.
      self->auth_failed_logged_ = true;
      logf(LogLevel::debug, "redis %s:%u: authentication failed", self->opts_.ip.c_str(),
           static_cast<unsigned>(self->opts_.port));
    }
    // Never free inside a hiredis callback: the timer does it at once.
    self->kill_pending_ = true;
    uv_timer_start(self->timer_, &RedisLink::on_timer, 0, 0);
  }
  // Accepted: the handshake's replies (queued behind AUTH) bring the link up.
}

void RedisLink::on_disconnect(const redisAsyncContext* ac, int) {
  auto* self = static_cast<RedisLink*>(ac->data);
  if (self == nullptr || self->ctx_ != ac) return;  // our own free: drop() handles it
  self->ctx_ = nullptr;
  if (ac->err)
    self->last_error_ = std::string("disconnected: ") + ac->errstr;
  else
    self->last_error_ = "disconnected";
  self->lost(self->last_error_.c_str());
}

void RedisLink::on_reply(redisAsyncContext* ac, void* r, void* privdata) {
  auto* self = static_cast<RedisLink*>(ac->data);
  if (self == nullptr) return;
  auto* reply = static_cast<redisReply*>(r);
  if (self->ctx_ == ac) {
    // Replies come in send order. A context we dropped already cleared sent_.
    if (!self->sent_.empty()) self->sent_.pop_front();
    self->last_io_ms_ = self->now();
    if (reply == nullptr && self->state_ == LinkState::up) {
      // The context is going away (EOF, reset): nothing more can be sent on it.
      self->last_error_ = ac->errstr[0] != '\0' ? std::string("connection lost: ") + ac->errstr
                                                : std::string("connection lost");
      self->set_state(LinkState::down);
    }
  }
  if (reply && reply->type == REDIS_REPLY_ERROR && reply->len >= 8 &&
      std::string_view(reply->str, 8) == "NOSCRIPT" && self->ctx_ == ac &&
      self->state_ == LinkState::up) {
    ++self->noscripts_;
    self->load_scripts();  // for the next EVALSHA (sending from a callback is allowed)
  }
  uint32_t slot;
  if (self->find(reinterpret_cast<uintptr_t>(privdata), &slot) == nullptr) {
    self->rearm();  // late, cancelled or the idle PING: the stuck clock moved on
    return;
  }
  self->finish(slot, reply ? LinkResult::reply : LinkResult::failed, reply);
  self->rearm();
}

RedisLink::Waiter* RedisLink::find(Ticket t, uint32_t* slot) {
  uint32_t s = static_cast<uint32_t>(t & 0xffffffffu);
  if (s == 0 || s > slab_.size()) return nullptr;
  Waiter& w = slab_[s - 1];
  if (!w.live || w.gen != static_cast<uint32_t>(t >> 32)) return nullptr;
  *slot = s - 1;
  return &w;
}

void RedisLink::finish(uint32_t slot, LinkResult r, const redisReply* reply) {
  Waiter& w = slab_[slot];
  ReplyFn fn = std::move(w.fn);
  w.fn = nullptr;
  w.live = false;
  ++w.gen;
  free_.push_back(slot);
  --live_;
  if (fn) fn(r, reply);  // may send or cancel: the slab may grow, `w` is not used after
}

Ticket RedisLink::command(const std::vector<std::string_view>& argv, ReplyFn done,
                          uint64_t timeout_ms) {
  if (state_ != LinkState::up || ctx_ == nullptr || argv.empty()) return 0;
  uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slab_.size());
    slab_.emplace_back();
  }
  Waiter& w = slab_[slot];
  Ticket t = make_ticket(slot, w.gen);
  std::vector<const char*> ptrs(argv.size());
  std::vector<size_t> lens(argv.size());
  for (size_t i = 0; i < argv.size(); ++i) {
    ptrs[i] = argv[i].data();
    lens[i] = argv[i].size();
  }
  if (redisAsyncCommandArgv(ctx_, &RedisLink::on_reply, as_privdata(t),
                            static_cast<int>(argv.size()), ptrs.data(), lens.data()) != REDIS_OK) {
    free_.push_back(slot);
    return 0;
  }
  uint64_t at = now();
  w.live = true;
  w.fn = std::move(done);
  w.deadline_ms = at + (timeout_ms ? timeout_ms : opts_.timeout_ms);
  ++live_;
  sent_.push_back(Sent{t, at});
  due_.push(Due{w.deadline_ms, t});
  rearm();
  return t;
}

void RedisLink::cancel(Ticket t) {
  uint32_t slot;
  Waiter* w = find(t, &slot);
  if (w == nullptr) return;
  w->fn = nullptr;
  w->live = false;
  ++w->gen;
  free_.push_back(slot);
  --live_;
}

void RedisLink::subscribe(std::vector<std::string> channels, MessageFn fn) {
  channels_ = std::move(channels);
  on_message_ = std::move(fn);
}

void RedisLink::send_subscribe() {
  std::vector<const char*> argv{"SUBSCRIBE"};
  std::vector<size_t> len{9};
  for (const auto& c : channels_) {
    argv.push_back(c.data());
    len.push_back(c.size());
  }
  // Not a command of the slab: no deadline, no place in sent_ (hiredis keeps the callback
  // in its channel table, not in its reply queue).
  redisAsyncCommandArgv(ctx_, &RedisLink::on_message, nullptr, static_cast<int>(argv.size()),
                        argv.data(), len.data());
}

void RedisLink::on_message(redisAsyncContext* ac, void* r, void*) {
  auto* self = static_cast<RedisLink*>(ac->data);
  auto* reply = static_cast<redisReply*>(r);
  // NULL: the context is being freed (the disconnect path handles the state).
  if (self == nullptr || self->ctx_ != ac || reply == nullptr) return;
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
  auto text = [&](size_t i) -> std::string_view {
    const redisReply* e = reply->element[i];
    if (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_STATUS) return {};
    return {e->str, e->len};
  };
  std::string_view kind = text(0);
  if (kind == "subscribe") {
    ++self->subscribed_;
  } else if (kind == "message" && self->on_message_) {
    self->on_message_(text(1), text(2));
  }
}

void RedisLink::set_state(LinkState s) {
  if (s == state_) return;
  if (s != LinkState::up) subscribed_ = 0;
  if (s == LinkState::up && ctx_ && !channels_.empty()) send_subscribe();
  LinkState was = state_;
  state_ = s;
  uint64_t t = now();
  // Debug only: a process has W+2 links to one Redis; the operator's one warning per outage
  // and one "up again" line are StoreControl's.
  if (s == LinkState::up) {
    attempt_ = 0;  // Redis answered on this connection: the back-off starts over
    was_up_ = true;
    last_io_ms_ = t;
    if (down_since_ms_ != 0)
      logf(LogLevel::debug, "redis %s:%u: up after %llu ms", opts_.ip.c_str(),
           static_cast<unsigned>(opts_.port), static_cast<unsigned long long>(t - down_since_ms_));
    down_since_ms_ = 0;
  } else if (s == LinkState::down && was == LinkState::up) {
    down_since_ms_ = t;
    logf(LogLevel::debug, "redis %s:%u: down: %s", opts_.ip.c_str(),
         static_cast<unsigned>(opts_.port), last_error_.c_str());
  } else if (s == LinkState::down && down_since_ms_ == 0) {
    down_since_ms_ = t;  // never up (or failed while connecting): the outage starts here
  }
  if (on_state_) on_state_(s);
}

void RedisLink::fail_all() {
  sent_.clear();
  due_ = {};
  for (uint32_t i = 0; i < slab_.size(); ++i)
    if (slab_[i].live) finish(i, LinkResult::failed, nullptr);
}

void RedisLink::lost(const char* why) {
  (void)why;
  set_state(LinkState::down);
  fail_all();
  if (closing_ || !configured_) return;
  // ±20% jitter from a xorshift, so a fleet does not reconnect in step.
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  double jitter = 0.8 + 0.4 * static_cast<double>(rng_ % 10001) / 10000.0;
  const uint64_t wait =
      link_backoff_ms(attempt_++, opts_.backoff_min_ms, opts_.backoff_max_ms, jitter);
  // Attempts start at most once per back-off: an attempt that never came up (a frozen Redis
  // holds it for connect_stuck_ms) already spent its wait, so the link comes back within
  // one attempt of Redis' return rather than after a back-off grown past it. A link that
  // was up waits the whole back-off from now.
  reconnect_at_ms_ = std::max(now(), (was_up_ ? now() : connect_at_ms_) + wait);
  rearm();
}

void RedisLink::drop(const char* why) {
  redisAsyncContext* ac = ctx_;
  ctx_ = nullptr;  // on_disconnect ignores a context that is no longer ours
  last_error_ = why;
  set_state(LinkState::down);
  // Pending commands run with NULL (on_reply finds them and fails them) before the free ends.
  if (ac) redisAsyncFree(ac);
  lost(why);
}

void RedisLink::on_timer(uv_timer_t* t) {
  auto* self = static_cast<RedisLink*>(t->data);
  if (self == nullptr) return;
  uint64_t n = self->now();
  if (self->kill_pending_) {
    self->kill_pending_ = false;
    if (self->ctx_) self->drop(self->last_error_.c_str());
    return;
  }
  // Timeouts: each due command's callback runs once, with `timeout`.
  while (!self->due_.empty() && self->due_.top().first <= n) {
    Ticket tk = self->due_.top().second;
    self->due_.pop();
    uint32_t slot;
    if (self->find(tk, &slot) == nullptr) continue;  // answered or cancelled
    ++self->timeouts_;
    self->finish(slot, LinkResult::timeout, nullptr);
  }
  // Stuck: TCP up but Redis silent (SIGSTOP, a dead host without RST).
  if (self->ctx_ && self->state_ == LinkState::up && !self->sent_.empty() &&
      n - self->sent_.front().at_ms >= self->stuck_ms()) {
    ++self->stuck_;
    self->drop("no reply (stuck)");
    return;
  }
  if (self->ctx_ && self->state_ == LinkState::connecting &&
      n - self->connect_at_ms_ >= self->connect_stuck_ms()) {
    ++self->stuck_;
    self->drop("connect timed out (no answer from Redis)");
    return;
  }
  if (self->idle_ping_due() && n >= self->last_io_ms_ + kIdlePingMs) self->send_ping();
  if (self->ctx_ == nullptr && self->reconnect_at_ms_ != 0 && n >= self->reconnect_at_ms_) {
    self->start_connect();
    return;
  }
  self->rearm();
}

void RedisLink::rearm() {
  if (closing_) return;
  uint64_t wake = kNoWake;
  // Skip the heap entries of commands already answered or cancelled.
  uint32_t slot;
  while (!due_.empty() && find(due_.top().second, &slot) == nullptr) due_.pop();
  if (!due_.empty()) wake = due_.top().first;
  if (ctx_ && state_ == LinkState::up && !sent_.empty())
    wake = std::min(wake, sent_.front().at_ms + stuck_ms());
  if (ctx_ && state_ == LinkState::connecting)
    wake = std::min(wake, connect_at_ms_ + connect_stuck_ms());
  if (idle_ping_due()) wake = std::min(wake, last_io_ms_ + kIdlePingMs);
  if (ctx_ == nullptr && reconnect_at_ms_ != 0) wake = std::min(wake, reconnect_at_ms_);
  if (kill_pending_) wake = now();
  if (wake == kNoWake) {
    uv_timer_stop(timer_);
    return;
  }
  uint64_t n = now();
  uv_timer_start(timer_, &RedisLink::on_timer, wake > n ? wake - n : 0, 0);
}

bool RedisLink::idle_ping_due() const {
  // Not on a subscriber: in subscribe mode hiredis 0.14 would hand the PONG to the
  // subscription's callback (that link relies on TCP keepalive).
  return ctx_ && state_ == LinkState::up && channels_.empty() && sent_.empty() && !closing_;
}

void RedisLink::send_ping() {
  const char* argv[1] = {"PING"};
  size_t len[1] = {4};
  // Ticket 0: no waiter (on_reply finds none), but a place in sent_, so stuck detection
  // watches it like any command.
  if (redisAsyncCommandArgv(ctx_, &RedisLink::on_reply, as_privdata(0), 1, argv, len) == REDIS_OK)
    sent_.push_back(Sent{0, now()});
  last_io_ms_ = now();
}

void RedisLink::set_timeout(uint64_t timeout_ms) {
  opts_.timeout_ms = std::max<uint64_t>(timeout_ms, 1);
  rearm();  // stuck and connect deadlines follow the new timeout
}

}  // namespace lb::net

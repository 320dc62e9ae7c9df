#pragma once
// Backend addresses that move (DESIGN.md "Configuration": hosted services move): each
// backend has an AddressBook holding every address its name resolved to, IPv4 and IPv6,
// in the resolver's order. The control thread's Resolver looks names up again every
// pool's `resolve_interval` with uv_getaddrinfo (libuv's thread pool, never blocking a
// loop) and publishes a new immutable list with an atomic swap; workers read the list
// they need per connection attempt. A lookup that fails keeps the last good list. IP
// literals are never looked up.
#include <netdb.h>
#include <sys/socket.h>
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lb::net {

struct ProxyState;

class AddressBook {
 public:
  using List = std::vector<sockaddr_storage>;

  // `host` is an IP literal (then the list is that one address for good) or a name.
  AddressBook(std::string host, uint16_t port);

  // The current list; empty until a name first resolves. Any thread.
  std::shared_ptr<const List> get() const { return list_.load(std::memory_order_acquire); }
  bool resolved() const { return !get()->empty(); }
  // Index into get() of the address that last connected: connection attempts start there
  // (taken modulo the list's size, so a list that shrank is still fine). Any thread.
  uint32_t preferred() const { return preferred_.load(std::memory_order_relaxed); }
  void set_preferred(uint32_t i) {
    if (preferred() != i) preferred_.store(i, std::memory_order_relaxed);
  }
  // Replaces the list (a lookup's answer, or a test's).
  void publish(List addrs);

  // A lookup answered: status 0 and `res` give the new list (the port is the book's);
  // otherwise the last good list stays. Returns what changed, for the log: "" when the
  // list is the same, else a description ("127.0.0.1:80, [::1]:80", or the failure).
  // `failed` is set when the lookup gave no address.
  std::string apply_lookup(int status, const addrinfo* res, bool& failed);

  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }
  bool literal() const { return literal_; }

  // Control thread only: when the next lookup is due (uv_now ms), one in flight, and
  // whether the last one failed (logged once per failure run, not every interval).
  uint64_t next_due_ms = 0;
  bool in_flight = false;
  bool failing = false;

 private:
  std::string host_;
  uint16_t port_;
  bool literal_;
  std::atomic<std::shared_ptr<const List>> list_;
  std::atomic<uint32_t> preferred_{0};
};

// Every address of `res` (TCP), deduplicated, in order, with `port` set.
AddressBook::List addresses_of(const addrinfo* res, uint16_t port);

// "127.0.0.1:80, [::1]:80".
std::string describe(const AddressBook::List& list);

// A blocking lookup of the book's name, all records (start-up and reload only, off the
// data path). Returns false when the name gives no address (the book keeps its list).
bool resolve_now(AddressBook& book, std::string& why);

// The periodic re-resolution on the control loop: every tick it starts a lookup for each
// backend of the current runtime whose name is due (its pool's resolve_interval since the
// last answer), at most one in flight per backend.
class Resolver {
 public:
  Resolver(uv_loop_t* loop, ProxyState& state);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  void start();
  // Stops the timer and cancels lookups not yet running; those that are finish and are
  // dropped.
  void stop();
  // Starts the lookups that are due now (the timer calls it; tests may too).
  void tick();
  // Lookups answered so far (tests count them).
  uint64_t answered() const { return answered_; }

  static constexpr uint64_t kTickMs = 1000;

 private:
  struct Lookup;
  static void on_tick(uv_timer_t* t);
  static void on_answer(uv_getaddrinfo_t* req, int status, addrinfo* res);

  uv_loop_t* loop_;
  ProxyState& state_;
  uv_timer_t* timer_ = nullptr;  // freed in its close callback
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::vector<Lookup*> lookups_;  // in flight
  uint64_t answered_ = 0;
};

}  // namespace lb::net

#include "lb/net/resolver.h"

#include <cstring>

#include "lb/net/log.h"
#include "lb/net/proxy_state.h"
#include "lb/net/socket_address.h"

namespace lb::net {

AddressBook::AddressBook(std::string host, uint16_t port)
    : host_(std::move(host)), port_(port), literal_(false) {
  sockaddr_storage one{};
  literal_ = ip_sockaddr(host_, port_, one);
  list_.store(std::make_shared<const List>(literal_ ? List{one} : List{}));
}

void AddressBook::publish(List addrs) {
  list_.store(std::make_shared<const List>(std::move(addrs)), std::memory_order_release);
  preferred_.store(0, std::memory_order_relaxed);
}

AddressBook::List addresses_of(const addrinfo* res, uint16_t port) {
  AddressBook::List out;
  for (const addrinfo* ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    sockaddr_storage a{};
    std::memcpy(&a, ai->ai_addr, ai->ai_addrlen);
    set_port(a, port);
    bool seen = false;
    for (const sockaddr_storage& b : out)
      seen =
          seen || (sockaddr_len(a) == sockaddr_len(b) && std::memcmp(&a, &b, sockaddr_len(a)) == 0);
    if (!seen) out.push_back(a);
  }
  return out;
}

std::string describe(const AddressBook::List& list) {
  std::string s;
  for (const sockaddr_storage& a : list) {
    if (!s.empty()) s += ", ";
    s += format_endpoint(a);
  }
  return s.empty() ? "none" : s;
}

// Lists compare in order: a resolver that rotates its answers (round-robin DNS) publishes
// each rotation, which is harmless (one allocation per interval).
std::string AddressBook::apply_lookup(int status, const addrinfo* res, bool& failed) {
  List next = status == 0 ? addresses_of(res, port_) : List{};
  failed = next.empty();
  if (failed) return status == 0 ? "no address" : uv_strerror(status);
  std::shared_ptr<const List> cur = get();
  bool same = cur->size() == next.size();
  for (size_t i = 0; same && i < next.size(); ++i)
    same = std::memcmp(&(*cur)[i], &next[i], sizeof(sockaddr_storage)) == 0;
  if (same) return "";
  std::string what = describe(next);
  publish(std::move(next));
  return what;
}

namespace {

// Every TCP address of either family; no AI_ADDRCONFIG, which would hide ::1 on a host
// whose only IPv6 address is loopback.
addrinfo lookup_hints() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  return hints;
}

}  // namespace

bool resolve_now(AddressBook& book, std::string& why) {
  if (book.literal()) return true;
  addrinfo hints = lookup_hints();
  addrinfo* res = nullptr;
  int rc = getaddrinfo(book.host().c_str(), nullptr, &hints, &res);
  bool failed = false;
  // getaddrinfo's codes are not libuv's: name the failure here.
  if (rc != 0) {
    why = gai_strerror(rc);
    return false;
  }
  why = book.apply_lookup(0, res, failed);
  freeaddrinfo(res);
  return !failed;
}

struct Resolver::Lookup {
  uv_getaddrinfo_t req{};
  std::shared_ptr<AddressBook> book;
  std::string pool, backend;
  std::string label;  // the configured "host:port"
  uint64_t interval_ms = 0;
  Resolver* owner = nullptr;
  std::shared_ptr<bool> alive;
};

Resolver::Resolver(uv_loop_t* loop, ProxyState& state) : loop_(loop), state_(state) {}

Resolver::~Resolver() { *alive_ = false; }

void Resolver::start() {
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
  uv_timer_start(timer_, &Resolver::on_tick, kTickMs, kTickMs);
}

void Resolver::stop() {
  if (timer_) {
    uv_close(reinterpret_cast<uv_handle_t*>(timer_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    timer_ = nullptr;
  }
  *alive_ = false;
  for (Lookup* l : lookups_) uv_cancel(reinterpret_cast<uv_req_t*>(&l->req));
  lookups_.clear();
}

void Resolver::on_tick(uv_timer_t* t) { static_cast<Resolver*>(t->data)->tick(); }

void Resolver::tick() {
  if (!*alive_) return;
  std::shared_ptr<const Runtime> rt = state_.runtime.load();
  uint64_t now = uv_now(loop_);
  for (const RuntimePool& pool : rt->pools) {
    for (const RuntimeBackend& b : pool.backends) {
      AddressBook& book = *b.addrs;
      if (book.literal() || book.in_flight) continue;
      if (book.next_due_ms == 0 && book.resolved()) {
        // Resolved just now by build_runtime: the interval starts here.
        book.next_due_ms = now + pool.resolve_interval_ms;
        continue;
      }
      if (now < book.next_due_ms) continue;
      auto* l = new Lookup;
      l->book = b.addrs;
      l->pool = pool.name;
      l->backend = b.name;
      l->label = b.address;
      l->interval_ms = pool.resolve_interval_ms;
      l->owner = this;
      l->alive = alive_;
      l->req.data = l;
      addrinfo hints = lookup_hints();
      int rc = uv_getaddrinfo(loop_, &l->req, &Resolver::on_answer, book.host().c_str(), nullptr,
                              &hints);
      if (rc != 0) {
        log_backend(LogLevel::warn, l->pool, l->backend, "%s: cannot start a lookup: %s",
                    l->label.c_str(), uv_strerror(rc));
        book.next_due_ms = now + pool.resolve_interval_ms;
        delete l;
        continue;
      }
      book.in_flight = true;
      lookups_.push_back(l);
    }
  }
}

void Resolver::on_answer(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  std::unique_ptr<Lookup> l(static_cast<Lookup*>(req->data));
  AddressBook& book = *l->book;
  book.in_flight = false;
  if (*l->alive && status != UV_ECANCELED) {
    Resolver& r = *l->owner;
    std::erase(r.lookups_, l.get());
    ++r.answered_;
    book.next_due_ms = uv_now(r.loop_) + l->interval_ms;
    bool failed = false;
    std::string what = book.apply_lookup(status, res, failed);
    if (failed) {
      // Keep serving the last good addresses; say so once per failure run.
      if (!book.failing)
        log_backend(LogLevel::warn, l->pool, l->backend, "%s: lookup failed (%s); keeping %s",
                    l->label.c_str(), what.c_str(), describe(*book.get()).c_str());
      book.failing = true;
    } else {
      if (book.failing || !what.empty())
        log_backend(LogLevel::info, l->pool, l->backend, "%s resolves to %s", l->label.c_str(),
                    describe(*book.get()).c_str());
      book.failing = false;
    }
  }
  if (res) uv_freeaddrinfo(res);
}

}  // namespace lb::net

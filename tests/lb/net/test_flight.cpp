// Stream flights (lb/net/flight.h, issue 16): identical GETs on one backend sent upstream
// once and fanned out, over the in-memory streams (test_exchange.cpp's way): the test
// plays every client and backend and runs the real ClientConn, Flight and Exchange.
#include "tests/lb/net/flight_rig.h"

namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("flight: N identical GETs reach the backend once; each client gets the same bytes") {
  Rig rig;
  std::vector<std::shared_ptr<MemoryPeer>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(rig.client());
    clients.back()->send(get("user" + std::to_string(i)));
  }
  REQUIRE(rig.ups.size() == 1);
  CHECK(rig.worker->flights().size() == 1);
  Upstream up = rig.ups[0];
  up.peer->answer_connect(0);
  std::string req = up.peer->take();
  CHECK(count(req, "GET /matches/addr1?unspent HTTP/1.1") == 1);
  up.peer->send("HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Most-Recent-Checkpoint: 42\r\n\r\n");
  up.peer->send("hello ");
  up.peer->send("world");
  std::string first = clients[0]->take();
  CHECK(first.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(first.substr(first.size() - 11) == "hello world");
  for (size_t i = 1; i < clients.size(); ++i) CHECK(clients[i]->take() == first);
  CHECK(rig.collapsed() == 4);
  CHECK(rig.worker->flights().size() == 0);
  CHECK(rig.cache().sum(&CacheShard::flights) == 0);
  CHECK(rig.worker->request_states().size() == 5);

  // The connections stay usable, and a later identical GET makes a new flight.
  clients[1]->send(get("user1"));
  CHECK(rig.worker->flights().size() == 1);
  CHECK(up.peer->take().rfind("GET /matches/addr1?unspent", 0) == 0);  // pooled connection
  up.peer->send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  CHECK(parse_response(clients[1]->take()).body == "ok");
}

TEST_CASE("flight: the leader leaves mid-body; the others complete and its state returns once") {
  Rig rig;
  auto leader = rig.client();
  leader->send(get("a"));
  std::vector<std::shared_ptr<MemoryPeer>> others = {rig.client(), rig.client()};
  others[0]->send(get("b"));
  others[1]->send(get("c"));
  REQUIRE(rig.ups.size() == 1);
  Upstream up = rig.ups[0];
  up.peer->answer_connect(0);
  up.peer->send("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nfirst");
  CHECK(leader->take().find("first") != std::string::npos);
  leader->fail(UV_ECONNRESET);  // gone mid-body
  MemoryStream::settle();
  CHECK(leader->closed);
  CHECK_FALSE(up.peer->closed);                     // the upstream request goes on for the others
  CHECK(rig.worker->request_states().size() == 0);  // the leader's state is the flight's
  up.peer->send("2nd");
  for (auto& c : others) {
    Parsed p = parse_response(c->take());
    CHECK(p.status == 200);
    CHECK(p.body == "first2nd");
  }
  // Two followers' states and the adopted one: each given back exactly once.
  CHECK(rig.worker->request_states().size() == 3);
  CHECK(rig.worker->flights().size() == 0);
  CHECK(rig.collapsed() == 2);
}

TEST_CASE("flight: the last waiter to leave aborts the upstream request") {
  Rig rig;
  auto a = rig.client();
  auto b = rig.client();
  a->send(get("a"));
  b->send(get("b"));
  REQUIRE(rig.ups.size() == 1);
  Upstream up = rig.ups[0];
  up.peer->answer_connect(0);
  a->send_eof();  // gone before the answer started
  MemoryStream::settle();
  CHECK_FALSE(up.peer->closed);
  b->fail(UV_ECONNRESET);
  MemoryStream::settle();
  CHECK(up.peer->closed);
  CHECK(rig.stats(up.backend()).sum(&BackendShard::client_aborts) == 1);
  CHECK(rig.worker->flights().size() == 0);
  CHECK(rig.worker->request_states().size() == 2);
}

TEST_CASE("flight: a failure before the head fails over per waiter, the backend excluded") {
  Rig rig(3);
  std::vector<std::shared_ptr<MemoryPeer>> clients;
  for (int i = 0; i < 3; ++i) {  // one user: one pin, so one backend for all
    clients.push_back(rig.client());
    clients.back()->send(get("same"));
  }
  REQUIRE(rig.ups.size() == 1);
  std::string dead = rig.ups[0].backend();
  rig.ups[0].peer->answer_connect(UV_ECONNREFUSED);
  // The leader's engine fails over, and each follower sends its own request.
  REQUIRE(rig.ups.size() == 4);
  for (size_t i = 1; i < rig.ups.size(); ++i) {
    Upstream& u = rig.ups[i];
    CHECK(u.backend() != dead);
    u.peer->answer_connect(0);
    CHECK(u.peer->take().rfind("GET /matches/addr1?unspent", 0) == 0);
    u.peer->send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  }
  for (auto& c : clients) CHECK(parse_response(c->take()).body == "ok");
  CHECK(rig.collapsed() == 0);
  CHECK(rig.worker->flights().size() == 0);
}

TEST_CASE("flight: a chunked answer is re-framed by each waiter") {
  Rig rig;
  std::vector<std::shared_ptr<MemoryPeer>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(rig.client());
    clients.back()->send(get("u" + std::to_string(i)));
  }
  REQUIRE(rig.ups.size() == 1);
  Upstream up = rig.ups[0];
  up.peer->answer_connect(0);
  up.peer->send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
  up.peer->send("a;ext=1\r\n0123456789\r\n");
  up.peer->send("0\r\n\r\n");
  for (auto& c : clients) {
    std::string bytes = c->take();
    Parsed p = parse_response(bytes);
    CHECK(p.status == 200);
    CHECK(p.chunked);
    CHECK(p.body == "abc0123456789");
    CHECK(bytes.find("ext=1") == std::string::npos);  // our own framing, not the backend's
  }
  CHECK(rig.collapsed() == 2);
}

TEST_CASE("flight: a slow waiter is detached within the window and resumed on a match") {
  Rig rig;
  const size_t window = rig.worker->max_pending();
  const size_t body_len = window * 3;
  std::string body(body_len, 'x');
  for (size_t i = 0; i < body_len; ++i) body[i] = static_cast<char>('a' + i % 26);
  auto fast = rig.client();
  auto slow = rig.client();
  fast->send(get("f"));
  slow->send(get("s"));
  REQUIRE(rig.ups.size() == 1);
  Upstream up = rig.ups[0];
  up.peer->answer_connect(0);
  slow->stalled = true;
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body_len) +
                           "\r\nX-Most-Recent-Checkpoint: 42\r\nETag: \"e1\"\r\n\r\n";
  up.peer->send(head);
  size_t peak = 0;
  for (size_t off = 0; off < body_len; off += 4096) {
    up.peer->send(body.substr(off, 4096));
    for (Flight* f : rig.worker->flights().all()) peak = std::max(peak, f->held_peak());
  }
  CHECK(peak <= window);
  Parsed pf = parse_response(fast->take());
  CHECK(pf.status == 200);
  CHECK((pf.body == body));
  // The slow one was detached and sent its own request to the same backend.
  REQUIRE(rig.ups.size() == 2);
  Upstream own = rig.ups[1];
  CHECK(own.backend() == up.backend());
  own.peer->answer_connect(0);
  CHECK(own.peer->take().rfind("GET /matches/addr1?unspent", 0) == 0);
  own.peer->send(head + body);
  slow->release();
  Parsed ps = parse_response(slow->take());
  CHECK(ps.status == 200);
  CHECK((ps.body == body));
  CHECK(rig.cache().sum(&CacheShard::detached_resumed) == 1);
  CHECK(rig.cache().sum(&CacheShard::detached_cut) == 0);
}

TEST_CASE("flight: a detached waiter whose own answer differs is cut") {
  Rig rig;
  const size_t body_len = rig.worker->max_pending() * 3;
  std::string body(body_len, 'y');
  auto fast = rig.client();
  auto slow = rig.client();
  fast->send(get("f"));
  slow->send(get("s"));
  Upstream up = rig.ups.at(0);
  up.peer->answer_connect(0);
  slow->stalled = true;
  up.peer->send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body_len) +
                "\r\nX-Most-Recent-Checkpoint: 42\r\n\r\n");
  for (size_t off = 0; off < body_len; off += 4096) up.peer->send(body.substr(off, 4096));
  REQUIRE(rig.ups.size() == 2);
  Upstream own = rig.ups[1];
  own.peer->answer_connect(0);
  own.peer->send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body_len) +
                 "\r\nX-Most-Recent-Checkpoint: 43\r\n\r\n");
  MemoryStream::settle();
  CHECK(slow->closed);
  CHECK(rig.cache().sum(&CacheShard::detached_cut) == 1);
  CHECK((parse_response(fast->take()).body == body));
}

TEST_CASE("flight: requests with Authorization, Cookie or Range are not collapsed") {
  for (const char* extra :
       {"Authorization: Bearer t\r\n", "Cookie: a=b\r\n", "Range: bytes=0-1\r\n"}) {
    CAPTURE(extra);
    Rig rig;
    auto a = rig.client();
    auto b = rig.client();
    a->send(get("a", extra));
    b->send(get("b", extra));
    CHECK(rig.ups.size() == 2);
    CHECK(rig.worker->flights().size() == 0);
  }
}

TEST_CASE("flight: not collapsed with collapse off, without a cache, or on different paths") {
  {
    Rig rig(1, true, false);
    rig.client()->send(get("a"));
    rig.client()->send(get("b"));
    CHECK(rig.ups.size() == 2);
  }
  {
    Rig rig(1, false);
    rig.client()->send(get("a"));
    rig.client()->send(get("b"));
    CHECK(rig.ups.size() == 2);
  }
  {
    Rig rig;
    rig.client()->send(get("a"));
    rig.client()->send(get("b", "", "/matches/addr2?unspent"));
    rig.client()->send(get("c", "Accept: text/plain\r\n"));
    CHECK(rig.ups.size() == 3);
  }
}

TEST_CASE("flight: the leader gone, a failover sends each follower solo and frees the engine") {
  Rig rig(3);
  auto leader = rig.client();
  leader->send(get("same"));
  std::vector<std::shared_ptr<MemoryPeer>> followers = {rig.client(), rig.client()};
  for (auto& f : followers) f->send(get("same"));
  REQUIRE(rig.ups.size() == 1);
  leader->fail(UV_ECONNRESET);  // before the head: the flight adopts the engine
  MemoryStream::settle();
  CHECK(rig.worker->request_states().size() == 0);
  std::string dead = rig.ups[0].backend();
  rig.ups[0].peer->answer_connect(UV_ECONNREFUSED);
  // Nobody is left for the engine: it stops; each follower sends its own request.
  REQUIRE(rig.ups.size() == 3);
  CHECK(rig.worker->request_states().size() == 1);  // the adopted state, given back once
  for (size_t i = 1; i < rig.ups.size(); ++i) {
    CHECK(rig.ups[i].backend() != dead);
    rig.ups[i].peer->answer_connect(0);
    rig.ups[i].peer->send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  }
  for (auto& f : followers) CHECK(parse_response(f->take()).body == "ok");
  CHECK(rig.worker->request_states().size() == 3);
  CHECK(rig.worker->flights().size() == 0);
}

TEST_CASE("flight: a forwarded 503 reaches every pinned waiter; none is retried") {
  Rig rig(3);
  auto first = rig.client();
  first->send(get("pinned"));
  REQUIRE(rig.ups.size() == 1);
  Upstream home = rig.ups[0];
  home.peer->answer_connect(0);
  home.peer->take();
  home.peer->send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  first->take();
  // The same user twice at once: a leader (on the pooled connection) and a follower, both
  // pinned there: a pinned user's 503 is forwarded, to each of them.
  auto second = rig.client();
  first->send(get("pinned"));
  second->send(get("pinned"));
  CHECK(rig.ups.size() == 1);
  CHECK(count(home.peer->take(), "GET /matches") == 1);
  home.peer->send("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy");
  CHECK(first->take().rfind("HTTP/1.1 503", 0) == 0);
  CHECK(second->take().rfind("HTTP/1.1 503", 0) == 0);
  CHECK(rig.ups.size() == 1);
  CHECK(rig.collapsed() == 1);
}

TEST_CASE("flight: the stop deadline aborts a flight and answers its waiters") {
  Rig rig;
  auto a = rig.client();
  auto b = rig.client();
  a->send(get("a"));
  b->send(get("b"));
  REQUIRE(rig.worker->flights().size() == 1);
  rig.ups[0].peer->answer_connect(0);
  rig.worker->stop(0);
  for (int i = 0; i < 10 && rig.worker->flights().size() != 0; ++i) {
    uv_run(rig.worker->loop(), UV_RUN_NOWAIT);
    MemoryStream::settle();
  }
  CHECK(rig.worker->flights().size() == 0);
  CHECK(rig.ups[0].peer->closed);
  CHECK(a->closed);
  CHECK(b->closed);
}

TEST_CASE("flight: per waiter: a new user's 503 is retried elsewhere, a pinned one's forwarded") {
  Rig rig(3);
  auto old_user = rig.client();
  old_user->send(get("old"));
  REQUIRE(rig.ups.size() == 1);
  Upstream home = rig.ups[0];
  home.peer->answer_connect(0);
  home.peer->take();
  home.peer->send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  old_user->take();
  // While the others are down a new user can only be placed where "old" is pinned.
  std::vector<std::string> others;
  for (const char* n : {"k1", "k2", "k3"})
    if (n != home.backend()) others.push_back(n);
  for (auto& n : others) rig.stats(n).state.store(lb::BackendState::down);
  auto new_user = rig.client();
  old_user->send(get("old"));  // leads, on the pooled connection
  new_user->send(get("new"));  // follows: same backend
  CHECK(rig.ups.size() == 1);
  for (auto& n : others) rig.stats(n).state.store(lb::BackendState::up);
  home.peer->send("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy");
  CHECK(old_user->take().rfind("HTTP/1.1 503", 0) == 0);
  // The new user goes its own way, the backend that answered 503 excluded.
  REQUIRE(rig.ups.size() == 2);
  Upstream elsewhere = rig.ups[1];
  CHECK(elsewhere.backend() != home.backend());
  elsewhere.peer->answer_connect(0);
  elsewhere.peer->send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  Parsed p = parse_response(new_user->take());
  CHECK(p.status == 200);
  CHECK(p.body == "ok");
  CHECK(rig.collapsed() == 0);
}

TEST_CASE("flight: a follower whose last slot is past the answer's checkpoint goes solo") {
  Rig rig(3);
  auto ahead = rig.client();
  ahead->send(get("ahead"));
  Upstream home = rig.ups.at(0);
  home.peer->answer_connect(0);
  home.peer->take();
  home.peer->send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Most-Recent-Checkpoint: 90\r\n\r\nok");
  ahead->take();
  std::vector<std::string> others;
  for (const char* n : {"k1", "k2", "k3"})
    if (n != home.backend()) others.push_back(n);
  for (auto& n : others) rig.stats(n).state.store(lb::BackendState::down);
  auto leader = rig.client();
  leader->send(get("fresh"));  // leads on the pooled connection
  ahead->send(get("ahead"));   // follows; its last slot is 90
  CHECK(rig.ups.size() == 1);
  for (auto& n : others) {
    rig.stats(n).state.store(lb::BackendState::up);
    rig.stats(n).raise_tip(100);  // at or past the user's slot
  }
  home.peer->take();
  home.peer->send(
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Most-Recent-Checkpoint: 80\r\n\r\nold");
  CHECK(parse_response(leader->take()).body == "old");  // the leader has no slot yet
  REQUIRE(rig.ups.size() == 2);
  Upstream forward = rig.ups[1];
  CHECK(forward.backend() != home.backend());
  forward.peer->answer_connect(0);
  forward.peer->send(
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Most-Recent-Checkpoint: 95\r\n\r\nnew");
  CHECK(parse_response(ahead->take()).body == "new");
}

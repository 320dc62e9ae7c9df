// Stream flights (lb/net/flight.h, issue 16): the faults review found, each a case that
// failed before its fix. The rig is test_flight.cpp's: in-memory streams, the test plays
// every client and backend and runs the real ClientConn, Flight and Exchange.
#include "tests/lb/net/flight_rig.h"

// Review faults of issue 16's stream flights, each a case that failed before its fix.

TEST_CASE("flight faults: a slow leader leaving while upstream is paused resumes it") {
  Rig rig;
  const size_t body_len = rig.worker->max_pending() * 4;
  std::string body(body_len, 'x');
  for (size_t i = 0; i < body_len; ++i) body[i] = static_cast<char>('a' + i % 26);
  auto leader = rig.client();
  auto follower = rig.client();
  leader->send(get("l"));
  follower->send(get("f"));
  REQUIRE(rig.ups.size() == 1);
  Upstream up = rig.ups[0];
  up.peer->answer_connect(0);
  leader->stalled = true;  // the leader is never detached: upstream pauses for it
  up.peer->send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body_len) + "\r\n\r\n");
  for (size_t off = 0; off < body_len; off += 4096) up.peer->send(body.substr(off, 4096));
  REQUIRE(rig.worker->flights().size() == 1);
  CHECK(rig.worker->flights().all()[0]->held() > 0);  // the leader holds the window back
  leader->fail(UV_ECONNRESET);                        // mid-body
  MemoryStream::settle();
  Parsed p = parse_response(follower->take());
  CHECK(p.status == 200);
  CHECK((p.body == body));
  CHECK(rig.worker->flights().size() == 0);
  CHECK(rig.worker->request_states().size() == 2);
}

namespace {

// The pool's backends other than `home`, marked down (so a new user is placed on `home`).
std::vector<std::string> down_others(Rig& rig, const std::string& home) {
  std::vector<std::string> others;
  for (const char* n : {"k1", "k2", "k3"})
    if (n != home) others.push_back(n);
  for (auto& n : others) rig.stats(n).state.store(lb::BackendState::down);
  return others;
}

}  // namespace

TEST_CASE("flight faults: the leader's 503 retry leaves a pinned follower pinned (it gets 503)") {
  Rig rig(3);
  auto pinned = rig.client();
  pinned->send(get("old"));
  REQUIRE(rig.ups.size() == 1);
  Upstream home = rig.ups[0];
  home.peer->answer_connect(0);
  home.peer->take();
  home.peer->send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  pinned->take();
  std::vector<std::string> others = down_others(rig, home.backend());
  auto fresh = rig.client();
  fresh->send(get("new"));   // leads, on the pooled connection
  pinned->send(get("old"));  // follows
  CHECK(rig.ups.size() == 1);
  for (auto& n : others) rig.stats(n).state.store(lb::BackendState::up);
  home.peer->send("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy");
  // The pinned follower would have had its own 503 forwarded: it gets it, and stays.
  CHECK(pinned->take().rfind("HTTP/1.1 503", 0) == 0);
  // Only the leader (a new user) retries elsewhere.
  REQUIRE(rig.ups.size() == 2);
  CHECK(rig.ups[1].backend() != home.backend());
  rig.ups[1].peer->answer_connect(0);
  rig.ups[1].peer->send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  CHECK(parse_response(fresh->take()).body == "ok");
  // Still pinned at home: its next request goes there.
  pinned->send(get("old"));
  if (rig.ups.size() == 2) {  // on the pooled connection home
    CHECK(home.peer->take().find("GET /matches") != std::string::npos);
  } else {
    CHECK(rig.ups.back().backend() == home.backend());
  }
  CHECK(rig.worker->flights().size() <= 1);
}

TEST_CASE("flight faults: the leader's regression resend moves only followers past the answer") {
  Rig rig(3);
  auto ahead = rig.client();
  ahead->send(get("ahead"));
  Upstream home = rig.ups.at(0);
  home.peer->answer_connect(0);
  home.peer->take();
  home.peer->send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Most-Recent-Checkpoint: 90\r\n\r\nok");
  ahead->take();
  std::vector<std::string> others = down_others(rig, home.backend());
  ahead->send(get("ahead"));  // leads on the pooled connection; its last slot is 90
  auto fresh = rig.client();
  fresh->send(get("fresh"));  // follows; no slot yet
  CHECK(rig.ups.size() == 1);
  for (auto& n : others) {
    rig.stats(n).state.store(lb::BackendState::up);
    rig.stats(n).raise_tip(100);
  }
  home.peer->take();
  home.peer->send(
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Most-Recent-Checkpoint: 80\r\n\r\nold");
  // The leader resends past its slot; the follower, whom 80 suits, resends to the same
  // backend on its own (the leader's connection to it was closed).
  REQUIRE(rig.ups.size() == 3);
  int at_home = 0;
  for (size_t i = 1; i < 3; ++i) {
    Upstream& u = rig.ups[i];
    bool is_home = u.backend() == home.backend();
    at_home += is_home;
    u.peer->answer_connect(0);
    u.peer->send(
        is_home
            ? "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Most-Recent-Checkpoint: 80\r\n\r\nold"
            : "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Most-Recent-Checkpoint: 95\r\n\r\nnew");
  }
  CHECK(at_home == 1);
  CHECK(parse_response(ahead->take()).body == "new");
  CHECK(parse_response(fresh->take()).body == "old");
  CHECK(rig.worker->flights().size() == 0);
}

TEST_CASE("flight faults: flights end in any order; the table keeps exactly the live ones") {
  Rig rig;
  const char* paths[] = {"/matches/addr1?unspent", "/matches/addr2?unspent",
                         "/matches/addr3?unspent", "/matches/addr4?unspent"};
  std::vector<std::shared_ptr<MemoryPeer>> clients;
  for (const char* p : paths)
    for (int i = 0; i < 2; ++i) {
      clients.push_back(rig.client());
      clients.back()->send(get("u" + std::to_string(i), "", p));
    }
  REQUIRE(rig.ups.size() == 4);
  REQUIRE(rig.worker->flights().size() == 4);
  for (Upstream& u : rig.ups) u.peer->answer_connect(0);
  size_t left = 4;
  for (size_t k : {1u, 3u, 0u, 2u}) {  // the middle, the last, the first
    rig.ups[k].peer->send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    for (int i = 0; i < 2; ++i) CHECK(parse_response(clients[k * 2 + i]->take()).body == "ok");
    // Every flight still listed is live and distinct; the one that ended is gone.
    const std::vector<Flight*>& all = rig.worker->flights().all();
    CHECK(all.size() == --left);
    for (size_t i = 0; i < all.size(); ++i) {
      CHECK(all[i]->waiters() == 2);
      for (size_t j = i + 1; j < all.size(); ++j) CHECK(all[i] != all[j]);
    }
  }
  CHECK(rig.worker->flights().size() == 0);
  CHECK(rig.collapsed() == 4);
}

TEST_CASE("flight faults: waiters reading at the upstream's pace stay; only a stalled one goes") {
  Rig rig;
  const size_t step = 4096;
  const size_t body_len = rig.worker->max_pending() * 4;
  std::string body(body_len, 'x');
  for (size_t i = 0; i < body_len; ++i) body[i] = static_cast<char>('a' + i % 26);
  auto leader = rig.client();  // takes everything at once: the fastest
  leader->send(get("l"));
  std::vector<std::shared_ptr<MemoryPeer>> paced;
  for (int i = 0; i < 3; ++i) {
    paced.push_back(rig.client());
    paced.back()->send(get("p" + std::to_string(i)));
  }
  auto stalled = rig.client();
  stalled->send(get("s"));
  REQUIRE(rig.ups.size() == 1);
  Upstream up = rig.ups[0];
  up.peer->answer_connect(0);
  for (auto& p : paced) p->stalled = true;
  stalled->stalled = true;
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body_len) + "\r\nETag: \"e1\"\r\n\r\n";
  up.peer->send(head);
  // The first window fills every queue; then each round the backend sends a step and each
  // paced reader reads a step: their queues stay near full, never empty (no on_drained),
  // yet they keep up with the leader.
  for (size_t off = 0; off < body_len; off += step) {
    up.peer->send(body.substr(off, step));
    if (off >= rig.worker->max_pending())
      for (auto& p : paced) p->read_some(step);
  }
  for (auto& p : paced) p->release();
  CHECK(rig.ups.size() == 2);  // the stalled one's own request, and no other
  for (auto& p : paced) {
    Parsed r = parse_response(p->take());
    CHECK(r.status == 200);
    CHECK((r.body == body));
  }
  CHECK((parse_response(leader->take()).body == body));
  CHECK(rig.collapsed() == 3);  // the paced followers were served by the flight
  if (rig.ups.size() == 2) {
    rig.ups[1].peer->answer_connect(0);
    rig.ups[1].peer->send(head + body);
    stalled->release();
    CHECK((parse_response(stalled->take()).body == body));
    CHECK(rig.cache().sum(&CacheShard::detached_resumed) == 1);
  }
}

TEST_CASE("flight faults: a follower that stops reading holds the others at most kStallMs") {
  Rig rig;
  const size_t body_len = rig.worker->max_pending() * 4;
  std::string body(body_len, 'x');
  for (size_t i = 0; i < body_len; ++i) body[i] = static_cast<char>('a' + i % 26);
  auto leader = rig.client();
  leader->send(get("l"));
  auto quitter = rig.client();
  quitter->send(get("q"));
  REQUIRE(rig.ups.size() == 1);
  Upstream up = rig.ups[0];
  up.peer->answer_connect(0);
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body_len) + "\r\nETag: \"e1\"\r\n\r\n";
  up.peer->send(head);
  // The quitter reads, but at half the backend's pace: it keeps taking bytes, so the
  // byte rule never detaches it, and the window grows until upstream is held for it.
  quitter->stalled = true;
  const size_t step = 4096;
  for (size_t off = 0; off < body_len; off += step) {
    up.peer->send(body.substr(off, step));
    if (off >= rig.worker->max_pending()) quitter->read_some(step / 2);
  }
  REQUIRE(rig.worker->flights().size() == 1);
  Flight& f = *rig.worker->flights().all()[0];
  CHECK(f.held() > 0);  // upstream is held for the quitter: it took bytes lately
  CHECK(rig.ups.size() == 1);
  // Time passes: the hold timer first gives it what its queue has room for (it read a
  // little), then, held again and full, it is detached and the leader's answer goes on.
  // Before the timer, the others waited for it for as long as it kept its connection.
  const uint64_t until = uv_now(rig.worker->loop()) + 3 * Flight::kStallMs + 400;
  while (uv_now(rig.worker->loop()) < until && rig.ups.size() == 1) {
    uv_run(rig.worker->loop(), UV_RUN_ONCE);
    MemoryStream::settle();
  }
  CHECK(rig.ups.size() == 2);  // the quitter's own request
  Parsed p = parse_response(leader->take());
  CHECK(p.status == 200);
  CHECK((p.body == body));
  if (rig.ups.size() == 2) {
    rig.ups[1].peer->answer_connect(0);
    rig.ups[1].peer->send(head + body);
    quitter->release();
    CHECK((parse_response(quitter->take()).body == body));
    CHECK(rig.cache().sum(&CacheShard::detached_resumed) == 1);
  }
}

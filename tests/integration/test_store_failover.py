"""Issue 15, shared pins when things fail (plan-15 section 5). Two corral instances with
different weights (so their own choices differ) share pins through a real redis-server:
- a backend killed: its users move to one new backend, the same whichever instance they
  hit next (the first move CASes the stored pin and is published; the other adopts it);
- Redis killed mid-run: not one request fails, /status.store.state is down on both, new
  users are placed locally (and disagree); Redis restarted empty: within a few
  sync_intervals every user is on one backend on both instances again;
- Redis SIGSTOPped (TCP up, silent): requests still succeed, and a new user's request
  waits at most about sticky.store.timeout.
Skipped without redis-server."""
import json
import re
import statistics
import threading
import time
import unittest

import harness
import store_rig
from store_rig import Client, Log, ask_all, config, drive, store

WEIGHTS_A = {"kupo-1": 1, "kupo-2": 1, "kupo-3": 1}
WEIGHTS_B = {"kupo-1": 4, "kupo-2": 1, "kupo-3": 2}
TIMEOUT_S = 0.05  # sticky.store.timeout of the pause test
SLACK_S = 0.06    # a busy 2-core machine: Python client, two corrals, three sims, Redis


@harness.needs_redis
class StoreFailover(unittest.TestCase):
    def setUp(self):
        self.fleet = harness.Fleet(3)
        self.redis = self.a = self.b = None
        try:
            self.redis = harness.RedisServer()
        except BaseException:
            self.fleet.stop()
            raise

    def tearDown(self):
        store_rig.stop_all(self.a, self.b, self.fleet, self.redis)

    def start(self, timeout="1s", sync_interval="500ms", ttl="1h"):
        self.a = harness.Corral(config(self.fleet, self.redis, WEIGHTS_A, timeout=timeout,
                                       sync_interval=sync_interval, ttl=ttl, access_log=True))
        self.b = harness.Corral(config(self.fleet, self.redis, WEIGHTS_B, timeout=timeout,
                                       sync_interval=sync_interval, ttl=ttl, access_log=True))
        store_rig.wait_state([self.a, self.b], "up")
        return [self.a, self.b]

    def settled(self, corrals, users):
        """Drives users onto both instances: user -> the one backend each sees."""
        log = Log()
        drive(corrals, users, 1, log)
        self.assertEqual(log.failures, [])
        self.assertEqual(log.split(users), {})
        return {u: next(iter(log.backends(u))) for u in users}

    def test_killed_backend_users_move_together(self):
        corrals = self.start()
        users = ["k%d" % i for i in range(600)]
        home = self.settled(corrals, users)
        counts = {n: sum(1 for b in home.values() if b == n) for n in self.fleet.names()}
        victim = max(counts, key=counts.get)
        moving = [u for u in users if home[u] == victim]
        staying = [u for u in users if home[u] != victim]
        self.assertGreater(len(moving), 50)

        self.fleet.control(victim, dead=True)
        store_rig.wait_backend_state(corrals, victim, "down")
        # Half of the moving users come back through A first, half through B; then a few
        # more requests alternating. Each moves once, to the same backend on both.
        seen = {u: [] for u in moving}
        failures = []
        lock = threading.Lock()

        def run(mine):
            clients = [Client(c.port) for c in corrals]
            try:
                for n, u in enumerate(mine):
                    for r in range(4):
                        idx = (n + r) % 2
                        status, backend, _ = clients[idx].ask(u)
                        with lock:
                            if status == 200:
                                seen[u].append(backend)
                            else:
                                failures.append((u, idx, status, backend))
            finally:
                for c in clients:
                    c.close()

        ts = [threading.Thread(target=run, args=(moving[t::6],)) for t in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(failures, [])
        split = {u: b for u, b in seen.items() if len(set(b)) != 1}
        self.assertEqual(split, {}, "moved users that saw two backends")
        self.assertNotIn(victim, {b[0] for b in seen.values()})
        # Their new homes: the instances' own choices would differ, the shared one spreads.
        new_home = {b[0] for b in seen.values()}
        self.assertTrue(new_home <= set(self.fleet.names()) - {victim}, new_home)

        # Users of the other backends did not move, on either instance.
        again = ask_all(corrals, staying)
        moved = {u: b for u, b in again.items() if b != [home[u], home[u]]}
        self.assertEqual(moved, {})

        # Redis: every moving user's pin names its new backend with reason "down".
        pins = store_rig.stored_pins(self.redis)
        self.assertEqual(len(pins), len(users))
        down = [b for b, _, reason in pins.values() if reason == "down"]
        self.assertEqual(len(down), len(moving))
        self.assertNotIn(victim, {b for b, _, _ in pins.values()})
        sa, sb = store(self.a), store(self.b)
        self.assertEqual(sa["cas_won"] + sb["cas_won"], len(moving))  # one move per user
        self.assertGreater(sa["invalidations_out"] + sb["invalidations_out"], 0)
        # The other instance learned of each move: the published invalidation dropped its
        # copy (then a read-through), or it tried its own move and lost the CAS.
        self.assertGreaterEqual(sa["invalidations_in"] + sb["invalidations_in"] +
                                sa["cas_lost"] + sb["cas_lost"], len(moving))

        # The move's reason travels with the pin: GET /sessions/<hash> shows it on both
        # instances, whichever one made the move.
        for u in moving[:6]:
            for c in corrals:
                self.assertEqual(self.session_of(c, u), {"backend": seen[u][0],
                                                         "last_move": "down"}, (u, c.port))

    def session_of(self, c, user):
        """One request of `user` through c, then c's GET /sessions/<hash> for it (the hash
        from c's access line; nothing else is sent meanwhile)."""
        lines = lambda: re.findall(r"msg=request .*?\bsession=(\w+)", c.proc.log())
        before = len(lines())
        status, _, _ = Client(c.port).ask(user)
        self.assertEqual(status, 200)
        after = harness.wait_for(lambda: (lambda ls: ls if len(ls) > before else None)(lines()),
                                 "the access line of %s" % user, 5)
        code, _, body = harness.get(c.admin_port, "/sessions/" + after[-1])
        self.assertEqual(code, 200, body)
        s = json.loads(body)
        return {"backend": s["backend"], "last_move": s["last_move"]}

    def test_redis_killed_then_back_converges(self):
        # ttl 30s: a key's expiry is refreshed (and a missing key re-seeded) at most every
        # max(ttl/10, 1s) = 3 s per key, and no pin of this test idles that long.
        corrals = self.start(timeout="200ms", sync_interval="500ms", ttl="30s")
        before = ["p%d" % i for i in range(300)]
        home = self.settled(corrals, before)

        # Known users keep sending, alternating instances, the whole time.
        stop = threading.Event()
        background = Log()

        def keep_going():
            clients = [Client(c.port) for c in corrals]
            try:
                n = 0
                while not stop.is_set():
                    u = before[n % len(before)]
                    idx = n % 2
                    background.add(u, idx, clients[idx].ask(u))
                    n += 1
            finally:
                for c in clients:
                    c.close()

        bg = [threading.Thread(target=keep_going) for _ in range(2)]
        for t in bg:
            t.start()
        try:
            time.sleep(0.5)
            self.redis.kill()
            store_rig.wait_state(corrals, "down", timeout=10)
            # New users during the outage: each instance places them on its own.
            during = ["o%d" % i for i in range(300)]
            outage = Log()
            drive(corrals, during, 3, outage)
            self.assertEqual(outage.failures, [])
            disagreed = [u for u in during
                         if outage.backends(u, 0) != outage.backends(u, 1)]
            self.assertGreater(len(disagreed), 0, "the instances agreed on their own")
            for c in corrals:
                st = store(c)
                self.assertNotEqual(st["state"], "up")  # down, or a refused reconnect
                self.assertGreater(st["pending"], 0)
                self.assertEqual(st["pending_dropped"], 0)
                self.assertEqual(store_rig.metric(c.metrics(), "corral_store_up"), 0)

            self.redis.restart()  # empty: nothing was persisted
            store_rig.wait_state(corrals, "up", timeout=20)

            def converged():
                got = ask_all(corrals, during + before)
                bad = {u: b for u, b in got.items() if b[0] is None or b[0] != b[1]}
                return not bad
            harness.wait_for(converged, "pins to converge after Redis came back", 15)
            # Redis has every user again: the outage's users flushed, the known users
            # (still sending) re-seeded by their next refresh (pin_touch on a missing key).
            harness.wait_for(lambda: len(store_rig.stored_pins(self.redis)) == 600,
                             "600 pins in Redis", 15)
        finally:
            stop.set()
            for t in bg:
                t.join()
        self.assertEqual(background.failures, [])
        # The users placed before the outage never moved: the local tables served them.
        self.assertEqual(background.split(before), {})
        self.assertEqual({u: next(iter(background.backends(u))) for u in before
                          if background.backends(u)},
                         {u: home[u] for u in before if background.backends(u)})
        final = ask_all(corrals, during)
        for u in disagreed:  # one backend now, one of the two it had
            self.assertEqual(final[u][0], final[u][1], u)
            self.assertIn(final[u][0], outage.backends(u), u)
        for c in corrals:
            harness.wait_for(lambda: store(c)["pending"] == 0, "the queue flushed", 10)
            self.assertEqual(store(c)["pending_dropped"], 0)

    def test_redis_paused_requests_wait_at_most_the_timeout(self):
        corrals = self.start(timeout="50ms", sync_interval="500ms")
        self.settled(corrals, ["w%d" % i for i in range(20)])
        self.redis.pause()
        try:
            latencies = []
            failures = []
            clients = [Client(c.port) for c in corrals]
            deadline = time.monotonic() + 3
            n = 0
            while time.monotonic() < deadline:
                status, backend, seconds = clients[n % 2].ask("new%d" % n)
                if status == 200:
                    latencies.append(seconds)
                else:
                    failures.append((n, status, backend))
                n += 1
            for c in clients:
                c.close()
            self.assertEqual(failures, [])
            self.assertGreater(len(latencies), 20)
            # A new user costs one claim: at most the timeout, then the local choice.
            self.assertLess(statistics.median(latencies), TIMEOUT_S + SLACK_S, latencies)
            self.assertLess(max(latencies), 1.0, latencies)
            for c in corrals:
                self.assertGreater(store(c)["timeouts"], 0)
            # Stuck detection (no answer for max(4 x timeout, 500 ms)) takes the link down.
            harness.wait_for(lambda: all(store(c)["state"] != "up" for c in corrals),
                             "the store to leave state up while Redis is stopped", 5)
        finally:
            self.redis.resume()
        store_rig.wait_state(corrals, "up", timeout=20)
        log = Log()
        drive(corrals, ["after%d" % i for i in range(50)], 1, log)
        self.assertEqual(log.failures, [])
        self.assertEqual(log.split(["after%d" % i for i in range(50)]), {})


if __name__ == "__main__":
    harness.main()

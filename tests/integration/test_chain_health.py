"""Chain-aware health (issue 13) against simulated Kupo and Ogmios: a fork at the same
height is marked down with reason fork within three probe intervals (and heals), a pool
split three ways marks nobody, a read-only replica whose checkpoint freezes while its
/health stays 200 drains once max_lag_slots behind and gets evict=lag once
move_lag_slots behind, an Ogmios answering 202 while level with the pool stays up, and an
Ogmios whose tip block differs at the same slot is marked fork."""
import re
import time
import unittest

import harness

INTERVAL = 0.5  # seconds; the pool's health.interval below


def config(fleet, kind, pool_health=""):
    return ("admin: {listen: 127.0.0.1:0}\n"
            "listeners:\n  - name: public\n    listen: 127.0.0.1:0\n    routes:\n"
            "      - {prefix: /, pool: p}\n"
            "sticky:\n  keys: [{from: header, name: X-Session-Key}]\n"
            "pools:\n  p:\n    kind: %s\n    backends:\n" % kind +
            harness.backends_yaml(fleet) +
            "    health: {interval: 500ms, timeout: 300ms%s}\n" % pool_health)


def backends(corral):
    return {b["name"]: b for b in corral.status()["pools"][0]["backends"]}


def fork_checks(corral, result):
    m = re.search(r'corral_fork_checks_total\{pool="p",result="%s"\} (\d+)' % result,
                  corral.metrics())
    return int(m.group(1)) if m else None


def backend_for(corral, user, method="GET", body=None):
    """The backend that answers `user` (X-Backend), asserting a 200."""
    status, headers, text = harness.get(corral.port, "/" if body else "/matches",
                                        {"X-Session-Key": user}, method=method, body=body)
    assert status == 200, (status, text)
    return headers["x-backend"]


def remaps(corral, reason):
    m = re.search(r'corral_remaps_total\{pool="p",reason="%s"\} (\d+)' % reason,
                  corral.metrics())
    return int(m.group(1)) if m else 0


class KupoForks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A frozen chain: every instance is at the same height, so only the hashes differ.
        cls.fleet = harness.Fleet(3, extra=("--tip", "100000000", "--freeze-tip"))
        try:
            cls.corral = harness.Corral(config(cls.fleet, "kupo"))
        except BaseException:
            cls.fleet.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.corral.stop()
        cls.fleet.stop()

    def setUp(self):
        harness.wait_for(lambda: (fork_checks(self.corral, "agree") or 0) > 0,
                         "a first agreeing fork check")

    def tearDown(self):
        for n in self.fleet.names():
            self.fleet.control(n, fork_at=None)
        harness.wait_for(lambda: all(b["state"] == "up" for b in backends(self.corral).values()),
                         "every backend up again")

    def test_fork_at_same_height_is_down_with_reason_fork_and_heals(self):
        b = backends(self.corral)
        self.assertEqual({x["state"] for x in b.values()}, {"up"})
        self.assertEqual({x["evict"] for x in b.values()}, {"none"})
        disagree = fork_checks(self.corral, "disagree")
        self.assertEqual(disagree, 0)
        # 100 slots below the tip: the compared checkpoint (60 below) is on the fork.
        self.fleet.control("kupo-3", fork_at=99999900)
        start = time.time()
        harness.wait_for(lambda: backends(self.corral)["kupo-3"]["state"] == "down",
                         "kupo-3 down", timeout=3 * INTERVAL + 0.3)
        took = time.time() - start
        k3 = backends(self.corral)["kupo-3"]
        self.assertEqual(k3["health"]["reason"], "fork", k3)
        self.assertEqual(k3["evict"], "fork")
        self.assertEqual(k3["health"]["probe_state"], "up")  # its own health is fine
        self.assertGreaterEqual(took, 0)
        for n in ("kupo-1", "kupo-2"):
            self.assertEqual(backends(self.corral)[n]["state"], "up")
        self.assertGreaterEqual(fork_checks(self.corral, "disagree"), 2)  # two in a row
        self.assertIsNotNone(self.corral.proc.wait_line(r"backend down.*kupo-3.*fork"))
        # New users go to the majority only.
        for i in range(30):
            status, headers, _ = harness.get(self.corral.port, "/matches",
                                             {"X-Session-Key": "user-%d" % i})
            self.assertEqual(status, 200)
            self.assertNotEqual(headers["x-backend"], "kupo-3")
        # Healed: it agrees again and comes back.
        self.fleet.control("kupo-3", fork_at=None)
        harness.wait_for(lambda: backends(self.corral)["kupo-3"]["state"] == "up",
                         "kupo-3 up after healing", timeout=3 * INTERVAL + 0.3)
        k3 = backends(self.corral)["kupo-3"]
        self.assertEqual(k3["evict"], "none")
        self.assertNotEqual(k3["health"]["reason"], "fork")

    def test_no_majority_marks_nobody(self):
        before = fork_checks(self.corral, "no_majority")
        # Three different chains: no value holds a strict majority.
        self.fleet.control("kupo-2", fork_at=99999900)
        self.fleet.control("kupo-3", fork_at=99999920)
        harness.wait_for(lambda: fork_checks(self.corral, "no_majority") >= before + 3,
                         "three no_majority rounds")
        for name, b in backends(self.corral).items():
            self.assertEqual(b["state"], "up", name)
            self.assertEqual(b["evict"], "none", name)
        self.assertIsNotNone(self.corral.proc.wait_line(r"no strict majority"))


def remaps(corral, reason):
    m = re.search(r'corral_remaps_total\{pool="p",reason="%s"\} (\d+)' % reason,
                  corral.metrics())
    return int(m.group(1)) if m else 0


class KupoMinorityFork(unittest.TestCase):
    """Two of five instances forked at the same slot agree with each other: a 2-of-5
    minority. Both are marked down (fork) and their pinned users move to the majority
    only, while the majority's users never move."""
    USERS = 100
    MAJORITY = {"kupo-1", "kupo-2", "kupo-3"}
    MINORITY = {"kupo-4", "kupo-5"}

    def test_two_of_five_minority_moves_users_to_the_majority(self):
        fleet = harness.Fleet(5, extra=("--tip", "100000000", "--freeze-tip"))
        corral = None
        try:
            corral = harness.Corral(config(fleet, "kupo"))
            harness.wait_for(lambda: (fork_checks(corral, "agree") or 0) > 0,
                             "a first agreeing fork check")

            def ask(user):
                status, headers, _ = harness.get(corral.port, "/matches",
                                                 {"X-Session-Key": "user-%d" % user})
                self.assertEqual(status, 200)
                return headers["x-backend"]

            pinned = {u: ask(u) for u in range(self.USERS)}
            on_minority = {u for u, b in pinned.items() if b in self.MINORITY}
            self.assertTrue(on_minority, pinned)  # ~40 of 100 expected
            self.assertTrue(set(pinned.values()) & self.MAJORITY, pinned)
            remaps_before = remaps(corral, "fork")
            # The compared checkpoint (60 below the tip) is on the same fork for both.
            for n in self.MINORITY:
                fleet.control(n, fork_at=99999900)
            start = time.time()
            marked_at = None
            current = dict(pinned)
            # Keep every user's traffic flowing while the fork is detected and after.
            while True:
                marked = all(backends(corral)[n]["state"] == "down" for n in self.MINORITY)
                if marked and marked_at is None:
                    marked_at = time.time()
                for u in range(self.USERS):
                    b = ask(u)
                    if pinned[u] in self.MAJORITY:
                        self.assertEqual(b, pinned[u], "majority user %d moved" % u)
                    elif marked_at is not None:
                        self.assertIn(b, self.MAJORITY, "minority user %d after marking" % u)
                    else:  # before marking: its own instance or already moved away
                        self.assertTrue(b == pinned[u] or b in self.MAJORITY, (u, b))
                    if current[u] in self.MAJORITY:
                        self.assertIn(b, self.MAJORITY, "user %d back to a minority" % u)
                    current[u] = b
                if marked_at is not None and time.time() - marked_at > 4 * INTERVAL:
                    break
                self.assertLess(time.time() - start, 3 * INTERVAL + 3.0, "not marked")
            self.assertLessEqual(marked_at - start, 3 * INTERVAL + 0.5)
            b = backends(corral)
            for n in self.MINORITY:
                self.assertEqual(b[n]["state"], "down", b[n])
                self.assertEqual(b[n]["health"]["reason"], "fork", b[n])
                self.assertEqual(b[n]["evict"], "fork", b[n])
            for n in self.MAJORITY:
                self.assertEqual(b[n]["state"], "up", b[n])
            moved = {u for u in range(self.USERS) if current[u] != pinned[u]}
            self.assertEqual(moved, on_minority)
            self.assertEqual(remaps(corral, "fork") - remaps_before, len(moved))
        finally:
            if corral:
                corral.stop()
            fleet.stop()


def live_checks(corral, result):
    m = re.search(r'corral_fork_live_checks_total\{pool="p",result="%s"\} (\d+)' % result,
                  corral.metrics())
    return int(m.group(1)) if m else None


class KupoLiveForkEvidence(unittest.TestCase):
    """Live data responses name their checkpoint (X-Most-Recent-Checkpoint) and its header
    hash (ETag); corral compares those of different backends at one slot fork_depth_slots
    below the lowest tip. A rate-limited pool sends no /checkpoints probes (they would
    spend its quota), so there the live evidence alone must find a fork."""

    def test_live_etags_mark_a_fork_in_a_rate_limited_pool(self):
        # A moving chain with a block every slot, so that traffic names a new checkpoint
        # every second on every backend.
        fleet = harness.Fleet(3, extra=("--block-interval", "1"))
        corral = None
        try:
            corral = harness.Corral(config(fleet, "kupo", ", fork_depth_slots: 2").replace(
                "    kind: kupo\n", "    kind: kupo\n    rate_limit: {rps: 1000}\n"))
            stop = []

            def traffic():
                # 30 users over the three backends, until told to stop.
                while not stop:
                    for u in range(30):
                        harness.get(corral.port, "/matches", {"X-Session-Key": "live-%d" % u})
                    time.sleep(0.05)

            import threading
            t = threading.Thread(target=traffic)
            t.start()
            try:
                harness.wait_for(lambda: (live_checks(corral, "agree") or 0) >= 2,
                                 "two agreeing live rounds", timeout=15)
                self.assertEqual(live_checks(corral, "disagree"), 0)
                # From the next slot on, kupo-3's blocks differ from the others'.
                tip = max(b["tip_slot"] for b in backends(corral).values())
                fleet.control("kupo-3", fork_at=tip + 1)
                harness.wait_for(lambda: backends(corral)["kupo-3"]["state"] == "down",
                                 "kupo-3 marked from live responses", timeout=15)
            finally:
                stop.append(True)
                t.join()
            k3 = backends(corral)["kupo-3"]
            self.assertEqual(k3["health"]["reason"], "fork", k3)
            self.assertEqual(k3["evict"], "fork")
            self.assertGreaterEqual(live_checks(corral, "disagree"), 2)  # two in a row
            # No probe round ran: the pool's quota is not spent on /checkpoints.
            self.assertEqual(sum(fork_checks(corral, r) for r in
                                 ("agree", "disagree", "no_majority")), 0)
            for n in ("kupo-1", "kupo-2"):
                self.assertEqual(backends(corral)[n]["state"], "up")
            self.assertIsNotNone(corral.proc.wait_line(r"fork check \(live responses at slot"))
        finally:
            if corral:
                corral.stop()
            fleet.stop()


class ReadOnlyReplica(unittest.TestCase):
    def test_frozen_replica_drains_then_evicts(self):
        # A moving chain, every instance 2500 slots behind the network (202, but level with
        # each other: all up), so the others can later move ahead of a frozen one without
        # anyone's checkpoint going back.
        fleet = harness.Fleet(3, extra=("--lag", "2500"))
        corral = None
        try:
            corral = harness.Corral(config(fleet, "kupo", ", max_lag_slots: 600"))
            harness.wait_for(
                lambda: all(b["state"] == "up" and b["health"]["probes"]["draining"] > 0
                            for b in backends(corral).values()), "first probes, all up")
            pinned = {"old-%d" % u: backend_for(corral, "old-%d" % u) for u in range(30)}
            on_k3 = [u for u, b in pinned.items() if b == "kupo-3"]
            self.assertTrue(on_k3, pinned)
            # kupo-3: a --read-only replica whose writer stalls (/health stays 200); the
            # others catch up 1000 slots.
            fleet.control("kupo-3", read_only_stale=True)
            for n in ("kupo-1", "kupo-2"):
                fleet.control(n, tip_lag_slots=1500)
            harness.wait_for(lambda: backends(corral)["kupo-3"]["state"] == "draining",
                             "kupo-3 draining")
            k3 = backends(corral)["kupo-3"]
            self.assertTrue(k3["health"]["last_probe"].startswith("200"), k3)
            self.assertGreater(k3["health"]["lag_slots"], 600)
            self.assertEqual(k3["evict"], "none")  # below move_lag_slots (1800): users stay
            # Behind by max_lag_slots: no new user goes there; its own users stay.
            new = {backend_for(corral, "new-%d" % u) for u in range(30)}
            self.assertNotIn("kupo-3", new)
            self.assertEqual({backend_for(corral, u) for u in on_k3}, {"kupo-3"})
            # The others reach the network's tip: kupo-3 is past move_lag_slots behind.
            lag_moves = remaps(corral, "lag")
            for n in ("kupo-1", "kupo-2"):
                fleet.control(n, tip_lag_slots=0)
            harness.wait_for(lambda: backends(corral)["kupo-3"]["evict"] == "lag", "evict=lag")
            self.assertGreater(backends(corral)["kupo-3"]["health"]["lag_slots"], 1800)
            self.assertIsNotNone(corral.proc.wait_line(r"pinned users move.*lag"))
            for n in ("kupo-1", "kupo-2"):
                self.assertEqual(backends(corral)[n]["evict"], "none")
            moved = {u: backend_for(corral, u) for u in on_k3}
            self.assertNotIn("kupo-3", moved.values())
            self.assertEqual(remaps(corral, "lag") - lag_moves, len(on_k3))
            self.assertEqual(remaps(corral, "regression"), 0)
            # Users of the other backends never moved.
            for u, b in pinned.items():
                if b != "kupo-3":
                    self.assertEqual(backend_for(corral, u), b)
            # Caught up: no eviction, up again.
            fleet.control("kupo-3", read_only_stale=False, health="synced")
            harness.wait_for(lambda: backends(corral)["kupo-3"]["state"] == "up", "kupo-3 up")
            self.assertEqual(backends(corral)["kupo-3"]["evict"], "none")
        finally:
            if corral:
                corral.stop()
            fleet.stop()


class OgmiosLevel(unittest.TestCase):
    def test_202_level_with_the_pool_stays_up(self):
        fleet = harness.Fleet(2, name="ogmios", extra=("--kind", "ogmios"))
        corral = None
        try:
            corral = harness.Corral(config(fleet, "ogmios"))
            # 120 slots behind the network: Ogmios says 202 (tip older than 60 s), yet it is
            # within max_lag_slots of its pool.
            fleet.control("ogmios-2", tip_lag_slots=120)
            harness.wait_for(
                lambda: backends(corral)["ogmios-2"]["health"]["last_probe"].startswith("202"),
                "a 202 probe")
            time.sleep(6 * INTERVAL)  # long past fall (3) probes
            o2 = backends(corral)["ogmios-2"]
            self.assertTrue(o2["health"]["last_probe"].startswith("202"), o2)
            self.assertEqual(o2["state"], "up", o2)
            self.assertEqual(o2["evict"], "none")
            # It keeps its pinned users and takes new ones (JSON-RPC through corral).
            rpc = '{"jsonrpc":"2.0","method":"queryNetwork/tip","id":1}'
            first = {u: backend_for(corral, "o-%d" % u, "POST", rpc) for u in range(20)}
            self.assertEqual(set(first.values()), {"ogmios-1", "ogmios-2"})
            for u, b in first.items():
                self.assertEqual(backend_for(corral, "o-%d" % u, "POST", rpc), b)
            self.assertEqual(sum(remaps(corral, r) for r in ("down", "lag", "stale")), 0)
            # Far behind the pool, the same 202 drains.
            fleet.control("ogmios-2", tip_lag_slots=2000)
            harness.wait_for(lambda: backends(corral)["ogmios-2"]["state"] == "draining",
                             "ogmios-2 draining")
            self.assertEqual(backends(corral)["ogmios-2"]["evict"], "lag")
        finally:
            if corral:
                corral.stop()
            fleet.stop()

    def test_fork_at_the_tip_is_marked(self):
        fleet = harness.Fleet(3, name="ogmios",
                              extra=("--kind", "ogmios", "--tip", "100000000", "--freeze-tip"))
        corral = None
        try:
            corral = harness.Corral(config(fleet, "ogmios"))
            harness.wait_for(lambda: (fork_checks(corral, "agree") or 0) > 0,
                             "a first agreeing fork check")
            # Same slot and height, another block id.
            fleet.control("ogmios-3", fork_at=100000000 - 40)
            harness.wait_for(lambda: backends(corral)["ogmios-3"]["state"] == "down",
                             "ogmios-3 down", timeout=5)
            o3 = backends(corral)["ogmios-3"]
            self.assertEqual(o3["health"]["reason"], "fork")
            self.assertEqual(o3["evict"], "fork")
            self.assertEqual(backends(corral)["ogmios-1"]["state"], "up")
            fleet.control("ogmios-3", fork_at=None)
            harness.wait_for(lambda: backends(corral)["ogmios-3"]["state"] == "up",
                             "ogmios-3 up after healing")
        finally:
            if corral:
                corral.stop()
            fleet.stop()


if __name__ == "__main__":
    unittest.main()

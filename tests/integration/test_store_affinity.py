"""Issue 15, shared pins: two corral instances in front of three simulated Kupo backends,
pins shared through a real redis-server started by the test (own loopback port, no
persistence). 1,000 users each send their first request to both instances at once, then
alternate between them: every user sees exactly one backend (X-Corral-Backend, the route's
expose_backend), the first writer's choice. The two instances are given different
weights, so their own placements disagree for many users (the control test shows it):
only the store can make them agree. Skipped without redis-server."""
import collections
import re
import unittest

import harness
import store_rig
from store_rig import Log, config, drive, store

USERS = 1000
# Different weights per instance: their local (rendezvous) choices differ for many users.
WEIGHTS_A = {"kupo-1": 1, "kupo-2": 1, "kupo-3": 1}
WEIGHTS_B = {"kupo-1": 4, "kupo-2": 1, "kupo-3": 2}


class StoreAffinity(unittest.TestCase):
    def setUp(self):
        self.fleet = harness.Fleet(3)
        self.redis = self.a = self.b = None

    def tearDown(self):
        store_rig.stop_all(self.a, self.b, self.fleet, self.redis)

    def test_without_store_the_instances_disagree(self):
        # The premise of the test below: without the store, the same traffic splits users.
        self.a = harness.Corral(config(self.fleet, None, WEIGHTS_A))
        self.b = harness.Corral(config(self.fleet, None, WEIGHTS_B))
        users = ["c%d" % i for i in range(200)]
        log = Log()
        drive([self.a, self.b], users, 1, log)
        self.assertEqual(log.failures, [])
        self.assertGreater(len(log.split(users)), 20)

    @harness.needs_redis
    def test_every_user_sees_one_backend(self):
        self.redis = harness.RedisServer()
        # A generous timeout: this test is about agreement, not latency (a busy machine
        # must not turn a claim into a local fallback).
        self.a = harness.Corral(config(self.fleet, self.redis, WEIGHTS_A, timeout="1s",
                                       access_log=True))
        self.b = harness.Corral(config(self.fleet, self.redis, WEIGHTS_B, timeout="1s",
                                       access_log=True))
        store_rig.wait_state([self.a, self.b], "up")
        for c in (self.a, self.b):
            st = store(c)
            self.assertTrue(st["configured"])
            self.assertEqual(st["redis"], self.redis.address)
            self.assertTrue(st["instance"])
        self.assertNotEqual(store(self.a)["instance"], store(self.b)["instance"])

        users = ["u%d" % i for i in range(USERS)]
        log = Log()
        drive([self.a, self.b], users, 3, log)
        self.assertEqual(log.failures, [])
        for u in users:  # both instances answered every user (4 or 5 times)
            self.assertTrue(log.backends(u, 0) and log.backends(u, 1), u)
        self.assertEqual(log.split(users), {}, "users that saw more than one backend")
        home = {u: next(iter(log.backends(u))) for u in users}
        per_backend = collections.Counter(home.values())
        self.assertEqual(set(per_backend), set(self.fleet.names()), "every backend gets users")

        # Redis holds exactly one pin per user, naming the backend the user saw.
        pins = store_rig.stored_pins(self.redis)
        self.assertEqual(len(pins), USERS)
        self.assertEqual(collections.Counter(b for b, _, _ in pins.values()), per_backend)
        self.assertEqual({r for _, _, r in pins.values()}, {"none"})

        sa, sb = store(self.a), store(self.b)
        for name, st in (("a", sa), ("b", sb)):
            self.assertEqual(st["state"], "up", name)
            self.assertGreater(st["claims_won"] + st["claims_adopted"], 0, name)
            self.assertEqual(st["timeouts"], 0, name)
            self.assertEqual(st["errors"], 0, name)
            self.assertEqual(st["instances_live"], 2, name)
        # First writer wins: each user's pin was written once and adopted once (the
        # instance that lost the race, or that met the user second).
        self.assertEqual(sa["claims_won"] + sb["claims_won"], USERS)
        self.assertEqual(sa["claims_adopted"] + sb["claims_adopted"], USERS)
        # Both placed new users: the simultaneous first requests race.
        self.assertGreater(sa["claims_won"], 0)
        self.assertGreater(sb["claims_won"], 0)

        for c in (self.a, self.b):
            text = c.metrics()
            self.assertEqual(store_rig.metric(text, "corral_store_up"), 1)
            self.assertEqual(store_rig.metric(text, "corral_store_errors_total"), 0)
            self.assertEqual(store_rig.metric(text, "corral_store_pending"), 0)
            self.assertIn("corral_store_ops_total{", text)
        # The access log says how each request found its pin.
        kinds = collections.Counter()
        for c in (self.a, self.b):
            for m in re.finditer(r"msg=request .*?\bstore=(\w+)", c.proc.log()):
                kinds[m.group(1)] += 1
        self.assertEqual(kinds["claimed"], USERS, kinds)
        self.assertEqual(kinds["adopted"], USERS, kinds)
        self.assertGreater(kinds["hit"], 0, kinds)


if __name__ == "__main__":
    harness.main()

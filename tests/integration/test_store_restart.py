"""Issue 15, shared pins survive a corral restart without a state file: corral A places
400 users, is stopped, and comes back with other weights and no state_file; every user is
sent to the backend it had, read back from Redis, although A's own choice now differs for
many of them (a corral without the store, on the new config, shows how many). Skipped
without redis-server."""
import unittest

import harness
import store_rig
from store_rig import Log, ask_all, config, drive, store

USERS = 400
BEFORE = {"kupo-1": 1, "kupo-2": 1, "kupo-3": 1}
AFTER = {"kupo-1": 1, "kupo-2": 6, "kupo-3": 1}


@harness.needs_redis
class StoreRestart(unittest.TestCase):
    def setUp(self):
        self.fleet = harness.Fleet(3)
        self.redis = self.a = self.control = None

    def tearDown(self):
        store_rig.stop_all(self.a, self.control, self.fleet, self.redis)

    def test_pins_come_back_from_redis(self):
        self.redis = harness.RedisServer()
        self.a = harness.Corral(config(self.fleet, self.redis, BEFORE, timeout="1s"))
        store_rig.wait_state([self.a], "up")
        users = ["r%d" % i for i in range(USERS)]
        log = Log()
        drive([self.a], users, 1, log)
        self.assertEqual(log.failures, [])
        self.assertEqual(log.split(users), {})
        home = {u: next(iter(log.backends(u))) for u in users}
        self.assertEqual(store(self.a)["claims_won"], USERS)
        self.assertEqual(len(store_rig.stored_pins(self.redis)), USERS)

        # What the new config would do on its own: many users elsewhere.
        self.control = harness.Corral(config(self.fleet, None, AFTER))
        fresh = ask_all([self.control], users)
        differ = [u for u in users if fresh[u][0] != home[u]]
        self.assertGreater(len(differ), USERS // 10)
        self.assertEqual(self.control.stop(), 0)
        self.control = None

        self.assertEqual(self.a.stop(), 0)
        self.a = harness.Corral(config(self.fleet, self.redis, AFTER, timeout="1s"))
        store_rig.wait_state([self.a], "up")
        # No state file: the table starts empty.
        self.assertEqual(sum(harness.pinned(self.a).values()), 0)
        got = ask_all([self.a], users)
        back = {u: got[u][0] for u in users}
        self.assertEqual({u: b for u, b in back.items() if b != home[u]}, {},
                         "users not sent to their stored backend after the restart")
        st = store(self.a)
        self.assertEqual(st["claims_adopted"], USERS)  # every pin read through
        self.assertEqual(st["claims_won"], 0)
        # And they stay there (now from the local table).
        again = ask_all([self.a], differ)
        self.assertEqual({u: b[0] for u, b in again.items() if b[0] != home[u]}, {})


if __name__ == "__main__":
    harness.main()

"""Issue 15, the store's remaining failure rows (plan-15 section 5), one corral each:
- Redis unreachable at start: corral starts anyway, serves every request from its own
  table, shows store.state down, and uses Redis once it appears on that address;
- the queue of pins placed while Redis is away holds at most max_pending, the oldest
  dropped and counted (/status pending_dropped, corral_store_pending_dropped_total);
- AUTH: the right password (from the environment) brings the store up; a wrong one keeps
  it down, is said in the log, and the password is never printed.
Skipped without redis-server."""
import types
import unittest

import harness
import store_rig
from store_rig import Log, config, drive, store


def at(port):
    """A stand-in for a RedisServer not started (yet): config() only needs .address."""
    return types.SimpleNamespace(address="127.0.0.1:%d" % port)


@harness.needs_redis
class StoreFaults(unittest.TestCase):
    def setUp(self):
        self.fleet = harness.Fleet(3)
        self.redis = self.corral = None

    def tearDown(self):
        store_rig.stop_all(self.corral, self.fleet, self.redis)

    def new_users(self, prefix, n):
        users = ["%s%d" % (prefix, i) for i in range(n)]
        log = Log()
        drive([self.corral], users, 1, log, threads=4)
        self.assertEqual(log.failures, [])
        self.assertEqual(log.split(users), {})
        return users

    def test_redis_unreachable_at_start(self):
        port = harness.free_port()
        self.corral = harness.Corral(config(self.fleet, at(port), timeout="200ms"))
        st = store(self.corral)
        self.assertTrue(st["configured"])
        self.assertNotEqual(st["state"], "up")
        self.new_users("early", 100)  # served locally, nothing fails
        self.assertNotEqual(store(self.corral)["state"], "up")
        self.assertGreater(store(self.corral)["pending"], 0)
        self.assertEqual(store_rig.metric(self.corral.metrics(), "corral_store_up"), 0)

        self.redis = harness.RedisServer(port=port)
        store_rig.wait_state([self.corral], "up", timeout=20)
        # The queued placements are written, and new users now claim through Redis.
        harness.wait_for(lambda: store(self.corral)["pending"] == 0, "the queue flushed", 10)
        harness.wait_for(lambda: len(store_rig.stored_pins(self.redis)) >= 100,
                         "the early users' pins in Redis", 10)
        self.new_users("late", 50)
        self.assertGreaterEqual(store(self.corral)["claims_won"], 50)
        self.assertEqual(len(store_rig.stored_pins(self.redis)), 150)

    def test_queue_full_drops_the_oldest(self):
        self.redis = harness.RedisServer()
        self.corral = harness.Corral(config(self.fleet, self.redis, timeout="200ms").replace(
            "max_pending: 100000", "max_pending: 10"))
        store_rig.wait_state([self.corral], "up")
        self.redis.kill()
        store_rig.wait_state([self.corral], "down", timeout=10)
        self.new_users("q", 60)
        st = store(self.corral)
        self.assertEqual(st["pending"], 10)
        self.assertEqual(st["pending_dropped"], 50)
        self.assertEqual(store_rig.metric(self.corral.metrics(),
                                          "corral_store_pending_dropped_total"), 50)
        self.assertEqual(store_rig.metric(self.corral.metrics(), "corral_store_pending"), 10)
        # Back: only the newest ten are written (the others re-seed on their next refresh).
        self.redis.restart()
        store_rig.wait_state([self.corral], "up", timeout=20)
        harness.wait_for(lambda: len(store_rig.stored_pins(self.redis)) == 10,
                         "the ten queued pins in Redis", 10)

    def test_auth(self):
        secret = "s3cret-Pa55"
        self.redis = harness.RedisServer(args=("--requirepass", secret))
        pw = ", password: {env: CORRAL_TEST_REDIS_PW}"
        text = config(self.fleet, self.redis).replace(
            "max_pending: 100000", "max_pending: 100000" + pw)
        self.corral = harness.Corral(text, env={"CORRAL_TEST_REDIS_PW": secret})
        store_rig.wait_state([self.corral], "up")
        self.new_users("a", 20)
        self.assertEqual(len(store_rig.stored_pins(self.redis)), 20)
        self.assertEqual(self.corral.stop(), 0)
        self.assertNotIn(secret, self.corral.proc.log())

        self.corral = harness.Corral(text, env={"CORRAL_TEST_REDIS_PW": "wrong-" + secret})
        self.corral.proc.wait_line(r"(?i)(authentication|\bauth\b|WRONGPASS|NOAUTH)", timeout=10)
        self.assertNotEqual(store(self.corral)["state"], "up")
        self.new_users("b", 20)  # served locally
        self.assertNotEqual(store(self.corral)["state"], "up")
        self.assertEqual(len(store_rig.stored_pins(self.redis)), 20)
        self.assertNotIn(secret, self.corral.proc.log())
        self.assertNotIn(secret, harness.get(self.corral.admin_port, "/status")[2])


if __name__ == "__main__":
    harness.main()

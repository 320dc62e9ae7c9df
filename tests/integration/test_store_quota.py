"""Issue 15, one Blockfrost quota for the fleet: with sticky.store, two corral instances
with `rate_limit: {rps: 10, burst: 10}` on the same pool take their tokens from one bucket
in Redis (quota_take, a lease of clamp(max(rps/10, burst/(20 x instances)), 1, 50) = 1
token at a time), so the backend sees at most rps x t + burst + two leases per instance
while both are hammered (the lease in hand, and at most one lease admitted from the local
fallback while a take is on its way, paid back by the next take).
The control test shows the same load without the store: each instance spends the whole
quota on its own. The store test is skipped without redis-server."""
import http.client
import threading
import time
import unittest

import harness
import store_rig
from harness import request_path

RPS, BURST, SECONDS, THREADS = 10, 10, 3.0, 3


def config(port, redis):
    routes = "      - {prefix: /bf/, pool: bf, strip_prefix: true}\n"
    return (harness.listener_config(routes, 2) +
            "sticky:\n"
            "  keys: [{from: header, name: X-Session-Key}]\n" +
            store_rig.store_line(redis, timeout="1s", sync_interval="500ms") +
            "pools:\n"
            "  bf:\n"
            "    kind: http\n"
            "    backends: [{name: bf-1, address: 127.0.0.1:%d}]\n"
            "    health: {interval: 1h, timeout: 100ms}\n"
            "    rate_limit: {rps: %d, burst: %d}\n") % (port, RPS, BURST)


class StoreQuota(unittest.TestCase):
    def setUp(self):
        self.backend = harness.RecordingBackend()
        self.redis = self.a = self.b = None

    def tearDown(self):
        try:
            store_rig.stop_all(self.a, self.b, self.redis)
        finally:
            self.backend.close()

    def data_requests(self):
        with self.backend.lock:
            return sum(1 for r in self.backend.requests if request_path(r) != "/health")

    def hammer(self):
        """Both instances, THREADS keep-alive clients each, for SECONDS: (answers by
        status, 200s by instance index, elapsed seconds)."""
        statuses = {}
        ok_by = [0, 0]
        lock = threading.Lock()
        stop = threading.Event()

        def run(idx, port, n):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                while not stop.is_set():
                    try:
                        c.request("GET", "/bf/blocks/latest", headers={"X-Session-Key": n})
                        r = c.getresponse()
                        r.read()
                        status = r.status
                        if r.will_close:
                            c.close()
                    except (OSError, http.client.HTTPException):
                        status = 0
                        c.close()
                    with lock:
                        statuses[status] = statuses.get(status, 0) + 1
                        ok_by[idx] += status == 200
                    if status == 429:
                        time.sleep(0.005)  # a client that backs off a little
            finally:
                c.close()

        ts = [threading.Thread(target=run, args=(i, c.port, "u%d-%d" % (i, k)))
              for i, c in enumerate((self.a, self.b)) for k in range(THREADS)]
        start = time.monotonic()
        for t in ts:
            t.start()
        time.sleep(SECONDS)
        stop.set()
        for t in ts:
            t.join()
        return statuses, ok_by, time.monotonic() - start

    def test_without_store_each_instance_spends_the_quota(self):
        self.a = harness.Corral(config(self.backend.port, None))
        self.b = harness.Corral(config(self.backend.port, None))
        statuses, _, elapsed = self.hammer()
        self.assertEqual(statuses.get(0, 0), 0, statuses)
        self.assertGreater(self.data_requests(), RPS * elapsed + BURST + 2 + 2, statuses)

    @harness.needs_redis
    def test_two_instances_share_one_bucket(self):
        self.redis = harness.RedisServer()
        self.a = harness.Corral(config(self.backend.port, self.redis))
        self.b = harness.Corral(config(self.backend.port, self.redis))
        store_rig.wait_state([self.a, self.b], "up")
        statuses, ok_by, elapsed = self.hammer()
        self.assertEqual(statuses.get(0, 0), 0, statuses)
        sent = self.data_requests()
        self.assertEqual(sent, statuses.get(200, 0), statuses)
        lease = max(1, min(max(RPS // 10, BURST // 40), 50))
        # The bucket refills in Redis' own time; a token or two of timing slack.
        self.assertLessEqual(sent, RPS * elapsed + BURST + 2 * 2 * lease + 2, statuses)
        self.assertGreaterEqual(sent, BURST, statuses)  # the shared bucket is spent, not stuck
        self.assertGreater(statuses.get(429, 0), 0, statuses)
        # Both instances got a share: each took leases from the one bucket.
        self.assertGreater(ok_by[0], 0, ok_by)
        self.assertGreater(ok_by[1], 0, ok_by)
        keys = self.redis.keys("corral:quota:*")
        self.assertIn("corral:quota:bf", keys)


if __name__ == "__main__":
    harness.main()

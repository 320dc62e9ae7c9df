"""`corral-bench backend`'s issue-16 knobs on a real process: /_sim/stats by_route counts,
the deterministic null set (--null-percent / null_percent) and latency jitter
(--latency-jitter-ms / latency_jitter_ms) and large /matches answers (--match-count /
match_count). The expectations are computed here from the
spec (FNV-1a, SplitMix64), independently of the C++ code."""
import json
import time

import harness

M = (1 << 64) - 1


def fnv1a(text):
    h = 0xcbf29ce484222325
    for c in text.encode():
        h = ((h ^ c) * 0x100000001b3) & M
    return h


def splitmix64(x):
    z = (x + 0x9e3779b97f4a7c15) & M
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)


def hexhash(i, n):
    out = ""
    x = i
    while len(out) < n:
        x = splitmix64(x)
        out += "%016x" % x
    return out[:n]


def control(port, **settings):
    return json.loads(harness.post_json(port, "/_sim/control", settings))


def by_route(port):
    return harness.get_json(port, "/_sim/stats")["by_route"]


class SimKupoKnobs(harness.unittest.TestCase):
    def test_by_route_and_null_set(self):
        fleet = harness.Fleet(1, name="kupo", extra=("--null-percent", "30"))
        try:
            port = fleet.backends[fleet.names()[0]]
            self.assertEqual(harness.get_json(port, "/_sim/control")["null_percent"], 30)
            before = by_route(port)
            datums = [hexhash(i, 64) for i in range(40)]
            scripts = [hexhash(1000 + i, 56) for i in range(20)]
            nulls = 0
            for h in datums:
                status, headers, body = harness.get(port, "/datums/" + h)
                self.assertEqual(status, 200, body)
                expect_null = fnv1a(h) % 100 < 30
                nulls += expect_null
                if expect_null:
                    self.assertEqual(body, "null")
                    self.assertEqual(headers.get("content-length"), "4")
                else:
                    self.assertIn(h[:56], body)
            self.assertGreater(nulls, 0)  # the sample really exercises both sides
            self.assertLess(nulls, len(datums))
            for h in scripts:
                status, _, body = harness.get(port, "/v1/scripts/" + h)
                self.assertEqual(status, 200, body)
                expect_null = fnv1a(h) % 100 < 30
                nulls += expect_null
                self.assertEqual(body == "null", expect_null, h)
            harness.get(port, "/health")
            harness.get(port, "/matches/*")
            harness.get(port, "/metadata/100")
            harness.get(port, "/checkpoints")
            harness.get(port, "/nope")
            after = by_route(port)
            delta = {k: after[k] - before[k] for k in after}
            self.assertEqual(delta["datums"], len(datums))
            self.assertEqual(delta["scripts"], len(scripts))
            self.assertEqual(delta["matches"], 1)
            self.assertEqual(delta["metadata"], 1)
            self.assertEqual(delta["checkpoints"], 1)
            self.assertEqual(delta["other"], 1)
            self.assertGreaterEqual(delta["health"], 1)
            # null: the datums and scripts answered `null`, counted within them.
            self.assertEqual(delta["null"], nulls)

            # null_percent over control: 0 clears the set, 100 nulls everything; >100 refused.
            control(port, null_percent=0)
            self.assertTrue(all(harness.get(port, "/datums/" + h)[2] != "null" for h in datums))
            control(port, null_percent=100)
            before = by_route(port)
            self.assertTrue(all(harness.get(port, "/datums/" + h)[2] == "null" for h in datums))
            self.assertEqual(by_route(port)["null"] - before["null"], len(datums))
            status, _, _ = harness.get(port, "/_sim/control", method="POST",
                                       body=json.dumps({"null_percent": 101}))
            self.assertEqual(status, 400)
            self.assertEqual(harness.get_json(port, "/_sim/control")["null_percent"], 100)
        finally:
            fleet.stop()

    def test_latency_jitter(self):
        fleet = harness.Fleet(1, name="kupo", extra=("--latency-ms", "40",
                                                     "--latency-jitter-ms", "120"))
        try:
            port = fleet.backends[fleet.names()[0]]
            c = harness.get_json(port, "/_sim/control")
            self.assertEqual((c["latency_ms"], c["latency_jitter_ms"]), (40, 120))
            # Data requests are numbered from 0 in a fresh process (/health is no data request),
            # so each one's delay is known: 40 + splitmix64(seq) % 121.
            took = []
            for seq in range(8):
                t0 = time.monotonic()
                status, _, _ = harness.get(port, "/datums/" + hexhash(seq, 64))
                took.append((time.monotonic() - t0) * 1000)
                self.assertEqual(status, 200)
            expect = [40 + splitmix64(seq) % 121 for seq in range(8)]
            for ms, want in zip(took, expect):
                self.assertGreaterEqual(ms, want - 5, (took, expect))
            self.assertGreater(max(expect) - min(expect), 20)  # a real spread was tested
            # Jitter off over control: the fixed latency alone (loose upper bound for a busy box).
            control(port, latency_jitter_ms=0, latency_ms=0)
            t0 = time.monotonic()
            harness.get(port, "/datums/" + hexhash(99, 64))
            self.assertLess((time.monotonic() - t0) * 1000, min(expect) + 1000)
        finally:
            fleet.stop()

    def test_match_count(self):
        fleet = harness.Fleet(1, name="kupo", extra=("--match-count", "3"))
        try:
            port = fleet.backends[fleet.names()[0]]
            self.assertEqual(harness.get_json(port, "/_sim/control")["match_count"], 3)
            addr = "addr1qxyz" + "q" * 50
            status, _, body = harness.get(port, "/matches/" + addr)
            self.assertEqual(status, 200, body)
            self.assertEqual(len(json.loads(body)), 3)

            control(port, match_count=2000)
            status, headers, body = harness.get(port, "/matches/" + addr + "?unspent")
            self.assertEqual(status, 200)
            self.assertEqual(headers.get("transfer-encoding"), "chunked")
            items = json.loads(body)  # one JSON array, whatever the chunking
            self.assertEqual(len(items), 2000)
            self.assertTrue(all(m["spent_at"] is None for m in items))
            self.assertTrue(all(m["address"] == addr for m in items))
            self.assertTrue(300 < len(body) / 2000 < 800, len(body))
            self.assertEqual(len({(m["transaction_id"], m["output_index"]) for m in items}),
                             len(items))
            # The same request gives the same bytes (the tip moves, the answer does not
            # until the day of slots turns); another pattern gives other bytes.
            self.assertEqual(harness.get(port, "/matches/" + addr + "?unspent")[2], body)
            other = harness.get(port, "/matches/addr1qother?unspent")[2]
            self.assertEqual(len(json.loads(other)), 2000)
            self.assertNotEqual(other, body)
            everything = json.loads(harness.get(port, "/matches/" + addr)[2])
            self.assertEqual(len(everything), 2000)
            self.assertEqual(sum(m["spent_at"] is not None for m in everything), 1000)
            oldest = json.loads(harness.get(port, "/matches/" + addr + "?order=oldest_first")[2])
            self.assertEqual(oldest, list(reversed(everything)))

            status, _, _ = harness.get(port, "/_sim/control", method="POST",
                                       body=json.dumps({"match_count": 100001}))
            self.assertEqual(status, 400)
            self.assertEqual(harness.get_json(port, "/_sim/control")["match_count"], 2000)
            control(port, match_count=0)  # back to Kupo-sized answers: two to four
            n = len(json.loads(harness.get(port, "/matches/" + addr)[2]))
            self.assertIn(n, (2, 3, 4))
        finally:
            fleet.stop()


if __name__ == "__main__":
    harness.unittest.main()

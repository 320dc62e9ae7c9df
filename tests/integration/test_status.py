"""/status's rolling figures and reload record (issue 12), with the real corral and simulated
Kupo instances: each backend's last minute (requests/s, 503 share, p99) against what the
client saw, a pool's 5-minute history, and the last reload's result with the last failure
kept across a later good reload."""
import collections
import http.client
import signal
import threading
import time
import unittest

import harness

USERS = 30


def config(fleet, broken=False):
    return ("admin: {listen: 127.0.0.1:0}\n"
            "listeners:\n  - name: public\n    listen: 127.0.0.1:0\n    routes:\n"
            "      - {prefix: /, pool: kupo}\n"
            "sticky:\n  keys: [{from: header, name: X-Session-Key}]\n" +
            ("  ttl: forever\n" if broken else "") +
            "pools:\n  kupo:\n    kind: kupo\n    backends:\n" + harness.backends_yaml(fleet) +
            "    health: {interval: 200ms, timeout: 150ms}\n"
            "    slow_start: 0s\n")


class Load:
    """Three clients, each with its own users, asking at about 25 requests/s each and
    counting the answers per backend (X-Backend) and the 503s among them."""

    def __init__(self, port):
        self.port = port
        self.seen = collections.Counter()
        self.s503 = collections.Counter()
        self.other = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(t,), daemon=True)
                        for t in range(3)]
        for t in self.threads:
            t.start()

    def run(self, t):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        i = 0
        while not self.stopping.is_set():
            user = "user-%d" % (t + 3 * (i % (USERS // 3)))
            i += 1
            try:
                c.request("GET", "/checkpoints", headers={"X-Session-Key": user})
                r = c.getresponse()
                r.read()
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.other.append(repr(e))
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                continue
            with self.lock:
                b = r.getheader("X-Backend", "?")
                self.seen[b] += 1
                if r.status == 503:
                    self.s503[b] += 1
                elif r.status != 200:
                    self.other.append((b, r.status))
            time.sleep(0.04)
        c.close()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(10)


class Status(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fleet = harness.Fleet(3)
        try:
            cls.t_start = time.time()
            cls.corral = harness.Corral(config(cls.fleet))
        except BaseException:
            cls.fleet.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.corral.stop()
        finally:
            cls.fleet.stop()

    def pool(self, st=None):
        st = st or self.corral.status()
        return st["pools"][0]

    def test_1_rolling_figures_match_the_traffic(self):
        st = self.corral.status()
        self.assertGreaterEqual(st["started_unix_ms"], int(self.t_start * 1000) - 1000)
        self.assertLessEqual(st["started_unix_ms"], int(time.time() * 1000))
        # Every backend is sampled from the start: a window of no traffic yet.
        for b in self.pool(st)["backends"]:
            # The span covered so far, not the nominal minute.
            self.assertGreaterEqual(b["window"]["seconds"], 0, b)
            self.assertLess(b["window"]["seconds"], 60, b)
            self.assertEqual(b["window"]["rps"], 0, b)
            self.assertIsNone(b["window"]["p99_ms"], b)

        self.fleet.control("kupo-1", latency_ms=20)
        load = Load(self.corral.port)
        try:
            time.sleep(1.5)  # users pinned everywhere
            self.fleet.control("kupo-2", overload=True)
            time.sleep(3.5)
        finally:
            load.stop()
            self.fleet.control("kupo-2", overload=False)
        self.assertEqual(load.other, [])
        self.assertEqual(set(load.seen), {"kupo-1", "kupo-2", "kupo-3"}, load.seen)
        self.assertGreater(load.s503["kupo-2"], 0, "the overload was never seen")
        time.sleep(1.3)  # the last requests reach a sample

        st = self.corral.status()
        # Before a minute has passed, the window covers the time since start.
        span = time.time() - st["started_unix_ms"] / 1000.0
        self.assertLess(span, 60)
        backends = {b["name"]: b for b in self.pool(st)["backends"]}
        for name, b in backends.items():
            w = b["window"]
            self.assertLess(w["seconds"], 60, name)
            self.assertGreater(w["seconds"], span - 3, name)  # sampled each second
            self.assertLessEqual(w["seconds"], span + 0.5, name)
            sent_rps = load.seen[name] / span
            print("%s: window %s, client saw %.1f/s, %d of %d were 503" %
                  (name, w, sent_rps, load.s503[name], load.seen[name]))
            self.assertGreater(w["rps"], sent_rps / 2, name)
            self.assertLess(w["rps"], sent_rps * 2, name)
            self.assertIsInstance(w["p99_ms"], (int, float), name)  # "5" is a JSON number too
            self.assertGreater(w["p99_ms"], 0, name)
            if name == "kupo-2":
                share = load.s503[name] / load.seen[name]
                self.assertGreater(w["rate_503"], share / 2)
                self.assertLessEqual(w["rate_503"], min(1.0, share * 2))
            else:
                self.assertEqual(w["rate_503"], 0, name)
        # kupo-1 answers 20 ms late: its p99 lies in the 10-25 ms bucket or above (a busy
        # machine adds to it), and above that of kupo-3, which adds no latency.
        self.assertGreater(backends["kupo-1"]["window"]["p99_ms"], 10)
        self.assertLess(backends["kupo-1"]["window"]["p99_ms"], 2500)
        self.assertLess(backends["kupo-3"]["window"]["p99_ms"],
                        backends["kupo-1"]["window"]["p99_ms"])

        # The pool's history: 5 s steps, oldest first, with the traffic in them.
        harness.wait_for(lambda: len(self.pool()["history"]["rps"]) >= 1, "a history point",
                         timeout=6)
        h = self.pool()["history"]
        print("history", h)
        self.assertEqual(h["step_s"], 5)
        n = len(h["rps"])
        self.assertLessEqual(n, 60)
        self.assertEqual(len(h["rate_503"]), n)
        self.assertEqual(len(h["p99_ms"]), n)
        self.assertGreater(max(h["rps"]), 0)
        self.assertLessEqual(sum(h["rps"]) * 5, sum(load.seen.values()) * 1.01)
        for rps, p99 in zip(h["rps"], h["p99_ms"]):
            self.assertEqual(p99 is None, rps == 0)
        self.assertTrue(any(r > 0 for r in h["rate_503"]), h)

        sessions = st["sessions"]
        self.assertEqual(sessions["size"], USERS)
        self.assertGreater(sessions["bytes"], 0)
        self.assertGreater(sessions["bytes_per_session"], 0)

    def test_2_reload_record_keeps_the_last_failure(self):
        r = self.corral.status()["reloads"]
        self.assertIsNone(r["last"])
        self.assertIsNone(r["last_error"])
        self.assertIsNone(r["last_error_unix_ms"])

        def hup(text):
            self.corral.rewrite(text)
            mark = len(self.corral.proc.lines)
            before = int(time.time() * 1000)
            self.corral.proc.send(signal.SIGHUP)
            self.corral.proc.wait_line(r"config reload(ed| failed)", start=mark)
            return before, int(time.time() * 1000), self.corral.status()["reloads"]

        before, after, r = hup(config(self.fleet, broken=True))
        self.assertEqual(r["failed"], 1)
        self.assertEqual(r["last"]["result"], "failed")
        self.assertGreaterEqual(r["last"]["unix_ms"], before)
        self.assertLessEqual(r["last"]["unix_ms"], after)
        self.assertIn("sticky.ttl", r["last_error"])
        self.assertEqual(r["last_error_unix_ms"], r["last"]["unix_ms"])
        failed = r

        time.sleep(0.05)
        before, after, r = hup(config(self.fleet))
        self.assertEqual(r["ok"], 1)
        self.assertEqual(r["last"]["result"], "ok")
        self.assertGreaterEqual(r["last"]["unix_ms"], before)
        self.assertGreater(r["last"]["unix_ms"], failed["last"]["unix_ms"])
        # The failure stays on record until the next one.
        self.assertEqual(r["last_error"], failed["last_error"])
        self.assertEqual(r["last_error_unix_ms"], failed["last_error_unix_ms"])
        # Windows and history go on across a reload that keeps the backends.
        p = self.pool()
        self.assertTrue(all(b["window"] is not None for b in p["backends"]))
        self.assertGreaterEqual(len(p["history"]["rps"]), 1)


if __name__ == "__main__":
    harness.main()

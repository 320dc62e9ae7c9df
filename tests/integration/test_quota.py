"""The Blockfrost quota guard (issue 11): rate_limit {rps, burst, daily} on a pool. corral
answers 429 itself (Retry-After, JSON reason) when its bucket or the day's quota is spent,
without touching the backend; the first upstream 429 or 402 pauses sending (429: 1 s,
doubling; 402: until 00:00 UTC); the daily count survives a restart and a crash."""
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

import harness
from harness import request_path

DAY_MS = 86_400_000


def seconds_to_utc_midnight():
    now_ms = int(time.time() * 1000)
    return (DAY_MS - now_ms % DAY_MS + 999) // 1000


class Upstream(harness.RecordingBackend):
    """A plain-HTTP stand-in for Blockfrost: answers each request with the next status of
    `script` (then 200), counts data requests apart from health probes."""

    def __init__(self):
        self.script = []
        self.script_lock = threading.Lock()
        super().__init__(respond=self._answer)

    def _answer(self, req):
        if request_path(req) == "/health":
            return harness.OK
        with self.script_lock:
            status = self.script.pop(0) if self.script else 200
        body = b'{"status_code":%d}' % status
        return b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)

    def probes(self):
        with self.lock:
            return sum(1 for r in self.requests if request_path(r) == "/health")

    def data_requests(self):
        with self.lock:
            return sum(1 for r in self.requests if request_path(r) != "/health")


def config(backend_port, rate_limit, state_file=None, workers=2, health_interval="10000h"):
    routes = "      - {prefix: /bf/, pool: bf, strip_prefix: true}\n"
    return (("state_file: %s\n" % state_file if state_file else "") +
            harness.listener_config(routes, workers) +
            "pools:\n"
            "  bf:\n"
            "    kind: http\n"
            "    backends: [{name: bf-1, address: 127.0.0.1:%d}]\n"
            # A probe spends the quota like a request (or is refused and counted), and the
            # first one fires at a random time in [0, interval/5]: with 10000h it never
            # lands inside a test that counts requests exactly.
            "    health: {interval: %s, timeout: 100ms}\n"
            "    rate_limit: %s\n") % (backend_port, health_interval, rate_limit)


def metric(text, name, **labels):
    want = ",".join('%s="%s"' % kv for kv in labels.items())
    m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(want)), text, re.M)
    return float(m.group(1)) if m else None


class QuotaGuard(harness.unittest.TestCase):
    def setUp(self):
        self.backend = Upstream()
        self.corral = None
        self.state_dir = tempfile.TemporaryDirectory()
        self.state = os.path.join(self.state_dir.name, "pins")

    def tearDown(self):
        if self.corral:
            self.corral.stop()
        self.backend.close()
        self.state_dir.cleanup()

    def start(self, rate_limit, state=False, **kw):
        self.corral = harness.Corral(
            config(self.backend.port, rate_limit, self.state if state else None, **kw))
        return self.corral

    def refused_ok(self, status, headers, body, code=429):
        self.assertEqual(status, code, body)
        self.assertIn("retry-after", headers)
        reason = json.loads(body)
        self.assertEqual(reason["status"], code)
        self.assertTrue(reason["error"])
        return int(headers["retry-after"])

    def test_bucket_lets_the_burst_through_and_refuses_the_rest(self):
        c = self.start("{rps: 5, burst: 10}")
        results = []
        lock = threading.Lock()

        def one():
            r = harness.get(c.port, "/bf/blocks/latest")
            with lock:
                results.append(r)

        threads = [threading.Thread(target=one) for _ in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ok = [r for r in results if r[0] == 200]
        refused = [r for r in results if r[0] != 200]
        # 10 from the burst, plus at most a token or two refilled while they ran.
        self.assertGreaterEqual(len(ok), 10)
        self.assertLessEqual(len(ok), 13)
        self.assertEqual(self.backend.data_requests(), len(ok))
        for status, headers, body in refused:
            self.assertEqual(self.refused_ok(status, headers, body), 1)
            self.assertIn("rate limit", json.loads(body)["error"])
        m = c.metrics()
        self.assertEqual(metric(m, "corral_quota_refused_total", pool="bf", reason="rate"),
                         len(refused))
        self.assertIsNotNone(metric(m, "corral_quota_remaining", pool="bf", window="second"))
        # Tokens come back at rps: a second later a few more pass.
        time.sleep(1.0)
        self.assertEqual(harness.get(c.port, "/bf/x")[0], 200)

    def test_daily_quota_is_enforced_warned_and_survives_a_restart(self):
        c = self.start("{daily: 5}", state=True)
        for i in range(5):
            self.assertEqual(harness.get(c.port, "/bf/tx/%d" % i)[0], 200)
        # 80% of 5 is the 4th request: one warning.
        c.proc.wait_line(r'msg="4 of the daily quota of 5 requests used \(80%\)[^"]*" pool=bf',
                         timeout=5)
        status, headers, body = harness.get(c.port, "/bf/tx/6")
        wait = self.refused_ok(status, headers, body)
        self.assertLessEqual(abs(wait - seconds_to_utc_midnight()), 5)
        self.assertIn("daily quota", json.loads(body)["error"])
        self.assertEqual(self.backend.data_requests(), 5)
        q = c.status()["pools"][0]["quota"]
        self.assertEqual(q["used_today"], 5)
        self.assertEqual(q["remaining_today"], 0)
        m = c.metrics()
        self.assertEqual(metric(m, "corral_quota_used", pool="bf", window="day"), 5)
        self.assertEqual(metric(m, "corral_quota_remaining", pool="bf", window="day"), 0)
        self.assertEqual(len(re.findall(r"\(80%\)", c.proc.log())), 1)
        self.assertEqual(c.stop(), 0)
        # Same state file, a new process: still exhausted, the backend still untouched.
        c = self.corral = self.start("{daily: 5}", state=True)
        c.proc.wait_line(r"pool bf has used 5 requests today", timeout=5)
        status, headers, body = harness.get(c.port, "/bf/tx/7")
        self.refused_ok(status, headers, body)
        self.assertEqual(self.backend.data_requests(), 5)
        self.assertNotIn("(80%)", c.proc.log())  # warned before the restart already

    def test_daily_count_survives_a_crash_through_the_periodic_flush(self):
        c = self.start("{daily: 5}", state=True)
        for i in range(3):
            self.assertEqual(harness.get(c.port, "/bf/a/%d" % i)[0], 200)
        deadline = time.time() + 15
        while not os.path.exists(self.state) and time.time() < deadline:
            time.sleep(0.2)
        self.assertTrue(os.path.exists(self.state), "no flush within 15 s")
        c.proc.send(signal.SIGKILL)
        c.stop()
        c = self.corral = self.start("{daily: 5}", state=True)
        codes = [harness.get(c.port, "/bf/b/%d" % i)[0] for i in range(4)]
        self.assertEqual(codes, [200, 200, 429, 429])
        self.assertEqual(self.backend.data_requests(), 5)

    def test_an_upstream_429_pauses_sending(self):
        c = self.start("{rps: 100, burst: 100}")
        self.backend.script = [429]
        self.assertEqual(harness.get(c.port, "/bf/a")[0], 429)  # the backend's own
        self.assertEqual(self.backend.data_requests(), 1)
        status, headers, body = harness.get(c.port, "/bf/b")
        self.assertEqual(self.refused_ok(status, headers, body), 1)
        self.assertIn("answered 429", json.loads(body)["error"])
        self.assertEqual(self.backend.data_requests(), 1)  # not sent during the cool-down
        cd = c.status()["pools"][0]["quota"]["cooldown"]
        self.assertEqual(cd["status"], 429)
        self.assertLessEqual(cd["ms_left"], 1000)
        time.sleep(1.1)
        self.assertEqual(harness.get(c.port, "/bf/c")[0], 200)
        self.assertEqual(self.backend.data_requests(), 2)
        m = c.metrics()
        self.assertEqual(metric(m, "corral_upstream_limited_total", pool="bf", code="429"), 1)
        self.assertEqual(metric(m, "corral_quota_refused_total", pool="bf", reason="cooldown"), 1)
        c.proc.wait_line(r'msg="upstream answered 429; corral answers 429 itself for 1000 ms'
                         r'[^"]*" pool=bf')

    def test_an_upstream_402_closes_the_day(self):
        c = self.start("{rps: 100, burst: 100}")
        self.backend.script = [402]
        self.assertEqual(harness.get(c.port, "/bf/a")[0], 402)
        for path in ("/bf/b", "/bf/c"):
            status, headers, body = harness.get(c.port, path)
            wait = self.refused_ok(status, headers, body, code=402)
            self.assertLessEqual(abs(wait - seconds_to_utc_midnight()), 5)
        self.assertEqual(self.backend.data_requests(), 1)
        q = c.status()["pools"][0]["quota"]
        self.assertEqual(q["cooldown"]["status"], 402)
        self.assertEqual(q["upstream_limited"]["402"], 1)
        self.assertEqual(metric(c.metrics(), "corral_upstream_limited_total", pool="bf",
                                code="402"), 1)

    def test_health_probes_wait_out_a_cool_down(self):
        c = self.start("{rps: 100, burst: 100}", health_interval="200ms")
        deadline = time.time() + 5
        while self.backend.probes() < 2 and time.time() < deadline:
            time.sleep(0.05)
        self.assertGreaterEqual(self.backend.probes(), 2)
        self.backend.script = [402]
        self.assertEqual(harness.get(c.port, "/bf/a")[0], 402)
        time.sleep(0.3)  # a probe already under way may still land
        before = self.backend.probes()
        time.sleep(1.0)  # five probe periods
        self.assertEqual(self.backend.probes(), before)
        self.assertEqual(harness.get(c.port, "/bf/b")[0], 402)
        self.assertEqual(self.backend.data_requests(), 1)

    def test_an_upstream_418_is_counted_and_pauses_a_minute(self):
        c = self.start("{rps: 100, burst: 100}")
        self.backend.script = [418]
        self.assertEqual(harness.get(c.port, "/bf/a")[0], 418)
        status, headers, body = harness.get(c.port, "/bf/b")
        self.assertEqual(self.refused_ok(status, headers, body), 60)
        self.assertEqual(self.backend.data_requests(), 1)
        m = c.metrics()
        self.assertEqual(metric(m, "corral_upstream_limited_total", pool="bf", code="418"), 1)
        self.assertEqual(metric(m, "corral_upstream_limited_total", pool="bf", code="429"), 0)

    def test_daily_without_state_file_is_refused_by_check(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(config(self.backend.port, "{rps: 10, daily: 100}"))
            f.flush()
            r = subprocess.run([harness.CORRAL, "--check", f.name], capture_output=True,
                               text=True, timeout=10)
        log = r.stdout + r.stderr
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("pools.bf.rate_limit.daily", log)
        self.assertIn("needs state_file", log)


if __name__ == "__main__":
    harness.unittest.main()

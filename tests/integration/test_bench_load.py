"""corral-bench load: rate accuracy, coordinated-omission correction, stickiness and
checkpoint-regression counting, the JSON report and the `--mix lucid` request mix, against simulated backends, HAProxy and corral on 127.0.0.1."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import harness

REQUIRED_KEYS = ["requests", "duration_s", "rate", "target_rate", "latency_ms", "statuses",
                 "errors", "sticky_violations", "users", "connections", "mode"]


def load(*args, timeout=120, rc=0):
    """Runs corral-bench load --json and returns the parsed object (exit status `rc`)."""
    out = subprocess.run([harness.BENCH, "load", "--json", *args], capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == rc, (out.returncode, out.stdout, out.stderr)
    return json.loads(out.stdout)


class RoundRobinProxy:
    """HAProxy without stickiness in front of the given ports, or, if HAProxy is not
    installed, a tiny Python proxy that alternates backends per request."""

    def __init__(self, ports):
        self.port = harness.free_port()
        self.dir = tempfile.TemporaryDirectory()
        self.proc = None
        haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy"
                                              if os.path.exists("/usr/sbin/haproxy") else None)
        if haproxy:
            # balance random, not roundrobin: with an even number of users a strict
            # alternation could send each user to the same backend every time by arithmetic
            # (user = i % 50, backend = i % 2); random sends a user with 40 requests to
            # both backends with probability 1 - 2^-39.
            cfg = os.path.join(self.dir.name, "haproxy.cfg")
            with open(cfg, "w") as f:
                f.write("global\n  maxconn 2000\n"
                        "defaults\n  mode http\n  timeout connect 2s\n"
                        "  timeout client 10s\n  timeout server 10s\n"
                        "frontend f\n  bind 127.0.0.1:%d\n  default_backend b\n"
                        "backend b\n  balance random\n" % self.port)
                for i, p in enumerate(ports):
                    f.write("  server s%d 127.0.0.1:%d\n" % (i, p))
            self.proc = harness.Proc([haproxy, "-f", cfg, "-db"])
            deadline = time.time() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    break
                except OSError:
                    assert time.time() < deadline, self.proc.log()
                    time.sleep(0.05)
        else:
            self._python_proxy(ports)

    def _python_proxy(self, ports):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(128)
        counter = [0]
        lock = threading.Lock()

        def conn(c):
            buf = b""
            with c:
                while True:
                    req, buf = harness.read_request(c, buf)
                    if req is None:
                        return
                    with lock:
                        port = ports[counter[0] % len(ports)]
                        counter[0] += 1
                    s = socket.create_connection(("127.0.0.1", port))
                    s.sendall(req.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
                    out = b""
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        out += chunk
                    s.close()
                    c.sendall(out.replace(b"Connection: close\r\n", b"", 1))

        def serve():
            while True:
                try:
                    c, _ = self.sock.accept()
                except OSError:
                    return
                threading.Thread(target=conn, args=(c,), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()

    def stop(self):
        if self.proc:
            self.proc.stop()
        else:
            self.sock.close()
        self.dir.cleanup()


class BenchLoad(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fleet = harness.Fleet(3, extra=("--capacity", "0"))

    @classmethod
    def tearDownClass(cls):
        cls.fleet.stop()

    def url(self, path, name="kupo-1"):
        return "http://127.0.0.1:%d%s" % (self.fleet.backends[name], path)

    def test_a_open_loop_rate_within_2_percent(self):
        r = load("--url", self.url("/health"), "--header", "Accept: application/json",
                 "--rate", "2000", "--duration", "3", "--connections", "20")
        self.assertEqual(r["mode"], "open")
        # Figure: |rate - 2000| / 2000 < 0.02 (6000 requests due in 3 s).
        self.assertLess(abs(r["rate"] - 2000) / 2000, 0.02, r)
        self.assertEqual(r["errors"]["total"], 0, r)
        self.assertEqual(r["target_rate"], 2000)

    def test_b_coordinated_omission_is_corrected(self):
        # 200 req/s over 4 connections for 8 s = 1600 requests. About 2 s in, the backend
        # answers every request that arrives within the next 0.9 s after 1 s. Uncorrected,
        # only the ~4 requests that were in flight then (one per connection, at most ~8)
        # are slow: < 1% of 1600, so the uncorrected p99 stays fast; that is the lie of
        # coordinated omission, since ~200 requests were due in that second. Corrected
        # (from the scheduled time, wrk2), those ~200 (12%) wait up to 1 s: p99 >= 500 ms.
        name = "kupo-2"
        result = {}

        def run():
            result["r"] = load("--url", self.url("/checkpoints", name), "--rate", "200",
                               "--duration", "8", "--connections", "4", "--timeout", "10")

        t = threading.Thread(target=run)
        t.start()
        try:
            time.sleep(2.0)
            self.fleet.control(name, latency_ms=1000)
            time.sleep(0.9)
        finally:
            self.fleet.control(name, latency_ms=0)
        t.join(60)
        r = result["r"]
        self.assertEqual(r["errors"]["total"], 0, r)
        self.assertGreaterEqual(r["latency_ms"]["p99"], 500, r)
        self.assertLess(r["latency_uncorrected_ms"]["p99"], 500, r)
        self.assertGreaterEqual(r["latency_ms"]["max"], 900, r)

    def test_c_sticky_violations_counted(self):
        names = ["kupo-1", "kupo-2"]
        proxy = RoundRobinProxy([self.fleet.backends[n] for n in names])
        try:
            r = load("--url", "http://127.0.0.1:%d/health" % proxy.port, "--header",
                     "Accept: application/json", "--rate", "1000", "--duration", "2",
                     "--connections", "8", "--users", "50", "--key", "header:X-Session-Key",
                     "--backend-header", "X-Backend")
        finally:
            proxy.stop()
        # Figure: 2000 requests, 40 per user, spread at random: all 50 users see both.
        self.assertEqual(r["users_seen"], 50, r)
        self.assertEqual(r["sticky_violations"], 50, r)
        self.assertEqual(sorted(r["backends"]), names, r)

        corral = harness.Corral(harness.kupo_config(self.fleet))
        try:
            r = load("--url", "http://127.0.0.1:%d/kupo/health" % corral.port, "--header",
                     "Accept: application/json", "--rate", "1000", "--duration", "2",
                     "--connections", "8", "--users", "50", "--key", "header:X-Session-Key",
                     "--backend-header", "X-Backend")
        finally:
            corral.stop()
        # Figure: through corral, sticky on X-Session-Key: 0 of 50 users see two backends,
        # and the users do spread over more than one backend.
        self.assertEqual(r["users_seen"], 50, r)
        self.assertEqual(r["sticky_violations"], 0, r)
        self.assertGreater(len(r["backends"]), 1, r)

    def test_d_json_keys_and_address_key(self):
        r = load("--url", self.url("/health"), "--header", "Accept: application/json",
                 "--duration", "1", "--connections", "4")
        for k in REQUIRED_KEYS:
            self.assertIn(k, r)
        for k in ["p50", "p90", "p99", "p999", "max", "mean"]:
            self.assertIn(k, r["latency_ms"])
        for k in ["total", "connect", "reset", "timeout", "parse"]:
            self.assertIn(k, r["errors"])
        self.assertEqual(r["mode"], "closed")
        self.assertIsNone(r["target_rate"])
        self.assertGreater(r["requests"], 100)
        self.assertEqual(r["statuses"].get("200"), r["requests"], r)

        # Only the address extractor: every user's addresses share a stake credential,
        # so each of 30 users stays on one backend although no two requests carry the
        # same address.
        cfg = harness.kupo_config(self.fleet).replace(
            "    - {from: path, prefix: /s/}\n"
            "    - {from: cookie, name: corral}\n"
            "    - {from: header, name: X-Session-Key}\n"
            "    - {from: address}\n"
            "    - {from: client_ip}\n", "    - {from: address}\n")
        self.assertIn("  keys:\n    - {from: address}\npools:", cfg)
        corral = harness.Corral(cfg)
        try:
            r = load("--url", "http://127.0.0.1:%d/kupo/matches/ADDRESS" % corral.port,
                     "--rate", "600", "--duration", "2", "--connections", "6", "--users", "30",
                     "--key", "address", "--backend-header", "X-Backend")
        finally:
            corral.stop()
        self.assertEqual(r["errors"]["total"], 0, r)
        self.assertEqual(r["users_seen"], 30, r)
        self.assertEqual(r["sticky_violations"], 0, r)
        self.assertGreater(len(r["backends"]), 1, r)

    def test_e_refuses_non_loopback(self):
        for url in ["http://10.1.2.3:80/", "http://example.com/", "http://[2001:db8::1]:80/"]:
            out = subprocess.run([harness.BENCH, "load", "--url", url, "--duration", "1"],
                                 capture_output=True, text=True, timeout=10)
            self.assertEqual(out.returncode, 2, url)
            self.assertIn("loopback", out.stderr)
            self.assertEqual(out.stdout, "")

    def test_f_closed_port_exits_nonzero(self):
        # A port that was just bound and closed: nothing listens, every connect is refused.
        port = harness.free_port()
        for extra in ([], ["--rate", "200"]):
            out = subprocess.run([harness.BENCH, "load", "--url", "http://127.0.0.1:%d/" % port,
                                  "--duration", "1", "--no-progress", *extra],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 1, (extra, out.stdout, out.stderr))
            self.assertIn("no request got an answer", out.stderr)
            self.assertRegex(out.stderr, r"connect [1-9]")

        # The contrast: the same run against a live backend exits 0 (load() asserts it).
        r = load("--url", self.url("/health"), "--duration", "1", "--no-progress")
        self.assertGreater(r["requests"], 0, r)

    def test_g_checkpoint_regressions_counted(self):
        # kupo-2 indexes 100 slots behind kupo-1 (blocks every 20 slots, so its checkpoint
        # is 80..120 slots older). Without stickiness every user alternates between the two
        # and, after an answer from kupo-1, gets an older checkpoint from kupo-2.
        names = ["kupo-1", "kupo-2"]
        self.fleet.control("kupo-2", tip_lag_slots=100)
        proxy = RoundRobinProxy([self.fleet.backends[n] for n in names])
        args = ["--header", "Accept: application/json", "--rate", "500", "--duration", "2",
                "--connections", "8", "--users", "50", "--key", "header:X-Session-Key",
                "--backend-header", "X-Backend"]
        try:
            url = "http://127.0.0.1:%d/health" % proxy.port
            r = load("--url", url, *args)
            # The same run with a limit: exit status 3, and it says why on stderr.
            out = subprocess.run([harness.BENCH, "load", "--url", url, *args,
                                  "--max-regressions", "0", "--no-progress"],
                                 capture_output=True, text=True, timeout=60)
            corral = harness.Corral(harness.kupo_config(self.fleet))
            try:
                sticky = load("--url", "http://127.0.0.1:%d/kupo/health" % corral.port, *args,
                              "--max-regressions", "0")
            finally:
                corral.stop()
        finally:
            proxy.stop()
            self.fleet.control("kupo-2", tip_lag_slots=0)
        cr = r["checkpoint_regressions"]
        # Figure: 1000 answers, 20 per user, all carrying a checkpoint; every user saw both
        # backends, so every one of the 50 had at least one regression of 80..120 slots.
        self.assertEqual(cr["checked"], r["requests"], r)
        self.assertEqual(cr["users"], 50, r)
        self.assertGreater(cr["answers"], 50, r)
        self.assertGreaterEqual(cr["max_slots"], 80, r)
        self.assertLessEqual(cr["max_slots"], 120, r)
        self.assertEqual(out.returncode, 3, (out.stdout, out.stderr))
        self.assertIn("exceed --max-regressions 0", out.stderr)
        self.assertIn("regressions (older than their user had seen)", out.stdout)
        # The contrast: through corral every user stays on one backend and so never sees an
        # older checkpoint (load() asserts exit 0 under --max-regressions 0).
        cs = sticky["checkpoint_regressions"]
        self.assertEqual(sticky["sticky_violations"], 0, sticky)
        self.assertEqual(cs["checked"], sticky["requests"], sticky)
        self.assertEqual(cs["answers"], 0, sticky)
        self.assertEqual(cs["users"], 0, sticky)

    def test_h_regression_tracking_needs_users(self):
        out = subprocess.run([harness.BENCH, "load", "--url", self.url("/health"),
                              "--duration", "1", "--max-regressions", "0"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 2, out)
        self.assertIn("--max-regressions needs --users", out.stderr)
        r = load("--url", self.url("/health"), "--duration", "1", "--no-progress")
        self.assertIsNone(r["checkpoint_regressions"], r)

    def test_i_mix_lucid(self):
        # A Kupo with 5% of hashes "not indexed yet": lookups of those are retried up to 10
        # times and stay null; every other answer is checked against its hash.
        fleet = harness.Fleet(1, name="lucid", extra=("--null-percent", "5", "--capacity", "0"))
        try:
            port = fleet.backends["lucid-1"]
            before = harness.get_json(port, "/_sim/stats")["by_route"]
            r = load("--url", "http://127.0.0.1:%d/" % port, "--mix", "lucid", "--users", "200",
                     "--key", "header:X-Session-Key", "--connections", "16", "--rate", "800",
                     "--duration", "2", "--backend-header", "X-Backend", "--no-progress")
            after = harness.get_json(port, "/_sim/stats")["by_route"]
            m = r["mix"]
            for k in ("lookups", "lookup_requests", "null_answers", "null_final", "retries",
                      "matches",
                      "wrong_answers", "lookup_latency_ms", "matches_latency_ms"):
                self.assertIn(k, m)
            self.assertEqual(m["name"], "lucid")
            self.assertEqual(m["wrong_answers"], 0, m)
            self.assertGreater(m["retries"], 0, m)
            self.assertGreater(m["null_final"], 0, m)
            self.assertGreater(m["lookups"], 300, m)
            share = m["lookups"] / (m["lookups"] + m["matches"])
            self.assertAlmostEqual(share, 0.6, delta=0.05)
            # Every HTTP request is a lookup attempt or a matches request.
            self.assertGreaterEqual(m["lookup_requests"], m["lookups"])
            self.assertLessEqual(abs(r["requests"] - m["lookup_requests"] - m["matches"]), 0)
            # A still-null lookup made every attempt: the retries cover them all.
            self.assertGreaterEqual(m["retries"], 9 * m["null_final"] - 50, m)
            # null_answers: the lookup requests answered null. Every counted retry follows a
            # counted null answer of its own lookup (warmup 0), and so does every lookup still
            # null at the end; the rest are nulls whose retry was cut off: at most one per
            # connection at the end of the window, plus one per failed retry (an error).
            self.assertGreater(m["null_answers"], 0, m)
            self.assertLessEqual(m["null_answers"], m["lookup_requests"], m)
            cut = m["null_answers"] - m["retries"] - m["null_final"]
            self.assertGreaterEqual(cut, 0, m)
            self.assertLessEqual(cut, 16 + r["errors"]["total"], m)
            # Logical lookups wait for their retries: the slowest include >= 9 x 10 ms.
            self.assertGreater(m["lookup_latency_ms"]["max"], 90, m)
            self.assertEqual(m["matches_latency_ms"]["count"], m["matches"])
            # The backend saw what the client sent (warmup 0; the window edges add a few).
            lookups_seen = (after["datums"] - before["datums"]) + (after["scripts"] -
                                                                   before["scripts"])
            self.assertGreaterEqual(lookups_seen, m["lookup_requests"])
            # The backend's null count splits the lookups as the client's null_answers does:
            # each class saw at least what the client counted, and the surplus over both is
            # what was still in flight at the end (one per connection) or failed.
            nulls_seen = after["null"] - before["null"]
            self.assertGreaterEqual(nulls_seen, m["null_answers"])
            self.assertGreaterEqual(lookups_seen - nulls_seen,
                                    m["lookup_requests"] - m["null_answers"])
            surplus = (lookups_seen + after["matches"] - before["matches"]
                       - m["lookup_requests"] - m["matches"])
            self.assertLessEqual(surplus, 16 + r["errors"]["total"], (surplus, m))
            self.assertGreaterEqual(after["matches"] - before["matches"], m["matches"])
            self.assertGreater(after["scripts"] - before["scripts"], 0)
            # Stickiness is tracked on the /matches answers (one backend here: no violation).
            self.assertGreater(r["users_seen"], 100, r)
            self.assertEqual(r["sticky_violations"], 0, r)
            self.assertEqual(r["backends"], ["lucid-1"])

            # The check can fail: told there is no null set, every null is a wrong answer.
            wrong = load("--url", "http://127.0.0.1:%d" % port, "--mix", "lucid", "--rate",
                         "300", "--connections", "4", "--duration", "1", "--null-percent", "0",
                         "--null-retries", "1", "--no-progress")["mix"]
            self.assertGreater(wrong["wrong_answers"], 0, wrong)
            self.assertEqual(wrong["retries"], 0, wrong)
            self.assertEqual(wrong["wrong_answers"], wrong["null_final"], wrong)
            # One attempt each: every null answer is final, except a lookup counted as a
            # request but finishing outside the window (none: both need `now` in it).
            self.assertEqual(wrong["null_answers"], wrong["null_final"], wrong)
            text = subprocess.run([harness.BENCH, "load", "--url", "http://127.0.0.1:%d/" % port,
                                   "--mix", "lucid", "--rate", "400", "--connections", "2",
                                   "--duration", "1", "--no-progress"],
                                  capture_output=True, text=True, timeout=15)
            self.assertEqual(text.returncode, 0, text)
            self.assertRegex(text.stdout, r"Mix lucid: \d+ lookups \(\d+ requests, [1-9]\d* "
                                          r"answered null, \d+ retries after null")

            for bad, msg in ((("--ws",), "--mix is HTTP only"),
                             (("--method", "POST"), "--mix sends GET only"),
                             (("--users", "5", "--key", "address"), "not --key address"),
                             (("--mix", "nope"), "the only mix is lucid")):
                out = subprocess.run([harness.BENCH, "load", "--url", "http://127.0.0.1:%d/" % port,
                                      "--mix", "lucid", "--duration", "1", *bad],
                                     capture_output=True, text=True, timeout=10)
                self.assertEqual(out.returncode, 2, out)
                self.assertIn(msg, out.stderr)
            out = subprocess.run([harness.BENCH, "load", "--url", "http://127.0.0.1:%d/" % port,
                                  "--hashes", "10", "--duration", "1"],
                                 capture_output=True, text=True, timeout=10)
            self.assertEqual(out.returncode, 2, out)
            self.assertIn("need --mix lucid", out.stderr)
        finally:
            fleet.stop()


if __name__ == "__main__":
    harness.main()

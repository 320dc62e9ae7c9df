"""client_rate_limit on a route (issue 11, "Per-client limits"): one client key over its
limit gets 429 with Retry-After and a JSON reason while another key still passes; keys
rotated from one IP are capped by per_ip_rps; refused requests never reach the backend,
are logged and counted in corral_client_limited_total{listener,route}."""
import http.client
import json
import re
import time

import harness


def get_from(port, path, source_ip="127.0.0.1", headers=None):
    """One request on a fresh connection from source_ip: (status, headers, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                   source_address=(source_ip, 0))
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        c.close()


class ClientLimits(harness.OneBackendSuite):
    @classmethod
    def config(cls, port):
        routes = ("      - {prefix: /bf/, pool: bf, strip_prefix: true,\n"
                  "         client_rate_limit: {rps: 1, burst: 3}}\n"
                  "      - {prefix: /ip/, pool: bf, strip_prefix: true,\n"
                  "         client_rate_limit: {rps: 1, burst: 3, per_ip_rps: 2}}\n"
                  "      - {prefix: /open/, pool: bf, strip_prefix: true}\n")
        return harness.listener_config(routes, workers=2) + (
            "sticky:\n"
            "  keys:\n"
            "    - {from: path, prefix: /s/}\n"
            "    - {from: header, name: X-Session-Key}\n"
            "    - {from: client_ip}\n"
            "pools:\n"
            "  bf:\n"
            "    kind: http\n"
            "    backends: [{name: bf-1, address: 127.0.0.1:%d}]\n" % port)

    def reached(self, marker):
        """Requests the backend got whose request line holds marker."""
        with self.backend.lock:
            return sum(1 for r in self.backend.requests if marker in r.split(b"\r\n")[0])

    def limited_metric(self, route):
        m = re.search(r'^corral_client_limited_total\{listener="public",route="%s"\} (\d+)$'
                      % re.escape(route), self.corral.metrics(), re.M)
        return int(m.group(1)) if m else None

    def test_one_key_limited_another_passes(self):
        before = self.limited_metric("/bf/")
        start = time.time()
        codes = []
        refused = None
        for i in range(10):
            status, h, body = get_from(self.port, "/bf/alice-%d" % i,
                                       headers={"X-Session-Key": "alice"})
            codes.append(status)
            if status == 429:
                refused = (h, body)
        elapsed = time.time() - start
        passed = codes.count(200)
        self.assertEqual(passed + codes.count(429), 10, codes)
        # A burst of 3, refilled at 1/s while the loop ran.
        self.assertGreaterEqual(passed, 3, codes)
        self.assertLessEqual(passed, 3 + int(elapsed) + 1, codes)
        self.assertEqual(codes[:3], [200, 200, 200])
        h, body = refused
        self.assertEqual(h["retry-after"], "1")
        self.assertEqual(json.loads(body),
                         {"error": "rate limited: too many requests from this client",
                          "status": 429})
        # The refused requests never reached the backend.
        self.assertEqual(self.reached(b"/alice-"), passed)
        # Another key from the same address still passes, while alice is still refused.
        self.assertEqual(get_from(self.port, "/bf/bob", headers={"X-Session-Key": "bob"})[0], 200)
        self.assertEqual(get_from(self.port, "/bf/alice-x",
                                  headers={"X-Session-Key": "alice"})[0], 429)
        # Counted and logged; a route without a limit is not limited.
        self.assertEqual(self.limited_metric("/bf/") - before, 10 - passed + 1)
        self.assertIsNone(self.limited_metric("/open/"))
        for i in range(10):
            self.assertEqual(get_from(self.port, "/open/x", headers={"X-Session-Key": "alice"})[0],
                             200)
        self.corral.proc.wait_line(r"client 127\.0\.0\.1: rate limited: too many requests from "
                                   r"this client \(429\) on public /bf/")

    def test_rotating_path_tokens_capped_per_ip(self):
        start = time.time()
        codes = [get_from(self.port, "/s/tok%d/ip/rot-%d" % (i, i), "127.0.0.5")[0]
                 for i in range(20)]
        elapsed = time.time() - start
        passed = codes.count(200)
        # Each token alone would get a burst of 3; the address holds max(3, 2) = 3 tokens
        # refilled at 2/s, whatever the tokens.
        self.assertGreaterEqual(passed, 3, codes)
        self.assertLessEqual(passed, 3 + 2 * int(elapsed) + 2, codes)
        self.assertGreater(codes.count(429), 10, codes)
        self.assertEqual(self.reached(b"/rot-"), passed)
        status, h, body = get_from(self.port, "/s/fresh/ip/rot-fresh", "127.0.0.5")
        self.assertEqual(status, 429)
        self.assertEqual(json.loads(body)["error"],
                         "rate limited: too many requests from this address")
        self.assertIn(h["retry-after"], ("1",))
        # Another address is not held by this one's bucket.
        self.assertEqual(get_from(self.port, "/s/tok0/ip/other", "127.0.0.6")[0], 200)

    def test_status_reports_bounded_table(self):
        st = self.corral.status()["client_limiter"]
        self.assertEqual(st["max"], 65536)
        self.assertLessEqual(st["buckets"], st["max"])


if __name__ == "__main__":
    harness.main()

"""Kupo's write endpoints really closed, and one normal form for every request target
(issue 9, items 1 and 6's absolute-form): corral routes, guards and forwards the same
normalised path, refuses ambiguous encodings with 400, and takes absolute-form targets.
A recording backend logs every byte it receives, so "nothing reached the backend" is
checked on bytes, not on corral's word."""
import json
import re
import time

import harness
from harness import raw, status_of

H = b" HTTP/1.1\r\nHost: corral.test\r\nConnection: close\r\n\r\n"

# Requests Kupo takes as writes (its router drops leading "v1" segments and matches the
# percent-decoded first segment exactly): 403, and not one byte to the backend.
# (name, raw request, expected status)
KUPO_WRITES = [
    ("issue: PUT /kupo/v1/patterns/*", b"PUT /kupo/v1/patterns/*" + H, 403),
    ("issue: DELETE /kupo/v1/matches/*", b"DELETE /kupo/v1/matches/*" + H, 403),
    ("issue: PUT /kupo/%70atterns/*", b"PUT /kupo/%70atterns/*" + H, 403),
    ("PUT /kupo/patterns/addr with a body",
     b"PUT /kupo/patterns/addr1x HTTP/1.1\r\nHost: corral.test\r\nContent-Length: 2\r\n"
     b"Connection: close\r\n\r\n{}", 403),
    ("DELETE /kupo/v1/v1/matches", b"DELETE /kupo/v1/v1/matches" + H, 403),
    ("PUT /kupo//patterns", b"PUT /kupo//patterns" + H, 403),
    ("PUT /kupo/./patterns", b"PUT /kupo/./patterns" + H, 403),
    ("PUT /kupo/x/../patterns", b"PUT /kupo/x/../patterns" + H, 403),
    ("PUT /kupo/x/%2e%2E/patterns", b"PUT /kupo/x/%2e%2E/patterns" + H, 403),
    ("PUT /kupo/v%31/%70atterns?x=1", b"PUT /kupo/v%31/%70atterns?x=1" + H, 403),
    ("DELETE /kupo/matches?spent", b"DELETE /kupo/matches?spent" + H, 403),
    ("PUT absolute-form", b"PUT http://corral.test/kupo/v1/patterns/*" + H, 403),
    # The route "/" forwards without strip_prefix.
    ("PUT /patterns (no strip_prefix)", b"PUT /patterns/*" + H, 403),
    ("PUT /v1/v1/patterns (no strip_prefix)", b"PUT /v1/v1/patterns" + H, 403),
    ("DELETE //matches (no strip_prefix)", b"DELETE //matches" + H, 403),
]

# Request targets corral refuses with 400 before routing (ambiguous or malformed
# encodings, target forms it does not serve). Reusable as a strictness table:
# (name, raw request, expected status)
MALFORMED_TARGETS = [
    ("encoded slash %2F", b"GET /kupo/matches%2Faddr1x" + H, 400),
    ("encoded slash %2f", b"GET /kupo/matches%2faddr1x" + H, 400),
    ("encoded backslash %5C", b"GET /kupo/matches%5Caddr1x" + H, 400),
    ("encoded NUL %00", b"GET /kupo/matches%00" + H, 400),
    ("encoded LF %0A", b"GET /kupo/health%0A" + H, 400),
    ("lone %", b"GET /kupo/health%" + H, 400),
    ("short escape %4", b"GET /kupo/health%4" + H, 400),
    ("bad hex %zz", b"GET /kupo/health%zz" + H, 400),
    ("dot-dot above the root", b"GET /../kupo/health" + H, 400),
    ("encoded dot-dot above the root", b"GET /kupo/../../health" + H, 400),
    ("raw backslash", b"GET /kupo\\health" + H, 400),
    ("fragment", b"GET /kupo/health#x" + H, 400),
    ("asterisk-form outside OPTIONS", b"GET *" + H, 400),
    ("asterisk-form OPTIONS *", b"OPTIONS *" + H, 400),
    ("authority-form outside CONNECT", b"GET corral.test:80" + H, 400),
    ("absolute-form with userinfo", b"GET http://u:p@corral.test/kupo/health" + H, 400),
    ("absolute-form, other scheme", b"GET ftp://corral.test/kupo/health" + H, 400),
]

# Accepted targets and the request line the backend must receive for each.
# (name, raw request, expected request line at the backend)
FORWARDED = [
    ("escapes decoded and uppercased, slashes merged, dots resolved",
     b"GET /kupo//%6Datches/addr%5f1/./x/../y%3a%c3%a9?q=%2f..//%zz" + H,
     b"GET /matches/addr_1/y%3A%C3%A9?q=%2f..//%zz HTTP/1.1"),
    ("absolute-form: origin-form path", b"GET http://kupo.example:1442/kupo/health?x=1" + H,
     b"GET /health?x=1 HTTP/1.1"),
    ("https absolute-form without a path", b"GET HTTPS://kupo.example?x" + H,
     b"GET /?x HTTP/1.1"),
    ("no strip_prefix", b"GET /./v1//matches/*" + H, b"GET /v1/matches/* HTTP/1.1"),
]

HEALTH = json.dumps({"connection_status": "connected", "most_recent_checkpoint": 1000,
                     "most_recent_node_tip": 1000, "seconds_since_last_block": 1,
                     "network_synchronization": 1.0, "version": "v2.8.0"}).encode()


class KupoGuard(harness.OneBackendSuite):
    @staticmethod
    def respond(req):
        # 200 to every request; health probes get a Kupo health document.
        body = HEALTH if req.startswith(b"GET /health ") else b"ok"
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"X-Most-Recent-Checkpoint: 1000\r\nContent-Length: %d\r\n\r\n"
                % len(body) + body)

    @classmethod
    def config(cls, backend_port):
        # A kind: kupo pool on two routes, neither with a methods list: the guard alone
        # stands between the public and Kupo's writes.
        routes = ("      - {prefix: /kupo/, pool: kupo, strip_prefix: true}\n"
                  "      - {prefix: /, pool: kupo}\n")
        return harness.listener_config(routes) + (
                "sticky:\n  keys:\n    - {from: client_ip}\n"
                "pools:\n"
                "  kupo:\n"
                "    kind: kupo\n"
                "    backends:\n"
                "      - {name: rec, address: 127.0.0.1:%d}\n"
                "    health: {interval: 1h, timeout: 1s}\n" % backend_port)

    def received(self):
        """Every byte the backend received so far except corral's health probes."""
        return re.sub(rb"GET /health HTTP/1\.1\r\n(?:(?!\r\n\r\n).)*User-Agent: corral-health"
                      rb"(?:(?!\r\n\r\n).)*\r\n\r\n", b"", self.backend.received(),
                      flags=re.S)

    def forwarded_after(self, mark, data):
        """Sends `data`, then a marker request, and returns the bytes the backend received
        from `mark` on, up to the marker (which it waits for): nothing sent before the
        marker can still be on its way."""
        out = raw(self.port, data, timeout=3)
        marker = b"marker-%d" % time.monotonic_ns()
        self.assertEqual(status_of(raw(self.port, b"GET /kupo/" + marker + H, timeout=3)), 200)
        got = self.received()
        end = got.find(b"GET /" + marker)
        self.assertGreaterEqual(end, mark, got[-300:])
        return out, got[mark:end]

    def test_kupo_writes_are_403_and_never_reach_the_backend(self):
        for name, data, status in KUPO_WRITES:
            with self.subTest(name):
                mark = len(self.received())
                out, seen = self.forwarded_after(mark, data)
                self.assertEqual(status_of(out), status, out[:300])
                self.assertIn(b"Kupo write endpoints are not exposed", out)
                self.assertEqual(seen, b"")
        self.corral.proc.wait_line(r"refused Kupo write PUT /v1/patterns/\*")

    def test_ambiguous_targets_are_400_with_a_reason(self):
        for name, data, status in MALFORMED_TARGETS:
            with self.subTest(name):
                mark = len(self.received())
                out, seen = self.forwarded_after(mark, data)
                self.assertEqual(status_of(out), status, out[:300])
                head, _, body = out.partition(b"\r\n\r\n")
                doc = json.loads(body.split(b"\n")[0])
                self.assertEqual(doc["status"], status)
                self.assertTrue(doc["error"])
                self.assertIn(b"Connection: close", head)
                self.assertEqual(seen, b"")
        self.corral.proc.wait_line(r"bad request \(400\): encoded slash \(%2F\) in path")
        self.corral.proc.wait_line(r"bad request \(400\): path goes above the root")

    def test_accepted_targets_are_forwarded_normalised(self):
        for name, data, line in FORWARDED:
            with self.subTest(name):
                mark = len(self.received())
                out, seen = self.forwarded_after(mark, data)
                self.assertEqual(status_of(out), 200, out[:300])
                self.assertEqual(seen.split(b"\r\n")[0], line, seen[:300])

    def test_absolute_form_authority_replaces_host(self):
        mark = len(self.received())
        out, seen = self.forwarded_after(
            mark, b"GET http://kupo.example:1442/kupo/health HTTP/1.1\r\nHost: other.test\r\n"
                  b"Connection: close\r\n\r\n")
        self.assertEqual(status_of(out), 200, out[:300])
        self.assertIn(b"\r\nHost: kupo.example:1442\r\n", seen)
        self.assertNotIn(b"other.test", seen)
        # HTTP/1.0 needs no Host: the authority becomes one.
        mark = len(self.received())
        out, seen = self.forwarded_after(mark, b"GET http://kupo.example/kupo/health HTTP/1.0\r\n\r\n")
        self.assertEqual(status_of(out), 200, out[:300])
        self.assertIn(b"\r\nHost: kupo.example\r\n", seen)

    def test_reads_stay_open(self):
        # The guard is about writes: reads on the same endpoints pass, decoded or not.
        for data in (b"GET /kupo/v1/patterns" + H, b"GET /kupo/%6Datches/*?unspent" + H,
                     b"PUT /kupo/PATTERNS" + H):
            self.assertEqual(status_of(raw(self.port, data, timeout=3)), 200, data)


if __name__ == "__main__":
    harness.main()

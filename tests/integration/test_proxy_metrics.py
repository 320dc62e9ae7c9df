"""corral_proxy_protocol_total{listener,result} and /status listeners[].proxy_headers
(issue 15): every PROXY preface on a `proxy_protocol: true` listener is counted once by
how it ended (ok, bad, timeout, closed); a listener without the option has no series.
Raw sockets on 127.0.0.1."""
import re
import time

import harness


def v1(src):
    return ("PROXY TCP4 %s 127.0.0.1 40000 80\r\n" % src).encode()


def send(port, data, shut=False, timeout=8):
    """Everything read until the close (a reset: what arrived before it)."""
    return harness.until_close(port, data, shut, timeout)


class ProxyMetrics(harness.OneBackendSuite):
    @classmethod
    def config(cls, port):
        return (harness.listener_config("      - {prefix: /, pool: b}\n") +
                "  - name: l4\n"
                "    listen: 127.0.0.1:0\n"
                "    proxy_protocol: true\n"
                "    routes: [{prefix: /, pool: b}]\n"
                "limits: {header_timeout: 1s}\n"
                "pools:\n"
                "  b: {kind: http, backends: [{name: b1, address: 127.0.0.1:%d}]}\n" % port)

    def counts(self):
        out = {}
        for m in re.finditer(r'^corral_proxy_protocol_total\{listener="(\w+)",result="(\w+)"\} '
                             r'(\d+)$', self.corral.metrics(), re.M):
            out[(m.group(1), m.group(2))] = int(m.group(3))
        return out

    def test_each_outcome_counted_once(self):
        port = self.corral.ports["l4"]
        before = self.counts()
        self.assertEqual(sorted(before), [("l4", r) for r in ("bad", "closed", "ok", "timeout")])
        # ok: a valid header, then a request that is answered.
        out = send(port, v1("203.0.113.9") + b"GET /m HTTP/1.1\r\nHost: t\r\n"
                          b"Connection: close\r\n\r\n")
        self.assertEqual(harness.status_of(out), 200, out)
        # bad, twice: plain HTTP and a garbled v1.
        self.assertEqual(send(port, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"), b"")
        self.assertEqual(send(port, b"PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n"), b"")
        # closed: half a header, then the client's FIN.
        self.assertEqual(send(port, b"PROXY TCP4 1.2", shut=True), b"")
        # timeout: half a header, then silence past header_timeout (1 s).
        start = time.time()
        self.assertEqual(send(port, b"PROXY TCP4 1.2"), b"")
        self.assertGreater(time.time() - start, 0.5)
        want = {("l4", "ok"): 1, ("l4", "bad"): 2, ("l4", "closed"): 1, ("l4", "timeout"): 1}
        harness.wait_for(lambda: all(self.counts()[k] - before[k] >= n for k, n in want.items()),
                         "the PROXY counters")
        time.sleep(0.2)
        after = self.counts()
        self.assertEqual({k: after[k] - before[k] for k in want}, want)
        # The plain listener has no series; /status shows the same figures.
        self.assertNotIn("public", {k[0] for k in after})
        listeners = {l["name"]: l for l in self.corral.status()["listeners"]}
        self.assertFalse(listeners["public"]["proxy_protocol"])
        self.assertNotIn("proxy_headers", listeners["public"])
        self.assertTrue(listeners["l4"]["proxy_protocol"])
        self.assertEqual(listeners["l4"]["proxy_headers"],
                         {r: after[("l4", r)] for r in ("ok", "bad", "timeout", "closed")})


if __name__ == "__main__":
    harness.main()

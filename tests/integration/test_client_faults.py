"""Faults a client can cause (issue 9, items 9 and 10), with the real corral: a client
that hangs up while waiting frees its backend connection at once; a body trickled past
limits.body_timeout gets 408; a client that stops reading is cut off by
limits.send_timeout and its buffers come back."""
import re
import select
import socket
import time

import harness


def metric(text, name, labels=""):
    m = re.search(r"^%s%s (\d+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return int(m.group(1)) if m else None


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Backend(harness.RecordingBackend):
    """The recording backend with the answers these faults need: /slow after `delay`
    seconds (unless corral hangs up first), /big with `big` bytes; anything else (/health,
    a body read to its Content-Length) at once with 200 "ok"."""

    def __init__(self, delay=6.0, big=8 << 20):
        self.big = big
        super().__init__(self._answer,
                         lambda req: delay if req.startswith(b"GET /slow") else 0)

    def _answer(self, req):
        if req.startswith(b"GET /big"):
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % self.big + b"x" * self.big
        if req.startswith(b"GET /slow"):
            return b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow"
        return harness.OK

    def seen(self):
        """How many requests other than health probes arrived whole."""
        return sum(1 for r in self.requests if not r.startswith(b"GET /health"))

    def closed_early(self):
        """When corral closed a connection in the middle of a request or while its answer
        was held back."""
        return [t for t, _, early in self.hangups if early]

    def slow_answered(self):
        return sum(1 for r in self.answered if r.startswith(b"GET /slow"))

    def big_closed(self):
        """When corral closed a connection that carried /big."""
        return [t for t, last, _ in self.hangups if last and last.startswith(b"GET /big")]


def config(port, limits=""):
    return harness.listener_config("      - {prefix: /, pool: web}\n") + (
        "sticky:\n"
        "  keys: [{from: header, name: X-Session-Key}]\n"
        "pools:\n"
        "  web:\n"
        "    kind: http\n"
        "    health: {path: /health, interval: 2s}\n"
        "    timeouts: {response: 30s}\n"
        "    backends: [{name: w1, address: 127.0.0.1:%d}]\n"
        "%s") % (port, ("limits: " + limits + "\n") if limits else "")


BACKEND = '{pool="web",backend="w1"}'


class ClientFaults(harness.unittest.TestCase):
    def start(self, limits="", **backend):
        self.backend = Backend(**backend)
        self.addCleanup(self.backend.close)
        self.corral = harness.Corral(config(self.backend.port, limits))
        self.addCleanup(self.corral.stop)

    def test_clients_that_hang_up_while_waiting_free_their_backend_connections(self):
        self.start(delay=6.0)
        n = 200
        socks = []
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", self.corral.port), timeout=10)
            s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Session-Key: u%d\r\n\r\n" % i)
            socks.append(s)
        self.addCleanup(lambda: [s.close() for s in socks])
        wait_for(lambda: self.backend.seen() >= n, 5, "the backend to see every request")
        m = self.corral.metrics()
        self.assertEqual(metric(m, "corral_backend_in_flight", BACKEND), n)
        hung_up = time.time()
        for i, s in enumerate(socks):  # half send a FIN and wait, half close outright
            if i % 2:
                s.close()
            else:
                s.shutdown(socket.SHUT_WR)
        # The backend answers after 6 s; corral must have hung up on it long before.
        wait_for(lambda: len(self.backend.closed_early()) >= n, 2.0,
                 "corral to close %d backend connections (closed %d)"
                 % (n, len(self.backend.closed_early())))
        slowest = max(self.backend.closed_early()) - hung_up
        print("figure: %d backend connections closed %.0f ms after their clients hung up"
              % (n, slowest * 1000))
        self.assertLess(slowest, 2.0)
        self.assertEqual(self.backend.slow_answered(), 0)
        m = self.corral.metrics()
        self.assertEqual(metric(m, "corral_backend_in_flight", BACKEND), 0)
        self.assertEqual(metric(m, "corral_backend_client_aborts_total", BACKEND), n)
        clients = '{side="client"}'
        wait_for(lambda: metric(self.corral.metrics(), "corral_connections", clients) == 0, 3,
                 "client connections to close")
        # Corral still serves: a client that waits gets its answer.
        s = socket.create_connection(("127.0.0.1", self.corral.port), timeout=10)
        self.addCleanup(s.close)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(s.recv(65536).startswith(b"HTTP/1.1 200 "))

    def test_a_trickled_body_gets_408_at_body_timeout(self):
        self.start(limits="{body_timeout: 1s, idle_timeout: 60s}")
        s = socket.create_connection(("127.0.0.1", self.corral.port), timeout=10)
        self.addCleanup(s.close)
        start = time.time()
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nX-Session-Key: t\r\n"
                  b"Content-Length: 100\r\n\r\na")
        out = b""
        while time.time() - start < 5:
            r, _, _ = select.select([s], [], [], 0.3)
            if r:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                continue
            try:
                s.sendall(b"b")  # one byte every 300 ms: idle_timeout never fires
            except OSError:
                break
        took = time.time() - start
        print("figure: trickled body answered %s after %.2f s" % (out[:12], took))
        self.assertEqual(harness.status_of(out), 408, out[:200])
        self.assertIn(b"body_timeout", out)
        self.assertLess(took, 2.5)
        self.assertGreater(took, 0.9)
        wait_for(lambda: len(self.backend.closed_early()) == 1, 2,
                 "the backend connection to close")
        m = self.corral.metrics()
        self.assertEqual(
            metric(m, "corral_client_timeouts_total", '{listener="public",timeout="body"}'), 1)
        self.assertEqual(metric(m, "corral_backend_in_flight", BACKEND), 0)

    def test_a_client_that_stops_reading_is_cut_off_at_send_timeout(self):
        self.start(limits="{send_timeout: 1s, idle_timeout: 60s}")
        baseline = metric(self.corral.metrics(), "corral_buffer_in_use_bytes")
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", self.corral.port))
        self.addCleanup(s.close)
        start = time.time()
        s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nX-Session-Key: r\r\n\r\n")
        wait_for(lambda: self.backend.seen() >= 1, 5, "the request to reach the backend")
        time.sleep(0.3)
        held = metric(self.corral.metrics(), "corral_buffer_in_use_bytes")
        self.assertGreater(held, baseline, "figure: buffers held for the stalled answer")
        labels = '{listener="public",timeout="send"}'
        wait_for(lambda: metric(self.corral.metrics(), "corral_client_timeouts_total",
                                labels) == 1, 4, "send_timeout to fire")
        took = time.time() - start
        print("figure: a client that stopped reading was cut off after %.2f s, "
              "buffers held %d -> %d bytes" % (took, held, baseline))
        self.assertLess(took, 3.0)
        wait_for(lambda: metric(self.corral.metrics(), "corral_buffer_in_use_bytes") == baseline,
                 2, "buffers to come back")
        m = self.corral.metrics()
        self.assertEqual(metric(m, "corral_connections", '{side="client"}'), 0)
        self.assertEqual(metric(m, "corral_backend_in_flight", BACKEND), 0)
        wait_for(lambda: len(self.backend.big_closed()) == 1, 3,
                 "the backend to see its connection closed")
        self.assertLess(self.backend.big_closed()[0] - start, 3.0)


if __name__ == "__main__":
    harness.main()

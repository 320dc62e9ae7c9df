"""Connection buffers on demand (issue 8), with the real corral: a process at
limits.max_buffer_memory pauses reading instead of allocating, and serves everyone once
buffers come back; idle keep-alive connections hold no buffer."""
import re
import socket
import time

import harness


def metric(text, name):
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


class Buffers(harness.unittest.TestCase):
    def setUp(self):
        self.fleet = harness.Fleet(1)
        self.addCleanup(self.fleet.stop)
        # Three 16 KB buffers fit in the budget; twenty connections want one each.
        cfg = harness.kupo_config(self.fleet, limits="{buffer_bytes: 16KB, "
                                  "max_buffer_memory: 52KB, header_timeout: 10s}")
        self.corral = harness.Corral(cfg)
        self.addCleanup(self.corral.stop)

    def test_reading_pauses_at_the_budget_and_everyone_is_served(self):
        socks = []
        for i in range(20):  # each sends half a head and waits: its buffer stays held
            s = socket.create_connection(("127.0.0.1", self.corral.port), timeout=10)
            s.sendall(b"GET /kupo/checkpoints HTTP/1.1\r\nHost: x\r\nX-Session-Key: u%d\r\n" % i)
            socks.append(s)
        time.sleep(0.3)
        m = self.corral.metrics()
        self.assertLessEqual(metric(m, "corral_buffer_bytes"), 52 * 1024,
                             "figure: buffers stay within max_buffer_memory")
        self.assertGreater(metric(m, "corral_buffer_waits_total"), 0,
                           "figure: connections waited for a buffer")
        for s in socks:
            s.sendall(b"Connection: close\r\n\r\n")
        for s in socks:
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.close()
            self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:80])

    def test_idle_keep_alive_connections_hold_no_buffer(self):
        socks = []
        for i in range(50):
            s = socket.create_connection(("127.0.0.1", self.corral.port), timeout=10)
            s.sendall(b"GET /kupo/health HTTP/1.1\r\nHost: x\r\nX-Session-Key: k%d\r\n\r\n" % i)
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(65536)
            self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:80])
            socks.append(s)
        m = self.corral.metrics()
        # Buffers in use went back to the free list: at most what one exchange needed.
        self.assertLessEqual(metric(m, "corral_buffer_bytes"), 4 * (16 * 1024 + 512))
        self.assertEqual(metric(m, 'corral_connections{side="client"}'), 50)
        for s in socks:
            s.close()


if __name__ == "__main__":
    harness.main()

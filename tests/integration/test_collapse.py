"""Request collapsing (issue 16): identical concurrent GETs of an uncacheable Kupo path on one
backend reach it once (a stream flight) and every client gets the same answer; a client that
leaves, the first one included, does not cut the others off."""
import json
import socket
import threading
import time

import harness

ADDR = "addr1collapse"
PATH = "/kupo/matches/%s?unspent" % ADDR


def read_response(s):
    """One HTTP/1.1 response from socket s: (status, headers dict, decoded body bytes)."""
    f = s.makefile("rb")
    status = int(f.readline().split()[1])
    headers = {}
    while True:
        line = f.readline().decode()
        if line in ("\r\n", ""):
            break
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    body = b""
    if headers.get("transfer-encoding") == "chunked":
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                f.readline()
                break
            body += f.read(size)
            f.read(2)
    else:
        body = f.read(int(headers.get("content-length", "0")))
    return status, headers, body


def request(user):
    return ("GET %s HTTP/1.1\r\nHost: x\r\nX-Session-Key: %s\r\n\r\n" % (PATH, user)).encode()


class Collapse(harness.unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fleet = harness.Fleet(1)
        cls.name = cls.fleet.names()[0]
        # Every request arrives before the first answer; the tip stays put, so two flights
        # (should the barrier split them) still give the same bytes.
        cls.fleet.control(cls.name, latency_ms=400, freeze_tip=True)
        cls.corral = harness.Corral(harness.kupo_config(
            cls.fleet, pool_extra="    cache: {max_bytes: 16MB}\n",
            limits="{max_connections: 1000}"))
        cls.port = cls.corral.port

    @classmethod
    def tearDownClass(cls):
        cls.corral.stop()
        cls.fleet.stop()

    def matches_count(self):
        return self.fleet.stats(self.name)["by_route"]["matches"]

    def test_matches_100_users_at_most_twice(self):
        before = self.matches_count()
        n = 100
        barrier = threading.Barrier(n)
        results = [None] * n

        def one(i):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
            try:
                barrier.wait()
                s.sendall(request("user-%d" % i))
                results[i] = read_response(s)
            finally:
                s.close()

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertTrue(all(r is not None for r in results))
        self.assertEqual({r[0] for r in results}, {200})
        bodies = {r[2] for r in results}
        self.assertEqual(len(bodies), 1)
        json.loads(bodies.pop())  # a whole JSON array
        self.assertEqual(len({r[1].get("x-most-recent-checkpoint") for r in results}), 1)
        self.assertLessEqual(self.matches_count() - before, 2)

    def test_clients_leaving_leave_the_others_whole(self):
        before = self.matches_count()
        # The first requester leads the flight, then leaves before the answer (latency).
        leader = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        leader.sendall(request("leader"))
        time.sleep(0.1)
        socks = [socket.create_connection(("127.0.0.1", self.port), timeout=20) for _ in range(8)]
        for i, s in enumerate(socks):
            s.sendall(request("waiter-%d" % i))
        time.sleep(0.1)
        leader.close()
        # One more leaves once the head is in (mid-fan-out).
        quitter = socks.pop()
        quitter.recv(16)
        quitter.close()
        results = []
        for s in socks:
            try:
                results.append(read_response(s))
            finally:
                s.close()
        self.assertEqual([r[0] for r in results], [200] * len(socks))
        self.assertEqual(len({r[2] for r in results}), 1)
        self.assertIsInstance(json.loads(results[0][2]), list)
        self.assertEqual(self.matches_count() - before, 1)
        # corral is still fine.
        status, _, _ = harness.get(self.port, PATH, headers={"X-Session-Key": "after"})
        self.assertEqual(status, 200)


if __name__ == "__main__":
    harness.unittest.main()

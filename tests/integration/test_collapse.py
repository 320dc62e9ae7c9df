"""Request collapsing (issue 16): identical concurrent GETs of an uncacheable Kupo path on one
backend reach it once (a stream flight) and every client gets the same answer; a client that
leaves, the first one included, does not cut the others off; a big answer (the sim's
match_count, ~8 MB, streamed) reaches every reader whole while one client leaves mid-body, and
a slow reader is detached (sends its own request, skips what it has) instead of holding the
others back."""
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


BIG = 20000  # matches in the big answer (~8 MB, chunked)


def metric(text, name):
    """The value of one exact sample line `name value` of a /metrics text (0 if absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def detached(corral, result):
    return metric(corral.metrics(),
                  'corral_collapse_detached_total{pool="kupo",result="%s"}' % result)


def read_head(f):
    """The status and lower-cased headers of a response read from file f."""
    status = int(f.readline().split()[1])
    headers = {}
    while True:
        line = f.readline().decode()
        if line in ("\r\n", ""):
            break
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    return status, headers


def request(user):
    return ("GET %s HTTP/1.1\r\nHost: x\r\nX-Session-Key: %s\r\n\r\n" % (PATH, user)).encode()


class BigAnswer:
    """Helpers for the big-answer tests (self.fleet, self.name, self.port, self.corral)."""

    def matches_count(self):
        return self.fleet.stats(self.name)["by_route"]["matches"]

    def big(self):
        """Makes the sim's /matches answer BIG elements (reset when the test ends)."""
        self.fleet.control(self.name, match_count=BIG)
        self.addCleanup(self.fleet.control, self.name, match_count=0)

    def connect(self, rcvbuf=None):
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(30)
        s.connect(("127.0.0.1", self.port))
        return s

    def check_whole(self, results):
        """Every result is a 200 with one and the same body: a JSON array of BIG matches."""
        self.assertEqual([r[0] for r in results], [200] * len(results))
        self.assertEqual(len({r[2] for r in results}), 1)
        self.assertEqual(len(json.loads(results[0][2])), BIG)
        self.assertEqual(len({r[1].get("x-most-recent-checkpoint") for r in results}), 1)


class Collapse(BigAnswer, harness.unittest.TestCase):
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

    def test_slow_waiter_detached(self):
        self.big()
        before = self.matches_count()
        resumed, cut = detached(self.corral, "resumed"), detached(self.corral, "cut")
        pause = 4.0
        lead = self.connect()
        lead.sendall(request("slow-lead"))
        time.sleep(0.05)  # the leader is never detached: the slow one must be a follower
        slow = self.connect(rcvbuf=4096)
        fast = [self.connect() for _ in range(6)]
        for i, s in enumerate([slow] + fast):
            s.sendall(request("slow-%d" % i))
        start = time.time()
        results, done = {}, {}

        def read_all(key, s, wait=0.0):
            try:
                time.sleep(wait)
                results[key] = read_response(s)
                done[key] = time.time() - start
            finally:
                s.close()

        threads = [threading.Thread(target=read_all, args=("lead", lead))]
        threads += [threading.Thread(target=read_all, args=(i, s)) for i, s in enumerate(fast)]
        threads.append(threading.Thread(target=read_all, args=("slow", slow, pause)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(sorted(results, key=str), sorted(["lead", "slow", *range(6)], key=str))
        # The others did not wait for the slow one: all done before it read a byte.
        others = [t for k, t in done.items() if k != "slow"]
        self.assertLess(max(others), pause, done)
        self.check_whole(list(results.values()))
        # The slow one was detached and resumed with its own request (any fast reader that
        # fell a window behind too, likewise); none was cut (the tip is frozen).
        got_resumed = detached(self.corral, "resumed") - resumed
        self.assertGreaterEqual(got_resumed, 1)
        self.assertEqual(detached(self.corral, "cut"), cut)
        self.assertEqual(self.matches_count() - before, 1 + got_resumed)


class LargeFanout(BigAnswer, harness.unittest.TestCase):
    """The big answer with buffer_bytes: 1MB, so a flight's window (4 x buffer_bytes) is
    wider than any reader's momentary lag: nobody is detached, and a client that leaves
    mid-body (a follower, or the leader itself) costs the others nothing."""

    @classmethod
    def setUpClass(cls):
        cls.fleet = harness.Fleet(1)
        cls.name = cls.fleet.names()[0]
        try:
            cls.fleet.control(cls.name, latency_ms=400, freeze_tip=True)
            cls.corral = harness.Corral(harness.kupo_config(
                cls.fleet, pool_extra="    cache: {max_bytes: 16MB}\n",
                limits="{max_connections: 1000, buffer_bytes: 1MB}"))
        except BaseException:
            cls.fleet.stop()
            raise
        cls.port = cls.corral.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.corral.stop()
        cls.fleet.stop()
        assert rc == 0, rc

    def test_disconnect_mid_fanout_large(self):
        self.big()
        # A follower leaves mid-body, then (second case) the leader itself: the others read
        # the whole answer, and the backend was asked once each time.
        for quitter_leads in (False, True):
            with self.subTest(quitter_leads=quitter_leads):
                before = self.matches_count()
                resumed = detached(self.corral, "resumed")
                socks = [self.connect() for _ in range(10)]
                quitter = 0 if quitter_leads else 5
                socks[0].sendall(request("big-lead-%s" % quitter_leads))
                time.sleep(0.05)  # socks[0] leads the flight
                for i, s in enumerate(socks[1:], 1):
                    s.sendall(request("big-%s-%d" % (quitter_leads, i)))
                results = [None] * len(socks)
                left = []

                def quit_early(s):
                    f = s.makefile("rb")
                    status, _ = read_head(f)
                    got = len(f.read(65536))
                    left.append((status, got))
                    f.close()
                    s.close()

                def read_all(i, s):
                    try:
                        results[i] = read_response(s)
                    finally:
                        s.close()

                threads = [threading.Thread(target=quit_early, args=(s,)) if i == quitter else
                           threading.Thread(target=read_all, args=(i, s))
                           for i, s in enumerate(socks)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(60)
                self.assertEqual(left, [(200, 65536)])
                whole = [r for i, r in enumerate(results) if i != quitter]
                self.assertTrue(all(r is not None for r in whole))
                self.check_whole(whole)
                self.assertEqual(self.matches_count() - before, 1)
                self.assertEqual(detached(self.corral, "resumed"), resumed)


if __name__ == "__main__":
    harness.unittest.main()

"""The Kupo response cache (issue 16, plan-16.md §3 and §7) on the real binaries: a fleet
of `corral-bench backend` Kupo simulators behind corral with `cache:` on its pool. Backend
traffic is counted with the simulators' /_sim/stats by_route; hits are told by their
X-Corral-Cache header and by the counts not moving. Requests are sent one after another,
except in CacheCollapse (fill flights: identical misses at once)."""
import json
import os
import re
import tempfile
import threading

import harness

ADMIN_TOKEN = "AdminT0ken-cache"
AUTH = {"Authorization": "Bearer " + ADMIN_TOKEN}
PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^\s"=]+)')
HEALTH = "    health: {interval: 200ms, timeout: 150ms, rise: 1, fall: 2}\n"


def parse_logfmt(line):
    return {m.group(1): json.loads(m.group(2)) if m.group(2).startswith('"') else m.group(2)
            for m in PAIR.finditer(line)}


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def datum_hash(n):
    return "%064x" % (0xC0FFEE0000 + n)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def metric_sum(text, name):
    """The sum of every sample of `name` (any labels) in a /metrics text; None if absent."""
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    return total if seen else None


class Cache(harness.unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.log = os.path.join(cls.dir.name, "access.log")
        token = os.path.join(cls.dir.name, "admin.token")
        fd = os.open(token, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, (ADMIN_TOKEN + "\n").encode())
        os.close(fd)
        cls.fleet = harness.Fleet(3)
        try:
            text = harness.kupo_config(
                cls.fleet, pool_extra=HEALTH + "    cache: {max_bytes: 64MB}\n").replace(
                "admin: {listen: 127.0.0.1:0}",
                "admin: {listen: 127.0.0.1:0, token_file: %s}" % token)
            cls.corral = harness.Corral(text + "log: {access: true, access_file: %s}\n" % cls.log)
        except BaseException:
            cls.fleet.stop()
            cls.dir.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        rc = cls.corral.stop()
        cls.fleet.stop()
        cls.dir.cleanup()
        assert rc == 0, rc

    def routes(self, route):
        """The fleet's data requests of `route` so far (by_route, summed)."""
        return sum(self.fleet.stats(n)["by_route"][route] for n in self.fleet.names())

    def get(self, path, headers=None, method="GET"):
        return harness.get(self.corral.port, "/kupo" + path, headers, method=method)

    def control_all(self, **settings):
        for n in self.fleet.names():
            self.fleet.control(n, **settings)

    def metrics(self):
        return harness.get(self.corral.admin_port, "/metrics", AUTH)[2]

    def pin(self, user):
        """Pins `user` with an uncacheable request; the backend's name."""
        status, headers, _ = self.get("/matches/*", {"X-Session-Key": user})
        self.assertEqual(status, 200)
        self.assertNotIn("x-corral-cache", headers)
        return headers["x-backend"]

    def test_null_not_cached(self):
        h = datum_hash(1)
        before = self.routes("datums")
        try:
            self.control_all(null_percent=100)
            status, headers, body = self.get("/datums/" + h)
            self.assertEqual((status, body), (200, "null"))
        finally:
            self.control_all(null_percent=0)
        status, headers, body = self.get("/datums/" + h)
        self.assertEqual(status, 200)
        self.assertIn(h[:56], body)
        self.assertNotIn("x-corral-cache", headers)  # a miss: the backend's own answer
        self.assertEqual(self.routes("datums") - before, 2)
        # Stored now: the third is a hit and reaches no backend.
        status, headers, body2 = self.get("/datums/" + h)
        self.assertEqual(headers.get("x-corral-cache"), "hit")
        self.assertEqual(body2, body)
        self.assertEqual(self.routes("datums") - before, 2)
        not_stored = metric_sum(self.metrics(), 'corral_cache_not_stored_total{pool="kupo",'
                                                'reason="null"}')
        if not_stored is not None:  # the admin's cache metrics may not be merged yet
            self.assertEqual(not_stored, 1)

    def test_metadata_depth(self):
        # The pool's best tip comes from health probes: wait until a deep slot is cacheable.
        tip = json.loads(harness.get(self.fleet.backends[self.fleet.names()[0]],
                                     "/_sim/control")[2])["most_recent_checkpoint"]
        probe = "/metadata/%d" % (tip - 300000)
        harness.wait_for(lambda: self.get(probe)[1].get("x-corral-cache") == "hit",
                         what="a deep /metadata answer served from the cache")
        for route, near, deep in (("metadata", "/metadata/%d" % (tip - 100),
                                   "/metadata/%d" % (tip - 200000)),
                                  ("checkpoints", "/checkpoints/%d" % (tip - 100),
                                   "/checkpoints/%d" % (tip - 200000))):
            before = self.routes(route)
            for _ in range(2):
                status, headers, _ = self.get(near)
                self.assertEqual(status, 200)
                self.assertNotIn("x-corral-cache", headers)
            # corral's fork check also asks backends GET /checkpoints/{slot} (by_route counts
            # them): for that route the counts are lower bounds, the headers tell hit/miss.
            exact = self.assertEqual if route == "metadata" else self.assertGreaterEqual
            exact(self.routes(route) - before, 2, route + " near the tip")
            before = self.routes(route)
            answers = [self.get(deep) for _ in range(2)]
            self.assertEqual([a[0] for a in answers], [200, 200])
            self.assertEqual(answers[1][1].get("x-corral-cache"), "hit")
            self.assertEqual(answers[0][2], answers[1][2])
            self.assertNotIn("x-corral-cache", answers[0][1])
            exact(self.routes(route) - before, 1, route + " deep")

    def test_503_not_cached(self):
        user = "cache-503-user"
        home = self.pin(user)
        h = datum_hash(3)
        try:
            self.fleet.control(home, overload=True)
            status, _, _ = self.get("/datums/" + h, {"X-Session-Key": user})
            self.assertEqual(status, 503)  # a pinned user's 503 reaches it
        finally:
            self.fleet.control(home, overload=False)
        before = self.routes("datums")
        status, headers, _ = self.get("/datums/" + h, {"X-Session-Key": user})
        self.assertEqual(status, 200)
        self.assertNotIn("x-corral-cache", headers)
        self.assertEqual(self.routes("datums") - before, 1)
        status, headers, _ = self.get("/datums/" + h, {"X-Session-Key": user})
        self.assertEqual((status, headers.get("x-corral-cache")), (200, "hit"))
        self.assertEqual(self.routes("datums") - before, 1)

    def test_if_none_match_304(self):
        h = datum_hash(4)
        self.get("/datums/" + h)
        status, headers, body = self.get("/datums/" + h)
        self.assertEqual(headers.get("x-corral-cache"), "hit")
        etag = headers["etag"]
        self.assertRegex(etag, r'^"c1-[0-9a-f]{32}"$')
        before = self.routes("datums")
        for tag in (etag, "W/" + etag, '"x", ' + etag):
            status, headers, body = self.get("/datums/" + h, {"If-None-Match": tag})
            self.assertEqual((status, body), (304, ""), tag)
            self.assertEqual(headers.get("etag"), etag)
            self.assertIn("immutable", headers.get("cache-control", ""))
        status, _, body = self.get("/datums/" + h, {"If-None-Match": '"c1-other"'})
        self.assertEqual(status, 200)
        self.assertIn(h[:56], body)
        self.assertEqual(self.routes("datums"), before)

    def test_head_on_a_hit(self):
        h = datum_hash(5)
        _, _, body = self.get("/datums/" + h)
        before = self.routes("datums")
        status, headers, head_body = self.get("/datums/" + h, method="HEAD")
        self.assertEqual((status, head_body), (200, ""))
        self.assertEqual(headers.get("x-corral-cache"), "hit")
        self.assertEqual(headers.get("content-length"), str(len(body.encode())))
        self.assertEqual(self.routes("datums"), before)

    def test_hits_leave_pins_alone(self):
        h = datum_hash(6)
        self.get("/datums/" + h)  # stored
        remaps = metric_sum(self.metrics(), "corral_remaps_total")
        sessions = metric_sum(self.metrics(), "corral_sessions_total")
        # A new user that only hits: no pin made, no checkpoint header.
        start = len(read_lines(self.log))
        status, headers, _ = self.get("/datums/" + h, {"X-Session-Key": "cache-newbie"})
        self.assertEqual((status, headers.get("x-corral-cache")), (200, "hit"))
        self.assertNotIn("x-most-recent-checkpoint", headers)
        self.assertNotIn("x-backend", headers)  # stored fields only
        lines = harness.wait_for(lambda: (lambda ls: ls if len(ls) > start else None)(
            read_lines(self.log)), what="the hit's access line")
        rec = parse_logfmt(lines[start])
        self.assertEqual((rec["status"], rec["backend"], rec.get("cache")), ("200", "-", "hit"))
        status, body = harness.get(self.corral.admin_port, "/sessions/" + rec["session"], AUTH)[::2]
        self.assertEqual(status, 404, body)
        self.assertEqual(metric_sum(self.metrics(), "corral_sessions_total"), sessions)
        # A pinned user's hit carries a checkpoint (its backend's tip) and keeps its pin.
        user = "cache-pinned-user"
        home = self.pin(user)
        status, headers, _ = self.get("/datums/" + h, {"X-Session-Key": user})
        self.assertEqual(headers.get("x-corral-cache"), "hit")
        self.assertRegex(headers.get("x-most-recent-checkpoint", ""), r"^[0-9]+$")
        self.assertEqual(self.pin(user), home)
        self.assertEqual(metric_sum(self.metrics(), "corral_remaps_total"), remaps)


def cache_status(status):
    """The first pool's "cache" object in a /status answer (searched, whatever the nesting)."""
    if isinstance(status, dict):
        if isinstance(status.get("cache"), dict) and "collapsed" in status["cache"]:
            return status["cache"]
        items = status.values()
    elif isinstance(status, list):
        items = status
    else:
        return None
    for v in items:
        found = cache_status(v)
        if found is not None:
            return found
    return None


class CacheCollapse(harness.unittest.TestCase):
    """Fill flights (issue 16 "request collapsing"): identical cacheable GETs that miss
    together reach the fleet once; the others wait for that answer and get it as a hit."""

    @classmethod
    def setUpClass(cls):
        cls.fleet = harness.Fleet(3)
        try:
            cls.corral = harness.Corral(harness.kupo_config(
                cls.fleet, workers=1, pool_extra=HEALTH + "    cache: {max_bytes: 64MB}\n"))
        except BaseException:
            cls.fleet.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        rc = cls.corral.stop()
        cls.fleet.stop()
        assert rc == 0, rc

    def datums(self, name=None):
        names = [name] if name else self.fleet.names()
        return sum(self.fleet.stats(n)["by_route"]["datums"] for n in names)

    def control_all(self, **settings):
        for n in self.fleet.names():
            self.fleet.control(n, **settings)

    def together(self, path, users):
        """GETs of `path` from one thread per user, all sent at once (connections opened
        first, then a barrier): the (status, headers, body) of each, in order."""
        out = [None] * len(users)
        barrier = threading.Barrier(len(users))

        def one(i):
            c = harness.http.client.HTTPConnection("127.0.0.1", self.corral.port, timeout=20)
            try:
                c.connect()
                barrier.wait(timeout=20)
                c.request("GET", path, headers={"X-Session-Key": users[i]})
                r = c.getresponse()
                out[i] = (r.status, {k.lower(): v for k, v in r.getheaders()},
                          r.read().decode())
            except Exception as e:  # noqa: BLE001 - reported by the caller
                out[i] = (repr(e), {}, "")
            finally:
                c.close()

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(users))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return out

    def test_datum_200_users_once(self):
        h = datum_hash(2000)
        before = self.datums()
        collapsed_before = cache_status(self.corral.status())["collapsed"]
        try:
            self.control_all(latency_ms=300)
            got = self.together("/kupo/datums/" + h, ["collapse-user-%d" % i for i in range(200)])
        finally:
            self.control_all(latency_ms=0)
        self.assertEqual([g[0] for g in got], [200] * 200)
        bodies = {g[2] for g in got}
        self.assertEqual(len(bodies), 1)
        self.assertIn(h[:56], bodies.pop())
        self.assertEqual(self.datums() - before, 1)  # the fleet was asked once
        hits = [g for g in got if g[1].get("x-corral-cache") == "hit"]
        self.assertGreaterEqual(len(hits), 199)
        for g in hits:
            self.assertNotIn("x-backend", g[1])  # stored fields only
        cache = cache_status(self.corral.status())
        self.assertGreaterEqual(cache["collapsed"] - collapsed_before, 199)
        total = metric_sum(self.corral.metrics(), "corral_collapsed_total")
        self.assertGreaterEqual(total, 199)

    def test_head_and_failover(self):
        # HEAD on a hit: the head with its Content-Length, no body.
        h = datum_hash(2001)
        _, _, body = harness.get(self.corral.port, "/kupo/datums/" + h)
        status, headers, head_body = harness.get(self.corral.port, "/kupo/datums/" + h,
                                                 method="HEAD")
        self.assertEqual((status, head_body), (200, ""))
        self.assertEqual(headers.get("x-corral-cache"), "hit")
        self.assertEqual(headers.get("content-length"), str(len(body.encode())))

        # A fleet member dies while a fill flight is open: every client still gets the datum.
        h = datum_hash(2002)
        before = {n: self.datums(n) for n in self.fleet.names()}
        result = {}
        killed = []
        try:
            self.control_all(latency_ms=300)
            t = threading.Thread(target=lambda: result.update(got=self.together(
                "/kupo/datums/" + h, ["failover-user-%d" % i for i in range(20)])))
            t.start()
            # The leader's request reached one member (counted on arrival): it dies.
            leader = harness.wait_for(lambda: next(
                (n for n in self.fleet.names() if self.datums(n) > before[n]), None),
                what="the leader's request at a backend")
            self.fleet.control(leader, dead=True)
            killed.append(leader)
            t.join()
        finally:
            for n in killed:
                self.fleet.control(n, dead=False)
            self.control_all(latency_ms=0)
        got = result["got"]
        self.assertEqual([g[0] for g in got], [200] * 20, got[:3])
        self.assertEqual(len({g[2] for g in got}), 1)
        self.assertIn(h[:56], got[0][2])


class CacheBound(harness.unittest.TestCase):
    """max_bytes: 1MB under many distinct hashes: old entries are evicted, memory stays put."""

    def test_bounded_under_distinct_hashes(self):
        fleet = harness.Fleet(1)
        corral = None
        try:
            corral = harness.Corral(harness.kupo_config(
                fleet, pool_extra="    cache: {max_bytes: 1MB}\n"))
            name = fleet.names()[0]

            def datums():
                return fleet.stats(name)["by_route"]["datums"]

            def hashes(t):
                return [datum_hash(100000 + t * 10000 + i) for i in range(1500)]

            harness.get(corral.port, "/kupo/datums/" + datum_hash(99999))  # warm up
            rss_before = rss_kb(corral.proc.p.pid)
            before = datums()
            errors = []

            def client(t):
                c = harness.http.client.HTTPConnection("127.0.0.1", corral.port, timeout=10)
                try:
                    for h in hashes(t):
                        c.request("GET", "/kupo/datums/" + h)
                        r = c.getresponse()
                        r.read()
                        if r.status != 200:
                            errors.append(r.status)
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(repr(e))
                finally:
                    c.close()

            threads = [threading.Thread(target=client, args=(t,)) for t in range(4)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            self.assertEqual(errors, [])
            self.assertEqual(datums() - before, 6000)  # all distinct: all misses
            cache_bytes = metric_sum(corral.metrics(), "corral_cache_bytes")
            if cache_bytes is not None:  # the admin's cache metrics may not be merged yet
                self.assertLessEqual(cache_bytes, 1048576)
            # The first hash was evicted long ago: a miss again. The newest is still held.
            first, newest = hashes(0)[0], hashes(0)[-1]
            n = datums()
            _, headers, _ = harness.get(corral.port, "/kupo/datums/" + first)
            self.assertNotIn("x-corral-cache", headers)
            self.assertEqual(datums(), n + 1)
            _, headers, _ = harness.get(corral.port, "/kupo/datums/" + newest)
            self.assertEqual(headers.get("x-corral-cache"), "hit")
            self.assertEqual(datums(), n + 1)
            # 6000 answers of ~400 bytes each is over 2 MB; a 1 MB cache holds less.
            self.assertLess(rss_kb(corral.proc.p.pid) - rss_before, 8 * 1024)
        finally:
            rc = corral.stop() if corral else 0
            fleet.stop()
            self.assertEqual(rc, 0)


if __name__ == "__main__":
    harness.unittest.main()

"""The Lua scripts of the shared pin store (lb/core/store_scripts.h, plan-15 section 2), run
as shipped (read out of the header) in a real redis-server that this test starts on a free
loopback port: first writer wins, CAS on the backend field, TTL refresh and re-seed, fleet
counts with expiry, quota leases and cool-downs. Skipped when redis-server is absent
(scripts/install-deps.sh installs it)."""
import hashlib
import os
import re
import shutil
import socket
import time
import unittest

import harness

HEADER = os.path.join(os.path.dirname(__file__), "../../lb/core/store_scripts.h")
REDIS = shutil.which("redis-server")


def scripts():
    with open(HEADER) as f:
        text = f.read()
    found = dict(re.findall(r'inline constexpr std::string_view (\w+) = R"lua\((.*?)\)lua";',
                            text, re.S))
    assert found, "no scripts found in " + HEADER
    return found


class RespError(Exception):
    pass


class Resp:
    """A minimal RESP2 client (one connection, blocking, 5 s timeout)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.f = self.s.makefile("rb")

    def close(self):
        self.f.close()
        self.s.close()

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.s.sendall(b"".join(out))

    def read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data.decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise AssertionError("bad RESP line %r" % line)

    def call(self, *args):
        self.send(*args)
        return self.read()


class RedisServer:
    """redis-server on a free loopback port (it has no "port 0"): retried on another port
    when it does not come up; killed by stop() and, whatever happens, with the test."""

    def __init__(self):
        for _ in range(5):
            self.port = harness.free_port()
            self.proc = harness.Proc([REDIS, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--protected-mode",
                                      "no", "--daemonize", "no"])
            try:
                self.proc.wait_line(r"Ready to accept connections", timeout=5)
                return
            except AssertionError:
                self.proc.stop(timeout=2)
        raise AssertionError("redis-server did not start")

    def stop(self):
        self.proc.stop(timeout=5)


@unittest.skipUnless(REDIS, "redis-server is not installed (scripts/install-deps.sh)")
class StoreScripts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.src = scripts()
        cls.redis = RedisServer()

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()

    def setUp(self):
        self.r = Resp(self.redis.port)
        self.r.call("FLUSHALL")
        self.sha = {}
        for name, body in self.src.items():
            sha = self.r.call("SCRIPT", "LOAD", body)
            # lb/net computes the SHA1 of the header's text: it must be Redis' own.
            self.assertEqual(sha, hashlib.sha1(body.encode()).hexdigest(), name)
            self.sha[name] = sha

    def tearDown(self):
        self.r.close()

    def run_script(self, name, keys, args):
        return self.r.call("EVALSHA", self.sha[name], len(keys), *keys, *args)

    def test_every_planned_script_is_there(self):
        for name in ("pin_claim", "pin_cas", "pin_touch", "fleet_sync", "quota_take",
                     "quota_cool"):
            self.assertIn(name, self.src)

    def test_pin_claim_first_writer_wins(self):
        key = "corral:pin:" + "ab" * 16
        self.assertEqual(self.run_script("pin_claim", [key], ["v1|kupo-1|10|none", 60000]),
                         [1, "v1|kupo-1|10|none"])
        self.assertEqual(self.run_script("pin_claim", [key], ["v1|kupo-2|11|none", 60000]),
                         [0, "v1|kupo-1|10|none"])
        self.assertEqual(self.r.call("GET", key), "v1|kupo-1|10|none")
        self.assertTrue(0 < self.r.call("PTTL", key) <= 60000)

    def test_pin_cas_compares_the_backend_and_publishes(self):
        key = "corral:pin:" + "cd" * 16
        sub = Resp(self.redis.port)
        try:
            self.assertEqual(sub.call("SUBSCRIBE", "corral:pins"), ["subscribe", "corral:pins", 1])
            self.r.call("SET", key, "v1|kupo-1|99|none")
            # The slot differs, the backend matches: the move lands and is published.
            got = self.run_script("pin_cas", [key], ["kupo-1", "v1|kupo-3|5|down", 60000,
                                                     "corral:pins", "cd|kupo-1|kupo-3|a"])
            self.assertEqual(got, [1, "v1|kupo-3|5|down"])
            self.assertEqual(sub.read(), ["message", "corral:pins", "cd|kupo-1|kupo-3|a"])
            # A second mover that still expects kupo-1 loses and learns kupo-3.
            got = self.run_script("pin_cas", [key], ["kupo-1", "v1|kupo-2|6|down", 60000,
                                                     "corral:pins", "cd|kupo-1|kupo-2|b"])
            self.assertEqual(got, [0, "v1|kupo-3|5|down"])
            self.assertEqual(self.r.call("GET", key), "v1|kupo-3|5|down")
            # A missing key matches (Redis restarted empty).
            self.r.call("DEL", key)
            got = self.run_script("pin_cas", [key], ["kupo-9", "v1|kupo-2|7|down", 60000,
                                                     "corral:pins", "cd|kupo-9|kupo-2|b"])
            self.assertEqual(got, [1, "v1|kupo-2|7|down"])
            self.assertTrue(0 < self.r.call("PTTL", key) <= 60000)
        finally:
            sub.close()

    def test_pin_touch_raises_the_slot_adopts_and_reseeds(self):
        key = "corral:pin:" + "ef" * 16
        self.r.call("SET", key, "v1|kupo-1|100|none", "PX", 1000)
        self.assertEqual(self.run_script("pin_touch", [key], ["kupo-1", 150, 60000, "x"]), [1])
        self.assertEqual(self.r.call("GET", key), "v1|kupo-1|150|none")
        self.assertGreater(self.r.call("PTTL", key), 1000)
        # A lower slot never lowers it, but the TTL is renewed.
        self.r.call("PEXPIRE", key, 1000)
        self.assertEqual(self.run_script("pin_touch", [key], ["kupo-1", 120, 60000, "x"]), [1])
        self.assertEqual(self.r.call("GET", key), "v1|kupo-1|150|none")
        self.assertGreater(self.r.call("PTTL", key), 1000)
        # Slots past 2^53 compare exactly (Lua numbers are doubles).
        self.r.call("SET", key, "v1|kupo-1|9007199254740992|none", "PX", 1000)
        self.run_script("pin_touch", [key], ["kupo-1", "9007199254740993", 60000, "x"])
        self.assertEqual(self.r.call("GET", key), "v1|kupo-1|9007199254740993|none")
        # Another backend is stored: the toucher is told which.
        self.assertEqual(self.run_script("pin_touch", [key], ["kupo-2", 1, 60000, "x"]),
                         [0, "v1|kupo-1|9007199254740993|none"])
        # Missing: re-seeded from value_if_missing.
        self.r.call("DEL", key)
        self.assertEqual(self.run_script("pin_touch", [key], ["kupo-2", 7, 60000,
                                                               "v1|kupo-2|7|none"]), [2])
        self.assertEqual(self.r.call("GET", key), "v1|kupo-2|7|none")

    def test_fleet_sync_returns_the_other_instances_and_expires_them(self):
        def sync(me, ttl, *pairs):
            return self.run_script("fleet_sync", ["corral:counts:" + me, "corral:instances"],
                                   [me, ttl, "corral:", *pairs])

        self.assertEqual(sync("a", 400, "kupo/k1", 3, "kupo/k2", 1), [1])
        got = sync("b", 60000, "kupo/k1", 5)
        self.assertEqual(got[0], 2)
        self.assertEqual(dict(zip(got[1::2], got[2::2])), {"kupo/k1": "3", "kupo/k2": "1"})
        # a's counts replace, never add.
        got = sync("a", 400, "kupo/k2", 2)
        self.assertEqual(dict(zip(got[1::2], got[2::2])), {"kupo/k1": "5"})
        got = sync("b", 60000, "kupo/k1", 5)
        self.assertEqual(dict(zip(got[1::2], got[2::2])), {"kupo/k2": "2"})
        # a stops syncing: after its ttl it is no longer live, nor counted.
        time.sleep(0.6)
        self.assertEqual(sync("b", 60000, "kupo/k1", 5), [1])

    def test_quota_take_leases_refuses_and_honours_cool_downs(self):
        keys = ["corral:quota:bf", "corral:quota:bf:cool"]
        # rps 1, burst 5: the bucket starts full.
        self.assertEqual(self.run_script("quota_take", keys, [3, 1, 5, 0])[:2], [3, ""])
        self.assertEqual(self.run_script("quota_take", keys, [3, 1, 5, 0])[:2], [2, ""])
        g, refusal, retry, used = self.run_script("quota_take", keys, [3, 1, 5, 0])
        self.assertEqual((g, refusal, used), (0, "rate", 5))
        self.assertTrue(0 < retry <= 1000)
        # A daily quota: 2 left of 7.
        self.r.call("DEL", keys[0])
        self.run_script("quota_take", keys, [5, 0, 0, 7])
        self.assertEqual(self.run_script("quota_take", keys, [5, 0, 0, 7])[:2], [2, ""])
        g, refusal, retry, used = self.run_script("quota_take", keys, [5, 0, 0, 7])
        self.assertEqual((g, refusal, used), (0, "daily", 7))
        self.assertTrue(0 < retry <= 86400000)
        # A cool-down written by one instance stops every take, and is published.
        sub = Resp(self.redis.port)
        try:
            sub.call("SUBSCRIBE", "corral:quota")
            self.assertEqual(self.run_script("quota_cool", [keys[1]],
                                             [429, 5000, "corral:quota", "bf|429|1"]), 1)
            self.assertEqual(sub.read(), ["message", "corral:quota", "bf|429|1"])
        finally:
            sub.close()
        got = self.run_script("quota_take", keys, [1, 10, 10, 0])
        self.assertEqual(got[:3], [0, "cool", "429"])
        self.assertTrue(0 < got[3] <= 5000)

    def test_evalsha_of_an_unknown_script_is_noscript(self):
        # The link falls back to EVAL on this error (after a SCRIPT FLUSH or a restart).
        self.r.call("SCRIPT", "FLUSH")
        with self.assertRaises(RespError) as e:
            self.run_script("pin_claim", ["k"], ["v", 1000])
        self.assertTrue(str(e.exception).startswith("NOSCRIPT"))


if __name__ == "__main__":
    harness.main()

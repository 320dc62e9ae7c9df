"""Issue 13, users move forward, never back: a backend that answers with a checkpoint
older than what its user already saw (a restarted or rolled-back instance) never gets
that answer to the user while another backend is at or past the user's slot; the user is
moved there (reason regression, counted and logged). When the whole pool is behind, the
answer is forwarded and counted."""
import os
import re
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (Corral, Fleet, RecordingBackend, get, kupo_config,  # noqa: E402
                     listener_config)

NAMES = ["b1", "b2", "b3"]
USERS = 60


class Chain:
    """Three scripted backends; each answers with its own X-Most-Recent-Checkpoint."""

    def __init__(self, slot):
        self.lock = threading.Lock()
        self.cp = {n: slot for n in NAMES}
        self.backends = {n: RecordingBackend(self.responder(n)) for n in NAMES}

    def responder(self, name):
        def respond(req):
            with self.lock:
                slot = self.cp[name]
            body = ("%s %d" % (name, slot)).encode()
            return (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                    b"X-Most-Recent-Checkpoint: %d\r\n\r\n%s" % (len(body), slot, body))
        return respond

    def set(self, name, slot):
        with self.lock:
            self.cp[name] = slot

    def config(self):
        return listener_config("      - {prefix: /, pool: web}\n") + (
            "sticky:\n"
            "  keys: [{from: header, name: X-Session-Key}]\n"
            "pools:\n"
            "  web:\n"
            "    kind: http\n"
            "    slow_start: 0s\n"
            "    health: {interval: 500ms, timeout: 400ms, rise: 1, fall: 2}\n"
            "    backends:\n%s") % "".join(
                "      - {name: %s, address: 127.0.0.1:%d}\n" % (n, b.port)
                for n, b in sorted(self.backends.items()))

    def close(self):
        for b in self.backends.values():
            b.close()


def ask(corral, user, method="GET"):
    """(backend name, checkpoint) of the answer to one request of `user`."""
    status, headers, body = get(corral.port, "/matches", {"X-Session-Key": user},
                                method=method, body=b"" if method == "POST" else None)
    assert status == 200, (status, body)
    name, slot = body.split()
    assert int(headers["x-most-recent-checkpoint"]) == int(slot)
    return name, int(slot)


def metric(text, name, labels):
    m = re.search(r"^%s\{%s\} (\d+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    assert m, "%s{%s} missing" % (name, labels)
    return int(m.group(1))


class UserMoves(unittest.TestCase):
    def setUp(self):
        self.chain = Chain(1000)
        try:
            self.corral = Corral(self.chain.config())
        except BaseException:
            self.chain.close()
            raise

    def tearDown(self):
        rc = self.corral.stop()
        self.chain.close()
        self.assertEqual(rc, 0)

    def test_rolled_back_backend_never_shows_an_older_checkpoint(self):
        users = ["u%d" % i for i in range(USERS)]
        seen = {u: [] for u in users}
        home = {}
        for u in users:
            for _ in range(2):
                name, slot = ask(self.corral, u)
                seen[u].append(slot)
                self.assertEqual(home.setdefault(u, name), name)  # sticky
        counts = {n: sum(1 for u in users if home[u] == n) for n in NAMES}
        rolled = max(counts, key=counts.get)
        self.assertGreater(counts[rolled], 0)
        self.chain.set(rolled, 950)  # rolled back 50 slots
        for u in users:
            for _ in range(3):
                name, slot = ask(self.corral, u)
                seen[u].append(slot)
                if home[u] == rolled:
                    self.assertNotEqual(name, rolled, u)
                else:
                    self.assertEqual(name, home[u], u)  # other users stay
        for u in users:
            self.assertEqual(seen[u], sorted(seen[u]), u)  # never backwards
            self.assertTrue(all(s >= 1000 for s in seen[u]), u)
        text = self.corral.metrics()
        moved = counts[rolled]
        self.assertEqual(
            metric(text, "corral_user_regressions_prevented_total", 'pool="web"'), moved)
        self.assertEqual(metric(text, "corral_user_regressions_total", 'pool="web"'), 0)
        self.assertEqual(
            metric(text, "corral_remaps_total", 'pool="web",reason="regression"'), moved)
        self.assertEqual(metric(text, "corral_remaps_total", 'pool="web",reason="down"'), 0)
        self.assertEqual(self.corral.status()["remaps"]["regression"], moved)
        self.corral.proc.wait_line(
            r'level=info msg="user moved" pool=web from=%s to=b\d reason=regression' % rolled)

    def test_whole_pool_behind_forwards_and_counts(self):
        name, slot = ask(self.corral, "alice")
        self.assertEqual(slot, 1000)
        for n in NAMES:
            self.chain.set(n, 400)  # every instance rolled back
        name2, slot2 = ask(self.corral, "alice")
        self.assertEqual(slot2, 400)  # served rather than failed
        text = self.corral.metrics()
        self.assertEqual(metric(text, "corral_user_regressions_total", 'pool="web"'), 1)
        self.assertEqual(metric(text, "corral_user_regressions_prevented_total", 'pool="web"'), 0)
        self.corral.proc.wait_line(r"answer older than the user's last checkpoint forwarded")

    def test_non_idempotent_request_is_forwarded_and_counted(self):
        name, _ = ask(self.corral, "bob")
        for n in NAMES:
            self.chain.set(n, 2000 if n != name else 900)
        name2, slot = ask(self.corral, "bob", method="POST")
        self.assertEqual((name2, slot), (name, 900))
        text = self.corral.metrics()
        self.assertEqual(metric(text, "corral_user_regressions_total", 'pool="web"'), 1)


class SimulatedKupoRollback(unittest.TestCase):
    """Three `corral-bench backend` Kupo instances at one frozen tip; `rollback` rewinds one
    (then all) 50 slots."""

    TIP = 100000000

    def setUp(self):
        self.fleet = Fleet(3, name="kupo", extra=("--tip", str(self.TIP), "--freeze-tip"))
        try:
            self.corral = Corral(kupo_config(self.fleet))
        except BaseException:
            self.fleet.stop()
            raise

    def tearDown(self):
        rc = self.corral.stop()
        self.fleet.stop()
        self.assertEqual(rc, 0)

    def ask(self, user):
        status, headers, body = get(self.corral.port, "/kupo/matches",
                                    {"X-Session-Key": user})
        self.assertEqual(status, 200, body)
        return headers["x-backend"], int(headers["x-most-recent-checkpoint"])

    def test_users_never_see_a_rollback_while_others_are_ahead(self):
        users = ["s%d" % i for i in range(USERS)]
        seen = {u: [] for u in users}
        home = {}
        for u in users:
            home[u], slot = self.ask(u)
            seen[u].append(slot)
        counts = {n: sum(1 for u in users if home[u] == n) for n in self.fleet.names()}
        rolled = max(counts, key=counts.get)
        self.fleet.control(rolled, rollback=50)
        for u in users:
            for _ in range(2):
                name, slot = self.ask(u)
                seen[u].append(slot)
                if home[u] == rolled:
                    self.assertNotEqual(name, rolled, u)
        for u in users:
            self.assertEqual(seen[u], sorted(seen[u]), u)
        text = self.corral.metrics()
        self.assertEqual(
            metric(text, "corral_user_regressions_prevented_total", 'pool="kupo"'),
            counts[rolled])
        self.assertEqual(
            metric(text, "corral_remaps_total", 'pool="kupo",reason="regression"'),
            counts[rolled])
        self.assertEqual(metric(text, "corral_user_regressions_total", 'pool="kupo"'), 0)

        # Now every instance rolls back: answers are forwarded (served, not failed), counted.
        for n in self.fleet.names():
            if n != rolled:
                self.fleet.control(n, rollback=50)
        name, slot = self.ask(users[0])
        self.assertLess(slot, self.TIP)  # the older answer, forwarded
        text = self.corral.metrics()
        self.assertEqual(metric(text, "corral_user_regressions_total", 'pool="kupo"'), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)

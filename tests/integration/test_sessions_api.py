"""GET /sessions/<hash> on the admin listener (issue 13): the `session` value of an
access-log line finds that user's pin (pool, backend, last_slot, last seen, last move);
the line's `slot` is the checkpoint the client received; the admin token guards it; 404
and 400 carry a JSON reason."""
import json
import os
import re
import tempfile
import time

import harness

ADMIN_TOKEN = "AdminT0ken-sessions"
AUTH = {"Authorization": "Bearer " + ADMIN_TOKEN}
PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^\s"=]+)')


def parse_logfmt(line):
    return {m.group(1): json.loads(m.group(2)) if m.group(2).startswith('"') else m.group(2)
            for m in PAIR.finditer(line)}


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


class SessionsApi(harness.unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.log = os.path.join(cls.dir.name, "access.log")
        token = os.path.join(cls.dir.name, "admin.token")
        fd = os.open(token, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, (ADMIN_TOKEN + "\n").encode())
        os.close(fd)
        cls.fleet = harness.Fleet(2)
        try:
            text = harness.kupo_config(cls.fleet).replace(
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

    def admin(self, path, headers=AUTH):
        status, _, body = harness.get(self.corral.admin_port, path, headers)
        return status, json.loads(body)

    def request(self, user):
        """One request of `user`; (its access-log record, the response's headers)."""
        before = len(read_lines(self.log))
        status, headers, _ = harness.get(self.corral.port, "/kupo/matches/*",
                                         {"X-Session-Key": user})
        self.assertEqual(status, 200)
        lines = harness.wait_for(lambda: (lambda ls: ls if len(ls) > before else None)(
            read_lines(self.log)), what="the access line")
        rec = parse_logfmt(lines[before])
        self.assertEqual(rec["pool"], "kupo")
        return rec, headers

    def test_from_an_access_line_to_the_session(self):
        rec, headers = None, None
        for _ in range(3):
            rec, headers = self.request("alice-sessions")
        cp = headers["x-most-recent-checkpoint"]
        self.assertRegex(rec["session"], r"^[0-9a-f]{16}$")
        self.assertEqual(rec["slot"], cp)  # the line's slot: what the client just received
        status, s = self.admin("/sessions/" + rec["session"])
        self.assertEqual(status, 200, s)
        self.assertEqual(s["pool"], "kupo")
        self.assertEqual(s["backend"], headers["x-backend"])
        self.assertEqual(s["last_slot"], int(cp))
        self.assertIsNone(s["last_move"])
        self.assertLess(s["idle_ms"], 10000)
        self.assertLess(abs(s["last_seen_unix_ms"] / 1000 - time.time()), 30)
        # The same user keeps the same value; another user has another one.
        other, _ = self.request("bob-sessions")
        self.assertNotEqual(other["session"], rec["session"])
        self.assertEqual(self.request("alice-sessions")[0]["session"], rec["session"])
        # The raw key appears nowhere.
        self.assertNotIn("alice-sessions", json.dumps(s))
        self.assertNotIn("alice-sessions", "\n".join(read_lines(self.log)))

        # A move: its reason stays with the pin, last_slot with the user.
        first = s["backend"]
        code, _, _ = harness.get(self.corral.admin_port, "/backends/%s/down" % first, AUTH,
                                 method="POST")
        self.assertEqual(code, 200)
        try:
            moved, headers = self.request("alice-sessions")
            self.assertNotEqual(headers["x-backend"], first)
            self.assertEqual(moved["remap"], "admin")
            self.assertEqual(moved["session"], rec["session"])
            status, s = self.admin("/sessions/" + rec["session"])
            self.assertEqual(status, 200, s)
            self.assertEqual(s["backend"], headers["x-backend"])
            self.assertEqual(s["last_move"], "admin")
            self.assertEqual(s["last_slot"], int(moved["slot"]))
            self.assertGreaterEqual(s["last_slot"], int(cp))
        finally:
            harness.get(self.corral.admin_port, "/backends/%s/auto" % first, AUTH, method="POST")

    def test_errors_and_token(self):
        rec, _ = self.request("carol-sessions")
        status, body = self.admin("/sessions/" + rec["session"], headers={})
        self.assertEqual(status, 401)
        unknown = "%016x" % (int(rec["session"], 16) ^ 1)
        status, body = self.admin("/sessions/" + unknown)
        self.assertEqual(status, 404)
        self.assertIn("no session", body["error"])
        for bad in ("xyz", "0123456789abcdef00", "0123456789abcdeg"):
            status, body = self.admin("/sessions/" + bad)
            self.assertEqual(status, 400, bad)
            self.assertIn("16 hex digits", body["error"])
        # Upper case is the same hash.
        status, _ = self.admin("/sessions/" + rec["session"].upper())
        self.assertEqual(status, 200)


if __name__ == "__main__":
    harness.unittest.main()

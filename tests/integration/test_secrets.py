"""Header injection and remove_headers (issue 11, "Header injection"): the injected
project_id (from a file, trimmed; and one from the environment) reaches the backend while
every client copy of it does not, whatever its case; a reload re-reads the file; the
secret appears nowhere in corral's log, /status, /metrics or any error body (404, 405, 400,
429, 502, 503, a failed reload); remove_headers works both ways."""
import os
import signal
import tempfile

import harness
from harness import RecordingBackend, raw

SECRET = "bf-SECRET-4f9a1c7e"       # in a file, padded with spaces and a newline
SECRET2 = "bf-ROTATED-77d0e2b1"     # the file's content after a rotation + SIGHUP
ENV_SECRET = "env-SECRET-0b3e5d"    # from the environment

RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: sim/1.0\r\n"
            b"X-Internal: node-7\r\nX-Keep: 1\r\n\r\nok")


def respond(req):
    path = req.split(b" ")[1]
    if path.startswith(b"/reset"):
        return None  # a reset before any answer: corral answers 502 itself
    return RESPONSE


class Secrets(harness.unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.secret_file = os.path.join(cls.dir.name, "project_id")
        with open(cls.secret_file, "w") as f:
            f.write("  %s \n\n" % SECRET)
        os.chmod(cls.secret_file, 0o600)
        cls.backend = RecordingBackend(respond)
        cls.dead_port = harness.free_port()
        cls.corral = None
        try:
            cls.corral = harness.Corral(cls.config(), env={"CORRAL_TEST_ENV_KEY": ENV_SECRET})
        finally:
            if cls.corral is None:
                cls.backend.close()
        cls.port = cls.corral.port

    @classmethod
    def config(cls, set_headers=None):
        set_headers = set_headers or ("{project_id: {file: %s}, X-Env-Key: {env: CORRAL_TEST_ENV_KEY}}"
                                      % cls.secret_file)
        routes = ("      - {prefix: /bf/, pool: bf, strip_prefix: true, methods: [GET, POST]}\n"
                  "      - {prefix: /lim/, pool: bf, strip_prefix: true,\n"
                  "         client_rate_limit: {rps: 0.1, burst: 1}}\n"
                  "      - {prefix: /dead/, pool: dead, strip_prefix: true}\n"
                  "      - {prefix: /off/, pool: off, strip_prefix: true}\n"
                  "      - {prefix: /rst/, pool: rst, strip_prefix: true}\n")
        pool = lambda name, port: (
            "  %s:\n    kind: http\n    backends: [{name: %s-1, address: 127.0.0.1:%d}]\n"
            "    health: {interval: 30s, timeout: 1s}\n"
            "    set_headers: %s\n" % (name, name, port, set_headers))
        return harness.listener_config(routes) + "pools:\n" + pool("bf", cls.backend.port) + (
            "    remove_headers: {request: [x-debug, Cookie], response: [server, X-INTERNAL]}\n"
        ) + pool("dead", cls.dead_port) + pool("off", cls.backend.port) + pool(
            "rst", cls.backend.port)  # resets mark a backend down: its own pool

    @classmethod
    def tearDownClass(cls):
        rc = cls.corral.stop()
        cls.backend.close()
        cls.dir.cleanup()
        assert rc == 0, rc

    def last_request(self, marker):
        with self.backend.lock:
            for r in reversed(self.backend.requests):
                if marker in r.split(b"\r\n")[0]:
                    return r
        self.fail("the backend never saw %r" % marker)

    def assert_no_secret(self, text, where):
        for s in (SECRET, SECRET2, ENV_SECRET):
            self.assertNotIn(s, text, where)

    def test_1_injected_and_client_copies_removed(self):
        status, h, body = harness.get(self.port, "/bf/inject", {
            "Project_ID": "client-upper", "project_id": "client-lower",
            "X-ENV-KEY": "client-env", "X-Debug": "1", "Cookie": "a=b", "X-Other": "kept"})
        self.assertEqual(status, 200, body)
        req = self.last_request(b"/inject").decode("latin-1")
        lines = [l.lower() for l in req.split("\r\n")]
        self.assertEqual([l for l in lines if l.startswith("project_id:")],
                         ["project_id: " + SECRET.lower()])
        self.assertIn("project_id: %s\r\n" % SECRET, req)  # trimmed, as written in the file
        self.assertIn("X-Env-Key: %s\r\n" % ENV_SECRET, req)
        self.assertEqual([l for l in lines if l.startswith("x-env-key:")],
                         ["x-env-key: " + ENV_SECRET.lower()])
        self.assertNotIn("client-", req)
        # remove_headers.request, compared case-insensitively; others pass.
        self.assertNotIn("x-debug", req.lower())
        self.assertNotIn("cookie", req.lower())
        self.assertIn("X-Other: kept\r\n", req)
        # remove_headers.response: Server and X-Internal dropped, X-Keep passes.
        self.assertNotIn("server", h)
        self.assertNotIn("x-internal", h)
        self.assertEqual(h["x-keep"], "1")
        # A pool without remove_headers passes them.
        status, h, _ = harness.get(self.port, "/off/x", {"X-Debug": "1"})
        self.assertEqual(status, 200)
        self.assertEqual(h["server"], "sim/1.0")
        self.assertIn(b"X-Debug: 1", self.last_request(b"/x "))

    def test_2_no_secret_in_error_bodies(self):
        bodies = []
        for path, method, want in (("/nowhere", "GET", 404), ("/bf/x", "DELETE", 405),
                                   ("/rst/reset", "GET", 502)):
            status, _, body = harness.get(self.port, path, {"project_id": "mine"}, method)
            self.assertEqual(status, want, body)
            bodies.append(body)
        # A dead backend: refused connections (502) or, once health saw it, 503.
        status, _, body = harness.get(self.port, "/dead/x")
        self.assertIn(status, (502, 503), body)
        bodies.append(body)
        # No backend available: 503.
        harness.get(self.corral.admin_port, "/backends/off-1/down", method="POST")
        status, _, body = harness.get(self.port, "/off/x")
        self.assertEqual(status, 503, body)
        harness.get(self.corral.admin_port, "/backends/off-1/auto", method="POST")
        bodies.append(body)
        # Client rate limit: 429.
        codes = [harness.get(self.port, "/lim/x")[0] for _ in range(3)]
        self.assertIn(429, codes)
        # Malformed requests: 400.
        for bad in (b"GET /bf/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                    b"GET /bf/x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"):
            out = raw(self.port, bad)
            self.assertTrue(out.startswith(b"HTTP/1.1 400"), out)
            bodies.append(out.decode("latin-1"))
        for b in bodies:
            self.assert_no_secret(b, b)

    def test_3_reload_rereads_and_failures_do_not_echo(self):
        mark = len(self.corral.proc.lines)
        with open(self.secret_file, "w") as f:
            f.write(SECRET2 + "\n")
        self.corral.proc.send(signal.SIGHUP)
        self.corral.proc.wait_line(r"config reloaded", start=mark)
        self.assertEqual(harness.get(self.port, "/bf/rotated")[0], 200)
        self.assertIn(("project_id: %s\r\n" % SECRET2).encode(), self.last_request(b"/rotated"))
        # A secret pasted into the config itself is refused, without being echoed.
        mark = len(self.corral.proc.lines)
        self.corral.rewrite(self.config("{project_id: %s}" % SECRET))
        self.corral.proc.send(signal.SIGHUP)
        line = self.corral.proc.wait_line(r"config reload failed", start=mark).string
        self.assertIn("secrets are not written in the config", line)
        with open(self.corral.path) as f:
            self.assertIn(SECRET, f.read())  # it was there to echo
        status = self.corral.status()
        self.assertIn("secrets are not written", status["reloads"]["last_error"])
        # A missing variable or file names the variable or file only.
        mark = len(self.corral.proc.lines)
        self.corral.rewrite(self.config("{project_id: {file: %s.gone}}" % self.secret_file))
        self.corral.proc.send(signal.SIGHUP)
        self.corral.proc.wait_line(r"config reload failed: .*project_id\.gone", start=mark)
        # The running config still injects the rotated value.
        self.assertEqual(harness.get(self.port, "/bf/still")[0], 200)
        self.assertIn(("project_id: %s\r\n" % SECRET2).encode(), self.last_request(b"/still"))
        self.corral.rewrite(self.config())

    def test_4_nowhere_in_log_status_metrics(self):
        status = self.corral.status()
        pools = {p["name"]: p for p in status["pools"]}
        self.assertEqual(pools["bf"]["set_headers"], {"project_id": "set", "X-Env-Key": "set"})
        text = harness.get(self.corral.admin_port, "/status")[2]
        self.assert_no_secret(text, "/status")
        self.assert_no_secret(self.corral.metrics(), "/metrics")
        self.assert_no_secret(self.corral.proc.log(), "log")
        for path in ("/nothing", "/backends/nope/down"):
            self.assert_no_secret(harness.get(self.corral.admin_port, path)[2], path)


if __name__ == "__main__":
    harness.main()

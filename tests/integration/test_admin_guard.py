"""Admin guard (issue 11): with admin.token_file every admin endpoint needs
"Authorization: Bearer <token>" (401 with WWW-Authenticate: Bearer otherwise); config,
token and secret files that group or others may read are named in a warning at start and
after a reload (0644 warns, 0600 does not)."""
import os
import re
import signal
import tempfile

import harness
from harness import RecordingBackend

TOKEN = "adm-T0KEN-91c4"


def write(path, text, mode):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def config(backend_port, token_file, secret_file):
    routes = "      - {prefix: /, pool: web}\n"
    return harness.listener_config(routes).replace(
        "admin: {listen: 127.0.0.1:0}",
        "admin: {listen: 127.0.0.1:0, token_file: %s}" % token_file) + (
        "pools:\n"
        "  web:\n"
        "    kind: http\n"
        "    backends: [{name: web-1, address: 127.0.0.1:%d}]\n"
        "    set_headers: {project_id: {file: %s}}\n" % (backend_port, secret_file))


class Guard(harness.unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.token = os.path.join(self.dir.name, "admin.token")
        self.secret = os.path.join(self.dir.name, "project_id")
        self.backend = RecordingBackend()
        self.corral = None

    def tearDown(self):
        rc = self.corral.stop() if self.corral else 0
        self.backend.close()
        self.dir.cleanup()
        self.assertEqual(rc, 0)

    def start(self, token_mode, secret_mode, config_mode):
        write(self.token, TOKEN + "\n", token_mode)
        write(self.secret, "s3cret\n", secret_mode)
        old = os.umask(0o777 & ~config_mode)  # the harness writes the config file
        try:
            self.corral = harness.Corral(config(self.backend.port, self.token, self.secret))
        finally:
            os.umask(old)
        self.assertEqual(os.stat(self.corral.path).st_mode & 0o777, config_mode)

    def admin(self, path, auth=None, method="GET"):
        headers = {"Authorization": auth} if auth is not None else {}
        return harness.get(self.corral.admin_port, path, headers, method)

    def test_every_endpoint_needs_the_token(self):
        self.start(0o600, 0o600, 0o600)
        for method, path in (("GET", "/status"), ("GET", "/metrics"), ("HEAD", "/status"),
                             ("POST", "/"), ("GET", "/no-such-page"),
                             ("POST", "/backends/web-1/drain"), ("DELETE", "/status")):
            for auth in (None, "Bearer wrong", "Bearer " + TOKEN + "x", "Basic " + TOKEN,
                         TOKEN, "Bearer"):
                status, h, body = self.admin(path, auth, method)
                self.assertEqual(status, 401, (method, path, auth))
                self.assertEqual(h["www-authenticate"], "Bearer")
                self.assertNotIn(TOKEN, body)
        # The dashboard page holds no data (it asks /status with the token itself): it is
        # served without the token (tests/integration/test_dashboard.py drives it).
        status, h, body = self.admin("/")
        self.assertEqual(status, 200)
        self.assertTrue(h["content-type"].startswith("text/html"))
        self.assertNotIn(TOKEN, body)
        self.assertNotIn("web-1", body)
        # The right token, in any case of the scheme, opens them.
        self.assertEqual(self.admin("/status", "Bearer " + TOKEN)[0], 200)
        status, _, body = self.admin("/metrics", "bearer " + TOKEN)
        self.assertEqual(status, 200)
        self.assertIn("corral_sessions", body)
        self.assertEqual(self.admin("/backends/web-1/drain", "Bearer " + TOKEN, "POST")[0], 200)
        self.assertEqual(self.admin("/backends/web-1/auto", "Bearer " + TOKEN, "POST")[0], 200)
        self.assertEqual(self.admin("/no-such-page", "Bearer " + TOKEN)[0], 404)
        log = self.corral.proc.log()
        self.assertRegex(log, r"admin: GET /status refused \(401\)")
        self.assertNotIn(TOKEN, log)
        # Everything private and on loopback: no exposure warning at all.
        self.assertNotRegex(log, r"mode 0\d\d\d|not on loopback")

    def test_head_answers_carry_no_body(self):
        """HEAD gets GET's head (Content-Length of the GET body included) and not one body
        byte: on a keep-alive connection the next response starts right after the head."""
        self.start(0o600, 0o600, 0o600)
        auth = "Authorization: Bearer %s\r\n" % TOKEN
        asked = [("HEAD", "/status", auth), ("GET", "/status", auth), ("HEAD", "/", ""),
                 ("GET", "/", ""), ("HEAD", "/status", ""), ("GET", "/status", ""),
                 ("HEAD", "/metrics", auth), ("HEAD", "/no-such-page", auth),
                 ("GET", "/no-such-page", auth)]
        data = "".join("%s %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % a for a in asked)
        # All pipelined on one connection, half-closed: corral answers in order, then closes.
        out = harness.raw(self.corral.admin_port, data.encode(), shut=True)
        got = []
        for method, path, _ in asked:
            self.assertTrue(out.startswith(b"HTTP/1.1 "), (method, path, out[:200]))
            head, sep, out = out.partition(b"\r\n\r\n")
            self.assertTrue(sep, (method, path, head))
            lines = head.decode().split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
            length = int(headers["content-length"])
            self.assertGreater(length, 0, (method, path))
            body = b""
            if method == "GET":
                body, out = out[:length], out[length:]
                self.assertEqual(len(body), length, (method, path))
            got.append((int(lines[0].split()[1]), headers, body))
        self.assertEqual(out, b"", "bytes after the last answer")
        # Each HEAD answer is its GET's: same status and headers, Content-Length included
        # (/status changes between the two, so only its type is compared).
        statuses = [g[0] for g in got]
        self.assertEqual(statuses, [200, 200, 200, 200, 401, 401, 200, 404, 404])
        for i in (2, 4, 7):  # HEAD /, HEAD /status without the token, HEAD /no-such-page
            self.assertEqual(got[i][1], got[i + 1][1], asked[i])
            self.assertEqual(got[i][1]["content-length"], str(len(got[i + 1][2])), asked[i])
        self.assertEqual(got[0][1]["content-type"], got[1][1]["content-type"])
        self.assertEqual(set(got[0][1]), set(got[1][1]))
        self.assertIn(b"<!DOCTYPE html>", got[3][2])
        self.assertIn("content-security-policy", got[2][1])
        self.assertTrue(got[6][1]["content-type"].startswith("text/plain"))

        def head_alone(answer, status):
            """`answer` is one head with a Content-Length and nothing after it."""
            head, sep, rest = answer.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 %d " % status), answer[:200])
            self.assertRegex(head, rb"\r\nContent-Length: [1-9][0-9]*\r\n")
            self.assertEqual((sep, rest), (b"\r\n\r\n", b""), answer[:300])

        # A HEAD refused before any handler sees it (a body over the limit) gets its head
        # alone too ...
        head_alone(harness.raw(self.corral.admin_port,
                               b"HEAD /status HTTP/1.1\r\nHost: x\r\n"
                               b"Content-Length: 99999999\r\n\r\n", shut=True), 413)
        # ... while an error after a HEAD, on the same connection, before the next head is
        # read (an oversized one) still says why in a body.
        out = harness.raw(self.corral.admin_port,
                          ("HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n"
                           "X-Big: %s\r\n\r\n" % ("b" * 17000)).encode())
        first, _, rest = out.partition(b"\r\n\r\n")
        self.assertTrue(first.startswith(b"HTTP/1.1 200 "), out[:200])
        self.assertTrue(rest.startswith(b"HTTP/1.1 431 "), rest[:200])
        head, _, body = rest.partition(b"\r\n\r\n")
        self.assertIn(b"\r\nContent-Length: %d\r\n" % len(body), head)
        self.assertTrue(body.startswith(b'{"error":"'), rest)

    def test_exposed_files_are_named_at_start_and_reload(self):
        self.start(0o644, 0o640, 0o600)
        self.corral.proc.wait_line(r"level=warn msg=\"admin token file %s is mode 0644: "
                                   r"readable by group and others" % re.escape(self.token))
        self.corral.proc.wait_line(r"level=warn msg=\"secret file of "
                                   r"pools\.web\.set_headers\.project_id %s is mode 0640: "
                                   r"readable by group" % re.escape(self.secret))
        self.assertNotIn("config file", self.corral.proc.log())
        # Fixed files and an exposed config: the reload names only the config.
        os.chmod(self.token, 0o600)
        os.chmod(self.secret, 0o600)
        os.chmod(self.corral.path, 0o644)
        mark = len(self.corral.proc.lines)
        self.corral.proc.send(signal.SIGHUP)
        self.corral.proc.wait_line(r"config reloaded", start=mark)
        self.corral.proc.wait_line(r"level=warn msg=\"config file %s is mode 0644" %
                                   re.escape(self.corral.path), start=mark)
        after = "\n".join(self.corral.proc.lines[mark:])
        self.assertNotIn(self.token, after)
        self.assertNotIn(self.secret, after)


if __name__ == "__main__":
    harness.main()

"""Logs (README "Logs"): event lines as logfmt or JSON with time/level/msg, backend events
with pool= and backend=, the pool warnings once per change, the access log (fields, no
secret, SIGUSR1 reopen, drops counted when its reader stalls) and expose_backend."""
import fcntl
import http.client
import json
import os
import re
import signal
import socket
import tempfile
import time
import unittest

import harness

TOKEN = "T0kenOfAlice77"
COOKIE = "C00kieOfBob55"
HEADER_KEY = "HeaderKeyOfCarol33"
SECRET = "s3cr3t-injected-id"
QUERY = "QuerySecret99"
LEVELS = {"debug", "info", "warn", "error"}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^\s"=]+)')
# fall: 2, so one probe slower than 80 ms on a loaded machine (sanitizer build, -j2) does
# not mark the only backend down.
HEALTH = "    health: {interval: 100ms, timeout: 80ms, rise: 1, fall: 2}\n"


def parse_logfmt(line):
    """key=value pairs covering the whole line (values unquoted), or an AssertionError."""
    out, pos = {}, 0
    while pos < len(line):
        m = PAIR.match(line, pos)
        assert m, "not logfmt at %d: %r" % (pos, line)
        k, v = m.group(1), m.group(2)
        out[k] = json.loads(v.replace("\\x", "\\u00")) if v.startswith('"') else v
        pos = m.end()
        if pos < len(line):
            assert line[pos] == " ", "no space after a pair: %r" % line
            pos += 1
    return out


def check_event(fields, line):
    assert TIME.match(fields.get("time", "")), line
    assert fields.get("level") in LEVELS, line
    assert "msg" in fields, line


def config(fleet, log="", route_extra="", pool_extra=""):
    routes = ("      - {prefix: /kupo/, pool: kupo, strip_prefix: true%s}\n" % route_extra)
    return harness.listener_config(routes) + (
        "sticky:\n"
        "  keys:\n"
        "    - {from: path, prefix: /s/}\n"
        "    - {from: cookie, name: corral}\n"
        "    - {from: header, name: X-Session-Key}\n"
        "pools:\n"
        "  kupo:\n"
        "    kind: kupo\n"
        "    backends:\n%s%s%s"
        "%s") % (harness.backends_yaml(fleet), HEALTH, pool_extra, log)


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def metric(text, name):
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


class EventLogTest(unittest.TestCase):
    def test_logfmt_lines_backend_fields_and_pool_warnings_once(self):
        fleet = harness.Fleet(2)
        corral = harness.Corral(config(fleet))
        try:
            corral.proc.wait_line(r"corral \S+ running")
            mark = len(corral.proc.lines)
            fleet.control("kupo-1", dead=True)
            m = corral.proc.wait_line(r'msg="backend down" .*backend=kupo-1', start=mark)
            f = parse_logfmt(m.string)
            self.assertEqual((f["level"], f["pool"], f["backend"]), ("warn", "kupo", "kupo-1"))
            fleet.control("kupo-2", dead=True)
            corral.proc.wait_line(r'msg="pool has no backend left', start=mark)
            time.sleep(1.0)  # ten more probe rounds: still one warning, not one per probe
            log = "\n".join(corral.proc.lines[mark:])
            self.assertEqual(log.count("pool has no backend left"), 1, log)
            # Requests while nothing serves are refused; they warn nothing more.
            for _ in range(5):
                self.assertEqual(harness.get(corral.port, "/kupo/checkpoints")[0], 503)
            fleet.control("kupo-1", dead=False)
            m = corral.proc.wait_line(r'msg="pool has an up backend again"', start=mark)
            f = parse_logfmt(m.string)
            self.assertEqual((f["level"], f["pool"], f["up"]), ("info", "kupo", "1"))
            log = "\n".join(corral.proc.lines[mark:])
            self.assertEqual(log.count("pool has no backend left"), 1, log)
            # Every line of the run parses as logfmt with time, level and msg.
            for line in list(corral.proc.lines):
                check_event(parse_logfmt(line), line)
        finally:
            self.assertEqual(corral.stop(), 0)
            fleet.stop()

    def test_json_lines_and_access_to_stderr(self):
        fleet = harness.Fleet(1)
        corral = harness.Corral(config(fleet, "log: {format: json, access: true}\n"))
        try:
            self.assertEqual(harness.get(corral.port, "/kupo/checkpoints")[0], 200)
            mark = len(corral.proc.lines)
            fleet.control("kupo-1", dead=True)
            corral.proc.wait_line(r'"msg":"backend down"', start=mark)
            corral.proc.wait_line(r'"msg":"pool has no backend left', start=mark)
            corral.proc.wait_line(r'"msg":"request"')
            seen = {}
            for line in list(corral.proc.lines):
                obj = json.loads(line)
                check_event(obj, line)
                seen.setdefault(obj["msg"], obj)
            down = seen["backend down"]
            self.assertEqual((down["pool"], down["backend"]), ("kupo", "kupo-1"))
            req = seen["request"]
            self.assertEqual((req["status"], req["backend"], req["route"]),
                             (200, "kupo-1", "/kupo/"))
            self.assertIsInstance(req["duration_ms"], float)
            self.assertIn("pool has no backend left: every backend is down", seen)
        finally:
            self.assertEqual(corral.stop(), 0)
            fleet.stop()


    def test_reload_switches_format_and_access(self):
        fleet = harness.Fleet(1)
        corral = harness.Corral(config(fleet))
        try:
            self.assertEqual(harness.get(corral.port, "/kupo/checkpoints")[0], 200)
            time.sleep(0.2)
            self.assertNotIn("msg=request", corral.proc.log())  # access is off
            mark = len(corral.proc.lines)
            corral.rewrite(config(fleet, "log: {format: json, access: true}\n"))
            corral.proc.send(signal.SIGHUP)
            m = corral.proc.wait_line(r'"msg":"config reloaded from .*log changed', start=mark)
            json.loads(m.string)
            harness.wait_for(lambda: harness.get(corral.port, "/kupo/checkpoints")[0] == 200,
                     what="a 200 after the reload")
            m = corral.proc.wait_line(r'"msg":"request".*"status":200', start=mark)
            self.assertEqual(json.loads(m.string)["status"], 200)
            mark = len(corral.proc.lines)
            corral.rewrite(config(fleet))  # back to logfmt, access off
            corral.proc.send(signal.SIGHUP)
            m = corral.proc.wait_line(r'msg="config reloaded from', start=mark)
            check_event(parse_logfmt(m.string), m.string)
            harness.wait_for(lambda: harness.get(corral.port, "/kupo/checkpoints")[0] == 200,
                     what="a 200 after the second reload")
            time.sleep(0.3)
            self.assertNotIn("request", "\n".join(corral.proc.lines[mark:]))
        finally:
            self.assertEqual(corral.stop(), 0)
            fleet.stop()


class AccessLogTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fleet = harness.Fleet(2)
        cls.dir = tempfile.TemporaryDirectory()
        cls.path = os.path.join(cls.dir.name, "access.log")
        cls.corral = harness.Corral(
            config(cls.fleet, "log: {access: true, access_file: %s}\n" % cls.path,
                   ", expose_backend: X-Corral-Backend",
                   "    set_headers: {project_id: {env: CORRAL_TEST_PROJECT_ID}}\n"),
            env={"CORRAL_TEST_PROJECT_ID": SECRET})

    @classmethod
    def tearDownClass(cls):
        rc = cls.corral.stop()
        cls.fleet.stop()
        cls.dir.cleanup()
        assert rc == 0, rc

    def wait_lines(self, path, n):
        return harness.wait_for(lambda: (lambda ls: ls if len(ls) >= n else None)(read_lines(path)),
                        what="%d lines in %s" % (n, path))

    def test_1_one_line_per_request_with_fields_and_no_secret(self):
        before = len(read_lines(self.path))
        answers = [
            harness.get(self.corral.port, "/s/%s/kupo/checkpoints?x=%s" % (TOKEN, QUERY)),
            harness.get(self.corral.port, "/s/%s/kupo/checkpoints" % TOKEN),
            harness.get(self.corral.port, "/kupo/checkpoints", {"Cookie": "corral=" + COOKIE}),
            harness.get(self.corral.port, "/kupo/health", {"X-Session-Key": HEADER_KEY}),
            harness.get(self.corral.port, "/nowhere"),
        ]
        self.assertEqual([a[0] for a in answers], [200, 200, 200, 200, 404])
        lines = self.wait_lines(self.path, before + 5)[before:]
        time.sleep(0.3)
        self.assertEqual(len(read_lines(self.path)), before + 5)  # one line each, no more
        recs = [parse_logfmt(l) for l in lines]
        for r, line in zip(recs, lines):
            check_event(r, line)
            for k in ("listener", "route", "pool", "backend", "method", "status",
                      "duration_ms", "bytes_in", "bytes_out", "remap", "session"):
                self.assertIn(k, r, line)
            self.assertEqual(r["listener"], "public")
            self.assertRegex(r["duration_ms"], r"^\d+\.\d{3}$")
            self.assertGreater(int(r["bytes_in"]), 0)
            self.assertGreater(int(r["bytes_out"]), 0)
        for (status, headers, _), r in zip(answers[:4], recs[:4]):
            self.assertEqual((r["status"], r["route"], r["pool"], r["method"]),
                             ("200", "/kupo/", "kupo", "GET"))
            # expose_backend: the backend's name, which is the one that answered.
            self.assertEqual(headers["x-corral-backend"], headers["x-backend"])
            self.assertEqual(r["backend"], headers["x-backend"])
            self.assertRegex(r["session"], r"^[0-9a-f]{16}$")
        self.assertEqual(recs[0]["session"], recs[1]["session"])  # the same user
        self.assertEqual(len({recs[1]["session"], recs[2]["session"], recs[3]["session"]}), 3)
        # corral's own 404: no backend, no header.
        self.assertEqual((recs[4]["status"], recs[4]["backend"], recs[4]["pool"]), ("404", "", ""))
        self.assertNotIn("x-corral-backend", answers[4][1])
        with open(self.path) as f:
            text = f.read()
        for secret in (TOKEN, COOKIE, HEADER_KEY, SECRET, QUERY, "127.0.0.1", "?"):
            self.assertNotIn(secret, text)
        # The backends got the injected secret: it was there to leak.
        self.assertNotIn(SECRET, self.corral.proc.log())

    def test_2_sigusr1_after_rename_writes_a_new_file(self):
        harness.get(self.corral.port, "/kupo/checkpoints")
        n = len(self.wait_lines(self.path, 1))
        time.sleep(0.2)
        n = len(read_lines(self.path))
        rotated = self.path + ".1"
        os.rename(self.path, rotated)
        mark = len(self.corral.proc.lines)
        self.corral.proc.send(signal.SIGUSR1)
        self.corral.proc.wait_line(r"reopening the access log", start=mark)
        time.sleep(0.2)  # the writer reopens before its next line either way
        self.assertEqual(harness.get(self.corral.port, "/kupo/checkpoints")[0], 200)
        new = self.wait_lines(self.path, 1)
        self.assertEqual(len(new), 1)
        self.assertEqual(parse_logfmt(new[0])["status"], "200")
        self.assertEqual(len(read_lines(rotated)), n)


class ExposeBackendTest(unittest.TestCase):
    def test_a_backend_cannot_name_itself_otherwise(self):
        spoof = (b"HTTP/1.1 200 OK\r\nX-Corral-Backend: evil\r\nx-corral-backend: evil2\r\n"
                 b"Content-Length: 2\r\n\r\nok")
        backend = harness.RecordingBackend(lambda req: spoof)
        corral = harness.Corral(harness.listener_config(
            "      - {prefix: /, pool: web, expose_backend: X-Corral-Backend}\n") + (
            "pools:\n  web:\n    kind: http\n"
            "    backends: [{name: web-1, address: 127.0.0.1:%d}]\n") % backend.port)
        try:
            c = http.client.HTTPConnection("127.0.0.1", corral.port, timeout=10)
            c.request("GET", "/x")
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (200, b"ok"))
            self.assertEqual(r.headers.get_all("X-Corral-Backend"), ["web-1"])
            c.close()
        finally:
            self.assertEqual(corral.stop(), 0)
            backend.close()


class TunnelAccessTest(unittest.TestCase):
    def test_tunnel_gives_one_line_when_it_closes(self):
        fleet = harness.Fleet(1, name="ogmios", extra=("--kind", "ogmios"))
        d = tempfile.TemporaryDirectory()
        path = os.path.join(d.name, "access.log")
        routes = ("      - {prefix: /ogmios, pool: ogmios, strip_prefix: true, websocket: true, "
                  "expose_backend: X-Corral-Backend}\n")
        corral = harness.Corral(harness.listener_config(routes) + (
            "sticky:\n  keys:\n    - {from: path, prefix: /s/}\n"
            "pools:\n  ogmios:\n    kind: ogmios\n    backends:\n%s"
            "log: {access: true, access_file: %s}\n") % (harness.backends_yaml(fleet), path))
        try:
            s = socket.create_connection(("127.0.0.1", corral.port), timeout=10)
            s.sendall(b"GET /s/" + TOKEN.encode() + b"/ogmios HTTP/1.1\r\nHost: x\r\n"
                      b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      b"Sec-WebSocket-Version: 13\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(1)
            self.assertEqual(harness.status_of(head), 101, head)
            self.assertIn(b"\r\nX-Corral-Backend: ogmios-1\r\n", head)
            rpc = json.dumps({"jsonrpc": "2.0", "method": "queryNetwork/tip", "id": 1}).encode()
            s.sendall(bytes([0x81, 0x80 | len(rpc)]) + b"\0\0\0\0" + rpc)
            self.assertGreater(len(s.recv(4096)), 0)
            time.sleep(0.1)
            self.assertEqual(read_lines(path), [])  # written when the tunnel closes
            s.close()
            line = harness.wait_for(lambda: read_lines(path), what="the tunnel's line")
            self.assertEqual(len(line), 1, line)
            r = parse_logfmt(line[0])
            self.assertEqual((r["msg"], r["status"], r["pool"], r["backend"], r["route"]),
                             ("tunnel", "101", "ogmios", "ogmios-1", "/ogmios"))
            self.assertGreater(int(r["bytes_in"]), len(rpc))  # the handshake and the frame
            self.assertGreater(int(r["bytes_out"]), len(head))
            self.assertRegex(r["session"], r"^[0-9a-f]{16}$")
            self.assertNotIn(TOKEN, line[0])
        finally:
            self.assertEqual(corral.stop(), 0)
            fleet.stop()
            d.cleanup()


class AccessLogDropTest(unittest.TestCase):
    def test_stalled_reader_drops_and_counts(self):
        fleet = harness.Fleet(1)
        d = tempfile.TemporaryDirectory()
        fifo = os.path.join(d.name, "access.fifo")
        os.mkfifo(fifo)
        # A reader that never reads, on a one-page pipe: the writer stalls at once.
        rd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        fcntl.fcntl(rd, 1031, 4096)  # F_SETPIPE_SZ
        corral = None
        try:
            corral = harness.Corral(
                config(fleet, "log: {access: true, access_file: %s}\n" % fifo),
                env={"CORRAL_TEST_ACCESS_QUEUE_LINES": "4"})
            c = http.client.HTTPConnection("127.0.0.1", corral.port, timeout=10)
            for _ in range(100):
                c.request("GET", "/kupo/health")
                r = c.getresponse()
                r.read()
                self.assertEqual(r.status, 200)  # the log never holds a request up
            c.close()
            dropped = harness.wait_for(lambda: metric(corral.metrics(), "corral_access_log_dropped_total"),
                               what="dropped lines counted")
            self.assertGreater(dropped, 0)
            self.assertLessEqual(metric(corral.metrics(), "corral_access_log_queue_lines"), 4)
        finally:
            rc = corral.stop() if corral else 0  # the writer gives up on the reader
            os.close(rd)
            fleet.stop()
            d.cleanup()
            self.assertEqual(rc, 0)


if __name__ == "__main__":
    unittest.main()

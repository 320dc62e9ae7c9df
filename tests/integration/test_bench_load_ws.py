"""corral-bench load --ws against a small JSON-RPC WebSocket server (ws_rpc_server.py, on
python3-websockets) on 127.0.0.1: open-loop rate, answers matched by id, stickiness across
reconnects (and its violations when the server is not sticky), close codes counted (a code
sent by the server, and 1006 for a dropped TCP connection), handshake failures by status,
1,000 sockets at once, loopback only."""
import json
import os
import signal
import subprocess
import unittest

import harness

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ws_rpc_server.py")
PYTHON = "/usr/bin/python3"  # Debian's, with python3-websockets


def have_websockets():
    if not os.path.exists(PYTHON):
        return False
    return subprocess.run([PYTHON, "-c", "import websockets"], capture_output=True).returncode == 0


class WsServer:
    """ws_rpc_server.py as a child that dies with the test; stats() asks for its counts."""

    def __init__(self, sticky):
        argv = [PYTHON, SERVER] + (["--sticky"] if sticky else [])
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True,
                                  preexec_fn=harness._die_with_parent)
        harness._LIVE.add(self.p)
        line = self.p.stdout.readline()
        assert line.startswith("listening "), (line, self.p.stderr.read())
        self.port = int(line.split()[1])

    def stats(self):
        self.p.stdin.write("stats\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        assert line.startswith("stats "), line
        return json.loads(line[len("stats "):])

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)
        self.p.wait()
        harness._LIVE.discard(self.p)


def load(*args, expect=0, timeout=120):
    """Runs corral-bench load --json --ws and returns the parsed report."""
    out = subprocess.run([harness.BENCH, "load", "--ws", "--json", "--no-progress", *args],
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == expect, (out.returncode, out.stdout, out.stderr)
    return json.loads(out.stdout) if expect == 0 else out


@unittest.skipUnless(have_websockets(), "needs /usr/bin/python3 with python3-websockets")
class BenchLoadWs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sticky = WsServer(sticky=True)
        cls.random = WsServer(sticky=False)

    @classmethod
    def tearDownClass(cls):
        cls.sticky.stop()
        cls.random.stop()

    def url(self, server, query=""):
        return "ws://127.0.0.1:%d/rpc%s" % (server.port, query)

    def test_open_loop_rate_and_latency(self):
        before = self.sticky.stats()["messages"]
        r = load("--url", self.url(self.sticky), "--users", "20", "--key", "path", "--rate",
                 "400", "--duration", "2")
        ws = r["ws"]
        self.assertEqual(r["mode"], "open")
        # 400 messages/s for 2 s, over 20 sockets on a fixed schedule.
        self.assertGreater(r["requests"], 400 * 2 * 0.9, r)
        self.assertLess(r["requests"], 400 * 2 * 1.1, r)
        self.assertGreater(r["rate"], 360)
        self.assertEqual(ws["lost"], 0, r)
        self.assertEqual(ws["unmatched"], 0, r)  # every answer's top-level id matched
        self.assertLessEqual(ws["answered"], ws["sent"])
        self.assertEqual(ws["handshakes"], 20)
        self.assertEqual(r["statuses"], {"101": 20})
        self.assertEqual(ws["close_codes"], {})
        self.assertEqual(ws["method"], "queryNetwork/tip")
        lat = r["latency_ms"]
        self.assertGreater(lat["p50"], 0)
        self.assertLessEqual(lat["p50"], lat["p99"])
        self.assertLessEqual(lat["p99"], lat["max"])
        self.assertEqual(lat["count"], r["requests"] + r["unfinished"])
        # The server really answered them (it counts what it received).
        self.assertGreaterEqual(self.sticky.stats()["messages"] - before, r["requests"])

    def test_stickiness_across_reconnects(self):
        before = self.sticky.stats()["client_closes"].get("1000", 0)
        r = load("--url", self.url(self.sticky), "--users", "30", "--key", "path",
                 "--ws-reconnect-every", "5", "--duration", "1.5")
        ws = r["ws"]
        self.assertGreater(ws["client_closes"], 30 * 2, r)  # every user reconnected, often
        # Every client close is followed by one handshake (a run may end between the two).
        self.assertGreaterEqual(ws["handshakes"], ws["client_closes"])
        self.assertLessEqual(ws["handshakes"], 30 + ws["client_closes"])
        self.assertEqual(r["users_seen"], 30)
        self.assertEqual(r["sticky_violations"], 0, r)
        self.assertEqual(ws["close_codes"], {}, r)  # closes we started are not the server's
        self.assertEqual(ws["lost"], 0, r)  # a socket is closed only once its answers are in
        # The server saw our closes, with code 1000.
        after = self.sticky.stats()["client_closes"].get("1000", 0)
        self.assertGreaterEqual(after - before, ws["client_closes"] - 30)

    def test_stickiness_violations_are_counted(self):
        # A server that picks a backend at random per connection: users change backend.
        r = load("--url", self.url(self.random), "--users", "30", "--key", "cookie:sid",
                 "--ws-reconnect-every", "3", "--duration", "1.5")
        self.assertGreater(r["ws"]["client_closes"], 30 * 3, r)
        self.assertEqual(r["users_seen"], 30)
        self.assertGreater(r["sticky_violations"], 20, r)
        self.assertEqual(sorted(r["backends"]), ["ws-a", "ws-b", "ws-c"])

    def test_server_close_codes_are_counted(self):
        before = self.sticky.stats()["closes"].get("4001", 0)
        r = load("--url", self.url(self.sticky, "?close_after=5&code=4001"), "--users", "10",
                 "--key", "path", "--duration", "1.5", "--ws-backoff", "20")
        codes = r["ws"]["close_codes"]
        self.assertEqual(list(codes), ["4001"], r)
        server_closes = self.sticky.stats()["closes"].get("4001", 0) - before
        self.assertGreater(codes["4001"], 10, r)
        # Each close the server sent is seen, but for those still on the way at the end.
        self.assertLessEqual(codes["4001"], server_closes)
        self.assertGreaterEqual(codes["4001"], server_closes - 10)
        self.assertEqual(r["sticky_violations"], 0)  # the server's reconnects stay sticky too
        self.assertGreater(r["requests"], 0)

    def test_dropped_connection_is_1006(self):
        r = load("--url", self.url(self.sticky, "?close_after=4&code=1006"), "--users", "10",
                 "--key", "header:X-Session", "--rate", "300", "--duration", "1.5",
                 "--ws-backoff", "10")
        codes = r["ws"]["close_codes"]
        self.assertEqual(list(codes), ["1006"], r)
        self.assertGreater(codes["1006"], 20, r)
        self.assertGreater(r["ws"]["handshakes"], codes["1006"])  # every drop reconnected

    def test_handshake_failures_by_status(self):
        r = load("--url", self.url(self.sticky, "?deny_every=3&close_after=3&code=1001"),
                 "--users", "10", "--key", "path", "--duration", "1.5", "--ws-backoff", "10")
        ws = r["ws"]
        self.assertGreater(r["statuses"].get("403", 0), 5, r)
        self.assertEqual(ws["handshake_failures"], r["statuses"]["403"])
        self.assertEqual(ws["handshakes"], r["statuses"]["101"])
        self.assertEqual(ws["bad_accept"], 0)
        self.assertGreater(ws["close_codes"].get("1001", 0), 5)
        self.assertGreater(r["requests"], 0)

    def test_a_thousand_sockets(self):
        r = load("--url", self.url(self.sticky), "--users", "1000", "--key", "path",
                 "--duration", "3", "--warmup", "2", "--threads", "2", "--timeout", "10")
        ws = r["ws"]
        self.assertEqual(ws["handshakes"], 1000, r)
        self.assertEqual(r["users_seen"], 1000)
        self.assertEqual(r["sticky_violations"], 0)
        self.assertEqual(r["errors"]["total"], 0, r)
        self.assertGreater(r["requests"], 1000)

    def test_only_loopback_and_dead_ports(self):
        out = load("--url", "ws://10.1.2.3:80/", expect=2)
        self.assertIn("loopback", out.stderr)
        out = load("--url", self.url(self.sticky), "--ws-method", 'bad"name', expect=2)
        self.assertIn("--ws-method", out.stderr)
        # A closed port: nothing answered, exit 1 with the reason.
        port = harness.free_port() if hasattr(harness, "free_port") else 1
        out = load("--url", "ws://127.0.0.1:%d/" % port, "--duration", "0.3", expect=1)
        self.assertIn("no message got an answer", out.stderr)


if __name__ == "__main__":
    unittest.main()

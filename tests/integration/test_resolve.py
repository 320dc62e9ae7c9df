"""Backend host names: `localhost:PORT` (from /etc/hosts, loopback only) is resolved at
start, re-resolved every resolve_interval on the control loop, and served throughout;
/status lists the addresses in use."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Corral, RecordingBackend, get, listener_config  # noqa: E402


def config(port, interval="1s"):
    return listener_config("      - {prefix: /, pool: web}\n") + (
        "pools:\n"
        "  web:\n"
        "    kind: http\n"
        "    resolve_interval: %s\n"
        "    health: {interval: 500ms, timeout: 400ms, rise: 1, fall: 2}\n"
        "    backends: [{name: named, address: localhost:%d}]\n") % (interval, port)


class ResolveTest(unittest.TestCase):
    def test_named_backend_served_across_re_resolutions(self):
        backend = RecordingBackend()
        corral = Corral(config(backend.port))
        try:
            corral.proc.wait_line(r'msg="localhost:%d resolves to 127\.0\.0\.1:%d[^"]*" '
                                  r'pool=web backend=named'
                                  % (backend.port, backend.port))
            self.assertEqual(get(corral.port, "/a")[0], 200)
            b = corral.status()["pools"][0]["backends"][0]
            self.assertTrue(b["resolved"])
            self.assertIn("127.0.0.1:%d" % backend.port, b["addresses"])
            # Three intervals pass: lookups run (an unchanged answer is not logged), and
            # nothing fails or goes down meanwhile.
            time.sleep(3.2)
            self.assertEqual(get(corral.port, "/b")[0], 200)
            self.assertEqual(corral.status()["pools"][0]["backends"][0]["state"], "up")
            self.assertNotIn("lookup failed", corral.proc.log())
            self.assertIn(b"GET /b ", backend.received())
        finally:
            rc = corral.stop()
            backend.close()
        self.assertEqual(rc, 0)

    def test_interval_below_one_second_refused(self):
        from harness import CORRAL, Proc
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(config(1, "100ms"))
        try:
            p = Proc([CORRAL, "--check", f.name])
            self.assertNotEqual(p.p.wait(timeout=10), 0)
            p.wait_line(r"resolve_interval must be at least 1s")
        finally:
            os.unlink(f.name)


if __name__ == "__main__":
    unittest.main(verbosity=2)

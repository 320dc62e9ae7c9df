"""Health's marks for the data path (issue 8), as /status shows them: an operator's
override is flagged while it is in force, and slow start begins for a backend that
returns from down or that a reload adds, never at process start nor after a drain."""
import signal
import time
import unittest

import harness


def config(fleet, names):
    return ("admin: {listen: 127.0.0.1:0}\n"
            "listeners:\n  - name: public\n    listen: 127.0.0.1:0\n    routes:\n"
            "      - {prefix: /, pool: kupo}\n"
            "sticky:\n  keys: [{from: header, name: X-Session-Key}]\n"
            "pools:\n  kupo:\n    kind: kupo\n    backends:\n" +
            harness.backends_yaml(fleet, names) +
            "    health: {interval: 300ms, timeout: 200ms}\n")


class HealthMarks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fleet = harness.Fleet(3)
        cls.corral = harness.Corral(config(cls.fleet, ["kupo-1", "kupo-2"]))

    @classmethod
    def tearDownClass(cls):
        cls.corral.stop()
        cls.fleet.stop()

    def backends(self):
        return {b["name"]: b for b in self.corral.status()["pools"][0]["backends"]}

    def post(self, name, action):
        status, _, body = harness.get(self.corral.admin_port, "/backends/%s/%s" % (name, action),
                                      method="POST")
        self.assertEqual(status, 200, body)

    def test_marks(self):
        b = self.backends()
        # Process start: no ramp, no override.
        for name in ("kupo-1", "kupo-2"):
            self.assertEqual(b[name]["slow_start"], 1, b[name])
            self.assertIsNone(b[name]["health"]["override"])

        # An operator's down then up is a return from down: the ramp starts near 10%.
        self.post("kupo-1", "down")
        self.assertEqual(self.backends()["kupo-1"]["health"]["override"], "down")
        self.post("kupo-1", "up")
        k1 = self.backends()["kupo-1"]
        self.assertEqual(k1["health"]["override"], "up")
        self.assertEqual(k1["state"], "up")
        self.assertGreaterEqual(k1["slow_start"], 0.1)
        self.assertLess(k1["slow_start"], 0.3)  # 30 s window: a few seconds in at most
        time.sleep(0.5)
        self.assertGreater(self.backends()["kupo-1"]["slow_start"], k1["slow_start"])
        self.post("kupo-1", "auto")
        self.assertIsNone(self.backends()["kupo-1"]["health"]["override"])

        # A drain and its end: the backend kept its users, no ramp.
        self.post("kupo-2", "drain")
        self.assertEqual(self.backends()["kupo-2"]["state"], "draining")
        self.post("kupo-2", "auto")
        k2 = self.backends()["kupo-2"]
        self.assertEqual(k2["state"], "up")
        self.assertEqual(k2["slow_start"], 1)

        # A reload adds kupo-3: it ramps; kupo-2, already there, does not.
        self.corral.rewrite(config(self.fleet, ["kupo-1", "kupo-2", "kupo-3"]))
        self.corral.proc.send(signal.SIGHUP)
        self.corral.proc.wait_line(r"config reloaded from")
        b = self.backends()
        self.assertIn("kupo-3", b)
        self.assertGreaterEqual(b["kupo-3"]["slow_start"], 0.1)
        self.assertLess(b["kupo-3"]["slow_start"], 0.3)
        self.assertEqual(b["kupo-2"]["slow_start"], 1)


if __name__ == "__main__":
    harness.main()

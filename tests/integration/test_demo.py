"""`corral --demo` (the README's first command) serves three simulated Kupo instances on
127.0.0.1:8080 with the admin listener on :9901, and stops cleanly on SIGTERM."""
import subprocess
import signal

import harness


class Demo(harness.unittest.TestCase):
    def test_demo_serves_three_instances(self):
        p = harness.Proc([harness.CORRAL, "--demo"])
        try:
            p.wait_line(r"corral \S+ running: .*config <demo>")
            seen = set()
            for i in range(60):
                status, h, _ = harness.get(8080, "/checkpoints", {"X-Session-Key": "demo%d" % i})
                self.assertEqual(status, 200)
                seen.add(h["x-backend"])
            self.assertEqual(seen, {"kupo-1", "kupo-2", "kupo-3"})
            st = harness.get_json(9901, "/status")
            self.assertEqual(sum(b["pinned_sessions"] for b in st["pools"][0]["backends"]), 60)
        finally:
            self.assertEqual(p.stop(signal.SIGTERM), 0)


if __name__ == "__main__":
    harness.main()

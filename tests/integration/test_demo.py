"""`corral --demo` (the README's first command) serves three simulated Kupo instances on
127.0.0.1:8080 (and two simulated Ogmios at /ogmios) with the admin listener on :9901, and
stops cleanly on SIGTERM."""
import json
import signal
import time

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
            ogmios = [p for p in st["pools"] if p["name"] == "ogmios"][0]
            self.assertEqual(sorted(b["name"] for b in ogmios["backends"]),
                             ["ogmios-1", "ogmios-2"])
            # The simulated Ogmios answer through corral over HTTP (prefix stripped).
            deadline = time.time() + 15
            while True:
                status, h, body = harness.get(8080, "/ogmios/health")
                if status == 200 or time.time() > deadline:
                    break
                time.sleep(0.2)
            self.assertEqual(status, 200, body)
            self.assertIn(h["x-backend"], {"ogmios-1", "ogmios-2"})
            self.assertEqual(json.loads(body)["connectionStatus"], "connected")
            status, _, body = harness.get(
                8080, "/ogmios", method="POST",
                body='{"jsonrpc":"2.0","method":"queryNetwork/tip","id":"d"}',
                headers={"Content-Type": "application/json"})
            self.assertEqual((status, json.loads(body)["id"]), (200, "d"))
        finally:
            self.assertEqual(p.stop(signal.SIGTERM), 0)


if __name__ == "__main__":
    harness.main()

"""`corral-bench backend`'s issue-13 controls over HTTP: fork_at (Kupo ETag, checkpoints,
If-None-Match; Ogmios lastKnownTip), read_only_stale and rollback, on real processes."""
import json

import harness

JSON = {"Accept": "application/json"}


def control(port, **settings):
    return json.loads(harness.post_json(port, "/_sim/control", settings))


def checkpoint_at(port, slot):
    status, _, body = harness.get(port, "/checkpoints/%d" % slot)
    assert status == 200, (status, body)
    return json.loads(body)


class SimChainFaults(harness.unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A fixed tip (frozen), so that two instances agree on every slot we ask about.
        cls.kupo = harness.Fleet(3, name="kupo", extra=("--tip", "100000000", "--freeze-tip"))
        try:
            cls.ogmios = harness.Fleet(2, name="ogmios",
                                       extra=("--kind", "ogmios", "--tip", "100000000",
                                              "--freeze-tip"))
        except BaseException:
            cls.kupo.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.ogmios.stop()
        cls.kupo.stop()

    def port(self, name):
        return self.kupo.backends[name]

    def tearDown(self):
        for n in self.kupo.names():
            control(self.port(n), fork_at=None, read_only_stale=False, health="synced")
        for n in self.ogmios.names():
            control(self.ogmios.backends[n], fork_at=None, health="synced")

    def test_fork_kupo(self):
        a, b, c = (self.port(n) for n in self.kupo.names())
        _, ha, _ = harness.get(a, "/matches")
        _, hb, _ = harness.get(b, "/matches")
        self.assertEqual(ha["etag"], hb["etag"])
        honest_etag = ha["etag"]
        for p in (b, c):
            self.assertEqual(control(p, fork_at=99999900)["fork_at"], 99999900)
        _, hb, _ = harness.get(b, "/matches")
        _, hc, _ = harness.get(c, "/matches")
        self.assertEqual(hb["x-most-recent-checkpoint"], "100000000")
        self.assertNotEqual(hb["etag"], honest_etag)
        self.assertEqual(hb["etag"], hc["etag"])  # forked at the same slot: they agree
        # The checkpoints below the fork agree with the honest one, above it they do not.
        self.assertEqual(checkpoint_at(a, 99999880), checkpoint_at(b, 99999880))
        fa, fb = checkpoint_at(a, 99999960), checkpoint_at(b, 99999960)
        self.assertEqual(fa["slot_no"], fb["slot_no"])
        self.assertNotEqual(fa["header_hash"], fb["header_hash"])
        self.assertEqual(fb, checkpoint_at(c, 99999960))
        _, _, listing = harness.get(b, "/checkpoints")
        self.assertEqual(json.loads(listing)[0]["header_hash"], hb["etag"])
        # If-None-Match: the fork's own ETag is fresh there, the honest one is not.
        self.assertEqual(harness.get(b, "/matches", {"If-None-Match": hb["etag"]})[0], 304)
        self.assertEqual(harness.get(b, "/matches", {"If-None-Match": honest_etag})[0], 200)
        # Every Kupo response carries the checkpoint, even /health.
        self.assertEqual(harness.get(b, "/health", JSON)[1]["x-most-recent-checkpoint"],
                         "100000000")
        self.assertIsNone(control(b, fork_at=None)["fork_at"])
        self.assertEqual(harness.get(b, "/matches")[1]["etag"], honest_etag)
        # A bad value changes nothing and says why.
        status, _, body = harness.get(c, "/_sim/control", method="POST",
                                      body=json.dumps({"fork_at": "soon"}))
        self.assertEqual(status, 400)
        self.assertIn("fork_at", body)
        self.assertEqual(harness.get_json(c, "/_sim/control")["fork_at"], 99999900)

    def test_read_only_stale_and_rollback_kupo(self):
        live = harness.Fleet(1, name="live")  # a moving tip, apart from the frozen fleet
        p = live.backends["live-1"]
        try:
            state = control(p, read_only_stale=True, tip_lag_slots=5000)
            self.assertTrue(state["read_only_stale"])
            status, headers, body = harness.get(p, "/health", JSON)
            h = json.loads(body)
            self.assertEqual(status, 200)  # a lag cannot show: its tip is its checkpoint
            self.assertEqual(h["most_recent_node_tip"], h["most_recent_checkpoint"])
            self.assertEqual(headers["x-most-recent-checkpoint"], str(h["most_recent_checkpoint"]))
            frozen = h["most_recent_checkpoint"]
            control(p, read_only_stale=False, tip_lag_slots=0)

            before = int(harness.get(p, "/matches")[1]["x-most-recent-checkpoint"])
            state = control(p, rollback=200)
            self.assertEqual(state["rolled_back_slots"], 200)
            after = int(harness.get(p, "/matches")[1]["x-most-recent-checkpoint"])
            self.assertLessEqual(after, before - 180)  # back 200 slots, give or take a block
            self.assertGreaterEqual(after, before - 240)
            status, _, body = harness.get(p, "/health", JSON)
            self.assertEqual(status, 200)
            self.assertEqual(checkpoint_at(p, before)["slot_no"], after)
            control(p, health="synced")
            self.assertGreaterEqual(
                int(harness.get(p, "/matches")[1]["x-most-recent-checkpoint"]), before)
            self.assertNotEqual(frozen, 0)
        finally:
            live.stop()

    def test_fork_and_rollback_ogmios(self):
        a, b = (self.ogmios.backends[n] for n in self.ogmios.names())
        ta = json.loads(harness.get(a, "/health")[2])["lastKnownTip"]
        tb = json.loads(harness.get(b, "/health")[2])["lastKnownTip"]
        self.assertEqual(ta, tb)
        control(b, fork_at=ta["slot"] - 40)
        fb = json.loads(harness.get(b, "/health")[2])["lastKnownTip"]
        self.assertEqual(fb["slot"], ta["slot"])
        self.assertEqual(fb["height"], ta["height"])
        self.assertNotEqual(fb["id"], ta["id"])
        # The JSON-RPC tip agrees with /health.
        status, _, body = harness.get(
            b, "/", method="POST", body=json.dumps({"jsonrpc": "2.0", "method": "queryNetwork/tip"}),
            headers={"Content-Type": "application/json"})
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["result"]["id"], fb["id"])
        control(a, rollback=100)
        ra = json.loads(harness.get(a, "/health")[2])["lastKnownTip"]
        self.assertEqual(ra["slot"], ta["slot"] - 100)
        self.assertLess(ra["height"], ta["height"])


if __name__ == "__main__":
    harness.unittest.main()

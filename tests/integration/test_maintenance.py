"""Backend states set by the operator (POST /backends/NAME/up|drain|down on the admin
listener): a drained backend keeps its users and takes no new ones; a down one hands its
users over; with nothing left, clients get 503 with Retry-After."""
import json
import os
import tempfile

import harness


def post(corral, path):
    return harness.get(corral.admin_port, path, method="POST")


class Maintenance(harness.unittest.TestCase):
    def setUp(self):
        self.fleet = harness.Fleet(3)
        self.corral = harness.Corral(harness.kupo_config(self.fleet))

    def tearDown(self):
        rc = self.corral.stop()
        self.fleet.stop()
        self.assertEqual(rc, 0)

    def backend_of(self, user):
        status, h, body = harness.get(self.corral.port, "/kupo/checkpoints",
                                      {"X-Session-Key": user})
        self.assertEqual(status, 200, body)
        return h["x-backend"]

    def test_drain_keeps_users_and_takes_no_new_ones(self):
        before = {u: self.backend_of(u) for u in ("u%d" % i for i in range(60))}
        status, _, body = post(self.corral, "/backends/kupo-1/drain")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["override"], "draining")
        for u, b in before.items():
            self.assertEqual(self.backend_of(u), b)  # nobody moved
        new = {self.backend_of("new%d" % i) for i in range(60)}
        self.assertNotIn("kupo-1", new)

    def test_down_moves_only_its_users(self):
        before = {u: self.backend_of(u) for u in ("u%d" % i for i in range(60))}
        self.assertEqual(post(self.corral, "/backends/kupo-2/down")[0], 200)
        after = {u: self.backend_of(u) for u in before}
        for u in before:
            if before[u] == "kupo-2":
                self.assertNotEqual(after[u], "kupo-2")
            else:
                self.assertEqual(after[u], before[u])
        # Moved users stay where they moved to, and coming back moves nobody.
        self.assertEqual(post(self.corral, "/backends/kupo-2/up")[0], 200)
        self.assertEqual({u: self.backend_of(u) for u in before}, after)
        # An operator's down is its own move reason (DESIGN.md "Move reasons").
        self.assertRegex(self.corral.metrics(), r'corral_remaps_total\{pool="kupo",reason="admin"\} [1-9]')
        self.assertRegex(self.corral.metrics(), r'corral_remaps_total\{pool="kupo",reason="down"\} 0')

    def test_all_down_is_503_with_retry_after_and_drained_still_serve(self):
        for n in ("kupo-1", "kupo-2"):
            post(self.corral, "/backends/%s/down" % n)
        post(self.corral, "/backends/kupo-3/drain")
        # Nothing is up: draining serves rather than fail.
        self.assertEqual(self.backend_of("someone"), "kupo-3")
        post(self.corral, "/backends/kupo-3/down")
        status, h, body = harness.get(self.corral.port, "/kupo/checkpoints")
        self.assertEqual(status, 503)
        self.assertEqual(h["retry-after"], "5")
        self.assertEqual(json.loads(body), {"error": "no backend available", "status": 503})
        post(self.corral, "/backends/kupo-1/up")
        self.assertEqual(self.backend_of("someone"), "kupo-1")

    def test_bad_admin_requests(self):
        self.assertEqual(post(self.corral, "/backends/nope/down")[0], 404)
        self.assertEqual(post(self.corral, "/backends/kupo-1/sideways")[0], 400)
        self.assertEqual(harness.get(self.corral.admin_port, "/nothing")[0], 404)



class AdminToken(harness.unittest.TestCase):
    def test_bearer_token_required_when_configured(self):
        fleet = harness.Fleet(1)
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            f.write("t0ken-xyz\n")
        cfg = harness.kupo_config(fleet).replace(
            "admin: {listen: 127.0.0.1:0}", "admin: {listen: 127.0.0.1:0, token_file: %s}" % f.name)
        corral = harness.Corral(cfg)
        try:
            status, h, _ = harness.get(corral.admin_port, "/status")
            self.assertEqual(status, 401)
            self.assertEqual(h["www-authenticate"], "Bearer")
            status, _, _ = harness.get(corral.admin_port, "/status",
                                       {"Authorization": "Bearer wrong"})
            self.assertEqual(status, 401)
            status, _, body = harness.get(corral.admin_port, "/metrics",
                                          {"Authorization": "Bearer t0ken-xyz"})
            self.assertEqual(status, 200)
            self.assertIn("corral_sessions", body)
            self.assertNotIn("t0ken-xyz", corral.proc.log())
        finally:
            self.assertEqual(corral.stop(), 0)
            fleet.stop()
            os.unlink(f.name)


if __name__ == "__main__":
    harness.main()

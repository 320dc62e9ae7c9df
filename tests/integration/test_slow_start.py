"""Moved users and slow start (issue 8), with the real corral and simulated Kupo instances.
Probes every 200 ms (rise 2, fall 2); ejection after 3 consecutive 503s for 1 s; a backend
that returns takes newcomers at a share ramping from 10% to 100% over 4 s."""
import time

import harness
from test_health import HealthCase

RAMP_S = 4.0


class SlowStart(HealthCase):
    HEALTH = ("    health: {interval: 200ms, timeout: 150ms, rise: 2, fall: 2}\n"
              "    eject: {consecutive_503: 3, base_time: 1s, max_time: 10s, max_percent: 50}\n"
              "    timeouts: {connect: 500ms, response: 2s}\n"
              "    slow_start: 4s\n")
    # Without bounded loads a wave's share is the ramp's alone, not the loads' too.
    STICKY_EXTRA = "  balance_factor: 0\n"

    def test_moved_users_never_see_a_503_from_a_backend_leaving_ejection(self):
        # kupo-1 answers 503 to every data request throughout; it is ejected, its ejection
        # runs out, and then kupo-2 dies. kupo-2's users move; those placed on kupo-1 as it
        # comes back get its 503 retried on the next candidate, as a new user's is.
        self.start()
        users = self.pin_users("u", 150)
        movers = [u for u, b in users.items() if b == "kupo-2"]
        self.assertGreater(len(movers), 20)
        self.control("kupo-1", overload=True)
        k1_users = [u for u, b in users.items() if b == "kupo-1"]
        for u in k1_users[:3]:
            self.assertEqual(self.ask(u)[0], 503)  # pinned users see their backend's 503
        self.wait_states({"kupo-1": "draining"}, 1)
        self.wait_states({"kupo-1": "up"}, 3)  # the ejection (1 s) ran out
        self.control("kupo-2", dead=True)
        answered = {}
        t_end = time.time() + 3.0  # past the ejection's end and kupo-2 being marked down
        while time.time() < t_end:
            for u in movers:
                status, b = self.ask(u)
                self.assertEqual(status, 200, "figure: every moved user is answered 200")
                self.assertNotIn(b, ("kupo-1", "kupo-2"))
                answered.setdefault(u, b)
                self.assertEqual(b, answered[u], "figure: a moved user stays where it went")
        self.assertEqual(set(answered), set(movers))
        retried = self.corral.metrics()
        self.assertRegex(retried, r'corral_remaps_total\{pool="kupo",reason="down"\} [1-9]')

    def test_returning_backend_takes_a_growing_share_of_newcomers(self):
        self.start()
        self.control("kupo-3", dead=True)
        self.wait_states({"kupo-3": "down"}, 2)
        self.control("kupo-3", dead=False)
        self.wait_states({"kupo-3": "up"}, 2)
        t_up = time.time()

        def wave(prefix, n=300):
            got = self.pin_users(prefix, n)
            return list(got.values()).count("kupo-3") / n

        early = wave("early")  # within the first second or so of the ramp
        time.sleep(max(0.0, t_up + RAMP_S / 2 - time.time()))
        mid = wave("mid")
        time.sleep(max(0.0, t_up + RAMP_S + 0.5 - time.time()))
        full = wave("full")
        print("slow start shares of newcomers on the returning backend: "
              "early %.2f, mid %.2f, after %.2f" % (early, mid, full))
        # Rendezvous gives each of 3 backends about a third of newcomers at full share
        # (300 users: one standard deviation is 0.027).
        self.assertLess(early, 0.15, "figure: not a full share at once")
        self.assertLess(early + 0.05, mid)
        self.assertLess(mid + 0.05, full)
        self.assertGreater(full, 0.26, "figure: a full share after the window")


if __name__ == "__main__":
    harness.unittest.main(verbosity=2)

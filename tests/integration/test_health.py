"""Health (issue 3), with the real corral and simulated Kupo instances. Each test states
the figure it checks. Probes every 200 ms, rise 2, fall 2; ejection after 3 consecutive
503s for 2 s (doubling), at most 50% of a pool."""
import json
import signal
import time

import harness

HEALTH = ("    health: {interval: 200ms, timeout: 150ms, rise: 2, fall: 2, max_lag_slots: 600}\n"
          "    eject: {consecutive_503: 3, base_time: 2s, max_time: 10s, max_percent: 50}\n"
          "    timeouts: {connect: 500ms, response: 2s}\n"
          "    slow_start: 0s\n")  # the ramp has its own suite (test_slow_start.py)


def config(backends, health=HEALTH, sticky_extra=""):
    """backends: {name: port}"""
    lines = "".join("      - {name: %s, address: 127.0.0.1:%d}\n" % (n, p)
                    for n, p in sorted(backends.items()))
    return ("admin: {listen: 127.0.0.1:0}\n"
            "listeners:\n  - name: public\n    listen: 127.0.0.1:0\n    routes:\n"
            "      - {prefix: /, pool: kupo}\n"
            "sticky:\n  keys: [{from: header, name: X-Session-Key}]\n" + sticky_extra +
            "pools:\n  kupo:\n    kind: kupo\n    backends:\n" + lines + health)


class HealthCase(harness.unittest.TestCase):
    """A fleet, corral in front of it, and the helpers every health test uses."""
    HEALTH = HEALTH
    STICKY_EXTRA = ""

    def start(self, n=3, extra_fleets=()):
        self.fleet = harness.Fleet(n)
        self.fleets = [self.fleet] + [harness.Fleet(1, name=f) for f in extra_fleets]
        for f in self.fleets:
            self.addCleanup(f.stop)  # even when corral fails to start
        ports = {}
        for f in self.fleets:
            ports.update(f.backends)
        self.corral = harness.Corral(config(ports, self.HEALTH, self.STICKY_EXTRA))
        self.wait_states({name: "up" for name in ports}, timeout=3)

    def tearDown(self):
        if hasattr(self, "corral"):
            self.assertEqual(self.corral.stop(), 0)

    def control(self, name, **kw):
        for f in self.fleets:
            if name in f.backends:
                return f.control(name, **kw)
        raise KeyError(name)

    def states(self):
        return {b["name"]: b["state"] for b in self.corral.status()["pools"][0]["backends"]}

    def wait_states(self, want, timeout):
        """Waits until every named backend is in the wanted state; returns seconds taken."""
        t0 = time.time()
        while True:
            st = self.states()
            if all(st.get(k) == v for k, v in want.items()):
                return time.time() - t0
            if time.time() - t0 > timeout:
                self.fail("states %s, wanted %s after %.1fs" % (st, want, timeout))
            time.sleep(0.02)

    def ask(self, user, path="/checkpoints"):
        status, h, body = harness.get(self.corral.port, path, {"X-Session-Key": user})
        return status, h.get("x-backend")

    def pin_users(self, prefix, n):
        out = {}
        for i in range(n):
            status, b = self.ask("%s%d" % (prefix, i))
            self.assertEqual(status, 200)
            out["%s%d" % (prefix, i)] = b
        return out


class Health(HealthCase):
    def test_overloaded_instance_takes_no_new_users_within_1s_and_keeps_its_own(self):
        self.start()
        old = self.pin_users("old", 60)
        mine = [u for u, b in old.items() if b == "kupo-1"]
        self.assertTrue(mine)
        self.control("kupo-1", overload=True)
        t0 = time.time()
        # Its own users keep asking (and get Kupo's 503 from kupo-1: they stay pinned).
        for u in mine[:4]:
            status, b = self.ask(u)
            self.assertEqual((status, b), (503, "kupo-1"))
        took = self.wait_states({"kupo-1": "draining"}, timeout=1.0)
        self.assertLess(time.time() - t0, 1.0)
        new = self.pin_users("new", 60)
        self.assertNotIn("kupo-1", set(new.values()), "figure: 0 new users on kupo-1")
        for u in mine:
            self.assertEqual(self.ask(u)[1], "kupo-1", "figure: every pinned user stays")
        print("overloaded -> draining in %.3fs" % took)

    def test_new_user_503_is_retried_once_on_the_next_candidate(self):
        self.start()
        self.control("kupo-2", overload=True)
        # Before any ejection: brand-new users whose first choice is kupo-2 get 200 elsewhere.
        new = self.pin_users("fresh", 40)
        self.assertNotIn("kupo-2", set(new.values()))
        retried = sum(b["retried_503"] for b in self.corral.status()["pools"][0]["backends"])
        self.assertGreater(retried, 0)

    def test_killed_instance_users_move_within_1s_and_stay_no_one_else_moves(self):
        self.start(n=2, extra_fleets=("solo",))
        old = self.pin_users("u", 90)
        victims = [u for u, b in old.items() if b == "solo-1"]
        self.assertTrue(victims)
        self.fleets[1].proc.p.kill()
        self.fleets[1].proc.p.wait()
        t0 = time.time()
        moved = {}
        for u in victims:
            status, b = self.ask(u)
            self.assertEqual(status, 200, "figure: served at once, no error")
            self.assertNotEqual(b, "solo-1")
            moved[u] = b
        self.assertLess(time.time() - t0, 1.0, "figure: all moved users served within 1 s")
        self.wait_states({"solo-1": "down"}, timeout=2)
        for u in victims:
            self.assertEqual(self.ask(u)[1], moved[u], "figure: moved users stay")
        for u, b in old.items():
            if b != "solo-1":
                self.assertEqual(self.ask(u)[1], b, "figure: no user of a healthy instance moves")

    def test_lagging_instances_take_no_new_users(self):
        self.start()
        self.control("kupo-1", health="behind")           # health 202
        self.control("kupo-2", tip_lag_slots=1000)        # checkpoint 1000 slots behind
        self.wait_states({"kupo-1": "draining", "kupo-2": "draining", "kupo-3": "up"}, 2)
        new = self.pin_users("n", 40)
        self.assertEqual(set(new.values()), {"kupo-3"}, "figure: 0 new users on lagging ones")
        st = self.corral.status()["pools"][0]["backends"]
        lag = {b["name"]: b["health"]["lag_slots"] for b in st}
        self.assertGreaterEqual(lag["kupo-2"], 1000)

    def test_recovered_instance_gets_new_users_and_none_of_the_old(self):
        self.start()
        old = self.pin_users("o", 60)
        self.control("kupo-2", dead=True)
        self.wait_states({"kupo-2": "down"}, 2)
        after = {u: self.ask(u)[1] for u in old}  # kupo-2's users move now
        self.assertNotIn("kupo-2", set(after.values()))
        self.control("kupo-2", dead=False)
        self.wait_states({"kupo-2": "up"}, 2)
        for u in old:
            self.assertEqual(self.ask(u)[1], after[u], "figure: 0 old users go back")
        new = self.pin_users("r", 60)
        self.assertIn("kupo-2", set(new.values()), "figure: new users reach it")
        # Bounded loads fill it: it takes more than its share of the newcomers.
        self.assertGreater(list(new.values()).count("kupo-2"), 20)

    def test_flapping_instance_does_not_flip_on_every_probe(self):
        self.start()
        self.control("kupo-1", flap=True)  # every other /health answer is 503
        time.sleep(3.0)  # about 15 probes
        st = self.corral.status()
        b = [x for x in st["pools"][0]["backends"] if x["name"] == "kupo-1"][0]
        self.assertEqual(b["state"], "up")
        self.assertGreaterEqual(b["health"]["probes"]["down"], 5)
        self.assertEqual([t for t in st["transitions"] if t["backend"] == "kupo-1"], [],
                         "figure: 0 transitions in ~15 alternating probes")

    def test_repinned_user_never_goes_back_in_the_chain(self):
        self.start()
        for n in ("kupo-1", "kupo-2", "kupo-3"):
            self.control(n, freeze_tip=True)
        self.control("kupo-3", tip_lag_slots=300)  # behind, but within max_lag_slots
        time.sleep(0.6)  # probes learn the tips
        old = self.pin_users("t", 90)
        victims = [u for u, b in old.items() if b == "kupo-1"]
        self.assertGreater(len(victims), 5)
        self.control("kupo-1", dead=True)
        for u in victims:
            status, b = self.ask(u)
            self.assertEqual(status, 200)
            self.assertEqual(b, "kupo-2", "figure: every moved user lands at or past its slot")

    def test_max_percent_and_all_down(self):
        self.start()
        self.control("kupo-1", overload=True)
        self.control("kupo-2", overload=True)
        for i in range(30):  # pinned traffic to both makes 503 streaks
            self.ask("m%d" % i)
        time.sleep(0.5)
        st = self.states()
        self.assertEqual(sorted(st.values()).count("draining"), 1,
                         "figure: at most 50%% of 3 = 1 ejected: %s" % st)
        for n in ("kupo-1", "kupo-2", "kupo-3"):
            self.control(n, overload=False, dead=True)
        self.wait_states({"kupo-1": "down", "kupo-2": "down", "kupo-3": "down"}, 3)
        status, h, body = harness.get(self.corral.port, "/checkpoints")
        self.assertEqual(status, 503)
        self.assertIn("retry-after", h)
        self.assertEqual(json.loads(body)["error"], "no backend available")

    def test_removed_backend_users_move_and_no_one_else(self):
        self.start()
        old = self.pin_users("x", 60)
        ports = dict(self.fleet.backends)
        del ports["kupo-3"]
        self.corral.rewrite(config(ports))
        self.corral.proc.send(signal.SIGHUP)
        self.corral.proc.wait_line(r"config reloaded")
        for u, b in old.items():
            status, now = self.ask(u)
            self.assertEqual(status, 200)
            if b == "kupo-3":
                self.assertIn(now, ("kupo-1", "kupo-2"))
            else:
                self.assertEqual(now, b, "figure: 0 users of kept backends move")
        self.assertRegex(self.corral.metrics(), r'corral_remaps_total\{pool="kupo",reason="removed"\} [1-9]')


if __name__ == "__main__":
    harness.main()

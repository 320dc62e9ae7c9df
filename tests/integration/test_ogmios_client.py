"""The real @cardano-ogmios/client (npm, pinned in tests/node/package-lock.json) through
the real corral to simulated Ogmios instances (corral-bench backend --kind ogmios, one
process per instance): the library's /health pre-check and JSON-RPC round trips on the
createInteractionContext -> createLedgerStateQueryClient path, a chain-sync flow, each
user's reconnects on one backend, and a backend that dies mid-session giving its clients
close 1012 while their reconnect is served by the other one.

tests/node/ogmios_client.mjs is the client; scripts/install-deps.sh runs `npm ci` in
tests/node. Without node or those modules the tests are skipped, unless CI is set: there
they fail."""
import json
import signal
import unittest
from concurrent.futures import ThreadPoolExecutor

from harness import wait_for
import node_client
from harness import BENCH, Corral, Proc, get_json, listener_config, main, post_json



def setUpModule():
    node_client.require("Ogmios client", ("@cardano-ogmios/client", "ws"))


class OgmiosSims:
    """Simulated Ogmios instances, one corral-bench process each, so one can be killed."""

    def __init__(self, names):
        self.procs, self.ports = {}, {}
        try:
            for n in names:
                p = Proc([BENCH, "backend", "--kind", "ogmios", "--listen", "127.0.0.1:0",
                          "--name", n])
                self.procs[n] = p
                self.ports[n] = int(p.wait_line(r"^listening %s 127\.0\.0\.1:(\d+)" % n).group(1))
        except BaseException:
            self.stop()
            raise

    def names(self):
        return sorted(self.ports)

    def control(self, name, **settings):
        return post_json(self.ports[name], "/_sim/control", settings)

    def stats(self, name):
        return get_json(self.ports[name], "/_sim/stats")

    def opened(self):
        """ws_opened_total of every live instance."""
        return {n: self.stats(n)["ws_opened_total"] for n in self.names()
                if self.procs[n].p.poll() is None}

    def kill(self, name):
        """SIGKILL: every socket drops without a close frame, the port refuses."""
        self.procs[name].stop(signal.SIGKILL)

    def stop(self):
        for p in self.procs.values():
            p.stop(signal.SIGINT)


def config(sims):
    backends = "".join("      - {name: %s, address: 127.0.0.1:%d}\n" % (n, sims.ports[n])
                       for n in sims.names())
    return listener_config(
        "      - {prefix: /ogmios, pool: ogmios, strip_prefix: true, websocket: true}\n") + (
        "sticky:\n"
        "  keys:\n"
        "    - {from: path, prefix: /s/}\n"
        "    - {from: client_ip}\n"
        "pools:\n"
        "  ogmios:\n"
        "    kind: ogmios\n"
        "    health: {interval: 200ms, timeout: 150ms, rise: 1, fall: 1}\n"
        "    backends:\n%s") % backends


def start_node(mode, url, *extra):
    return node_client.start("ogmios_client.mjs", mode, url, *extra)


def run_node(mode, url, *extra, timeout=30):
    return node_client.run("ogmios_client.mjs", mode, url, *extra, timeout=timeout)


def states(corral):
    for p in corral.status()["pools"]:
        if p["name"] == "ogmios":
            return {b["name"]: b["state"] for b in p["backends"]}
    raise KeyError("ogmios")


class OgmiosClientThroughCorral(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sims = OgmiosSims(["og-a", "og-b"])
        try:
            cls.corral = Corral(config(cls.sims))
        except BaseException:
            cls.sims.stop()
            raise
        wait_for(lambda: set(states(cls.corral).values()) == {"up"}, "both backends up")

    @classmethod
    def tearDownClass(cls):
        cls.corral.stop()
        cls.sims.stop()

    def url(self, user):
        return "http://127.0.0.1:%d/s/%s/ogmios" % (self.corral.port, user)

    def query(self, user):
        rc, out, log = run_node("query", self.url(user))
        self.assertEqual(rc, 0, log)
        self.assertIn(out["backend"], self.sims.names(), out)
        return out

    def test_ledger_state_queries_round_trip(self):
        before = self.sims.opened()
        out = self.query("alice")
        # The library's pre-check passed on Ogmios' /health, read through corral.
        self.assertEqual(out["health"]["connectionStatus"], "connected")
        self.assertIsNotNone(out["health"]["lastTipUpdate"])
        tip = out["networkTip"]
        self.assertGreater(tip["slot"], 0)
        self.assertEqual(len(tip["id"]), 64)
        self.assertEqual(out["ledgerTip"]["slot"] // 20 * 20, out["ledgerTip"]["slot"])
        self.assertLessEqual(out["ledgerTip"]["slot"], tip["slot"] + 20)
        self.assertEqual(out["acquiredTip"], out["ledgerTip"])
        self.assertGreater(out["epoch"], 200)
        self.assertEqual(out["protocolParameters"]["minFeeCoefficient"], 44)
        # The socket X-Backend names is the one that backend counted.
        after = self.sims.opened()
        self.assertEqual({n: after[n] - before[n] for n in after},
                         {n: int(n == out["backend"]) for n in after})

    def test_reconnects_stay_on_one_backend_and_users_spread(self):
        before = self.sims.opened()
        seen = [self.query("sticky-user")["backend"] for _ in range(4)]
        self.assertEqual(len(set(seen)), 1, seen)
        after = self.sims.opened()
        self.assertEqual({n: after[n] - before[n] for n in after},
                         {n: 4 * int(n == seen[0]) for n in after})
        users = ["user-%d" % i for i in range(12)]
        with ThreadPoolExecutor(4) as pool:
            first = dict(zip(users, pool.map(lambda u: self.query(u)["backend"], users)))
            again = dict(zip(users, pool.map(lambda u: self.query(u)["backend"], users)))
        self.assertEqual(first, again)
        self.assertEqual(set(first.values()), set(self.sims.names()), first)

    def test_chain_sync_find_intersection_and_next_block(self):
        rc, out, log = run_node("chainsync", self.url("syncer"), "--blocks", "6")
        self.assertEqual(rc, 0, log)
        first, second = out["first"], out["second"]
        self.assertEqual(first["intersection"], "origin")
        self.assertEqual(first["rollbacks"], ["origin"])
        blocks = first["blocks"] + second["blocks"]
        self.assertEqual(len(blocks), 12)
        last = first["blocks"][-1]
        # The second findIntersection found the block the first pass ended on, and the
        # socket's cursor went on from there: one chain, heights in a row, each block's
        # ancestor the one before.
        self.assertEqual(second["intersection"], {"slot": last["slot"], "id": last["id"]})
        self.assertEqual(second["rollbacks"], [{"slot": last["slot"], "id": last["id"]}])
        self.assertEqual([b["height"] for b in blocks], list(range(12)))
        for prev, b in zip(blocks, blocks[1:]):
            self.assertEqual(b["ancestor"], prev["id"])
            self.assertGreater(b["slot"], prev["slot"])

    def test_health_pre_check_refuses_without_opening_a_socket(self):
        try:
            for n in self.sims.names():
                self.sims.control(n, health="disconnected")
            wait_for(lambda: set(states(self.corral).values()) == {"down"}, "both down")
            before = self.sims.opened()
            rc, out, log = run_node("query", self.url("alice"))
            self.assertEqual(rc, 1, log)
            self.assertIn("error", out)
            self.assertEqual(self.sims.opened(), before)
        finally:
            for n in self.sims.names():
                self.sims.control(n, health="synced")
            wait_for(lambda: set(states(self.corral).values()) == {"up"}, "both up again")


class BackendDiesMidSession(unittest.TestCase):
    """Each test has its own two instances and corral, as one instance dies in it."""

    def setUp(self):
        self.sims = OgmiosSims(["og-a", "og-b"])
        self.addCleanup(self.sims.stop)
        self.corral = Corral(config(self.sims))
        self.addCleanup(self.corral.stop)
        wait_for(lambda: set(states(self.corral).values()) == {"up"}, "both backends up")
        self.holders = []
        self.addCleanup(self.stop_holders)

    def stop_holders(self):
        for p in self.holders:
            if p.poll() is None:
                p.kill()
            p.communicate()

    def url(self, user):
        return "http://127.0.0.1:%d/s/%s/ogmios" % (self.corral.port, user)

    def hold(self, user):
        """A client holding its socket open: (process, backend)."""
        p = start_node("hold", self.url(user), "--timeout-ms", "20000")
        self.holders.append(p)
        line = p.stdout.readline()
        self.assertTrue(line.startswith("{"), line + p.stderr.read() if p.poll() is not None
                        else line)
        ready = json.loads(line)
        self.assertEqual(ready["event"], "ready", ready)
        return p, ready["backend"]

    def closed(self, p, timeout=10):
        out, err = p.communicate(timeout=timeout)
        self.assertEqual(p.returncode, 0, out + err)
        return json.loads(out.splitlines()[-1])

    def check_dies(self, kill):
        users = ["holder-%d" % i for i in range(6)]
        held = {u: self.hold(u) for u in users}
        on = {}
        for u, (_, b) in held.items():
            on.setdefault(b, []).append(u)
        self.assertEqual(set(on), set(self.sims.names()), on)  # both hold someone
        victim = on["og-a"][0]
        kill("og-a")
        for u in on["og-a"]:
            c = self.closed(held[u][0])
            self.assertEqual(c["event"], "closed", c)
            self.assertEqual(c["code"], 1012, c)  # never 1000: clients reconnect
        for u in on["og-b"]:
            self.assertIsNone(held[u][0].poll(), "a socket on og-b was closed too")
        # The user reconnects (the library does not, the dApp does): served by og-b.
        rc, out, log = run_node("query", self.url(victim))
        self.assertEqual(rc, 0, log)
        self.assertEqual(out["backend"], "og-b")
        # Still there, and still pinned there, on the next reconnect.
        rc, out, log = run_node("query", self.url(victim))
        self.assertEqual((rc, out["backend"]), (0, "og-b"), log)

    def test_killed_process_gives_1012_and_reconnect_goes_elsewhere(self):
        self.check_dies(self.sims.kill)

    def test_dead_backend_gives_1012_and_reconnect_goes_elsewhere(self):
        self.check_dies(lambda n: self.sims.control(n, dead=True))


if __name__ == "__main__":
    main()

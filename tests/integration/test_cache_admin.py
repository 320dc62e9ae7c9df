"""The response cache's operator side (issue 16, README "Admin: cache" and "Cache"), on the real
corral in front of `corral-bench backend` Kupo simulators: reloads that shrink, purge or drop a
pool's cache, POST /cache/purge and its answers, the /status cache object, the corral_cache_*
families (promtool-clean), and the README's purge example run as written. Backend traffic is
counted with the simulator's /_sim/stats by_route."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile

import harness

TOKEN = "AdminT0ken-cache-admin"
AUTH = {"Authorization": "Bearer " + TOKEN}
HEALTH = "    health: {interval: 200ms, timeout: 150ms, rise: 1, fall: 2}\n"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
PROMTOOL = shutil.which("promtool")


def datum(n):
    return "/datums/%064x" % (0xADD0000 + n)


def script(n):
    return "/scripts/%056x" % (0x5C0000 + n)


def metric(text, name):
    """The value of the sample `name` (labels included, exactly) in a /metrics text; None if
    absent."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


class StubFleet:
    """A fleet for a config that is only checked: one backend, never contacted."""
    backends = {"kupo-1": 9}

    def names(self):
        return list(self.backends)


class CacheRig:
    """A Fleet(1) and a corral with an admin token in front of it; `cache` is the pool's cache
    line (None: no cache). A context manager: everything is stopped on exit."""

    def __init__(self, cache):
        self.dir = tempfile.TemporaryDirectory()
        self.token = os.path.join(self.dir.name, "admin.token")
        fd = os.open(self.token, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, (TOKEN + "\n").encode())
        os.close(fd)
        self.fleet = harness.Fleet(1)
        self.name = self.fleet.names()[0]
        self.corral = None
        try:
            self.corral = harness.Corral(self.config(cache))
        except BaseException:
            self.fleet.stop()
            self.dir.cleanup()
            raise

    def config(self, cache):
        extra = HEALTH + ("    cache: %s\n" % cache if cache else "")
        return harness.kupo_config(self.fleet, pool_extra=extra).replace(
            "admin: {listen: 127.0.0.1:0}",
            "admin: {listen: 127.0.0.1:0, token_file: %s}" % self.token)

    def reload(self, cache):
        """Rewrites the config with this cache line and SIGHUPs: the new log lines."""
        mark = len(self.corral.proc.lines)
        self.corral.rewrite(self.config(cache))
        self.corral.proc.send(signal.SIGHUP)
        line = self.corral.proc.wait_line(r"config reload(ed| failed)", start=mark).group(0)
        assert line == "config reloaded", self.corral.proc.log()
        return "\n".join(self.corral.proc.lines[mark:])

    def get(self, path, headers=None):
        return harness.get(self.corral.port, "/kupo" + path, headers)

    def routes(self, route):
        return self.fleet.stats(self.name)["by_route"][route]

    def metrics(self):
        status, _, body = harness.get(self.corral.admin_port, "/metrics", AUTH)
        assert status == 200, status
        return body

    def cache_metric(self, family):
        return metric(self.metrics(), '%s{pool="kupo"}' % family)

    def status_cache(self):
        status, _, body = harness.get(self.corral.admin_port, "/status", AUTH)
        assert status == 200, status
        (pool,) = [p for p in json.loads(body)["pools"] if p["name"] == "kupo"]
        return pool.get("cache")

    def purge(self, query="", headers=AUTH, method="POST"):
        return harness.get(self.corral.admin_port, "/cache/purge" + query, headers,
                           method=method)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        rc = self.corral.stop() if self.corral else 0
        self.fleet.stop()
        self.dir.cleanup()
        assert rc == 0, rc
        return False


class CacheAdmin(harness.unittest.TestCase):
    def fill(self, rig, path):
        """A miss that the cache stores: the next GET of `path` is a hit."""
        status, headers, body = rig.get(path)
        self.assertEqual(status, 200)
        status, headers, again = rig.get(path)
        self.assertEqual((status, headers.get("x-corral-cache")), (200, "hit"), path)
        self.assertEqual(again, body)

    def assert_miss(self, rig, path, route):
        before = rig.routes(route)
        status, headers, _ = rig.get(path)
        self.assertEqual(status, 200)
        self.assertNotIn("x-corral-cache", headers, path)
        self.assertEqual(rig.routes(route) - before, 1, path)

    def assert_hit(self, rig, path, route):
        before = rig.routes(route)
        status, headers, _ = rig.get(path)
        self.assertEqual((status, headers.get("x-corral-cache")), (200, "hit"), path)
        self.assertEqual(rig.routes(route), before, path)

    def test_reload_and_purge(self):
        # Matches under `prefixes` make big entries (~390 KB each), so 64 of them fill 24 MB.
        big = "{max_bytes: 64MB, prefixes: [/matches/], max_age: 1h%s}"
        with CacheRig(big % "") as rig:
            rig.fleet.control(rig.name, match_count=1000, freeze_tip=True)
            for i in range(8):
                self.fill(rig, "/matches/addr1reload%d" % i)
            for i in range(3):
                self.fill(rig, datum(i))
            held = rig.cache_metric("corral_cache_bytes")
            self.assertGreater(held, 2 * 1048576)
            self.assertEqual(rig.cache_metric("corral_cache_entries"), 11)
            evictions = rig.cache_metric("corral_cache_evictions_total")

            # 1. A smaller max_bytes evicts at once: the scrape right after the reload.
            log = rig.reload(big.replace("64MB", "1MB") % "")
            self.assertIn("pools.kupo.cache.max_bytes 64MB -> 1MB", log)
            self.assertLessEqual(rig.cache_metric("corral_cache_bytes"), 1048576)
            self.assertEqual(rig.cache_metric("corral_cache_max_bytes"), 1048576)
            self.assertGreater(rig.cache_metric("corral_cache_evictions_total"), evictions)
            self.assertLess(rig.cache_metric("corral_cache_entries"), 11)
            self.assertEqual(rig.status_cache()["max_bytes"], 1048576)
            # The most recently used answers stayed.
            self.assert_hit(rig, datum(2), "datums")

            # 2. A changed immutable_after_slots purges the pool's cache (and says so).
            purged = rig.cache_metric("corral_cache_purged_total")
            entries = rig.cache_metric("corral_cache_entries")
            self.assertGreater(entries, 0)
            log = rig.reload(big.replace("64MB", "1MB") % ", immutable_after_slots: 25920")
            self.assertIn("cache purged: its rules changed", log)
            self.assertEqual(rig.cache_metric("corral_cache_entries"), 0)
            self.assertEqual(rig.cache_metric("corral_cache_bytes"), 0)
            self.assertEqual(rig.cache_metric("corral_cache_purged_total") - purged, entries)
            self.assert_miss(rig, datum(2), "datums")

            # 3. POST /cache/purge?prefix=/datums/: the token is needed; the count is the
            # entries dropped; the other entries stay.
            for i in range(3):
                self.fill(rig, datum(i))
            self.fill(rig, script(1))
            self.assertEqual(rig.cache_metric("corral_cache_entries"), 4)
            status, _, body = rig.purge("?prefix=/datums/", headers={})
            self.assertEqual(status, 401, body)
            status, _, body = rig.purge("?prefix=/datums/",
                                        headers={"Authorization": "Bearer wrong"})
            self.assertEqual(status, 401, body)
            self.assertEqual(rig.cache_metric("corral_cache_entries"), 4)
            mark = len(rig.corral.proc.lines)
            cached_bytes = rig.cache_metric("corral_cache_bytes")
            status, _, body = rig.purge("?prefix=/datums/")
            self.assertEqual(status, 200, body)
            answer = json.loads(body)
            self.assertEqual(answer["purged"], 3)
            self.assertEqual(answer["pools"], ["kupo"])
            self.assertEqual(rig.cache_metric("corral_cache_entries"), 1)
            self.assertEqual(answer["bytes"], cached_bytes - rig.cache_metric("corral_cache_bytes"))
            rig.corral.proc.wait_line(r'cache purged.*pool=kupo.*prefix=/datums/.*entries=3',
                                      start=mark)
            self.assert_miss(rig, datum(0), "datums")
            self.assert_hit(rig, script(1), "scripts")
            # Wrong purges: an unknown pool, a prefix without its slash, another method.
            status, _, body = rig.purge("?pool=nope")
            self.assertEqual(status, 404, body)
            self.assertIn("error", json.loads(body))
            status, _, body = rig.purge("?prefix=datums")
            self.assertEqual(status, 400, body)
            status, headers, body = rig.purge("?prefix=/datums/", method="GET")
            self.assertEqual(status, 405, body)
            self.assertEqual(headers.get("allow"), "POST")
            self.assertEqual(rig.cache_metric("corral_cache_entries"), 2)  # nothing dropped
            self.assert_hit(rig, script(1), "scripts")

            # 4. No `cache` any more: no hits, no header, no corral_cache_* families, no
            # cache object in /status.
            rig.reload(None)
            for _ in range(2):
                self.assert_miss(rig, script(1), "scripts")
            text = rig.metrics()
            self.assertNotRegex(text, r"(?m)^(# (HELP|TYPE) )?corral_cache_")
            self.assertNotIn("corral_collapsed_total", text)
            self.assertIsNone(rig.status_cache())
            # And back: an empty cache (the old one was dropped with the key).
            rig.reload("{max_bytes: 1MB}")
            self.assertEqual(rig.cache_metric("corral_cache_entries"), 0)
            self.assert_miss(rig, script(1), "scripts")
            self.assert_hit(rig, script(1), "scripts")

    def test_status_and_metrics(self):
        with CacheRig("{max_bytes: 8MB}") as rig:
            c = rig.status_cache()
            self.assertEqual((c["enabled"], c["max_bytes"], c["bytes"], c["entries"], c["hits"],
                              c["misses"], c["collapsed"], c["collapse"]),
                             (True, 8 * 1048576, 0, 0, 0, 0, 0, True))
            self.assertIsNone(c["hit_ratio"])  # no lookup yet
            self.assertEqual(c["immutable_after_slots"], 129600)
            # best_tip: the simulator's tip once health has probed (frozen, so exact).
            rig.fleet.control(rig.name, freeze_tip=True)
            tip = json.loads(harness.get(rig.fleet.backends[rig.name],
                                         "/_sim/control")[2])["most_recent_checkpoint"]
            harness.wait_for(lambda: rig.status_cache()["best_tip"] == tip,
                             what="best_tip == the frozen tip %d" % tip)
            # One miss, then three hits.
            for _ in range(4):
                self.assertEqual(rig.get(datum(50))[0], 200)
            c = rig.status_cache()
            self.assertEqual((c["hits"], c["misses"], c["entries"]), (3, 1, 1))
            self.assertAlmostEqual(c["hit_ratio"], 0.75)
            text = rig.metrics()
            self.assertEqual(c["bytes"], metric(text, 'corral_cache_bytes{pool="kupo"}'))
            self.assertGreater(c["bytes"], 64)
            self.assertEqual(metric(text, 'corral_cache_hits_total{pool="kupo"}'), 3)
            self.assertEqual(metric(text, 'corral_cache_misses_total{pool="kupo"}'), 1)
            self.assertEqual(metric(text, 'corral_cache_stores_total{pool="kupo"}'), 1)
            self.assertEqual(metric(text, 'corral_cache_max_bytes{pool="kupo"}'), 8 * 1048576)
            for family, kind in (("corral_cache_bytes", "gauge"),
                                 ("corral_cache_entries", "gauge"),
                                 ("corral_cache_not_stored_total", "counter"),
                                 ("corral_cache_evictions_total", "counter"),
                                 ("corral_cache_purged_total", "counter"),
                                 ("corral_collapsed_total", "counter"),
                                 ("corral_collapse_detached_total", "counter"),
                                 ("corral_flights", "gauge")):
                self.assertIn("# TYPE %s %s\n" % (family, kind), text)
            if not PROMTOOL:
                if os.environ.get("CI"):
                    raise AssertionError("CI is set and promtool is missing "
                                         "(scripts/install-deps.sh installs prometheus)")
                self.skipTest("promtool is not installed")
            r = subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))

    def test_readme_purge_example(self):
        """The curl command of README "Admin: cache", run as written (the token file and the
        admin port swapped for this rig's), answers what the README shows."""
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        section = readme[readme.index("### Admin: cache"):]
        m = re.search(r"```sh\n(curl .*?)\n# (\{.*?\})\n```", section, re.S)
        self.assertIsNotNone(m, "the purge example in README 'Admin: cache'")
        command, shown = m.group(1), json.loads(m.group(2))
        self.assertIn("/etc/corral/admin.token", command)
        self.assertIn("127.0.0.1:9901", command)
        with CacheRig("{max_bytes: 8MB}") as rig:
            for i in range(2):
                self.fill(rig, datum(100 + i))
            self.fill(rig, script(100))
            command = command.replace("/etc/corral/admin.token", rig.token).replace(
                "127.0.0.1:9901", "127.0.0.1:%d" % rig.corral.admin_port)
            r = subprocess.run(["bash", "-c", command + " --silent --show-error"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            answer = json.loads(r.stdout)
            self.assertEqual(sorted(answer), sorted(shown))
            self.assertEqual((answer["purged"], answer["pools"]), (2, ["kupo"]))
            self.assert_miss(rig, datum(100), "datums")
            self.assert_hit(rig, script(100), "scripts")

    def test_readme_cache_example_loads(self):
        """The README's `cache:` line (Configuration) is a valid Kupo pool setting."""
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        m = re.search(r"```yaml\n    (cache: \{.*?\})\n```", readme, re.S)
        self.assertIsNotNone(m, "the cache example in README 'Configuration'")
        line = " ".join(m.group(1).split())
        text = harness.kupo_config(StubFleet(), pool_extra="    %s\n" % line)
        p, _ = harness.check_config(text)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    harness.main()

"""GET /metrics on a live corral with 2 workers and traffic (issue 12): the agreed family
names are there and the old ones gone, request counts add up to what was sent, the latency
histogram is cumulative from 100 us, a dead backend's connect failures are counted, the
process and disk numbers are the system's own, and `promtool check metrics` is silent."""
import os
import re
import shutil
import subprocess
import tempfile
import time

import harness

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

OLD_NAMES = [
    "corral_response_seconds", "corral_backend_up", "corral_backend_pinned_sessions",
    "corral_backend_connect_failures_total", "corral_backend_resets_total",
    "corral_backend_timeouts_total", "corral_backend_tls_failures_total",
    "corral_process_resident_memory_bytes",
]
NEW_FAMILIES = [
    "corral_build_info", "corral_requests_total", "corral_request_duration_seconds",
    "corral_upstream_failures_total", "corral_backend_state", "corral_backend_tip_slot",
    "corral_backend_lag_slots", "corral_sessions", "corral_sessions_total",
    "corral_remaps_total", "corral_connections", "corral_tunnels", "corral_tunnel_bytes_total",
    "corral_tunnel_closes_total", "corral_config_reloads_total", "corral_disk_free_bytes",
    "corral_disk_total_bytes", "process_resident_memory_bytes", "process_open_fds",
    "process_max_fds", "process_cpu_seconds_total", "process_start_time_seconds",
]


def parse(text):
    """(samples [(name, {label: value}, float)], {family: type}, {family with HELP})."""
    samples, types, helps = [], {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
        elif line.startswith("# HELP "):
            helps.add(line.split(" ", 3)[2])
        elif line and not line.startswith("#"):
            m = SAMPLE.match(line)
            assert m, "bad sample line: %r" % line
            samples.append((m.group(1), dict(LABEL.findall(m.group(2) or "")),
                            float(m.group(3))))
    return samples, types, helps


def value(samples, name, **labels):
    """The one sample of `name` whose labels include `labels`."""
    found = [v for n, l, v in samples
             if n == name and all(l.get(k) == x for k, x in labels.items())]
    assert len(found) == 1, (name, labels, found)
    return found[0]


class Metrics(harness.unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fleet = harness.Fleet(2)
        cls.disk = tempfile.TemporaryDirectory()
        routes = ("      - {prefix: /kupo/, pool: kupo, strip_prefix: true}\n"
                  "      - {prefix: /dead/, pool: dead, strip_prefix: true}\n")
        config = harness.listener_config(routes, workers=2) + (
            "sticky:\n"
            "  keys: [{from: header, name: X-Session-Key}, {from: client_ip}]\n"
            "pools:\n"
            "  kupo:\n"
            "    kind: kupo\n"
            "    backends:\n%s"
            "  dead:\n"
            "    kind: http\n"
            "    health: {interval: 60s}\n"
            "    backends: [{name: gone, address: 127.0.0.1:%d}]\n"
            "monitor: {disk_paths: [%s]}\n") % (harness.backends_yaml(cls.fleet), harness.free_port(),
                                                 cls.disk.name)
        cls.corral = harness.Corral(config)
        # Traffic on fresh connections, so that both workers' SO_REUSEPORT sockets get some.
        cls.sent = {}
        for i in range(120):
            path = "/kupo/checkpoints" if i % 4 else "/kupo/no-such-endpoint"
            status, _, _ = harness.get(cls.corral.port, path, {"X-Session-Key": "u%d" % i})
            cls.sent[status] = cls.sent.get(status, 0) + 1
        cls.text = cls.corral.metrics()
        cls.samples, cls.types, cls.helps = parse(cls.text)

    @classmethod
    def tearDownClass(cls):
        rc = cls.corral.stop()
        cls.fleet.stop()
        cls.disk.cleanup()
        assert rc == 0, rc

    def test_new_families_present_old_names_gone(self):
        for f in NEW_FAMILIES:
            self.assertIn(f, self.types, f)
            self.assertIn(f, self.helps, f)
        for old in OLD_NAMES:
            self.assertNotRegex(self.text, r"(?m)^(# (HELP|TYPE) )?%s[ {_]" % old)
        # The unlabelled session count is corral_sessions_total now.
        self.assertNotRegex(self.text, r"(?m)^corral_sessions \d")
        self.assertEqual(self.types["corral_request_duration_seconds"], "histogram")
        self.assertEqual(self.types["corral_upstream_failures_total"], "counter")
        self.assertEqual(value(self.samples, "corral_build_info",
                               version=self.corral.status()["version"]), 1)

    def test_every_sample_has_help_and_type(self):
        for name, _, _ in self.samples:
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            if family not in self.types:
                family = name
            self.assertIn(family, self.types, name)
            self.assertIn(family, self.helps, name)

    def test_requests_total_adds_up_to_what_was_sent(self):
        codes = {}
        for n, l, v in self.samples:
            if n == "corral_requests_total" and l["pool"] == "kupo":
                codes[int(l["code"])] = codes.get(int(l["code"]), 0) + v
        codes = {c: v for c, v in codes.items() if v != 0}  # 200 and 503 are always there
        self.assertEqual(codes, self.sent)
        self.assertEqual(sum(codes.values()), 120)

    def test_200_and_503_series_exist_before_any_503(self):
        # rate() only sees the first 503s if the series was already there (at 0) before.
        backends = list(self.fleet.names()) + ["gone"]
        for b in backends:
            for code in ("200", "503"):
                value(self.samples, "corral_requests_total", backend=b, code=code)
        self.assertEqual(value(self.samples, "corral_requests_total", backend="gone",
                               code="503"), 0)
        self.assertEqual(value(self.samples, "corral_requests_total", backend="gone",
                               code="200"), 0)

    def test_histogram_is_cumulative_from_100us(self):
        total = 0
        for backend in self.fleet.names():
            buckets = [(l["le"], v) for n, l, v in self.samples
                       if n == "corral_request_duration_seconds_bucket" and l["backend"] == backend]
            les = [le for le, _ in buckets]
            self.assertEqual(les, ["0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
                                   "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
                                   "5", "10", "30", "+Inf"])
            counts = [v for _, v in buckets]
            self.assertEqual(counts, sorted(counts), backend)  # cumulative
            count = value(self.samples, "corral_request_duration_seconds_count", backend=backend)
            self.assertEqual(counts[-1], count)
            self.assertGreaterEqual(
                value(self.samples, "corral_request_duration_seconds_sum", backend=backend), 0)
            total += count
        self.assertEqual(total, 120)

    def test_connect_failures_rise_for_a_dead_backend(self):
        def connect_failures():
            s, _, _ = parse(self.corral.metrics())
            return value(s, "corral_upstream_failures_total", backend="gone", reason="connect")
        before = connect_failures()
        status, _, _ = harness.get(self.corral.port, "/dead/x")
        self.assertIn(status, (502, 503))
        self.assertGreater(connect_failures(), before)
        s, _, _ = parse(self.corral.metrics())
        for reason in ("reset", "timeout", "tls"):
            self.assertEqual(value(s, "corral_upstream_failures_total", backend="gone",
                                   reason=reason), 0)

    def test_backend_state_and_connections(self):
        for backend in self.fleet.names():
            self.assertEqual(value(self.samples, "corral_backend_state", backend=backend), 2)
        # Keep-alive connections to the fleet stay pooled after the traffic.
        self.assertGreaterEqual(value(self.samples, "corral_connections", side="backend"), 1)
        self.assertGreaterEqual(value(self.samples, "corral_connections", side="client"), 0)
        pinned = sum(value(self.samples, "corral_sessions", backend=b) for b in self.fleet.names())
        self.assertEqual(pinned, value(self.samples, "corral_sessions_total"))
        self.assertEqual(pinned, 120)

    def test_remaps_counted_per_pool(self):
        users = ["r%d" % i for i in range(20)]
        where = {}
        for u in users:
            _, h, _ = harness.get(self.corral.port, "/kupo/checkpoints", {"X-Session-Key": u})
            where[u] = h["x-backend"]
        victim = where[users[0]]
        try:
            self.assertEqual(harness.get(self.corral.admin_port, "/backends/%s/down" % victim,
                                         method="POST")[0], 200)
            for u in users:
                harness.get(self.corral.port, "/kupo/checkpoints", {"X-Session-Key": u})
        finally:
            harness.get(self.corral.admin_port, "/backends/%s/auto" % victim, method="POST")
        s, _, _ = parse(self.corral.metrics())
        moved = sum(1 for u in users if where[u] == victim)
        self.assertEqual(value(s, "corral_remaps_total", pool="kupo", reason="admin"), moved)
        self.assertEqual(value(s, "corral_remaps_total", pool="dead", reason="admin"), 0)

    def test_process_metrics_are_sane(self):
        self.assertGreater(value(self.samples, "process_resident_memory_bytes"), 1 << 20)
        fds = value(self.samples, "process_open_fds")
        self.assertGreater(fds, 3)
        self.assertGreaterEqual(value(self.samples, "process_max_fds"), fds)
        start = value(self.samples, "process_start_time_seconds")
        self.assertLess(abs(time.time() - start), 600)

    def test_cpu_seconds_rise_with_work_within_wall_time_times_cores(self):
        def scrape():
            s, _, _ = parse(self.corral.metrics())
            return (value(s, "process_cpu_seconds_total"),
                    value(s, "process_start_time_seconds"))
        before, start = scrape()
        after, sent = before, 0
        deadline = time.time() + 20
        # Bursts of requests until corral's CPU time moves (it counts in clock ticks).
        while after <= before and time.time() < deadline:
            for i in range(200):
                harness.get(self.corral.port, "/kupo/checkpoints", {"X-Session-Key": "c%d" % i})
            sent += 200
            after, _ = scrape()
        self.assertGreater(after, before, "no CPU time counted for %d requests" % sent)
        # No more than every core busy since start (start is to the clock tick, so 1 s slack).
        self.assertLess(after, (time.time() - start + 1) * os.cpu_count())
        print("process_cpu_seconds_total %.2f -> %.2f over %d requests" % (before, after, sent))

    def test_disk_space_agrees_with_statvfs(self):
        st = os.statvfs(self.disk.name)
        slack = 8 << 20
        free = value(self.samples, "corral_disk_free_bytes", path=self.disk.name)
        total = value(self.samples, "corral_disk_total_bytes", path=self.disk.name)
        self.assertLess(abs(free - st.f_bavail * st.f_frsize), slack)
        self.assertLess(abs(total - st.f_blocks * st.f_frsize), slack)

    def test_no_disk_watched_says_so_once_at_start(self):
        self.assertNotIn("disk metrics are off", self.corral.proc.log())
        bare = harness.Corral(harness.kupo_config(self.fleet))  # no state_file, no monitor
        try:
            self.assertNotIn("corral_disk_free_bytes{", bare.metrics())
            log = bare.proc.log()
        finally:
            self.assertEqual(bare.stop(), 0)
        self.assertEqual(log.count("disk metrics are off"), 1, log)
        self.assertIn("monitor: {disk_paths: [DIR]}", log)

    def test_promtool_check_metrics_is_silent(self):
        promtool = shutil.which("promtool")
        if not promtool:
            self.skipTest("promtool is not installed")
        r = subprocess.run([promtool, "check", "metrics"], input=self.corral.metrics(),
                           capture_output=True, text=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))


if __name__ == "__main__":
    harness.main()

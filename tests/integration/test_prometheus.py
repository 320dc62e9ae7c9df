"""What ships in deploy/ (issue 12), checked with the real Prometheus (Debian `prometheus`):

- promtool: `check rules` and `test rules` on deploy/prometheus/alerts*.yml (the 503-share
  alert is among those the unit tests make fire, and a copy of the rules whose 503 threshold
  can never be crossed fails them), `check config` on the scrape example.
- live: corral in front of simulated Kupo instances (pool kupo) and one more behind a
  Blockfrost-style quota guard (pool bf), with traffic, and a sticky.store that nobody
  answers (so the store's families are exported, down). `promtool check metrics` on a live
  scrape of /metrics finds nothing to say. A Prometheus of our own (loopback, ephemeral port,
  scrape_interval 1s, the shipped alerts.yml loaded) scrapes the admin port; kupo-1 turns
  overloaded, and Prometheus' HTTP API shows its 503 rate above zero and its
  corral_backend_state at 1 (draining) while the others stay 2. Then every expression of
  deploy/grafana/corral.json (template variables substituted as Grafana would) and every
  alert `expr` of alerts.yml is evaluated by that Prometheus: each must evaluate without
  error and return data.

How an alert expression is split: at the top level (outside (), [], {} and strings) it is
cut at `and`/`or`/`unless` (none of the shipped rules needs it; a leading `on(...)` or
`ignoring(...)` of an operand is dropped), then each operand at its last top-level
comparison operator (== != >= <= > <, with `bool` and any matching modifier after it),
whose right side must be a number: the left side must return data. The full expression
need not (no alert should be firing). Without promtool/prometheus the suite skips, except
under CI, where it fails."""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

import harness

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEPLOY = os.path.join(REPO, "deploy")
ALERTS = os.path.join(DEPLOY, "prometheus", "alerts.yml")
ALERTS_TEST = os.path.join(DEPLOY, "prometheus", "alerts_test.yml")
SCRAPE_EXAMPLE = os.path.join(DEPLOY, "prometheus", "prometheus.yml")
DASHBOARD = os.path.join(DEPLOY, "grafana", "corral.json")
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def setUpModule():
    missing = [p for p in (PROMTOOL, PROMETHEUS) if not os.access(p, os.X_OK)]
    if missing:
        why = "%s not installed (Debian package prometheus; scripts/install-deps.sh)" % \
            " and ".join(missing)
        if os.environ.get("CI"):
            raise RuntimeError("CI is set, so the Prometheus tests may not skip: " + why)
        raise unittest.SkipTest(why)


def promtool(*args, stdin=None, cwd=None):
    p = subprocess.run([PROMTOOL, *args], input=stdin, capture_output=True, text=True,
                       cwd=cwd, timeout=120)
    return p.returncode, p.stdout + p.stderr


# ---------------------------------------------------------------- PromQL splitting

_CMP = re.compile(r"==|!=|>=|<=|>|<")
_SET = re.compile(r"\b(and|or|unless)\b")
_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


def _top_level(expr):
    """Indexes of expr that are outside (), [], {} and quoted strings."""
    depth, quote, out = 0, None, []
    i = 0
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            out.append(i)
        i += 1
    return set(out)


def _strip_matching(s):
    """Drops a leading `bool`, `on(...)`/`ignoring(...)`, `group_left/right(...)`."""
    while True:
        s = s.lstrip()
        m = re.match(r"(bool\b|(on|ignoring|group_left|group_right)\s*(\([^)]*\))?)", s)
        if not m or not m.group(0):
            return s
        s = s[m.end():]


def split_alert(expr):
    """The queries that must return data for an alert expression: per top-level
    and/or/unless operand, the part before its last top-level comparison with a number."""
    top = _top_level(expr)
    cuts = [m for m in _SET.finditer(expr) if m.start() in top]
    operands, start = [], 0
    for m in cuts:
        operands.append(expr[start:m.start()])
        start = m.end()
    operands.append(expr[start:])
    out = []
    for op in operands:
        op = _strip_matching(op)
        top = _top_level(op)
        hits = [m for m in _CMP.finditer(op) if m.start() in top and m.end() - 1 in top]
        # ">=" also matches as ">" then "=": keep the longest at each position.
        hits = [m for m in hits if not any(o.start() < m.start() < o.end() for o in hits)]
        if not hits:
            out.append(op.strip())
            continue
        last = hits[-1]
        rhs = _strip_matching(op[last.end():])
        assert _NUMBER.match(rhs), "comparison with a non-number %r in %r" % (rhs, expr)
        out.append(op[:last.start()].strip())
    return out


# ---------------------------------------------------------------- promtool on the files


class ShippedFiles(unittest.TestCase):
    def test_check_rules(self):
        rc, out = promtool("check", "rules", ALERTS)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"SUCCESS: \d+ rules found")

    def test_rule_unit_tests_pass_and_fire_the_503_alert(self):
        rc, out = promtool("test", "rules", ALERTS_TEST)
        self.assertEqual(rc, 0, out)
        # The 503-share alert is expected to fire (a non-empty exp_alerts) in a test case.
        with open(ALERTS_TEST) as f:
            text = f.read()
        fired = re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels:", text)
        self.assertIn("CorralBackend503Rate", fired)
        self.assertIn("CorralStoreDown", fired)
        # ... and those tests notice a rule that cannot fire: the same rules with the 503
        # threshold at 100% fail them, naming that alert.
        with tempfile.TemporaryDirectory() as d:
            with open(ALERTS) as f:
                rules = f.read()
            broken = re.sub(r'(code="503"\}\[5m\]\)\)\s*/[^>]*>\s*)0\.05', r"\g<1>1", rules)
            self.assertNotEqual(broken, rules, "the 503 rule's threshold was not found")
            with open(os.path.join(d, "alerts.yml"), "w") as f:
                f.write(broken)
            shutil.copy(ALERTS_TEST, d)
            rc, out = promtool("test", "rules", "alerts_test.yml", cwd=d)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("alertname: CorralBackend503Rate", out)

    def test_scrape_example_is_valid(self):
        rc, out = promtool("check", "config", SCRAPE_EXAMPLE)
        self.assertEqual(rc, 0, out)

    def test_dashboard_shape(self):
        """Importable as Grafana exports are: a DS_PROMETHEUS input that every panel and
        variable uses, pool and backend variables, unique ids, a grid without overlaps."""
        with open(DASHBOARD) as f:
            dash = json.load(f)
        self.assertEqual([i["name"] for i in dash["__inputs"]], ["DS_PROMETHEUS"])
        self.assertGreaterEqual(dash["schemaVersion"], 36)
        self.assertIsNone(dash["id"])
        names = [v["name"] for v in dash["templating"]["list"]]
        self.assertIn("pool", names)
        self.assertIn("backend", names)
        ds = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        for v in dash["templating"]["list"]:
            self.assertEqual(v["datasource"], ds, v["name"])
        ids, cells = set(), {}
        for p in dash["panels"]:
            self.assertNotIn(p["id"], ids)
            ids.add(p["id"])
            g = p["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells, "%s overlaps %s" % (p["title"], cells.get((x, y))))
                    cells[(x, y)] = p["title"]
            if p["type"] != "row":
                self.assertEqual(p["datasource"], ds, p["title"])
                self.assertTrue(p["targets"], p["title"])
                for t in p["targets"]:
                    self.assertEqual(t["datasource"], ds, p["title"])

    def test_503_share_panels_read_0_when_idle(self):
        """The dashboard's 503-share queries give 0, not NaN (0/0), for a backend whose
        counters stand still (corral always exports code 200 and 503, at 0 until seen)."""
        with open(DASHBOARD) as f:
            dash = json.load(f)
        values = grafana_values(["kupo"], ["kupo-1"])
        values["__rate_interval"] = "2m"
        shares = [(t, substitute(e, values)) for t, e in dashboard_queries(dash)
                  if 'code="503"' in e and "/" in e]
        self.assertGreaterEqual(len(shares), 2, "the 503-share queries were not found")
        series = "".join(
            "      - series: 'corral_requests_total{instance=\"lb:9901\",pool=\"kupo\","
            "backend=\"kupo-1\",code=\"%s\"}'\n        values: '%s'\n" % (code, v)
            for code, v in (("200", "5x10"), ("503", "0x10")))
        cases = ""
        for title, expr in shares:
            labels = '{backend="kupo-1", pool="kupo"}' if "by (pool, backend)" in expr else "{}"
            cases += ("      - expr: %s\n        eval_time: 10m\n        exp_samples:\n"
                      "          - labels: '%s'\n            value: 0\n"
                      % (json.dumps(expr), labels))
        test = ("rule_files: []\ntests:\n  - interval: 1m\n    input_series:\n" + series +
                "    promql_expr_test:\n" + cases)
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "t.yml"), "w") as f:
                f.write(test)
            rc, out = promtool("test", "rules", "t.yml", cwd=d)
        self.assertEqual(rc, 0, out + "\n" + test)

    def test_splitting(self):
        self.assertEqual(split_alert("up == 0"), ["up"])
        self.assertEqual(split_alert('sum by (pool) (x == bool 2) == 0'),
                         ["sum by (pool) (x == bool 2)"])
        self.assertEqual(split_alert('a{c=~"4|5"} / b >= 0.8'), ['a{c=~"4|5"} / b'])
        self.assertEqual(split_alert("(a and on (i) b) > 2e9"), ["(a and on (i) b)"])
        self.assertEqual(split_alert("a > 1 and on (i) b < 2"), ["a", "b"])
        with self.assertRaises(AssertionError):
            split_alert("a > b")


# ---------------------------------------------------------------- live


class Prometheus:
    """A Prometheus server of our own on 127.0.0.1 scraping only `target` every second,
    with `rule_files` loaded; stop() always kills it."""

    def __init__(self, target, rule_files):
        self.dir = tempfile.TemporaryDirectory()
        cfg = os.path.join(self.dir.name, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s, "
                    "scrape_timeout: 900ms}\n"
                    "rule_files: [%s]\n"
                    "scrape_configs:\n"
                    "  - job_name: corral\n"
                    "    static_configs: [{targets: ['%s']}]\n" %
                    (", ".join(json.dumps(r) for r in rule_files), target))
        self.proc = None
        for _ in range(3):  # the free port may be taken before Prometheus binds it
            self.port = harness.free_port()
            self.proc = harness.Proc([
                PROMETHEUS, "--config.file=" + cfg,
                "--storage.tsdb.path=" + os.path.join(self.dir.name, "data"),
                "--web.listen-address=127.0.0.1:%d" % self.port,
                "--log.level=warn"])
            if self._ready(20):
                return
            self.proc.stop(signal.SIGKILL)
        raise AssertionError("prometheus did not become ready:\n" + self.proc.log())

    def _ready(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline and self.proc.p.poll() is None:
            try:
                if harness.get(self.port, "/-/ready", timeout=2)[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def api(self, path, **params):
        url = "http://127.0.0.1:%d/api/v1/%s?%s" % (self.port, path,
                                                     urllib.parse.urlencode(params))
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:  # 400/422 carry the error as JSON
            return json.loads(e.read())

    def query(self, expr):
        """The result list of an instant query; fails the test on an error."""
        r = self.api("query", query=expr)
        if r.get("status") != "success":
            raise AssertionError("%s: %s" % (expr, r.get("error")))
        return r["data"]["result"]

    def stop(self):
        if self.proc:
            self.proc.stop(signal.SIGKILL)
        self.dir.cleanup()


class Traffic:
    """Keeps requests flowing through corral (each user its own X-Session-Key) from one
    thread per path until stop(); bounded to 10 minutes whatever happens."""

    def __init__(self, port, paths, users=150, pause=0.01):
        self.port, self.users, self.pause = port, users, pause
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.statuses = {}
        self.threads = [threading.Thread(target=self._run, args=(p,), daemon=True)
                        for p in paths]
        for t in self.threads:
            t.start()

    def _run(self, path):
        deadline = time.time() + 600
        conn, i = None, 0
        while not self.done.is_set() and time.time() < deadline:
            i += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", path, headers={"X-Session-Key": "u%d" % (i % self.users)})
                r = conn.getresponse()
                r.read()
                with self.lock:
                    self.statuses[r.status] = self.statuses.get(r.status, 0) + 1
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                if conn:
                    conn.close()
                conn = None
            time.sleep(self.pause)
        if conn:
            conn.close()

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(10)


def config(fleet, state_dir):
    kupo = ["kupo-1", "kupo-2", "kupo-3"]
    return ("state_file: %s\n" % os.path.join(state_dir, "pins") +
            harness.listener_config(
                "      - {prefix: /kupo/, pool: kupo, strip_prefix: true}\n"
                "      - {prefix: /bf/, pool: bf, strip_prefix: true}\n") +
            "sticky:\n  keys: [{from: header, name: X-Session-Key}]\n"
            # A store nobody listens on: the corral_store_* families are exported (down),
            # so promtool checks them and CorralStoreDown's query has data.
            "  store: {redis: 127.0.0.1:%d, timeout: 20ms}\n" % harness.free_port() +
            "pools:\n"
            "  kupo:\n    kind: kupo\n    backends:\n" + harness.backends_yaml(fleet, kupo) +
            "    health: {interval: 300ms, timeout: 250ms}\n"
            # Ejected for long enough to be seen draining by a 1 s scrape.
            "    eject: {consecutive_503: 3, base_time: 60s, max_time: 5m, max_percent: 50}\n"
            "    slow_start: 0s\n"
            "  bf:\n    kind: http\n    backends:\n" + harness.backends_yaml(fleet, ["kupo-4"]) +
            "    health: {interval: 1s, timeout: 500ms}\n"
            "    rate_limit: {rps: 5000, burst: 5000, daily: 10000000}\n")


# Grafana's template variables, as the test substitutes them: the pools and backends it
# runs with, and intervals that fit a 1 s scrape.
def grafana_values(pools, backends):
    return {"instance": ".*", "pool": "(%s)" % "|".join(pools),
            "backend": "(%s)" % "|".join(backends), "__rate_interval": "10s",
            "__interval": "5s", "__range": "1m", "__range_s": "60", "__interval_ms": "5000"}


def substitute(expr, values):
    def one(m):
        name = m.group(1) or m.group(2)
        if name not in values:
            raise AssertionError("unknown variable $%s in %r" % (name, expr))
        return values[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", one, expr)


def dashboard_queries(dash):
    """(panel title, expression) for every target of every panel (rows' panels too), and
    ("variable NAME", query) for the template variables."""
    out = []

    def walk(panels):
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                out.append((p.get("title", "?"), t["expr"]))
    walk(dash["panels"])
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            out.append(("variable " + v["name"], q))
    return out


class Live(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fleet = harness.Fleet(4)
        cls.addClassCleanup(cls.fleet.stop)
        state = tempfile.TemporaryDirectory()
        cls.addClassCleanup(state.cleanup)
        cls.corral = harness.Corral(config(cls.fleet, state.name))
        cls.addClassCleanup(cls.corral.stop)
        cls.traffic = Traffic(cls.corral.port, ["/kupo/checkpoints", "/bf/checkpoints"])
        cls.addClassCleanup(cls.traffic.stop)  # cleanups run last-in first-out
        cls.prom = Prometheus("127.0.0.1:%d" % cls.corral.admin_port, [ALERTS])
        cls.addClassCleanup(cls.prom.stop)

    def wait_query(self, expr, cond, what, timeout=30):
        deadline = time.time() + timeout
        while True:
            result = self.prom.query(expr)
            if cond(result):
                return result
            if time.time() > deadline:
                self.fail("timed out waiting for %s: %s = %s" % (what, expr, result))
            time.sleep(0.5)

    def test_live(self):
        # 1. The exposition passes promtool's linter, with traffic flowing.
        harness.wait_for(lambda: sum(self.traffic.statuses.values()) > 50, "traffic", 10)
        rc, out = promtool("check", "metrics", stdin=self.corral.metrics())
        self.assertEqual((rc, out), (0, ""), "promtool check metrics on a live scrape")

        # 2. Prometheus scrapes corral.
        self.wait_query('up{job="corral"} == 1', bool, "the first scrape")
        t_first = time.time()
        self.wait_query('corral_backend_state{pool="kupo"} == 2', lambda r: len(r) == 3,
                        "the three kupo backends up")

        # 3. kupo-1 turns overloaded: Kupo's 503 to every data request. Its pinned users
        # keep asking, so it is drained after 3 in a row.
        self.fleet.control("kupo-1", overload=True)
        rate = ('sum(rate(corral_requests_total{pool="kupo",backend="kupo-1",code="503"}[5s]))')
        self.wait_query(rate + " > 0", bool, "kupo-1's 503 rate above zero")
        self.wait_query('corral_backend_state{pool="kupo",backend="kupo-1"} == 1', bool,
                        "kupo-1 draining")
        others = self.prom.query('corral_backend_state{pool="kupo",backend!="kupo-1"}')
        self.assertEqual(sorted((r["metric"]["backend"], r["value"][1]) for r in others),
                         [("kupo-2", "2"), ("kupo-3", "2")])
        for r in self.prom.query('corral_requests_total{pool="kupo",code="503"} > 0'):
            self.assertEqual(r["metric"]["backend"], "kupo-1", "only kupo-1 answers 503")
        # The shipped 503 alert sees it too (pending: its `for: 5m` cannot pass here).
        self.wait_query('ALERTS{alertname="CorralBackend503Rate",backend="kupo-1"}', bool,
                        "CorralBackend503Rate pending for kupo-1")

        # 4. Enough history for range functions over the substituted intervals.
        time.sleep(max(0.0, t_first + 12 - time.time()))

        # 5. Every dashboard expression evaluates and returns data.
        with open(DASHBOARD) as f:
            dash = json.load(f)
        self.assertEqual(dash["__inputs"][0]["name"], "DS_PROMETHEUS")
        values = grafana_values(["kupo", "bf"], ["kupo-%d" % i for i in range(1, 5)])
        queries = dashboard_queries(dash)
        self.assertGreaterEqual(len(queries), 20)
        empty = []
        for title, expr in queries:
            expr = substitute(expr, values)
            m = re.match(r"^label_values\((.*),\s*(\w+)\)$", expr)
            if m:  # a variable: its series must carry the label
                result = self.prom.query(m.group(1))
                if not any(m.group(2) in r["metric"] for r in result):
                    empty.append((title, expr))
                continue
            if not self.prom.query(expr):
                empty.append((title, expr))
        self.assertEqual(empty, [], "dashboard queries without data")

        # 6. Every alert expression evaluates (the rules Prometheus loaded from alerts.yml,
        # healthy after an evaluation) and the part before its comparison returns data.
        rules = [r for g in self.prom.api("rules")["data"]["groups"] for r in g["rules"]]
        self.assertGreaterEqual(len(rules), 10)
        empty = []
        for rule in rules:
            self.assertEqual(rule["health"], "ok", rule)
            self.prom.query(rule["query"])
            for part in split_alert(rule["query"]):
                if not self.prom.query(part):
                    empty.append((rule["name"], part))
        self.assertEqual(empty, [], "alert expressions whose left side has no data")
        print("traffic statuses:", dict(sorted(self.traffic.statuses.items())))
        print("%d dashboard queries and %d alert rules evaluated" % (len(queries), len(rules)))


if __name__ == "__main__":
    harness.main()

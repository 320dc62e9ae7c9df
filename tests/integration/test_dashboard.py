"""The admin dashboard (issue 12) in a real browser: a real corral with an admin token, three
simulated Kupo instances and a rate-limited Blockfrost-like pool under traffic; headless
Chromium driven over the DevTools protocol (python3-websockets) opens
http://127.0.0.1:<admin>/#token=<token> and the test reads what a person would see: a card
per backend with its state, a card that turns draining (amber) when its instance is
overloaded and down (red) when it is disconnected, no console error or uncaught exception,
every request to the admin listener only, the Bearer token on /status requests and never
on the page request, a clear message for a wrong or missing token, one column on a phone.
Screenshots: build/dashboard.png (desktop), build/dashboard-phone.png and
build/dashboard-dark.png; DASHBOARD_SETTLE_S=N waits N more seconds before taking them.

Without /usr/bin/chromium the test is skipped, unless CI is set: then it fails."""
import os
import sys

try:
    import websockets  # noqa: F401
except ImportError:  # a pyenv Python first on PATH: Debian's modules live with /usr/bin/python3
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

import asyncio
import base64
import itertools
import json
import re
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

import websockets

import harness

CHROMIUM = "/usr/bin/chromium"
TOKEN = "dash-T0ken-5e1f"
BUILD = os.path.dirname(os.path.abspath(harness.CORRAL))
CARDS_JS = """Array.from(document.querySelectorAll('[data-backend]')).map(e => ({
  backend: e.dataset.backend, state: e.dataset.state,
  border: getComputedStyle(e).borderLeftColor,
  rps: e.querySelector('[data-field=rps]').textContent,
  pinned: e.querySelector('[data-field=pinned]').textContent,
  x: Math.round(e.getBoundingClientRect().left)}))"""
DASH = "\u2013"
# Keeps a copy of each /status answer the page parses (Response.json), so a test can compare
# the cards with the very answer they were drawn from: the page renders it in the same task,
# before any evaluation from here can run.
CAPTURE_JS = """(() => { const json = Response.prototype.json;
  Response.prototype.json = function () {
    return json.call(this).then(v => { window.__status = JSON.parse(JSON.stringify(v)); return v; });
  }; window.__status = null; })()"""
RENDERED_JS = """({status: window.__status,
  cards: Array.from(document.querySelectorAll('[data-backend]')).map(e => {
    const f = (n) => e.querySelector('[data-field=' + n + ']').textContent;
    return {backend: e.dataset.backend, rps: f('rps'), rate_503: f('rate_503'), p99: f('p99')};
  })})"""
# Each pool's chart panels as rendered, with the /status answer they were drawn from.
POOLS_RENDERED_JS = """({status: window.__status,
  pools: Array.from(document.querySelectorAll('[data-pool]')).map(e => {
    const f = (n) => e.querySelector('[data-chart=' + n + '] .now').textContent;
    return {pool: e.dataset.pool, rps: f('rps'), rate_503: f('rate_503'), p99: f('p99')};
  })})"""


def setUpModule():
    if not os.path.exists(CHROMIUM):
        why = CHROMIUM + " is not installed (Debian package chromium)"
        if os.environ.get("CI"):
            raise RuntimeError("CI is set, so the dashboard test may not skip: " + why)
        raise unittest.SkipTest(why)


def config(fleet, token_file, bf_port, state_file):
    routes = ("      - {prefix: /kupo/, pool: kupo, strip_prefix: true, methods: [GET]}\n"
              "      - {prefix: /bf/, pool: blockfrost, strip_prefix: true}\n")
    return "state_file: %s\n" % state_file + harness.listener_config(routes).replace(
        "admin: {listen: 127.0.0.1:0}",
        "admin: {listen: 127.0.0.1:0, token_file: %s}" % token_file) + (
        "sticky:\n  keys: [{from: header, name: X-Session-Key}]\n"
        "pools:\n"
        "  kupo:\n"
        "    kind: kupo\n"
        "    backends:\n%s"
        "    health: {interval: 200ms, timeout: 150ms, rise: 2, fall: 2}\n"
        # A long ejection, so the overloaded instance stays draining for the screenshot.
        "    eject: {consecutive_503: 3, base_time: 60s, max_time: 5m, max_percent: 50}\n"
        "    slow_start: 0s\n"
        "  blockfrost:\n"
        "    kind: http\n"
        "    backends: [{name: blockfrost-1, address: 127.0.0.1:%d}]\n"
        "    health: {interval: 1h, timeout: 100ms}\n"
        "    rate_limit: {rps: 10, burst: 50, daily: 2000}\n") % (
            harness.backends_yaml(fleet), bf_port)


class Traffic:
    """Background users: GETs with 40 session keys through the kupo route, and a few through
    the rate-limited pool. Bounded in time; stops when asked."""

    def __init__(self, port, seconds=240):
        self.port, self.stop_at = port, time.time() + seconds
        self.done = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        users = itertools.cycle(["user-%d" % i for i in range(40)])
        while not self.done.is_set() and time.time() < self.stop_at:
            try:
                harness.get(self.port, "/kupo/checkpoints", {"X-Session-Key": next(users)},
                            timeout=5)
                if self.sent % 10 == 0:
                    harness.get(self.port, "/bf/blocks/latest", timeout=5)
                self.sent += 1
            except OSError:
                pass
            time.sleep(0.01)

    def stop(self):
        self.done.set()
        self.thread.join(10)


class Browser:
    """Headless Chromium in its own process group with a fresh profile; killed (the whole
    group) by close(), which the test registers before anything can fail."""

    def __init__(self, workdir):
        self.profile = os.path.join(workdir, "profile")
        self.log_path = os.path.join(workdir, "chromium.log")
        self.log = open(self.log_path, "w")
        self.p = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-default-apps", "--disable-extensions", "--mute-audio",
             "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
             "--user-data-dir=" + self.profile, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=harness._die_with_parent)
        harness._LIVE.add(self.p)

    def devtools_port(self, timeout=30):
        path = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise AssertionError("chromium exited (%s): %s" % (self.p.returncode, self.tail()))
            try:
                with open(path) as f:
                    lines = f.read().split("\n")
                if lines[0].strip().isdigit() and len(lines) > 1 and lines[1]:
                    return int(lines[0])
            except FileNotFoundError:
                pass
            time.sleep(0.1)
        raise AssertionError("no DevToolsActivePort after %ds: %s" % (timeout, self.tail()))

    def tail(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-2000:]

    def close(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)  # the browser and all its children
            except ProcessLookupError:
                pass
        self.p.wait()
        harness._LIVE.discard(self.p)
        self.log.close()


class Cdp:
    """One DevTools page session: send() waits for its answer; every event is kept, in
    order, in self.events as (method, params)."""

    def __init__(self, ws):
        self.ws, self.ids, self.pending, self.events = ws, itertools.count(1), {}, []
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg and msg["id"] in self.pending:
                self.pending.pop(msg["id"]).set_result(msg)
            elif "method" in msg:
                self.events.append((msg["method"], msg.get("params", {})))

    async def send(self, method, params=None, timeout=20):
        i = next(self.ids)
        fut = asyncio.get_running_loop().create_future()
        self.pending[i] = fut
        await self.ws.send(json.dumps({"id": i, "method": method, "params": params or {}}))
        msg = await asyncio.wait_for(fut, timeout)
        if "error" in msg:
            raise AssertionError("%s: %s" % (method, msg["error"]))
        return msg["result"]

    async def js(self, expr):
        r = await self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        if "exceptionDetails" in r:
            raise AssertionError("evaluating %r: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    async def wait_js(self, expr, pred, what, timeout=10):
        """Polls expr until pred(value) holds; returns (value, seconds taken)."""
        t0 = time.time()
        while True:
            v = await self.js(expr)
            if pred(v):
                return v, time.time() - t0
            if time.time() - t0 > timeout:
                raise AssertionError("timed out after %ds waiting for %s; last: %r"
                                     % (timeout, what, v))
            await asyncio.sleep(0.1)

    async def screenshot(self, path, width, height=None):
        """A full-page PNG at `width` CSS pixels; returns its path."""
        await self.send("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height or 900, "deviceScaleFactor": 1,
            "mobile": width < 600})
        await asyncio.sleep(0.3)
        full = await self.js("Math.ceil(document.documentElement.scrollHeight)")
        shot = await self.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": full, "scale": 1}})
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        return path


def errors_in(events):
    """Console errors, uncaught exceptions and error log entries among `events`."""
    out = []
    for method, p in events:
        if method == "Runtime.exceptionThrown":
            out.append("exception: %s" % json.dumps(p.get("exceptionDetails"))[:500])
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console.%s: %s" % (p["type"], json.dumps(p.get("args"))[:500]))
        elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
            out.append("log: %s (%s)" % (p["entry"].get("text"), p["entry"].get("url")))
    return out


class Dashboard(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        token_file = os.path.join(self.dir.name, "admin.token")
        with open(token_file, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(token_file, 0o600)
        self.fleet = harness.Fleet(3)
        self.addCleanup(self.fleet.stop)
        self.bf = harness.RecordingBackend()
        self.addCleanup(self.bf.close)
        self.corral = harness.Corral(config(self.fleet, token_file, self.bf.port,
                                            os.path.join(self.dir.name, "pins")))
        self.addCleanup(lambda: self.assertEqual(self.corral.stop(), 0))
        self.traffic = Traffic(self.corral.port)
        self.addCleanup(self.traffic.stop)
        self.browser = Browser(self.dir.name)
        self.addCleanup(self.browser.close)  # runs before the temp dir goes: LIFO

    def status(self):
        status, _, body = harness.get(self.corral.admin_port, "/status",
                                      {"Authorization": "Bearer " + TOKEN})
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def test_dashboard_in_a_browser(self):
        port = self.browser.devtools_port()
        with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=10) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        self.assertTrue(pages, "chromium has no page target")
        asyncio.run(self.scenario(pages[0]["webSocketDebuggerUrl"]))

    async def scenario(self, ws_url):
        async with websockets.connect(ws_url, max_size=64 << 20) as ws:
            cdp = Cdp(ws)
            for domain in ("Runtime", "Log", "Network", "Page"):
                await cdp.send(domain + ".enable")
            await cdp.send("Emulation.setDeviceMetricsOverride", {
                "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
            admin = "http://127.0.0.1:%d" % self.corral.admin_port
            await cdp.send("Page.navigate", {"url": admin + "/#token=" + TOKEN})

            # Every backend of every pool gets a card, in the state /status gives it.
            want = {"%s/%s" % (p["name"], b["name"])
                    for p in self.status()["pools"] for b in p["backends"]}
            self.assertEqual(len(want), 4)
            cards, _ = await cdp.wait_js(
                CARDS_JS, lambda v: v and {c["backend"] for c in v} == want, "a card per backend",
                20)
            truth = {"%s/%s" % (p["name"], b["name"]): b["state"]
                     for p in self.status()["pools"] for b in p["backends"]}
            self.assertEqual({c["backend"]: c["state"] for c in cards}, truth)
            self.assertEqual(truth["kupo/kupo-2"], "up")
            up_colour = {c["backend"]: c["border"] for c in cards}["kupo/kupo-2"]

            # Traffic shows as a request rate on the cards that take it.
            cards, _ = await cdp.wait_js(
                CARDS_JS, lambda v: any(re.match(r"^[0-9.]+$", c["rps"]) and float(c["rps"]) > 0
                                        for c in v), "a request rate on some card")
            # Each card shows its backend's /status "window" (req/s, 503 share, p99), compared
            # with the very /status answer the page rendered (see RENDERED_JS).
            await cdp.js(CAPTURE_JS)
            shown, _ = await cdp.wait_js(
                RENDERED_JS, lambda v: v and v["status"] and any(
                    c["p99"] != DASH for c in v["cards"]), "a p99 on some card", 20)
            self.check_windows(shown)
            # An overloaded instance: its card turns draining (another colour) within seconds.
            self.fleet.control("kupo-2", overload=True)
            card = "Array.from(document.querySelectorAll('[data-backend=\"kupo/%s\"]'))" \
                   ".map(e => [e.dataset.state, getComputedStyle(e).borderLeftColor])[0]"
            (state, colour), took = await cdp.wait_js(
                card % "kupo-2", lambda v: v and v[0] == "draining", "kupo-2 draining", 10)
            self.assertNotEqual(colour, up_colour)
            print("overloaded kupo-2 shown draining after %.2fs" % took)
            # A disconnected one: down, a third colour.
            self.fleet.control("kupo-3", health="disconnected")
            (state, down_colour), took = await cdp.wait_js(
                card % "kupo-3", lambda v: v and v[0] == "down", "kupo-3 down", 10)
            self.assertNotIn(down_colour, (up_colour, colour))
            print("disconnected kupo-3 shown down after %.2fs" % took)
            # The quota gauge of the rate-limited pool.
            self.assertTrue(await cdp.js(
                "!!document.querySelector('[data-pool=blockfrost] [data-quota] svg.gauge')"))
            # A reload shows in its panel (today's /status has the counts).
            self.corral.proc.send(signal.SIGHUP)
            await cdp.wait_js("document.querySelector('[data-reload] .sub').textContent",
                              lambda v: v and v.startswith("1 ok"), "the reload count")
            # The charts draw the pools' /status history (a point per 5 s): all three panels.
            await cdp.wait_js(
                "document.querySelectorAll('[data-pool=kupo] [data-chart] path.line').length",
                lambda v: v >= 3, "the charts", 25)
            # Their "now" is the pool's newest history step for all three figures.
            self.check_pool_now(await cdp.js(POOLS_RENDERED_JS))

            # DASHBOARD_SETTLE_S=N: N more seconds of traffic before the pictures (fuller
            # charts, as for docs/dashboard.png).
            await asyncio.sleep(float(os.environ.get("DASHBOARD_SETTLE_S", "0")))
            desktop = await cdp.screenshot(os.path.join(BUILD, "dashboard.png"), 1280)
            print("screenshot: " + desktop)
            phone = await cdp.screenshot(os.path.join(BUILD, "dashboard-phone.png"), 390, 844)
            print("screenshot: " + phone)
            # One column on a phone: every card starts at the same x.
            xs = {c["x"] for c in await cdp.js(CARDS_JS)}
            self.assertEqual(len(xs), 1, "cards side by side at 390 px: %s" % xs)
            await cdp.send("Emulation.setEmulatedMedia", {
                "features": [{"name": "prefers-color-scheme", "value": "dark"}]})
            dark = await cdp.screenshot(os.path.join(BUILD, "dashboard-dark.png"), 1280)
            print("screenshot: " + dark)
            await cdp.send("Emulation.setEmulatedMedia", {"features": []})

            good = list(cdp.events)
            self.assertEqual(errors_in(good), [], "console errors or exceptions")
            self.check_requests(good, admin)

            # A wrong token: a clear message saying how to open the page.
            await cdp.send("Page.navigate", {"url": admin + "/index.html#token=wrong-token"})
            banner, _ = await cdp.wait_js(
                "(b => b ? [document.body.dataset.status, b.dataset.kind, b.innerText] : null)"
                "(document.getElementById('banner'))",
                lambda v: v and v[0] == "auth", "the 401 message")
            self.assertEqual(banner[1], "auth")
            self.assertIn("#token=", banner[2])
            self.assertIn("refused", banner[2])
            # The only errors then are the browser's own notes of the 401 answers.
            for e in errors_in(cdp.events[len(good):]):
                self.assertRegex(e, r"^log: .*401.*\(%s/status\)$" % re.escape(admin))

    def check_windows(self, shown):
        """Every card's req/s, 503 and p99 equal its backend's window in the /status answer
        the page rendered, to the digits shown; "–" where that window is null."""
        status = {"%s/%s" % (p["name"], b["name"]): b.get("window")
                  for p in shown["status"]["pools"] for b in p["backends"]}
        self.assertEqual({c["backend"] for c in shown["cards"]}, set(status))
        p99s = 0
        for c in shown["cards"]:
            win = status[c["backend"]]
            if win is None:
                self.assertEqual((c["rps"], c["rate_503"], c["p99"]), (DASH,) * 3, c)
                continue
            self.assertClose(c["rps"], win["rps"], c)
            self.assertClose(c["rate_503"], win["rate_503"] * 100, c, "%")
            if win["p99_ms"] is None:
                self.assertEqual(c["p99"], DASH, c)
            else:
                p99s += 1
                ms = re.match(r"^([0-9.]+) (m?s)$", c["p99"])
                self.assertTrue(ms, c)
                scale = 1 if ms.group(2) == "ms" else 1000
                self.assertClose(ms.group(1), win["p99_ms"] / scale, c)
        self.assertGreater(p99s, 0, "no card with a p99: %s" % shown)

    def check_pool_now(self, shown):
        """Each pool's req/s, 503 and p99 "now" are the last point of its /status history
        (one basis, not the backends' last minute summed); "–" before the first point."""
        hists = {p["name"]: p["history"] for p in shown["status"]["pools"]}
        self.assertEqual({p["pool"] for p in shown["pools"]}, set(hists))
        p99s = 0
        for p in shown["pools"]:
            h = hists[p["pool"]]
            if not h["rps"]:
                self.assertEqual((p["rps"], p["rate_503"], p["p99"]), (DASH,) * 3, p)
                continue
            self.assertClose(p["rps"], h["rps"][-1], p)
            self.assertClose(p["rate_503"], h["rate_503"][-1] * 100, p, "%")
            if h["p99_ms"][-1] is None:
                self.assertEqual(p["p99"], DASH, p)
            else:
                p99s += 1
                ms = re.match(r"^([0-9.]+) (m?s)$", p["p99"])
                self.assertTrue(ms, p)
                scale = 1 if ms.group(2) == "ms" else 1000
                self.assertClose(ms.group(1), h["p99_ms"][-1] / scale, p)
        self.assertGreater(p99s, 0, "no pool with a p99 now: %s" % shown)

    def assertClose(self, text, value, card, unit=""):
        """`text` (a number as shown, maybe with `unit`) is `value` rounded to its digits."""
        m = re.match(r"^(<?)([0-9.]+)%s$" % re.escape(unit), text)
        self.assertTrue(m, "%r is not a number: %s" % (text, card))
        if m.group(1):  # "<0.1%": a share under a thousandth, not zero
            self.assertTrue(0 < value < float(m.group(2)), "%r for %r: %s" % (text, value, card))
            return
        digits = len(m.group(2).partition(".")[2])
        self.assertLessEqual(abs(float(m.group(2)) - value), 0.5 * 10 ** -digits + 1e-9,
                             "%r shown for %r: %s" % (text, value, card))

    def check_requests(self, events, admin):
        """Every request goes to the admin listener; /status ones carry the Bearer token,
        the page request carries no token in any form."""
        requests = [p for m, p in events if m == "Network.requestWillBeSent"]
        statuses = 0
        for p in requests:
            url, headers = p["request"]["url"], p["request"]["headers"]
            if url.startswith("data:"):  # the empty favicon, not a network request
                continue
            self.assertTrue(url.startswith(admin + "/"), url)
            auth = {k.lower(): v for k, v in headers.items()}.get("authorization")
            if url == admin + "/status":
                statuses += 1
                self.assertEqual(auth, "Bearer " + TOKEN)
            else:
                self.assertEqual(p.get("type"), "Document", url)
                self.assertEqual(url, admin + "/")
                self.assertIsNone(auth)
                # (request.urlFragment is the browser's own copy of "#token=...": not sent)
                self.assertNotIn(TOKEN, url + json.dumps(headers))
        self.assertGreater(statuses, 5)


if __name__ == "__main__":
    harness.main()

"""bench/strictness (issue 9's comparison table): on a handful of cases, its table has one
well-formed row per case with the answers the controls must get, and nothing it started
outlives it, whether it finishes or is interrupted (Ctrl-C, SIGTERM)."""
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import CORRAL, Proc, main  # noqa: E402

TOOL = os.path.join(os.path.dirname(__file__), "../../bench/strictness")
PEERS = [p for p, exe in (("haproxy", "/usr/sbin/haproxy"), ("nginx", "/usr/sbin/nginx"))
         if os.access(exe, os.X_OK)]
TITLES = {"corral": "corral", "haproxy": "HAProxy", "nginx": "nginx"}
CELL = re.compile(r"^(\d{3}( \d{3})*( \S.*)?|-|t/o|junk|refused|crash.*) · "
                  r"(none|part|fwd( x\d+)?(\+part)?)(: .+)?$")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead but not yet reaped; only a running process counts.
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def started_pids(text):
    return [int(m.group(2)) for m in re.finditer(r"^start (\S+) pid (\d+)", text, re.M)]


class StrictnessTool(unittest.TestCase):
    def test_table_rows_and_controls(self):
        cases = ["get", "pipelined-gets", "chunked-post", "cl-te", "resp-204-bytes"]
        proxies = ["corral"] + PEERS
        r = subprocess.run([TOOL, "--corral", CORRAL, "--only", ",".join(proxies),
                            "--case", ",".join(cases)],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        header = "| # | case | " + " | ".join(TITLES[p] for p in proxies) + " |"
        self.assertEqual(lines[0], header, r.stdout)
        self.assertEqual(lines[1], "|---|---|" + "---|" * len(proxies))
        rows = {}
        for line in lines[2:2 + len(cases)]:
            cols = [c.strip() for c in line.strip("|").split(" | ")]
            self.assertEqual(len(cols), 2 + len(proxies), line)
            name = re.match(r"`([^`]+)`:", cols[1]).group(1)
            for cell in cols[2:]:
                self.assertRegex(cell, CELL, line)
            rows[name] = dict(zip(proxies, cols[2:]))
        self.assertEqual(sorted(rows), sorted(cases))  # each case once (in the file's order)
        self.assertIn("Each cell:", r.stdout)  # the key is printed under the table
        # Well-formed input: every proxy answers and the backend records what it got.
        for p in proxies:
            self.assertEqual(rows["get"][p], "200 · fwd")
            self.assertEqual(rows["pipelined-gets"][p], "200 200 · fwd x2")
            self.assertEqual(rows["chunked-post"][p], "200 · fwd")
            self.assertEqual(rows["resp-204-bytes"][p], "204 · fwd")  # scripted answer
        # corral refuses CL+TE before anything reaches the backend (issue 9: already right).
        self.assertEqual(rows["cl-te"]["corral"], "400 · none")
        pids = started_pids(r.stderr)
        self.assertEqual(len(pids), len(proxies), r.stderr)
        for pid in pids:
            self.assertFalse(alive(pid), "pid %d outlived bench/strictness" % pid)

    def interrupt(self, sig):
        # Every case, so the tool is surely mid-run when the signal comes.
        tool = Proc([TOOL, "--corral", CORRAL, "--only", "corral"])
        try:
            tool.wait_line(r"^corral +get ", timeout=30)
            pids = started_pids(tool.log())
            self.assertEqual(len(pids), 1, tool.log())
            self.assertTrue(alive(pids[0]))
            tool.send(sig)
            tool.p.wait(timeout=20)
            self.assertEqual(tool.p.returncode, 130, tool.log())
            deadline = time.time() + 5
            while alive(pids[0]) and time.time() < deadline:
                time.sleep(0.05)
            self.assertFalse(alive(pids[0]), "corral outlived the interrupted tool")
            tool.wait_line(r"^stopped corral pid %d" % pids[0], timeout=5)
        finally:
            tool.stop(signal.SIGKILL)

    def test_ctrl_c_stops_what_it_started(self):
        self.interrupt(signal.SIGINT)

    def test_sigterm_stops_what_it_started(self):
        self.interrupt(signal.SIGTERM)


if __name__ == "__main__":
    main()

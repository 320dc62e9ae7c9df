"""Start-up and signals (issue 8): a SIGHUP that arrives while corral starts must neither
kill it nor be lost; corral handles it (one reload) once it is ready, and serves."""
import os
import random
import re
import signal
import tempfile
import time
import unittest

import harness

CYCLES = 30


def wait_in_main(pid, timeout=5.0):
    """Waits until the kernel shows SIGHUP held or caught by pid, i.e. corral's main() has
    begun (its first line holds the control signals). Before that the dynamic loader runs,
    where no program can protect itself; after it, every moment counts as "starting"."""
    bit = 1 << (signal.SIGHUP - 1)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open("/proc/%d/status" % pid) as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except FileNotFoundError:
            return False
        if (int(fields["SigBlk"], 16) | int(fields["SigCgt"], 16)) & bit:
            return True
        time.sleep(0.0002)
    return False


class StartupSignals(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fleet = harness.Fleet(2)
        cls.dir = tempfile.TemporaryDirectory()
        cls.path = os.path.join(cls.dir.name, "corral.yaml")
        with open(cls.path, "w") as f:
            f.write(harness.kupo_config(cls.fleet))

    @classmethod
    def tearDownClass(cls):
        cls.fleet.stop()
        cls.dir.cleanup()

    def cycle(self, delay_s):
        """One start, SIGHUP after delay_s (0: as soon as main runs), then checks; returns
        None when corral survived and reloaded, else what went wrong."""
        proc = harness.Proc([harness.CORRAL, "--config", self.path])
        try:
            if not wait_in_main(proc.p.pid):
                return "main() never started: rc=%s" % proc.p.poll()
            if delay_s:
                time.sleep(delay_s)
            started_before = any("running" in l for l in proc.lines)
            proc.send(signal.SIGHUP)
            try:
                proc.wait_line(r"corral \S+ running", timeout=10)
                proc.wait_line(r"config reloaded from", timeout=10)
            except AssertionError:
                rc = proc.p.poll()
                return "rc=%s (SIGHUP=%d) after %.3fs%s:\n%s" % (
                    rc, -signal.SIGHUP, delay_s, " (already running)" if started_before else "",
                    proc.log())
            log = proc.log()
            admin = int(re.search(r"admin listening \S+:(\d+)", log).group(1))
            public = int(re.search(r"listening public \S+:(\d+)", log).group(1))
            status, headers, _ = harness.get(public, "/kupo/checkpoints",
                                             headers={"X-Session-Key": "u1"})
            self.assertEqual(status, 200)
            self.assertIn(headers.get("x-backend"), self.fleet.names())
            metrics = harness.get(admin, "/metrics")[2]
            m = re.search(r'^corral_config_reloads_total\{result="ok"\} (\d+)$', metrics, re.M)
            self.assertIsNotNone(m, metrics)
            self.assertEqual(int(m.group(1)), 1)  # the one SIGHUP, handled once
            self.assertEqual(harness.get_json(admin, "/status")["reloads"]["ok"], 1)
            return None
        finally:
            proc.stop(signal.SIGTERM)  # kills it if SIGTERM is not enough

    def test_sighup_while_starting(self):
        """30 starts, each with a SIGHUP during start-up (as soon as main runs, or a few ms
        later: config load, binding, workers): 0 deaths, each reloads once and serves."""
        rng = random.Random(8)
        t0 = time.time()
        failures = []
        for i in range(CYCLES):
            delay = 0.0 if i % 2 == 0 else rng.uniform(0.0, 0.02)
            err = self.cycle(delay)
            if err:
                failures.append("cycle %d: %s" % (i, err))
        self.assertEqual(failures, [], "\n".join(failures[:3]))
        self.assertLess(time.time() - t0, 60)

    def test_sighup_before_main_with_a_holding_launcher(self):
        """Before main() only the launcher can protect a program (exec and the dynamic
        loader take 1-30 ms, and SIGHUP's default action kills). A launcher that starts
        corral with SIGHUP held may signal at once: corral releases the held signal once
        its handlers are in place and reloads, instead of never hearing SIGHUP again."""
        for _ in range(5):
            old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
            try:
                proc = harness.Proc([harness.CORRAL, "--config", self.path])
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
            try:
                proc.send(signal.SIGHUP)  # before main() runs, most of the time
                proc.wait_line(r"config reloaded from", timeout=10)
                with proc.cv:
                    after = len(proc.lines)
                proc.send(signal.SIGHUP)  # and SIGHUP is not left held afterwards
                proc.wait_line(r"config reloaded from", timeout=10, start=after)
                self.assertEqual(proc.log().count("config reloaded from"), 2, proc.log())
            finally:
                self.assertEqual(proc.stop(signal.SIGTERM), 0)

    def test_sigterm_while_starting(self):
        """A SIGTERM during start-up is not lost either: corral starts, then stops, exit 0."""
        proc = harness.Proc([harness.CORRAL, "--config", self.path])
        try:
            self.assertTrue(wait_in_main(proc.p.pid))
            proc.send(signal.SIGTERM)
            proc.p.wait(15)
            deadline = time.time() + 5  # the reader threads may still be pumping
            while "stopped" not in proc.log() and time.time() < deadline:
                time.sleep(0.01)
            self.assertEqual(proc.p.returncode, 0, proc.log())
            log = proc.log()
            self.assertIn("running", log)
            self.assertIn("SIGTERM: stopping", log)
            self.assertRegex(log, r"stopped$")
        finally:
            proc.stop()


if __name__ == "__main__":
    harness.main()

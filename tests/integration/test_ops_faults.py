"""Faults a client cannot cause and operations (issue 9 items 7, 8, 11, 12, 13), with the
real corral: slow answers never mark a backend down, running out of file descriptors is
corral's own problem, the admin listener has a head deadline and a connection cap, pins
age while corral is stopped, and a reload never loads a half-written file."""
import os
import re
import signal
import socket
import stat
import tempfile
import threading
import time
import unittest

import harness


def pool_config(fleet, names=None, pool_extra="", limits="", extra_top="", sticky_extra=""):
    return ("admin: {listen: 127.0.0.1:0}\n" + extra_top +
            "listeners:\n  - name: public\n    listen: 127.0.0.1:0\n    routes:\n"
            "      - {prefix: /kupo/, pool: kupo, strip_prefix: true}\n"
            "sticky:\n  keys: [{from: header, name: X-Session-Key}]\n" + sticky_extra +
            "pools:\n  kupo:\n    kind: kupo\n    backends:\n" +
            harness.backends_yaml(fleet, names) + pool_extra +
            ("limits: %s\n" % limits if limits else ""))


def backends(corral):
    return {b["name"]: b for b in corral.status()["pools"][0]["backends"]}


def metric(text, name, labels=""):
    m = re.search(r"^%s%s (\d+)" % (re.escape(name), re.escape(labels)), text, re.M)
    return int(m.group(1)) if m else None


def user_on(port, backend, prefix="u"):
    """A session key that corral pins to `backend` (tries keys until one lands there)."""
    for i in range(200):
        key = "%s%d" % (prefix, i)
        status, h, body = harness.get(port, "/kupo/checkpoints", {"X-Session-Key": key})
        assert status == 200, (status, body)
        if h["x-backend"] == backend:
            return key
    raise AssertionError("no user landed on " + backend)


class SlowAnswers(unittest.TestCase):
    """Item 7: answers slower than timeouts.response, which any client can ask for, count
    toward ejection like 503s; they never mark a backend down nor move its users."""

    def test_response_timeouts_never_mark_down(self):
        fleet = harness.Fleet(2)
        # Probes every 2 s (fall 3, the defaults): several timeouts land between two probes,
        # which is what moved every user off a healthy backend before.
        corral = harness.Corral(pool_config(
            fleet, pool_extra="    health: {interval: 2s, timeout: 500ms}\n"
                              "    timeouts: {connect: 1s, response: 300ms}\n"))
        try:
            user = user_on(corral.port, "kupo-1")
            fleet.control("kupo-1", latency_ms=900)
            codes = []

            def slow():
                codes.append(harness.get(corral.port, "/kupo/checkpoints",
                                         {"X-Session-Key": user})[0])
            threads = [threading.Thread(target=slow) for _ in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(codes, [504] * 6)
            time.sleep(0.3)  # health has heard of every timeout
            b = backends(corral)
            self.assertNotEqual(b["kupo-1"]["state"], "down", b["kupo-1"])
            self.assertEqual(b["kupo-1"]["state"], "draining", b["kupo-1"])
            self.assertEqual(b["kupo-1"]["health"]["reason"], "ejected_503", b["kupo-1"])
            # The user stays where its state is: no move with reason down.
            fleet.control("kupo-1", latency_ms=0)
            status, h, _ = harness.get(corral.port, "/kupo/checkpoints", {"X-Session-Key": user})
            self.assertEqual((status, h["x-backend"]), (200, "kupo-1"))
            self.assertEqual(metric(corral.metrics(), "corral_remaps_total",
                                    '{pool="kupo",reason="down"}'), 0)
            self.assertNotRegex(corral.proc.log(), r'msg="backend down" pool=kupo backend=kupo-1')
        finally:
            corral.stop()
            fleet.stop()


class LimitedCorral(harness.Corral):
    """corral under `prlimit --nofile=N:N` (soft and hard, so raising cannot help)."""

    def __init__(self, config_text, nofile):
        wrapper_dir = tempfile.mkdtemp()
        wrapper = os.path.join(wrapper_dir, "corral-limited")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec prlimit --nofile=%d:%d -- %s \"$@\"\n" % (
                nofile, nofile, os.path.abspath(harness.CORRAL)))
        os.chmod(wrapper, stat.S_IRWXU)
        saved = harness.CORRAL
        harness.CORRAL = wrapper
        try:
            super().__init__(config_text)
        finally:
            harness.CORRAL = saved
            os.unlink(wrapper)
            os.rmdir(wrapper_dir)


def refused(sock):
    """True when corral answered a fresh connection at once (503) or closed it."""
    sock.settimeout(0.3)
    try:
        data = sock.recv(4096)
    except socket.timeout:
        return False, b""
    except OSError:
        return True, b""
    return True, data


class FdExhaustion(unittest.TestCase):
    """Item 8: EMFILE/ENFILE is corral's: 503 with a reason, counted, logged, never a
    backend's connect failure or health event; a start-up warning when the limit is low."""

    # Not under UBSan: its vptr check tests whether memory is readable through a pipe,
    # which cannot be created while the process is out of descriptors, so every virtual
    # call then reports a false "invalid vptr" and stops corral. An ASan-only build
    # passes this case (no use-after-free), as does the normal build.
    @unittest.skipIf(os.environ.get("CORRAL_SANITIZED") == "1",
                     "UBSan's vptr check needs a free descriptor")
    def test_out_of_descriptors(self):
        fleet = harness.Fleet(2)
        corral = LimitedCorral(pool_config(
            fleet, pool_extra="    health: {interval: 60s, timeout: 1s}\n",
            limits="{max_connections: 1000, header_timeout: 60s}"), nofile=64)
        held = []
        try:
            log = corral.proc.log()
            self.assertRegex(log, r"file descriptor limit 64")
            self.assertRegex(log, r"limits\.max_connections 1000 may need up to \d+ file "
                                  r"descriptors .* the limit is 64")
            time.sleep(0.5)  # the first probes are done
            refusals = []
            for _ in range(120):
                s = socket.create_connection(("127.0.0.1", corral.port), timeout=5)
                gone, data = refused(s)
                if gone:
                    refusals.append(data)
                    s.close()
                    if len(refusals) >= 3:
                        break
                else:
                    held.append(s)
            self.assertGreaterEqual(len(refusals), 3, "corral never ran out")
            for data in refusals:
                # A clean refusal: our 503 (or a close the client sees at once).
                if data:
                    self.assertTrue(data.startswith(b"HTTP/1.1 503"), data)
                    self.assertIn(b"out of file descriptors", data)
            self.assertTrue(any(refusals), "no refused client got a 503")
            # An accepted client asks for something: corral cannot open a backend socket.
            answers = []
            for s in held[-3:]:
                s.settimeout(5)
                s.sendall(b"GET /kupo/checkpoints HTTP/1.1\r\nHost: x\r\n"
                          b"X-Session-Key: fd-user\r\n\r\n")
                answers.append(s.recv(65536))
            self.assertTrue(any(a.startswith(b"HTTP/1.1 503") and
                                b"out of file descriptors" in a for a in answers), answers)
        finally:
            for s in held:
                s.close()
        try:
            time.sleep(0.5)  # corral sees the closes and gets its descriptors back
            b = backends(corral)
            for name in ("kupo-1", "kupo-2"):
                self.assertEqual(b[name]["state"], "up", b[name])
            metrics = corral.metrics()
            self.assertGreaterEqual(metric(metrics, "corral_fd_exhausted_total",
                                           '{side="accept"}'), 3)
            self.assertGreaterEqual(metric(metrics, "corral_fd_exhausted_total",
                                           '{side="upstream"}'), 1)
            for name in ("kupo-1", "kupo-2"):
                self.assertEqual(metric(metrics, "corral_upstream_failures_total",
                                        '{pool="kupo",backend="%s",reason="connect"}' % name), 0)
            log = corral.proc.log()
            self.assertIn("out of file descriptors", log)
            self.assertNotIn("connect_failed", log)
            self.assertEqual(harness.get(corral.port, "/kupo/checkpoints")[0], 200)
        finally:
            corral.stop()
            fleet.stop()


class AdminLimits(unittest.TestCase):
    """Item 11: the admin listener cuts a slow head (408) and caps its connections, while
    the proxy keeps serving."""

    def test_admin_cap_and_header_timeout(self):
        fleet = harness.Fleet(1)
        corral = harness.Corral(pool_config(fleet))
        held = []
        try:
            for _ in range(64):
                held.append(socket.create_connection(("127.0.0.1", corral.admin_port)))
            time.sleep(0.2)
            extra = socket.create_connection(("127.0.0.1", corral.admin_port), timeout=3)
            data = extra.recv(4096)
            extra.close()
            self.assertTrue(data.startswith(b"HTTP/1.1 503"), data)
            self.assertIn(b"too many connections", data)
            self.assertEqual(harness.get(corral.port, "/kupo/checkpoints")[0], 200)
            for s in held:
                s.close()
            held = []
            deadline = time.time() + 5
            while True:  # corral sees the closes
                try:
                    corral.status()
                    break
                except (AssertionError, OSError, harness.http.client.HTTPException):
                    self.assertLess(time.time(), deadline)
                    time.sleep(0.1)

            # Slowloris: one header byte a second never completes a head; 408 at ~10 s.
            s = socket.create_connection(("127.0.0.1", corral.admin_port), timeout=1)
            held.append(s)
            start = time.time()
            s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n")
            got = b""
            while time.time() - start < 20:
                try:
                    s.sendall(b"X")
                except OSError:
                    break
                try:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                except socket.timeout:
                    continue
                except OSError:
                    break
            elapsed = time.time() - start
            self.assertTrue(got.startswith(b"HTTP/1.1 408"), got)
            self.assertGreater(elapsed, 8)
            self.assertLess(elapsed, 14)
            self.assertEqual(corral.status()["pools"][0]["name"], "kupo")
        finally:
            for s in held:
                s.close()
            corral.stop()
            fleet.stop()


class PinsAge(unittest.TestCase):
    """Item 12: the state file dates pins by the wall clock, so the time corral was stopped
    counts toward sticky.ttl."""

    def test_stop_counts_toward_ttl(self):
        fleet = harness.Fleet(2)
        state_dir = tempfile.TemporaryDirectory()
        cfg = pool_config(fleet, extra_top="state_file: %s\n" % os.path.join(state_dir.name, "pins"),
                          sticky_extra="  ttl: 2s\n")
        corral = None
        try:
            def run(stop_s):
                nonlocal corral
                corral = harness.Corral(cfg)
                self.assertEqual(harness.get(corral.port, "/kupo/checkpoints",
                                             {"X-Session-Key": "pin-user"})[0], 200)
                self.assertEqual(corral.stop(), 0)
                corral = None
                time.sleep(stop_s)
                corral = harness.Corral(cfg)
                m = corral.proc.wait_line(r"state file \S+: loaded (\d+) pins .*, (\d+) expired")
                pinned = sum(b["pinned_sessions"] for b in backends(corral).values())
                self.assertEqual(corral.stop(), 0)
                corral = None
                return int(m.group(1)), int(m.group(2)), pinned

            # Stopped 3 s with a 2 s ttl: the pin is gone.
            self.assertEqual(run(3.0), (0, 1, 0))
            # A short stop keeps it.
            self.assertEqual(run(0.2), (1, 0, 1))
        finally:
            if corral:
                corral.stop()
            fleet.stop()
            state_dir.cleanup()


class ReloadHalfWritten(unittest.TestCase):
    """Item 13: a SIGHUP while the config is being written loads the finished file (two
    reads 100 ms apart must agree), logs what changed, and gives up on a file that keeps
    changing, keeping the running config."""

    def test_slow_writer(self):
        fleet = harness.Fleet(2)
        corral = harness.Corral(pool_config(fleet, ["kupo-1"]))
        try:
            full = pool_config(fleet, ["kupo-1", "kupo-2"], limits="{max_connections: 500}")
            # The cut after kupo-1 is valid YAML (the old config): loading it would be wrong.
            cut = full.index("kupo-2") - len("      - {name: ")
            pieces = [full[:cut]] + [full[i:i + 12] for i in range(cut, len(full), 12)]
            start = len(corral.proc.lines)
            with open(corral.path, "w") as f:
                f.write(pieces[0])
                f.flush()
                corral.proc.send(signal.SIGHUP)
                for piece in pieces[1:]:
                    time.sleep(0.05)  # faster than the 100 ms agreement gap
                    f.write(piece)
                    f.flush()
            m = corral.proc.wait_line(r"config reload(ed from \S+: (.*)| failed: .*)", start=start)
            self.assertIsNotNone(m.group(2), m.group(0))
            self.assertIn("backend kupo/kupo-2 added", m.group(2))
            self.assertIn("limits changed", m.group(2))
            self.assertEqual(sorted(backends(corral)), ["kupo-1", "kupo-2"])

            # A file that never settles is refused after a bounded wait; the config stays.
            start = len(corral.proc.lines)
            with open(corral.path, "w") as f:
                f.write(pool_config(fleet, ["kupo-1"]))
                f.flush()
                corral.proc.send(signal.SIGHUP)
                t0 = time.time()
                while time.time() - t0 < 3.5:
                    time.sleep(0.05)
                    f.write("# still writing\n")
                    f.flush()
            m = corral.proc.wait_line(r"config reload failed: .*still changing", start=start)
            self.assertIn("keeping the running config", m.string)
            self.assertEqual(sorted(backends(corral)), ["kupo-1", "kupo-2"])
            self.assertEqual(harness.get(corral.port, "/kupo/checkpoints")[0], 200)
        finally:
            corral.stop()
            fleet.stop()


if __name__ == "__main__":
    harness.main()

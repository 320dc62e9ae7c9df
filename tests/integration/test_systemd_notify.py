"""systemd readiness and socket activation (issue 14), without systemd: the test owns the
NOTIFY_SOCKET datagram socket corral reports to, and hands corral listening sockets the
way systemd does (fd 3.., LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES)."""
import os
import re
import signal
import socket
import sys
import tempfile
import time
import unittest

import harness

# Execs argv[2:] as the same process after putting the socket argv[1] on fd 3 and setting
# LISTEN_PID to its own pid, as systemd does (the pid must be the one that reads it).
ACTIVATE = ("import os, sys\n"
            "fd = int(sys.argv[1])\n"
            "if fd != 3:\n"
            "    os.dup2(fd, 3)\n"
            "    os.close(fd)\n"
            "os.environ['LISTEN_PID'] = str(os.getpid())\n"
            "os.execv(sys.argv[2], sys.argv[2:])\n")


def config(fleet, port=0, name="public", probe="interval: 300ms, timeout: 200ms", top=""):
    text = top + harness.kupo_config(fleet).replace(
        "    listen: 127.0.0.1:0\n", "    listen: 127.0.0.1:%d\n" % port, 1)
    text = text.replace("  - name: public\n", "  - name: %s\n" % name, 1)
    return text + "    health: {%s}\n" % probe


class Notify:
    """A unix datagram socket of the test's own, as systemd's NOTIFY_SOCKET."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def next(self, timeout=10):
        """The next message as a dict of its assignments, and when it came."""
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.split("\n") if "=" in line), time.time()

    def close(self):
        self.sock.close()
        self.dir.cleanup()


class Readiness(harness.OneSimCase):
    def test_ready_reloading_stopping(self):
        n = Notify()
        try:
            c = harness.Corral(config(self.fleet, top="stop_timeout: 2s\n"),
                               env={"NOTIFY_SOCKET": n.path})
            try:
                msg, _ = n.next()
                self.assertEqual(msg.get("READY"), "1", msg)
                # Sent once the listener is bound and the first probe answered: the
                # listener accepts at once and the backend is known up.
                self.assertIn("1 of 1 backends up", msg["STATUS"])
                status, headers, _ = harness.get(c.port, "/kupo/matches/x")
                self.assertEqual((status, headers.get("x-backend")), (200, self.fleet.names()[0]))

                c.proc.send(signal.SIGHUP)
                msg, _ = n.next()
                self.assertEqual(msg.get("RELOADING"), "1", msg)
                self.assertRegex(msg.get("MONOTONIC_USEC", ""), r"^\d+$")
                msg, _ = n.next()
                self.assertEqual(msg.get("READY"), "1", msg)
                self.assertIn("config reloaded", msg["STATUS"])

                # A refused reload still ends the reload for systemd, saying it failed.
                c.rewrite("listeners: [\n")
                c.proc.send(signal.SIGHUP)
                msg, _ = n.next()
                self.assertEqual(msg.get("RELOADING"), "1", msg)
                msg, _ = n.next()
                self.assertEqual(msg.get("READY"), "1", msg)
                self.assertIn("reload failed", msg["STATUS"])
                self.assertEqual(harness.get(c.port, "/kupo/matches/x")[0], 200)

                c.proc.send(signal.SIGTERM)
                msg, _ = n.next()
                self.assertEqual(msg.get("STOPPING"), "1", msg)
                # The stop asks systemd for stop_timeout (2 s) and a 5 s margin, in µs, so
                # a stop_timeout above TimeoutStopSec= is not cut short.
                self.assertEqual(msg.get("EXTEND_TIMEOUT_USEC"), str((2000 + 5000) * 1000), msg)
                c.proc.p.wait(15)  # a second SIGTERM (from c.stop) would not be graceful
            finally:
                self.assertEqual(c.stop(), 0)
        finally:
            n.close()

    def test_ready_waits_for_the_first_probe_round_but_not_for_ever(self):
        # A backend that accepts and never answers: its first probe times out (1.5 s).
        hung = socket.socket()
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        n = Notify()
        try:
            text = config(self.fleet, probe="interval: 10s, timeout: 1500ms").replace(
                "address: 127.0.0.1:%d" % self.fleet.backends[self.fleet.names()[0]],
                "address: 127.0.0.1:%d" % hung.getsockname()[1])
            c = harness.Corral(text, env={"NOTIFY_SOCKET": n.path})
            try:
                started = time.time()  # "running" is logged before the wait starts
                msg, at = n.next(timeout=15)
                self.assertEqual(msg.get("READY"), "1", msg)
                self.assertGreater(at - started, 1.0, msg)
            finally:
                self.assertEqual(c.stop(), 0)
        finally:
            n.close()
            hung.close()


def listening_socket(port=0):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(128)
    return s


class Activated:
    """corral started the way systemd starts a socket-activated service."""

    def __init__(self, text, sock, fdname=None, notify=None):
        self.dir = tempfile.TemporaryDirectory()
        self.path = path = os.path.join(self.dir.name, "corral.yaml")
        with open(path, "w") as f:
            f.write(text)
        env = dict(os.environ, LISTEN_FDS="1")
        if notify:
            env["NOTIFY_SOCKET"] = notify.path
        if fdname:
            env["LISTEN_FDNAMES"] = fdname
        fd = sock.fileno()
        self.proc = harness.Proc([sys.executable, "-c", ACTIVATE, str(fd), harness.CORRAL,
                                  "--config", path], env=env, pass_fds=(fd,))

    def stop(self, sig=signal.SIGTERM):
        rc = self.proc.stop(sig)
        self.dir.cleanup()
        return rc


class SocketActivation(harness.OneSimCase):
    def served(self, port, n=10):
        return harness.answers(port, n)

    def test_named_socket_serves_its_listener(self):
        s = listening_socket()
        port = s.getsockname()[1]
        # The listener's configured address (port 0) does not matter: the name does.
        a = Activated(config(self.fleet, 0, name="web"), s, fdname="web")
        try:
            a.proc.wait_line(r"listener web uses the socket passed by systemd \(fd 3, name web\)")
            a.proc.wait_line(r"listening web 127\.0\.0\.1:%d" % port)
            a.proc.wait_line(r"corral \S+ running")
            self.assertEqual(self.served(port), [(200, self.name)] * 10)
        finally:
            self.assertEqual(a.stop(), 0)
            s.close()

    def test_unnamed_socket_matches_by_address_and_survives_a_binary_upgrade(self):
        s = listening_socket()
        port = s.getsockname()[1]
        text = config(self.fleet, port)  # the address the test itself listens on: no probe
        first = Activated(text, s)
        try:
            first.proc.wait_line(r"listener public uses the socket passed by systemd")
            first.proc.wait_line(r"corral \S+ running")
            self.assertEqual(self.served(port), [(200, self.name)] * 10)
            # The upgrade: a second process on the same socket, then the first stops.
            second = Activated(text, s)
            try:
                second.proc.wait_line(r"corral \S+ running")
                self.assertEqual(first.stop(), 0)
                self.assertEqual(self.served(port, 30), [(200, self.name)] * 30)
            finally:
                self.assertEqual(second.stop(), 0)
        finally:
            first.stop()
            s.close()

    def test_named_socket_on_another_address_than_configured_warns(self):
        s = listening_socket()
        port = s.getsockname()[1]
        other = port + 1 if port < 65535 else port - 1
        a = Activated(config(self.fleet, other), s, fdname="public")
        try:
            a.proc.wait_line(r"corral \S+ running")
            self.assertIn("listener public: the socket passed by systemd (name public) is bound "
                          "to 127.0.0.1:%d, not to the configured listen 127.0.0.1:%d; serving "
                          "on 127.0.0.1:%d" % (port, other, port), a.proc.log())
            self.assertEqual(self.served(port, 3), [(200, self.name)] * 3)
        finally:
            self.assertEqual(a.stop(), 0)
            s.close()

    def test_reload_that_leaves_the_passed_socket_without_its_listener_is_refused(self):
        s = listening_socket()
        port = s.getsockname()[1]
        n = Notify()
        try:
            a = Activated(config(self.fleet, 0), s, fdname="public", notify=n)
            try:
                m = a.proc.wait_line(r"admin listening \S+:(\d+)")
                admin = int(m.group(1))
                msg, _ = n.next()
                self.assertEqual(msg.get("READY"), "1", msg)
                # The listener renamed: its socket would queue connections nobody accepts.
                with open(a.path, "w") as f:
                    f.write(config(self.fleet, 0, name="web"))
                a.proc.send(signal.SIGHUP)
                msg, _ = n.next()
                self.assertEqual(msg.get("RELOADING"), "1", msg)
                msg, _ = n.next()
                self.assertEqual(msg.get("READY"), "1", msg)
                self.assertIn("reload failed", msg["STATUS"])
                self.assertIn("matches no listener", msg["STATUS"])
                a.proc.wait_line(r"config reload failed: socket passed by systemd \(fd 3, name "
                                 r"public, 127\.0\.0\.1:%d\) matches no listener" % port)
                reloads = harness.get_json(admin, "/status")["reloads"]
                self.assertEqual((reloads["ok"], reloads["failed"]), (0, 1), reloads)
                self.assertIn("matches no listener", reloads["last_error"])
                # The old listener still serves on the passed socket.
                self.assertEqual(self.served(port, 5), [(200, self.name)] * 5)
            finally:
                self.assertEqual(a.stop(), 0)
        finally:
            n.close()
            s.close()

    def test_socket_matching_no_listener_is_refused(self):
        s = listening_socket()
        try:
            a = Activated(config(self.fleet, 0), s, fdname="elsewhere")
            try:
                a.proc.p.wait(15)
            finally:
                rc = a.stop(signal.SIGKILL)
            self.assertEqual(rc, 1, a.proc.log())
            self.assertIn("socket passed by systemd (fd 3, name elsewhere, 127.0.0.1:%d) matches "
                          "no listener" % s.getsockname()[1], a.proc.log())
        finally:
            s.close()


if __name__ == "__main__":
    unittest.main()

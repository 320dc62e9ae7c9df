"""Port ownership (issue 14): a listen address another process listens on is refused at
start (exit 1, naming the listener and the address) and at reload (the running config
stays); corral never shares it silently through SO_REUSEPORT. Addresses corral owns
itself (a listener kept or renamed across a reload) still work."""
import os
import re
import signal
import socket
import tempfile
import time
import unittest

import harness


def occupied():
    """A plain listening socket of the test's own on 127.0.0.1: (socket, port)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s, s.getsockname()[1]


def config(fleet, port, prefix="/kupo/", extra="", admin_port=0):
    routes = ("      - {prefix: %s, pool: kupo, strip_prefix: true, methods: [GET]}\n" % prefix)
    text = harness.kupo_config(fleet, routes=routes)
    text = text.replace("    listen: 127.0.0.1:0\n", "    listen: 127.0.0.1:%d\n" % port, 1)
    text = text.replace("admin: {listen: 127.0.0.1:0}", "admin: {listen: 127.0.0.1:%d}" % admin_port)
    return text.replace("pools:\n", extra + "pools:\n", 1)


def extra_listener(name, port):
    return ("  - name: %s\n    listen: 127.0.0.1:%d\n    routes:\n"
            "      - {prefix: /kupo/, pool: kupo, strip_prefix: true, methods: [GET]}\n"
            % (name, port))


def run_to_exit(text, timeout=15):
    """Starts corral on config text and waits for it to exit: (exit code, its log)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "corral.yaml")
        with open(path, "w") as f:
            f.write(text)
        p = harness.Proc([harness.CORRAL, "--config", path])
        try:
            p.p.wait(timeout)
        finally:
            rc = p.stop(signal.SIGKILL)
        return rc, p.log()


class PortOwnership(harness.OneSimCase):
    def test_listener_on_an_address_another_process_holds_exits_1(self):
        s, port = occupied()
        try:
            rc, log = run_to_exit(config(self.fleet, port))
        finally:
            s.close()
        self.assertEqual(rc, 1, log)
        self.assertIn('listener \\"public\\" 127.0.0.1:%d: address already in use by another '
                      'process' % port, log)
        self.assertNotIn("running", log)

    def test_admin_on_an_address_another_process_holds_exits_1(self):
        s, port = occupied()
        try:
            rc, log = run_to_exit(config(self.fleet, 0, admin_port=port))
        finally:
            s.close()
        self.assertEqual(rc, 1, log)
        self.assertIn("admin listener 127.0.0.1:%d: address already in use by another process"
                      % port, log)

    def test_second_corral_exits_and_the_first_keeps_all_its_traffic(self):
        port = harness.free_port()
        first = harness.Corral(config(self.fleet, port))
        try:
            self.assertEqual(first.port, port)
            # The second one would answer 404 for /kupo/: any share of traffic would show.
            rc, log = run_to_exit(config(self.fleet, port, prefix="/other/"))
            self.assertEqual(rc, 1, log)
            self.assertIn('listener \\"public\\" 127.0.0.1:%d: address already in use' % port, log)
            seen = harness.answers(port, 200)
            self.assertEqual(seen, [(200, self.name)] * 200)
        finally:
            self.assertEqual(first.stop(), 0)
        # Once the first is gone (its connections in TIME_WAIT), the address is free again.
        again = harness.Corral(config(self.fleet, port))
        try:
            self.assertEqual(harness.answers(port, 5), [(200, self.name)] * 5)
        finally:
            self.assertEqual(again.stop(), 0)

    def test_reload_onto_an_occupied_address_is_refused(self):
        port = harness.free_port()
        c = harness.Corral(config(self.fleet, port))
        s, busy = occupied()
        try:
            c.rewrite(config(self.fleet, port, extra=""
                             ).replace("sticky:\n", extra_listener("extra", busy) + "sticky:\n", 1))
            n = len(c.proc.lines)
            c.proc.send(signal.SIGHUP)
            c.proc.wait_line(r'config reload failed: .*listener \\"extra\\" 127\.0\.0\.1:%d: '
                             r'address already in use by another process' % busy, start=n)
            self.assertEqual(harness.answers(port, 20), [(200, self.name)] * 20)
            # The test's socket got no connection from corral's listener: nothing accepted.
            s.setblocking(False)
            with self.assertRaises(BlockingIOError):
                s.accept()
            # A free address is not refused, and a listener renamed on the address corral
            # holds itself is corral's own: both reload.
            fresh = harness.free_port()
            c.rewrite(config(self.fleet, port).replace("name: public", "name: web", 1)
                      .replace("sticky:\n", extra_listener("extra", fresh) + "sticky:\n", 1))
            n = len(c.proc.lines)
            c.proc.send(signal.SIGHUP)
            c.proc.wait_line(r"config reloaded from", start=n)
            # The workers close "public" a moment after the reload (a connection queued on
            # its socket then is reset by the kernel: SO_REUSEPORT has no hand-over), so the
            # check starts once they had time to.
            time.sleep(0.5)
            self.assertEqual(harness.answers(port, 20), [(200, self.name)] * 20)
            self.assertEqual(harness.answers(fresh, 5), [(200, self.name)] * 5)
        finally:
            s.close()
            self.assertEqual(c.stop(), 0)


if __name__ == "__main__":
    unittest.main()

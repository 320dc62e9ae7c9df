"""The harness' RedisServer (issue 15's store tests stand on it): it starts on a free
loopback port, pause() leaves TCP accepting but silent, resume() answers again, kill()
refuses connections and loses the data, restart() brings an empty server back on the same
port, and leaving the context kills it even while paused. Skipped without redis-server."""
import socket
import time
import unittest

import harness


def ping(port, timeout=1.0):
    """Redis' answer to an inline PING: "+PONG", or "timeout" / "refused"."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except ConnectionRefusedError:
        return "refused"
    except socket.timeout:
        return "timeout"
    try:
        s.sendall(b"PING\r\n")
        return s.recv(64).decode().strip()
    except socket.timeout:
        return "timeout"
    finally:
        s.close()


@harness.needs_redis
class RedisServerHelper(unittest.TestCase):
    def test_lifecycle(self):
        with harness.RedisServer() as r:
            port = r.port
            self.assertEqual(ping(port), "+PONG")
            self.assertEqual(r.cli("SET", "corral:pin:x", "v1|kupo-1|5|none", "PX", 60000), "OK")
            self.assertEqual(r.cli("GET", "corral:pin:x"), "v1|kupo-1|5|none")
            self.assertEqual(r.keys("corral:pin:*"), ["corral:pin:x"])
            # No persistence: a restarted server must start empty.
            self.assertEqual("".join(r.cli("CONFIG", "GET", "save").splitlines()[1:]), "")
            self.assertEqual(r.cli("CONFIG", "GET", "appendonly").splitlines()[-1], "no")

            r.pause()  # the kernel still accepts; Redis answers nothing
            t0 = time.monotonic()
            self.assertEqual(ping(port, timeout=0.5), "timeout")
            self.assertGreaterEqual(time.monotonic() - t0, 0.4)
            r.resume()
            self.assertEqual(ping(port), "+PONG")
            self.assertEqual(r.cli("GET", "corral:pin:x"), "v1|kupo-1|5|none")

            r.kill()
            self.assertFalse(r.running())
            self.assertEqual(ping(port), "refused")

            r.restart()
            self.assertEqual(r.port, port)  # same port: corral reconnects to its address
            self.assertEqual(ping(port), "+PONG")
            self.assertEqual(r.keys("corral:pin:*"), [])  # nothing survived
            self.assertEqual(r.cli("DBSIZE"), "0")

            r.pause()
            proc = r.proc.p
        # Leaving the block kills it, paused or not.
        self.assertIsNotNone(proc.poll())
        self.assertEqual(ping(port), "refused")

    def test_two_servers_get_different_ports(self):
        with harness.RedisServer() as a, harness.RedisServer() as b:
            self.assertNotEqual(a.port, b.port)
            a.cli("SET", "k", "a")
            self.assertEqual(b.cli("EXISTS", "k"), "0")


if __name__ == "__main__":
    harness.main()

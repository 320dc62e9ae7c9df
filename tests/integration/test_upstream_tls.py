"""Upstream TLS (issue 11): backends behind TLS, verified by a CA file and a name (or the
system store with `tls: true`), through a plain corral listener. Certificates come from
the openssl CLI at test time; the backends are python's http.server wrapped with ssl, on
127.0.0.1 only. A backend whose certificate does not verify is a failed connection: 502,
counted in corral_upstream_failures_total{reason="tls"}, and health marks it down."""
import os
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(__file__))
from harness import Corral, get, listener_config  # noqa: E402


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_certs(d):
    """ca.pem (trusted), other-ca.pem (not), and leaf certificates: ip.pem (IP 127.0.0.1,
    by ca), named.pem (DNS backend.test, by ca), rogue.pem (IP 127.0.0.1, by other-ca),
    self.pem (self-signed for 127.0.0.1); each with its .key."""
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=corral test %s" % ca, "-keyout", ca + ".key", "-out", ca + ".pem",
                cwd=d)
    leaves = {"ip": ("ca", "IP:127.0.0.1"), "named": ("ca", "DNS:backend.test"),
              "rogue": ("other-ca", "IP:127.0.0.1")}
    for name, (ca, san) in leaves.items():
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\n" % san)
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + name,
                "-keyout", name + ".key", "-out", name + ".csr", cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                "-CAcreateserial", "-days", "2", "-extfile", name + ".ext", "-out", name + ".pem",
                cwd=d)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=self",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", "self.key", "-out", "self.pem",
            cwd=d)


class TlsBackend:
    """An HTTP/1.1 keep-alive server over TLS on 127.0.0.1. Counts connections that got
    past the handshake (apart from health probes, which say User-Agent: corral-health)
    and those that resumed a session. GET /close answers with Connection: close."""

    def __init__(self, cert, key, port=0):
        self.lock = threading.Lock()
        self.conns = 0          # handshakes completed (any client)
        self.proxy_conns = 0    # of those, connections whose first request was corral's
        self.resumed = 0        # proxied connections that resumed a TLS session
        self.requests = []
        self.probes = 0
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                self.first = True
                with backend.lock:
                    backend.conns += 1

            def do_GET(self):
                probe = self.headers.get("User-Agent") == "corral-health"
                with backend.lock:
                    if probe:
                        backend.probes += 1
                    else:
                        backend.requests.append(self.path)
                        if self.first:
                            backend.proxy_conns += 1
                            backend.resumed += 1 if self.connection.session_reused else 0
                self.first = False
                body = b"tls ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                if self.path == "/close":
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        # A client that aborts the handshake (corral refusing the certificate) raises in
        # accept; socketserver drops such a connection and goes on.
        self.server.handle_error = lambda request, address: None
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def config(backends, interval="300ms"):
    """A plain listener routing / to pool `web` with `backends` (YAML flow entries)."""
    return listener_config("      - {prefix: /, pool: web}\n") + (
        "sticky: {keys: [{from: header, name: X-User}]}\n"
        "pools:\n"
        "  web:\n"
        "    kind: http\n"
        "    slow_start: 0s\n"
        "    health: {interval: %s, timeout: 250ms, rise: 1, fall: 2}\n"
        "    eject: {max_percent: 100}\n"
        "    backends:\n%s") % (interval, "".join("      - %s\n" % b for b in backends))


def failures(corral, backend, reason):
    """corral_upstream_failures_total of `backend` (pool web) for `reason`."""
    m = re.search(r'^corral_upstream_failures_total\{pool="web",backend="%s",reason="%s"\} (\d+)'
                  % (backend, reason), corral.metrics(), re.M)
    return int(m.group(1)) if m else None


def state_of(corral, backend):
    for b in corral.status()["pools"][0]["backends"]:
        if b["name"] == backend:
            return b["state"]
    raise KeyError(backend)


def wait_state(corral, backend, want, timeout=8.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if state_of(corral, backend) == want:
            return True
        time.sleep(0.1)
    return False


class KeepAliveClient:
    """One client connection to corral, sending sequential GETs on it."""

    def __init__(self, port):
        import http.client
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def get(self, path, user="u1"):
        self.c.request("GET", path, headers={"X-User": user})
        r = self.c.getresponse()
        return r.status, r.read()

    def close(self):
        self.c.close()


class UpstreamTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.d = cls.tmp.name
        make_certs(cls.d)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.d, name)

    def backend(self, leaf):
        b = TlsBackend(self.path(leaf + ".pem"), self.path(leaf + ".key"))
        self.addCleanup(b.close)
        return b

    def corral(self, backends, **kw):
        c = Corral(config(backends, **kw))
        self.addCleanup(lambda: self.assertEqual(c.stop(), 0))
        return c

    def test_verified_by_ca_and_ip_with_keep_alive_and_resumption(self):
        b = self.backend("ip")
        c = self.corral(["{name: good, address: 127.0.0.1:%d, tls: {ca: %s}}"
                         % (b.port, self.path("ca.pem"))])
        client = KeepAliveClient(c.port)
        try:
            for i in range(20):
                self.assertEqual(client.get("/r%d" % i), (200, b"tls ok"))
        finally:
            client.close()
        self.assertEqual(len([p for p in b.requests if p.startswith("/r")]), 20)
        # Twenty requests, one upstream connection: the TLS connection was pooled.
        self.assertEqual(b.proxy_conns, 1)
        # A backend that closes after each answer forces new connections: they resume the
        # session saved from the earlier one instead of a full handshake.
        for i in range(4):
            self.assertEqual(get(c.port, "/close", headers={"X-User": "u1"})[0], 200)
        self.assertEqual(b.proxy_conns, 4)
        self.assertGreaterEqual(b.resumed, 3, "new connections after the first resume")
        self.assertEqual(failures(c, "good", "tls"), 0)
        # Probes speak TLS too (the backend only speaks TLS), and keep the backend up.
        time.sleep(1.0)
        self.assertGreater(b.probes, 0)
        self.assertEqual(state_of(c, "good"), "up")

    def test_server_name_sets_sni_and_the_name_checked(self):
        b = self.backend("named")
        c = self.corral(["{name: named, address: 127.0.0.1:%d, tls: {ca: %s, server_name: "
                         "backend.test}}" % (b.port, self.path("ca.pem"))])
        self.assertEqual(get(c.port, "/n", headers={"X-User": "u"})[:3:2], (200, "tls ok"))

    def test_wrong_ca_wrong_name_and_untrusted_self_signed_fail_with_502(self):
        rogue = self.backend("rogue")   # signed by a CA corral does not trust
        named = self.backend("named")   # trusted CA, but made out to backend.test
        selfsigned = self.backend("self")
        c = self.corral([
            "{name: rogue, address: 127.0.0.1:%d, tls: {ca: %s}}" % (rogue.port,
                                                                      self.path("ca.pem")),
            "{name: wrongname, address: 127.0.0.1:%d, tls: {ca: %s}}" % (named.port,
                                                                          self.path("ca.pem")),
            "{name: selfsigned, address: 127.0.0.1:%d, tls: true}" % selfsigned.port,
        ], interval="2s")  # probes slow enough that the first request meets them up
        # A request tries backends in turn (failover); they all refuse: 502. Users are
        # placed apart, so a few of them reach every backend.
        status, _, body = get(c.port, "/x", headers={"X-User": "first"})
        self.assertEqual(status, 502, body)
        names = ("rogue", "wrongname", "selfsigned")
        for n in range(30):
            if all(failures(c, x, "tls") for x in names):
                break
            self.assertIn(get(c.port, "/x", headers={"X-User": "u%d" % n})[0], (502, 503))
        # Nothing got through a connection corral refused.
        self.assertEqual(rogue.requests + named.requests + selfsigned.requests, [])
        for name in names:
            self.assertGreater(failures(c, name, "tls"), 0, name)
            self.assertEqual(failures(c, name, "connect"), 0, name)
            # Health hears of it (passive failures, and probes that fail the same way).
            self.assertTrue(wait_state(c, name, "down"), name)
        # With every backend down, corral says so itself rather than trying again.
        self.assertEqual(get(c.port, "/y", headers={"X-User": "second"})[0], 503)
        self.assertEqual(rogue.requests + named.requests + selfsigned.requests, [])
        log = c.proc.log()
        self.assertRegex(log, r'msg="tls: [^"]*certificate[^"]*\(127\.0\.0\.1:\d+\)" pool=web '
                              r'backend=rogue')
        self.assertIn("tls_failures", c.status()["pools"][0]["backends"][0])

    def test_health_over_tls_brings_a_backend_back(self):
        """A backend that fails verification goes down; once it shows a certificate that
        verifies (same port, new server), TLS probes bring it back up."""
        rogue = self.backend("rogue")
        port = rogue.port
        c = self.corral(["{name: flip, address: 127.0.0.1:%d, tls: {ca: %s}}"
                         % (port, self.path("ca.pem"))])
        self.assertTrue(wait_state(c, "flip", "down"))
        rogue.close()
        good = None
        for _ in range(50):  # the port is free again once the old server closed
            try:
                good = TlsBackend(self.path("ip.pem"), self.path("ip.key"), port)
                break
            except OSError:
                time.sleep(0.1)
        self.assertIsNotNone(good)
        self.addCleanup(good.close)
        self.assertTrue(wait_state(c, "flip", "up"))
        self.assertEqual(get(c.port, "/back", headers={"X-User": "z"})[0], 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)

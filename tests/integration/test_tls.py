"""TLS on a listener (issue 11), with certificates made by the openssl CLI at test time: curl
over HTTPS (TLS 1.2 and 1.3, keep-alive, large bodies both ways), TLS 1.1 refused, ALPN
http/1.1, session resumption, the handshake bounded by header_timeout, a WebSocket over
TLS (wss://) to a plain backend, and SIGHUP re-reading the certificate and key (a swapped
pair served to the next connection; a bad pair keeps the old one and fails the reload)."""
import os
import re
import sys

try:
    import websockets  # noqa: F401
except ImportError:  # a pyenv Python first on PATH: Debian's modules live with /usr/bin/python3
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

import asyncio
import hashlib
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import websockets.client

from harness import Corral, RecordingBackend, main, request_path
from test_websocket import WsBackends

BIG = bytes(range(256)) * (3 * 4096)  # 3 MiB


def respond(req):
    if req.startswith(b"GET /big"):
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BIG) + BIG
    if req.startswith(b"POST"):
        body = req.partition(b"\r\n\r\n")[2]
        digest = hashlib.sha256(body).hexdigest().encode()
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(digest) + digest
    return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Certs:
    """A CA, two server certificates it signs for localhost and 127.0.0.1 (CN first and
    second), and their keys, in a scratch directory."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        self.run(["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem",
                  "-days", "2", "-subj", "/CN=corral-test-ca"])
        with open(self.path("san.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        for name in ("first", "second"):
            self.run(["openssl", "req", *ec, "-keyout", name + ".key", "-out", name + ".csr",
                      "-subj", "/CN=" + name])
            self.run(["openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem",
                      "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile",
                      "san.ext", "-out", name + ".pem"])

    def run(self, argv):
        subprocess.run(argv, cwd=self.dir, check=True, capture_output=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def install(self, cert, key):
        """Copies a pair over the files the config names (live.pem, live.key)."""
        shutil.copyfile(self.path(cert), self.path("live.pem"))
        shutil.copyfile(self.path(key), self.path("live.key"))

    def der(self, name):
        with open(self.path(name)) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())

    def client_context(self):
        ctx = ssl.create_default_context(cafile=self.path("ca.pem"))
        return ctx

    def cleanup(self):
        self.tmp.cleanup()


def config(certs, backend_port, ws_port, limits=""):
    return ("workers: 2\n"
            "admin: {listen: 127.0.0.1:0}\n"
            "listeners:\n"
            "  - name: public\n"
            "    listen: 127.0.0.1:0\n"
            "    tls: {cert: %s, key: %s}\n"
            "    routes:\n"
            "      - {prefix: /ws, pool: ogmios, strip_prefix: true, websocket: true}\n"
            "      - {prefix: /, pool: web}\n"
            "sticky:\n  keys: [{from: client_ip}]\n"
            "pools:\n"
            "  web:\n    kind: http\n    backends: [{name: w1, address: 127.0.0.1:%d}]\n"
            "  ogmios:\n    kind: http\n    backends: [{name: o1, address: 127.0.0.1:%d}]\n"
            "%s") % (certs.path("live.pem"), certs.path("live.key"), backend_port, ws_port,
                     ("limits: " + limits + "\n") if limits else "")


class TlsListener(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = Certs()
        cls.certs.install("first.pem", "first.key")
        os.chmod(cls.certs.path("live.key"), 0o644)  # named in a warning at start
        cls.backend = RecordingBackend(respond)
        cls.ws = WsBackends(["og-1"])
        try:
            cls.corral = Corral(config(cls.certs, cls.backend.port, cls.ws.ports["og-1"],
                                       "{header_timeout: 1s, idle_timeout: 30s}"))
        except BaseException:
            cls.backend.close()
            cls.ws.stop()
            cls.certs.cleanup()
            raise
        cls.port = cls.corral.port
        cls.url = "https://127.0.0.1:%d" % cls.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.corral.stop()
        cls.backend.close()
        cls.ws.stop()
        cls.certs.cleanup()
        assert rc == 0, rc

    def curl(self, *args):
        r = subprocess.run(["curl", "-sS", "-v", "--cacert", self.certs.path("ca.pem"),
                            "--max-time", "20", *args], capture_output=True, timeout=30)
        return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace")

    def s_client(self, *args, stdin=b""):
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.port,
                            "-CAfile", self.certs.path("ca.pem"), *args],
                           input=stdin, capture_output=True, timeout=30)
        return r.returncode, r.stdout.decode("utf-8", "replace") + r.stderr.decode(
            "utf-8", "replace")

    def served_cert(self):
        """The DER certificate a new connection is served."""
        ctx = self.certs.client_context()
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                return t.getpeercert(binary_form=True)

    def test_key_file_readable_by_others_is_named(self):
        self.corral.proc.wait_line(r"level=warn msg=\"TLS key of listener public %s is mode 0644" %
                                   re.escape(self.certs.path("live.key")))

    def test_curl_tls12_and_tls13_keep_alive(self):
        for flags, version in ((["--tlsv1.2", "--tls-max", "1.2"], "TLSv1.2"),
                               (["--tlsv1.3"], "TLSv1.3")):
            with self.subTest(version=version):
                a, b = "/a-" + version, "/b-" + version
                rc, out, err = self.curl(*flags, self.url + a, self.url + b)
                self.assertEqual(rc, 0, err)
                self.assertEqual(out, b"okok")
                self.assertIn("SSL connection using " + version, err)
                self.assertIn("Re-using existing connection", err)  # keep-alive over TLS
                # both reached the backend, once each (health probes share it)
                paths = [request_path(r) for r in self.backend.requests]
                self.assertEqual((paths.count(a), paths.count(b)), (1, 1))

    def test_large_bodies_both_ways(self):
        rc, out, err = self.curl(self.url + "/big")
        self.assertEqual(rc, 0, err)
        self.assertEqual(hashlib.sha256(out).hexdigest(), hashlib.sha256(BIG).hexdigest())
        body = os.urandom(2 << 20)
        path = self.certs.path("upload.bin")
        with open(path, "wb") as f:
            f.write(body)
        rc, out, err = self.curl("--data-binary", "@" + path, self.url + "/up")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.decode(), hashlib.sha256(body).hexdigest())

    def test_tls11_refused(self):
        rc, out = self.s_client("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("alert protocol version", out)  # corral's answer to a 1.1 ClientHello
        self.assertIn("Cipher is (NONE)", out)
        self.assertNotIn("BEGIN CERTIFICATE", out)
        # and the listener still serves
        rc, body, err = self.curl(self.url + "/after")
        self.assertEqual((rc, body), (0, b"ok"), err)

    def test_alpn_http11(self):
        rc, out = self.s_client("-alpn", "h2,http/1.1")
        self.assertIn("ALPN protocol: http/1.1", out)
        rc, out, err = self.curl("--http2", self.url + "/alpn")  # offers h2 first
        self.assertEqual(rc, 0, err)
        self.assertRegex(err, r"ALPN.*server accepted.*http/1\.1")
        self.assertEqual(out, b"ok")

    def test_session_resumed(self):
        req = b"GET /r HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        for flag in ("-tls1_2", "-tls1_3"):
            with self.subTest(flag=flag):
                sess = self.certs.path("sess" + flag)
                # -ign_eof: read until corral closes (after the answer, and the TLS 1.3
                # ticket before it), not until stdin ends.
                rc, out = self.s_client(flag, "-ign_eof", "-sess_out", sess, stdin=req)
                self.assertIn("New, TLSv1.", out)
                self.assertTrue(os.path.getsize(sess) > 0)
                rc, out = self.s_client(flag, "-ign_eof", "-sess_in", sess, stdin=req)
                self.assertIn("Reused, TLSv1.", out)
                self.assertIn("HTTP/1.1 200 OK", out)

    def test_handshake_bounded_by_header_timeout(self):
        # A real ClientHello, cut in half.
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = self.certs.client_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
        with self.assertRaises(ssl.SSLWantReadError):
            obj.do_handshake()
        hello = outgoing.read()
        self.assertGreater(len(hello), 100)
        for sent in (b"", hello[:len(hello) // 2]):
            with self.subTest(sent=len(sent)):
                s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                try:
                    t0 = time.time()
                    s.sendall(sent)
                    try:
                        got = s.recv(4096)
                    except ConnectionResetError:
                        got = b""
                    took = time.time() - t0
                finally:
                    s.close()
                self.assertEqual(got, b"")
                self.assertGreater(took, 0.8)  # header_timeout 1s, not idle_timeout 30s
                self.assertLess(took, 5)

    def tls_failures(self):
        st = [l for l in self.corral.status()["listeners"] if l["name"] == "public"][0]
        self.assertTrue(st["tls"])
        m = re.search(r'corral_tls_failures_total\{listener="public"\} (\d+)', self.corral.metrics())
        self.assertEqual(int(m.group(1)), st["tls_failures"])
        return st["tls_failures"]

    def test_plain_http_to_tls_listener_is_closed(self):
        before = self.tls_failures()
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            except ConnectionResetError:
                pass
        finally:
            s.close()
        self.assertNotIn(b"HTTP/1.1", got)  # never an answer in clear text
        self.corral.proc.wait_line(r"TLS from 127\.0\.0\.1: .*(wrong version|http request)")
        self.assertEqual(self.tls_failures(), before + 1)

    def test_websocket_over_tls(self):
        async def go():
            async with websockets.client.connect(
                    "wss://localhost:%d/ws" % self.port, ssl=self.certs.client_context(),
                    max_size=4 << 20) as ws:
                self.assertEqual(ws.response_headers["X-Backend"], "og-1")
                for i in range(20):
                    msg = "message %d " % i + "x" * (i * 1000)
                    await ws.send(msg)
                    self.assertEqual(await ws.recv(), msg)
                big = os.urandom(1 << 20)
                await ws.send(big)
                self.assertEqual(await ws.recv(), big)
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(asyncio.wait_for(go(), 30))
        finally:
            loop.close()

    def test_zz_sighup_swaps_the_certificate_and_a_bad_pair_keeps_it(self):
        self.assertEqual(self.served_cert(), self.certs.der("first.pem"))

        def hup():
            mark = len(self.corral.proc.lines)
            self.corral.proc.send(signal.SIGHUP)
            return self.corral.proc.wait_line(r"config reload(ed| failed).*", start=mark).group(0)

        self.certs.install("second.pem", "second.key")
        self.assertIn("config reloaded", hup())
        self.assertEqual(self.served_cert(), self.certs.der("second.pem"))

        failed = self.corral.status()["reloads"]["failed"]
        self.certs.install("first.pem", "second.key")  # a pair that does not match
        line = hup()
        self.assertIn("config reload failed", line)
        self.assertIn("live.key", line)
        self.assertIn("does not match", line)
        self.assertEqual(self.corral.status()["reloads"]["failed"], failed + 1)
        self.assertEqual(self.served_cert(), self.certs.der("second.pem"))
        rc, body, err = self.curl(self.url + "/still")
        self.assertEqual((rc, body), (0, b"ok"), err)


if __name__ == "__main__":
    main()

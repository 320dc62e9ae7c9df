"""PROXY protocol on listeners (issue 15): with `proxy_protocol: true` the v1 or v2 header
an L4 balancer sends names the client, so X-Forwarded-For, the client_ip sticky key and
per-IP limits see that address (LOCAL / UNKNOWN: the socket's). A missing, malformed or
late header closes the connection without a reply and is logged. A listener without the
option answers "PROXY ..." with 400 as before. On a TLS listener the v2 header and the
ClientHello arrive in one segment and the handshake still works (corral takes exactly the
header's bytes). Raw sockets throughout; everything on 127.0.0.1."""
import signal
import socket
import ssl
import struct
import time

import harness
from test_tls import Certs

ROUTES = ("      - {prefix: /ip/, pool: bf, strip_prefix: true,\n"
          "         client_rate_limit: {rps: 1, burst: 2}}\n"
          "      - {prefix: /per/, pool: bf, strip_prefix: true,\n"
          "         client_rate_limit: {rps: 1, burst: 2, per_ip_rps: 1}}\n"
          "      - {prefix: /, pool: bf}\n")


def v1(src, sport=40000, dport=80):
    fam = "TCP6" if ":" in src else "TCP4"
    dst = "::1" if ":" in src else "127.0.0.1"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


def v2(src=None, sport=40000, local=False, tlvs=b""):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    if local:
        return sig + b"\x20\x00" + struct.pack(">H", 0)
    if ":" in src:
        body = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(
            socket.AF_INET6, "::1") + struct.pack(">HH", sport, 443)
        fam = 0x21
    else:
        body = socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(
            socket.AF_INET, "127.0.0.1") + struct.pack(">HH", sport, 443)
        fam = 0x11
    body += tlvs
    return sig + bytes([0x21, fam]) + struct.pack(">H", len(body)) + body


def request(path, headers=None):
    lines = ["GET %s HTTP/1.1" % path, "Host: test", "Connection: close"]
    lines += ["%s: %s" % kv for kv in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(data):
    if not data.startswith(b"HTTP/1.1 "):
        return None
    return int(data[9:12])


def tls_exchange(port, preface, data, certs, timeout=10):
    """A TLS client driven through memory BIOs, so that `preface` and the ClientHello go
    out in one send: the whole answer to `data` (bytes until the server's close)."""
    ctx = certs.client_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname="localhost")
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        first = True
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pending = out.read()
                if first:
                    pending, first = preface + pending, False
                if pending:
                    s.sendall(pending)
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("closed during the handshake")
                inc.write(chunk)
        if out.pending:
            s.sendall(out.read())
        tls.write(data)
        s.sendall(out.read())
        answer = b""
        while True:
            try:
                got = tls.read(65536)
                if got:
                    answer += got
                    continue
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return answer
            chunk = s.recv(65536)
            if not chunk:
                return answer
            inc.write(chunk)
    finally:
        s.close()


class ProxyProtocol(harness.OneBackendSuite):
    @classmethod
    def setUpClass(cls):
        cls.certs = Certs()
        try:
            super().setUpClass()
        except BaseException:
            cls.certs.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.certs.cleanup()

    @classmethod
    def config(cls, port):
        return ("workers: 1\n"
                "admin: {listen: 127.0.0.1:0}\n"
                "listeners:\n"
                "  - name: public\n"
                "    listen: 127.0.0.1:0\n"
                "    proxy_protocol: true\n"
                "    routes:\n" + ROUTES +
                "  - name: plain\n"
                "    listen: 127.0.0.1:0\n"
                "    routes:\n" + ROUTES +
                "  - name: secure\n"
                "    listen: 127.0.0.1:0\n"
                "    proxy_protocol: true\n"
                "    tls: {cert: %s, key: %s}\n"
                "    routes:\n" % (cls.certs.path("first.pem"), cls.certs.path("first.key")) +
                ROUTES +
                "limits: {header_timeout: 1s}\n"
                "sticky:\n"
                "  keys:\n"
                "    - {from: header, name: X-Session-Key}\n"
                "    - {from: client_ip}\n"
                "pools:\n"
                "  bf:\n"
                "    kind: http\n"
                "    backends: [{name: bf-1, address: 127.0.0.1:%d}]\n" % port)

    def send(self, data, listener="public", timeout=5, shut=False):
        """Everything read until the close; a reset or the timeout reads as what arrived
        before it."""
        return harness.until_close(self.corral.ports[listener], data, shut, timeout,
                                   ends=harness.RESET + (socket.timeout,))

    def forwarded_for(self, marker):
        """X-Forwarded-For of the one request the backend got whose line holds marker."""
        with self.backend.lock:
            found = [r for r in self.backend.requests if marker in r.split(b"\r\n")[0]]
        self.assertEqual(len(found), 1, found)
        for line in found[0].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"x-forwarded-for":
                return value.strip().decode()
        return None

    def test_v1_and_v2_set_x_forwarded_for(self):
        cases = [
            (v1("203.0.113.7"), "/xff-v1-4", "203.0.113.7"),
            (v1("2001:db8::7"), "/xff-v1-6", "2001:db8::7"),
            (v2("198.51.100.9"), "/xff-v2-4", "198.51.100.9"),
            (v2("2001:db8::9", tlvs=b"\x02\x00\x04host"), "/xff-v2-6", "2001:db8::9"),
            (v2(local=True), "/xff-v2-local", "127.0.0.1"),
            (b"PROXY UNKNOWN\r\n", "/xff-v1-unknown", "127.0.0.1"),
        ]
        for header, path, want in cases:
            with self.subTest(path=path):
                out = self.send(header + request(path))
                self.assertEqual(status_of(out), 200, out)
                self.assertEqual(self.forwarded_for(path.encode()), want)

    def test_client_ip_key_and_per_ip_limit_use_the_header(self):
        # /ip/: the client_ip key is limited to a burst of 2; a second address has its own.
        codes_a = [status_of(self.send(v1("192.0.2.1") + request("/ip/a%d" % i)))
                   for i in range(4)]
        self.assertEqual(codes_a[:2], [200, 200], codes_a)
        self.assertIn(429, codes_a[2:], codes_a)
        self.assertEqual(status_of(self.send(v2("192.0.2.2") + request("/ip/b"))), 200)
        # /per/: keys rotated from one address are capped by per_ip_rps (2 tokens, 1/s).
        codes = [status_of(self.send(v2("192.0.2.3") + request(
            "/per/r%d" % i, {"X-Session-Key": "rot-%d" % i}))) for i in range(6)]
        self.assertEqual(codes[:2], [200, 200], codes)
        self.assertGreaterEqual(codes.count(429), 3, codes)
        out = self.send(v1("192.0.2.4") + request("/per/other", {"X-Session-Key": "rot-0x"}))
        self.assertEqual(status_of(out), 200, out)
        self.corral.proc.wait_line(r"client 192\.0\.2\.3: rate limited: too many requests from "
                                   r"this address")

    def test_missing_or_malformed_header_closes_without_a_reply(self):
        bad = [
            (request("/no-header"), "not a PROXY protocol header"),
            (b"PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n" + request("/bad-v1"), "v1: bad IPv4"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n" + request("/lf"), "printable ASCII"),
            (v2("1.2.3.4")[:12] + b"\x21\x13\x00\x0c" + bytes(12) + request("/fam"),
             "v2: unknown address family"),
            (v2("1.2.3.4")[:14] + b"\x04\x01" + request("/long"), "longer than 1040"),
            (b"PROXY UNKNOWN " + b"x" * 120, "no CRLF within 107 bytes"),
        ]
        for data, why in bad:
            with self.subTest(why=why):
                mark = len(self.corral.proc.lines)
                self.assertEqual(self.send(data), b"")
                self.corral.proc.wait_line(
                    r"listener public: connection from 127\.0\.0\.1 closed: .*%s" % why,
                    start=mark)
        with self.backend.lock:
            self.assertFalse([r for r in self.backend.requests
                              if any(m in r for m in (b"/no-header", b"/bad-v1", b"/lf"))])

    def test_eof_and_a_late_header_close(self):
        mark = len(self.corral.proc.lines)
        out = self.send(b"PROXY TCP4 1.2", shut=True)
        self.assertEqual(out, b"")
        self.corral.proc.wait_line(r"closed: closed within the PROXY header", start=mark)
        # Half a header, then silence: closed at header_timeout (1 s).
        start = time.time()
        self.assertEqual(self.send(v2("10.0.0.1")[:20], timeout=8), b"")
        self.assertLess(time.time() - start, 6)
        self.corral.proc.wait_line(r"closed: no complete PROXY header in time", start=mark)
        # Byte by byte is fine.
        s = socket.create_connection(("127.0.0.1", self.corral.ports["public"]), timeout=5)
        try:
            for b in v1("203.0.113.77"):
                s.sendall(bytes([b]))
                time.sleep(0.002)
            s.sendall(request("/slow-header"))
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        finally:
            s.close()
        self.assertEqual(status_of(out), 200, out)
        self.assertEqual(self.forwarded_for(b"/slow-header"), "203.0.113.77")

    def test_listener_without_the_option_refuses_proxy_as_a_bad_request(self):
        out = self.send(v1("203.0.113.8") + request("/plain-proxy"), listener="plain")
        self.assertEqual(status_of(out), 400, out)
        out = self.send(request("/plain-ok"), listener="plain")
        self.assertEqual(status_of(out), 200, out)
        self.assertEqual(self.forwarded_for(b"/plain-ok"), "127.0.0.1")

    def test_tls_listener_with_v2_header_in_the_same_segment(self):
        port = self.corral.ports["secure"]
        out = tls_exchange(port, v2("198.51.100.200"), request("/tls-v2"), self.certs)
        self.assertEqual(status_of(out), 200, out)
        self.assertEqual(self.forwarded_for(b"/tls-v2"), "198.51.100.200")
        out = tls_exchange(port, v1("2001:db8::200"), request("/tls-v1"), self.certs)
        self.assertEqual(status_of(out), 200, out)
        self.assertEqual(self.forwarded_for(b"/tls-v1"), "2001:db8::200")
        # Without the header, the ClientHello itself is a malformed header: closed.
        with self.assertRaises((ConnectionError, ssl.SSLError, OSError)):
            tls_exchange(port, b"", request("/tls-none"), self.certs)


class StopWithPendingHeader(harness.unittest.TestCase):
    def test_sigterm_closes_a_connection_still_in_its_header(self):
        backend = harness.RecordingBackend()
        corral = None
        try:
            corral = harness.Corral(
                "workers: 1\nadmin: {listen: 127.0.0.1:0}\nlisteners:\n"
                "  - name: public\n    listen: 127.0.0.1:0\n    proxy_protocol: true\n"
                "    routes: [{prefix: /, pool: bf}]\n"
                "limits: {header_timeout: 30s}\nstop_timeout: 20s\n"
                "pools:\n  bf:\n    kind: http\n"
                "    backends: [{name: bf-1, address: 127.0.0.1:%d}]\n" % backend.port)
            s = socket.create_connection(("127.0.0.1", corral.port), timeout=10)
            try:
                s.sendall(b"PROXY TCP4 10.0.0.1 ")
                time.sleep(0.2)
                start = time.time()
                rc, corral = corral.stop(), None
                self.assertEqual(rc, 0)
                # Not held until header_timeout nor stop_timeout: nothing to finish.
                self.assertLess(time.time() - start, 8)
                s.settimeout(5)
                try:
                    self.assertEqual(s.recv(100), b"")
                except ConnectionResetError:
                    pass
            finally:
                s.close()
        finally:
            if corral:
                corral.stop()
            backend.close()


class ReloadSwitchesTheOption(harness.unittest.TestCase):
    def test_reload_applies_to_new_connections_only(self):
        backend = harness.RecordingBackend()

        def cfg(on):
            return ("workers: 1\nadmin: {listen: 127.0.0.1:0}\nlisteners:\n"
                    "  - name: public\n    listen: 127.0.0.1:0\n%s"
                    "    routes: [{prefix: /, pool: bf}]\n"
                    "pools:\n  bf:\n    kind: http\n"
                    "    backends: [{name: bf-1, address: 127.0.0.1:%d}]\n"
                    % ("    proxy_protocol: true\n" if on else "", backend.port))

        corral = harness.Corral(cfg(False))
        try:
            port = corral.port
            # An idle keep-alive connection opened before the reload.
            old = socket.create_connection(("127.0.0.1", port), timeout=10)
            old.sendall(b"GET /before HTTP/1.1\r\nHost: t\r\n\r\n")
            self.assertEqual(status_of(old.recv(65536)), 200)
            mark = len(corral.proc.lines)
            corral.rewrite(cfg(True))
            corral.proc.send(signal.SIGHUP)
            line = corral.proc.wait_line(r"config reload(ed| failed).*", start=mark).group(0)
            self.assertIn("listener public changed", line)
            out = harness.raw(port, v1("203.0.113.50") + request("/after"))
            self.assertEqual(status_of(out), 200, out)
            # The old connection still speaks plain HTTP.
            old.sendall(request("/old-again"))
            self.assertEqual(status_of(old.recv(65536)), 200)
            old.close()
            with backend.lock:
                after = [r for r in backend.requests if b"/after" in r.split(b"\r\n")[0]]
            self.assertEqual(len(after), 1)
            self.assertIn(b"X-Forwarded-For: 203.0.113.50", after[0])
        finally:
            self.assertEqual(corral.stop(), 0)
            backend.close()


if __name__ == "__main__":
    harness.main()

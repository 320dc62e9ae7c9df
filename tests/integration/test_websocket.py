"""WebSocket tunnels through the real corral to WebSocket backends written with
python3-websockets (Debian), driven by python3-websockets clients: round trips, large and
fragmented messages, close codes both ways, 1012 when a backend dies, goes down or is
removed by a reload, 1001 on idle timeout and on shutdown, handshake refusals, metrics."""
import os
import sys

try:
    import websockets  # noqa: F401
except ImportError:  # a pyenv Python first on PATH: Debian's modules live with /usr/bin/python3
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

import asyncio
import http
import re
import signal
import socket
import threading
import time
import unittest

import websockets
import websockets.client
import websockets.exceptions
import websockets.frames
import websockets.server

import json

from harness import Corral, Fleet, get, listener_config, main, raw, status_of


class WsBackends:
    """WebSocket servers on ephemeral loopback ports, one asyncio loop in a thread. Each
    echoes messages, answers GET /health, names itself in X-Backend, and obeys a few
    commands: "close:CODE" (closes with CODE), "tip" (answers its name)."""

    def __init__(self, names):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers, self.ports, self.conns = {}, {}, {n: set() for n in names}
        self.closes = {n: [] for n in names}  # close codes received from clients
        for n in names:
            self.start(n)

    def run(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, name, port=0):
        async def health(path, headers):
            if path == "/health":
                return http.HTTPStatus.OK, [("X-Backend", name)], b"{}"
            return None

        async def handler(ws, path):
            self.conns[name].add(ws)
            try:
                async for msg in ws:
                    if isinstance(msg, str) and msg.startswith("close:"):
                        await ws.close(int(msg[6:]), "asked to")
                    elif msg == "tip":
                        await ws.send(name)
                    elif msg == "halfclose":
                        # A close frame, and then nothing: the socket stays open.
                        await ws.write_close_frame(websockets.frames.Close(1000, "bye"))
                        await asyncio.sleep(60)
                    elif isinstance(msg, str) and msg.startswith("flood:"):
                        for i in range(int(msg[6:])):
                            await ws.send(b"%08d" % i + b"f" * 65528)
                    else:
                        await ws.send(msg)
            except websockets.exceptions.ConnectionClosed:
                pass
            finally:
                self.closes[name].append(ws.close_code)
                self.conns[name].discard(ws)

        async def serve():
            return await websockets.server.serve(handler, "127.0.0.1", port, process_request=health,
                                                 extra_headers=[("X-Backend", name)],
                                                 max_size=4 << 20)
        srv = self.run(serve())
        self.servers[name] = srv
        self.ports[name] = srv.sockets[0].getsockname()[1]

    def kill(self, name):
        """As a killed process: the listener goes and every connection is dropped, no close
        frame."""
        async def k():
            self.servers[name].close()
            for ws in list(self.conns[name]):
                ws.transport.abort()
        self.run(k())

    def yaml(self, names=None):
        return "".join("      - {name: %s, address: 127.0.0.1:%d}\n" % (n, self.ports[n])
                       for n in (names or sorted(self.ports)))

    def stop(self):
        async def s():
            for srv in self.servers.values():
                srv.close()
            for conns in self.conns.values():
                for ws in list(conns):
                    ws.transport.abort()
        try:
            self.run(s())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


def raw_ws(port, path):
    """A WebSocket opened by hand (a client that can stop reading or never answer)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              b"Sec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert status_of(head) == 101, head
    return s


def text_frame(payload):
    """A masked text frame (a zero mask leaves the payload as it is)."""
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def read_all(s):
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return out
        out += chunk


def config(backends, names=None, limits="", extra=""):
    routes = ("      - {prefix: /ws, pool: ogmios, strip_prefix: true, websocket: true}\n"
              "      - {prefix: /plain/, pool: ogmios, strip_prefix: true}\n")
    return listener_config(routes) + (
        "sticky:\n"
        "  keys:\n"
        "    - {from: path, prefix: /s/}\n"
        "    - {from: cookie, name: corral}\n"
        "    - {from: client_ip}\n"
        "pools:\n"
        "  ogmios:\n"
        "    kind: http\n"
        "    health: {path: /health, interval: 1s, timeout: 900ms, rise: 1, fall: 3}\n"
        "    backends:\n%s"
        "%s%s") % (backends.yaml(names), ("limits: " + limits + "\n") if limits else "", extra)


class Client:
    """A websockets client on the test's own loop, in the test thread."""

    def __init__(self, loop):
        self.loop = loop

    def run(self, coro, timeout=20):
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))


class WebSocketTunnel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = WsBackends(["og-1", "og-2"])
        cls.corral = Corral(config(cls.b, limits="{tunnel_idle_timeout: 1500ms}"))
        cls.base = "ws://127.0.0.1:%d" % cls.corral.port
        cls.loop = asyncio.new_event_loop()
        cls.c = Client(cls.loop)

    @classmethod
    def tearDownClass(cls):
        cls.corral.stop()
        cls.b.stop()
        cls.loop.close()

    def connect(self, user="alice", **kw):
        """A socket for `user` (a path token before the route: /s/USER/ws), or keyless."""
        path = "/s/%s/ws" % user if user else "/ws"
        return websockets.client.connect(self.base + path, max_size=4 << 20, **kw)

    def test_round_trip_and_backend_header(self):
        async def go():
            async with self.connect() as ws:
                self.assertIn(ws.response_headers["X-Backend"], ("og-1", "og-2"))
                for i in range(50):
                    await ws.send('{"jsonrpc":"2.0","method":"queryNetwork/tip","id":%d}' % i)
                    self.assertEqual(await ws.recv(),
                                     '{"jsonrpc":"2.0","method":"queryNetwork/tip","id":%d}' % i)
        self.c.run(go())

    def test_large_binary_and_fragmented_messages_intact(self):
        big = os.urandom(1 << 20)
        async def go():
            async with self.connect("big") as ws:
                await ws.send(big)
                self.assertEqual(await ws.recv(), big)
                # A message in 40 fragments: the backend reassembles it, echoes it whole.
                parts = [("part%02d-" % i) * 100 for i in range(40)]
                await ws.send(iter(parts))
                self.assertEqual(await ws.recv(), "".join(parts))
                await ws.ping(b"p")
        self.c.run(go())

    def test_close_codes_propagate_both_ways(self):
        async def go():
            async with self.connect("closer") as ws:
                name = ws.response_headers["X-Backend"]
                await ws.send("close:4001")
                with self.assertRaises(websockets.exceptions.ConnectionClosed):
                    await ws.recv()
                self.assertEqual(ws.close_code, 4001)
            ws = await self.connect("closer")
            await ws.send("x")
            await ws.recv()
            await ws.close(4002, "client says bye")
            return name
        name = self.c.run(go())
        deadline = time.time() + 5
        while 4002 not in self.b.closes[name] and time.time() < deadline:
            time.sleep(0.02)
        self.assertIn(4002, self.b.closes[name])

    def test_reconnects_stay_on_one_backend_per_key(self):
        async def where(user, **kw):
            async with self.connect(user, **kw) as ws:
                await ws.send("tip")
                return await ws.recv()
        async def go():
            seen = {}
            for user in range(12):
                seen[user] = {await where("u%d" % user) for _ in range(4)}
            cookies = {await where(None, extra_headers=[("Cookie", "corral=c7")]) for _ in range(4)}
            return seen, cookies
        seen, cookies = self.c.run(go())
        for user, names in seen.items():
            self.assertEqual(len(names), 1, (user, names))
        self.assertEqual(len(set().union(*seen.values())), 2)  # both backends got users
        self.assertEqual(len(cookies), 1)

    def test_500_concurrent_sockets(self):
        async def one(u):
            async with self.connect("many%d" % u) as ws:
                await ws.send("tip")
                name = await ws.recv()
                await ws.send("m%d" % u)
                self.assertEqual(await ws.recv(), "m%d" % u)
                return name
        async def go():
            return await asyncio.gather(*(one(u) for u in range(500)))
        names = self.c.run(go(), timeout=60)
        self.assertEqual(len(names), 500)
        self.assertEqual(set(names), {"og-1", "og-2"})

    def test_client_ip_key_keeps_each_address_on_one_backend(self):
        # No path token or cookie: the key is the client address (distinct 127.x.y.z).
        async def where(ip):
            async with websockets.client.connect(self.base + "/ws", local_addr=(ip, 0)) as ws:
                await ws.send("tip")
                return await ws.recv()
        async def go():
            return {ip: {await where(ip) for _ in range(3)}
                    for ip in ("127.0.%d.%d" % (i, i + 7) for i in range(1, 13))}
        seen = self.c.run(go())
        for ip, names in seen.items():
            self.assertEqual(len(names), 1, (ip, names))
        self.assertEqual(len(set().union(*seen.values())), 2)

    def test_slow_reader_backpressure_holds_memory(self):
        # The backend floods 32 MiB at a client that does not read: corral stops reading
        # the backend instead of buffering it; then every message arrives, in order.
        async def go():
            async with self.connect("slow", max_queue=1, read_limit=1 << 16) as ws:
                await ws.send("flood:512")
                await asyncio.sleep(1.5)
                m = self.corral.metrics()
                held = int(re.search(r"^corral_buffer_in_use_bytes (\d+)", m, re.M).group(1))
                for i in range(512):
                    msg = await ws.recv()
                    self.assertEqual(msg[:8], b"%08d" % i)
                return held
        held = self.c.run(go(), timeout=60)
        self.assertLess(held, 1 << 20)

    def test_idle_tunnel_gets_1001(self):
        async def go():
            async with self.connect("idle") as ws:
                await ws.send("x")
                await ws.recv()
                t0 = time.time()
                with self.assertRaises(websockets.exceptions.ConnectionClosed):
                    await ws.recv()
                return ws.close_code, time.time() - t0
        code, waited = self.c.run(go())
        self.assertEqual(code, 1001)
        self.assertGreater(waited, 1.0)

    def test_handshake_refusals(self):
        port = self.corral.port
        hs = (b"GET /%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: %s\r\n\r\n")
        out = raw(port, hs % (b"plain/x", b"13"))
        self.assertEqual(status_of(out), 400, out)
        self.assertIn(b"websocket: true", out)
        out = raw(port, hs % (b"ws", b"8"))
        self.assertEqual(status_of(out), 426, out)
        self.assertIn(b"Sec-WebSocket-Version: 13", out)
        out = raw(port, hs.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"short") % (b"ws", b"13"))
        self.assertEqual(status_of(out), 400, out)
        self.assertIn(b"Sec-WebSocket-Key", out)
        out = raw(port, hs.replace(b"GET", b"POST") % (b"ws", b"13"))
        self.assertEqual(status_of(out), 400, out)
        # Plain HTTP on a websocket route is proxied like any request.
        out = raw(port, b"GET /ws/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual(status_of(out), 200, out)

    def test_backend_close_then_idle_sends_no_second_close_frame(self):
        # The backend sent its close frame and holds the socket; the idle timeout then
        # ends the tunnel without a close frame of corral's (one close per WebSocket).
        s = raw_ws(self.corral.port, "/s/halfclose/ws")
        s.sendall(text_frame(b"halfclose"))
        t0 = time.time()
        out = read_all(s)
        s.close()
        self.assertEqual(out, b"\x88\x05\x03\xe8bye")
        self.assertLess(time.time() - t0, 5)

    def test_metrics_count_tunnels_and_bytes(self):
        async def go():
            async with self.connect("metrics") as ws:
                await ws.send("y" * 1000)
                await ws.recv()
                return ws.response_headers["X-Backend"], self.corral.metrics()
        name, during = self.c.run(go())
        self.assertIsNotNone(
            re.search(r'corral_tunnels\{pool="ogmios",backend="%s"\} [1-9]' % name, during))
        m = re.search(r'corral_tunnel_bytes_total\{pool="ogmios",backend="%s",'
                      r'direction="to_backend"\} (\d+)' % name, during)
        self.assertIsNotNone(m, "no corral_tunnel_bytes_total")
        self.assertGreaterEqual(int(m.group(1)), 1000)


class BackendGoesAway(unittest.TestCase):
    """Each case on its own corral and backends: they kill, mark down or remove one."""

    def setUp(self):
        self.b = WsBackends(["og-1", "og-2"])
        self.corral = None
        self.loop = asyncio.new_event_loop()
        self.c = Client(self.loop)

    def tearDown(self):
        if self.corral:
            self.corral.stop()
        self.b.stop()
        self.loop.close()

    def start(self, **kw):
        self.corral = Corral(config(self.b, **kw))
        self.base = "ws://127.0.0.1:%d" % self.corral.port

    def open_users(self, n):
        async def go():
            socks = []
            for u in range(n):
                ws = await websockets.client.connect(self.base + "/s/user%d/ws" % u)
                await ws.send("tip")
                socks.append((u, ws, await ws.recv()))
            return socks
        return self.c.run(go())

    def expect_close(self, socks, victim, code):
        """Every socket on `victim` gets `code`; the others stay open; a reconnect of each
        moved user is served by the other backend."""
        async def go():
            moved = []
            for u, ws, name in socks:
                if name != victim:
                    await ws.send("still")
                    self.assertEqual(await ws.recv(), "still")
                    continue
                with self.assertRaises(websockets.exceptions.ConnectionClosed):
                    await ws.recv()
                self.assertEqual(ws.close_code, code, (u, name))
                moved.append(u)
            for u in moved:
                async with websockets.client.connect(self.base + "/s/user%d/ws" % u) as ws:
                    await ws.send("tip")
                    self.assertNotEqual(await ws.recv(), victim)
            for _, ws, _ in socks:
                await ws.close()
            return moved
        moved = self.c.run(go())
        self.assertTrue(moved, "no user was on " + victim)
        return moved

    def test_killed_backend_gives_1012_and_reconnects_elsewhere(self):
        self.start()
        socks = self.open_users(10)
        self.b.kill("og-1")
        self.expect_close(socks, "og-1", 1012)
        m = self.corral.metrics()
        self.assertIsNotNone(
            re.search(r'corral_tunnel_closes_total\{pool="ogmios",code="1012"\} [1-9]', m))

    def test_backend_marked_down_gives_1012(self):
        self.start()
        socks = self.open_users(10)
        status, _, body = __import__("harness").get(self.corral.admin_port, "/backends/og-2/down",
                                                    method="POST")
        self.assertEqual(status, 200, body)
        self.expect_close(socks, "og-2", 1012)

    def test_reload_removing_backend_gives_1012(self):
        self.start()
        socks = self.open_users(10)
        self.corral.rewrite(config(self.b, names=["og-2"]))
        self.corral.proc.send(signal.SIGHUP)
        self.corral.proc.wait_line(r"reload")
        self.expect_close(socks, "og-1", 1012)
        # The pool's count keeps the closes of the backend the reload removed.
        self.assertIsNotNone(re.search(r'corral_tunnel_closes_total\{pool="ogmios",code="1012"\} '
                                       r'[1-9]', self.corral.metrics()))

    def test_client_that_stops_reading_is_cut_after_send_timeout(self):
        self.start(limits="{send_timeout: 1s}")
        s = raw_ws(self.corral.port, "/s/stuck/ws")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(text_frame(b"flood:512"))  # 32 MiB the client never reads
        deadline = time.time() + 8
        while time.time() < deadline:
            m = self.corral.metrics()
            if re.search(r'corral_tunnels\{pool="ogmios",backend="og-\d"\} [1-9]', m) is None:
                break
            time.sleep(0.2)
        self.assertLess(time.time(), deadline, "the tunnel outlived send_timeout")
        held = int(re.search(r"^corral_buffer_in_use_bytes (\d+)", m, re.M).group(1))
        self.assertLess(held, 64 << 10)
        s.close()

    def test_half_closed_tunnel_ends_without_waiting_for_idle(self):
        self.start()  # tunnel_idle_timeout: 1h
        s = raw_ws(self.corral.port, "/s/half/ws")
        s.sendall(text_frame(b"halfclose"))
        t0 = time.time()
        out = read_all(s)  # the backend's close frame, then corral ends the tunnel
        s.close()
        self.assertEqual(out, b"\x88\x05\x03\xe8bye")
        self.assertLess(time.time() - t0, 15)

    def test_shutdown_gives_1001_after_stop_timeout(self):
        self.start(extra="stop_timeout: 1s\n")
        socks = self.open_users(3)
        t0 = time.time()
        self.corral.proc.send(signal.SIGTERM)
        async def go():
            for _, ws, _ in socks:
                with self.assertRaises(websockets.exceptions.ConnectionClosed):
                    await ws.recv()
                self.assertEqual(ws.close_code, 1001)
        self.c.run(go())
        self.assertGreater(time.time() - t0, 0.8)
        self.assertEqual(self.corral.proc.p.wait(10), 0)
        self.corral.dir.cleanup()
        self.corral = None


class ThroughCorralToSimulatedOgmios(unittest.TestCase):
    """corral in front of two simulated Ogmios (corral-bench backend --kind ogmios)."""

    @classmethod
    def setUpClass(cls):
        cls.fleet = Fleet(2, name="ogmios", extra=("--kind", "ogmios"))
        routes = "      - {prefix: /ogmios, pool: ogmios, strip_prefix: true, websocket: true}\n"
        backends = "".join("      - {name: %s, address: 127.0.0.1:%d}\n" % (n, p)
                           for n, p in sorted(cls.fleet.backends.items()))
        cls.corral = Corral(listener_config(routes) + (
            "sticky:\n  keys:\n    - {from: path, prefix: /s/}\n    - {from: client_ip}\n"
            "pools:\n  ogmios:\n    kind: ogmios\n    backends:\n%s") % backends)
        cls.loop = asyncio.new_event_loop()
        cls.c = Client(cls.loop)

    @classmethod
    def tearDownClass(cls):
        cls.corral.stop()
        cls.fleet.stop()
        cls.loop.close()

    def ws(self, user):
        return websockets.client.connect("ws://127.0.0.1:%d/s/%s/ogmios" % (self.corral.port, user),
                                         max_size=4 << 20)

    def test_json_rpc_over_websocket_and_http_pinned_by_one_key(self):
        async def go(user):
            async with self.ws(user) as ws:
                await ws.send(json.dumps({"jsonrpc": "2.0", "method": "queryNetwork/tip",
                                          "id": "t-" + user}))
                answer = json.loads(await ws.recv())
                return ws.response_headers["X-Backend"], answer
        for user in ("ann", "bob", "cy", "dee", "eve", "fay"):
            name, answer = self.c.run(go(user))
            self.assertEqual(answer["id"], "t-" + user)
            self.assertIn("slot", answer["result"])
            # Ogmios' HTTP JSON-RPC (POST /) for the same user: the same backend.
            body = json.dumps({"jsonrpc": "2.0", "method": "queryNetwork/tip", "id": 7})
            status, headers, text = get(self.corral.port, "/s/%s/ogmios" % user, method="POST",
                                        body=body, headers={"Content-Type": "application/json"})
            self.assertEqual(status, 200, text)
            self.assertEqual(headers["x-backend"], name)
            self.assertEqual(json.loads(text)["id"], 7)

    def test_backend_fragments_and_close_code_pass_through(self):
        async def go():
            async with self.ws("frag") as ws:
                await ws.send(json.dumps({"jsonrpc": "2.0", "method": "_sim/fragmented",
                                          "params": {"size": 200000, "pieces": 37}, "id": 1}))
                msg = await ws.recv()
                big = os.urandom(1 << 20)
                await ws.send(big)
                echoed = await ws.recv()
                await ws.send(json.dumps({"jsonrpc": "2.0", "method": "_sim/close",
                                          "params": {"code": 4321, "reason": "sim"}}))
                with self.assertRaises(websockets.exceptions.ConnectionClosed):
                    await ws.recv()
                return msg, big == echoed, ws.close_code
        msg, same, code = self.c.run(go())
        self.assertEqual(len(msg), 200000)
        json.loads(msg)
        self.assertTrue(same)
        self.assertEqual(code, 4321)


if __name__ == "__main__":
    main()

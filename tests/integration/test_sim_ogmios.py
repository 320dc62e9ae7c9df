"""The simulated Ogmios (`corral-bench backend --kind ogmios`), direct, with a real
WebSocket client library (python3-websockets from Debian): the opening handshake, each
JSON-RPC method with ids echoed verbatim, fragmented and 1 MiB messages, ping/pong, close
codes both ways, protocol errors, 500 concurrent sockets, /health codes, POST / and a dead
backend dropping its sockets."""
import os
import sys

try:
    import websockets  # noqa: F401
except ImportError:
    # The Debian package lives in the system interpreter; ctest may run another one.
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

import asyncio
import json
import socket
import struct
import time

import websockets
from websockets.exceptions import ConnectionClosed

import harness


def rpc(method, params=None, id_=None):
    m = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        m["params"] = params
    if id_ is not None:
        m["id"] = id_
    return json.dumps(m)


class SimOgmios(harness.unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A block every 2 slots (2 s) so that nextBlock at the tip soon gets one.
        cls.fleet = harness.Fleet(2, name="ogmios",
                                  extra=("--kind", "ogmios", "--block-interval", "2"))
        cls.port = cls.fleet.backends["ogmios-1"]
        cls.port2 = cls.fleet.backends["ogmios-2"]

    @classmethod
    def tearDownClass(cls):
        cls.fleet.stop()

    def run_async(self, coro, timeout=60):
        return asyncio.run(asyncio.wait_for(coro, timeout))

    def url(self, port=None, path="/"):
        return "ws://127.0.0.1:%d%s" % (port or self.port, path)

    def stats(self, name="ogmios-1"):
        return self.fleet.stats(name)

    # ---- handshake ----

    def raw_handshake(self, extra=b"", key=b"dGhlIHNhbXBsZSBub25jZQ==", version=b"13"):
        req = (b"GET /any/path HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
               b"\r\nSec-WebSocket-Version: " + version + b"\r\n\r\n")
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.sendall(req + extra)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
        return s, head

    def test_handshake_101_with_accept_and_backend(self):
        s, head = self.raw_handshake()
        s.close()
        self.assertTrue(head.startswith(b"HTTP/1.1 101 "), head)
        # RFC 6455's own example key and accept value.
        self.assertIn(b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", head)
        self.assertIn(b"X-Backend: ogmios-1\r\n", head)

    def test_bad_handshakes_refused(self):
        s, head = self.raw_handshake(key=b"short")
        s.close()
        self.assertEqual(harness.status_of(head), 400, head)
        s, head = self.raw_handshake(version=b"8")
        s.close()
        self.assertEqual(harness.status_of(head), 426, head)
        self.assertIn(b"Sec-WebSocket-Version: 13", head)

    def test_unmasked_frame_gets_close_1002(self):
        s, head = self.raw_handshake(extra=b"\x81\x02hi")  # text "hi", not masked
        data = head.split(b"\r\n\r\n", 1)[1]
        while len(data) < 4:
            chunk = s.recv(100)
            if not chunk:
                break
            data += chunk
        s.close()
        self.assertEqual(data[0], 0x88, data)  # a close frame
        self.assertEqual(struct.unpack(">H", data[2:4])[0], 1002)

    # ---- JSON-RPC ----

    def test_methods_and_ids(self):
        async def go():
            async with websockets.connect(self.url(path="/ogmios/x?y=1")) as ws:
                async def call(method, params=None, id_=None):
                    await ws.send(rpc(method, params, id_))
                    return json.loads(await ws.recv())

                tip = await call("queryNetwork/tip", id_=7)
                self.assertEqual(tip["id"], 7)
                self.assertEqual(tip["method"], "queryNetwork/tip")
                self.assertEqual(set(tip["result"]), {"slot", "id"})
                pp = await call("queryLedgerState/protocolParameters", id_="pp")
                self.assertEqual(pp["id"], "pp")
                self.assertEqual(pp["result"]["minFeeCoefficient"], 44)
                no_id = await call("queryNetwork/tip")
                self.assertNotIn("id", no_id)
                obj = await call("_sim/echo", {"a": [1, {"b": None}]}, {"k": [1, 2]})
                self.assertEqual(obj["id"], {"k": [1, 2]})
                self.assertEqual(obj["result"], {"a": [1, {"b": None}]})
                # Verbatim: a number keeps its spelling.
                await ws.send('{"jsonrpc":"2.0","method":"queryNetwork/tip","id":1.50}')
                self.assertTrue((await ws.recv()).endswith('"id":1.50}'))
                err = await call("no/such/method", id_=3)
                self.assertEqual(err["error"]["code"], -32601)
                self.assertEqual(err["id"], 3)
                await ws.send("{not json")
                self.assertEqual(json.loads(await ws.recv())["error"]["code"], -32700)

                # Chain sync: intersect at the tip, roll backward to it, then wait at the
                # tip for the next simulated block.
                point = tip["result"]
                inter = await call("findIntersection", {"points": [point, "origin"]}, 1)
                self.assertEqual(inter["result"]["intersection"], point)
                self.assertGreaterEqual(inter["result"]["tip"]["slot"], point["slot"])
                back = await call("nextBlock", id_=2)
                self.assertEqual(back["result"]["direction"], "backward")
                self.assertEqual(back["result"]["point"], point)
                seen = point["slot"]
                for i in range(2):
                    fwd = await call("nextBlock", id_=10 + i)
                    self.assertEqual(fwd["id"], 10 + i)
                    self.assertEqual(fwd["result"]["direction"], "forward")
                    block = fwd["result"]["block"]
                    self.assertGreater(block["slot"], seen)
                    self.assertIn("height", block)
                    self.assertIn("id", block)
                    seen = block["slot"]
                none = await call("findIntersection", {"points": [{"slot": 5, "id": "00"}]}, 4)
                self.assertEqual(none["error"]["code"], 1000)
                self.assertIn("tip", none["error"]["data"])

                acq = await call("acquireLedgerState", {"point": point}, 20)
                self.assertEqual(acq["result"]["acquired"], "ledgerState")
                self.assertEqual(acq["result"]["point"], point)
                old = await call("acquireLedgerState", {"point": "origin"}, 21)
                self.assertEqual(old["error"]["code"], 2000)
                rel = await call("releaseLedgerState", id_=22)
                self.assertEqual(rel["result"], {"released": "ledgerState"})
                sub = await call("submitTransaction", {"transaction": {"cbor": "84a300"}}, 23)
                self.assertEqual(len(sub["result"]["transaction"]["id"]), 64)
                ev = await call("evaluateTransaction", {"transaction": {"cbor": "84a300"}}, 24)
                self.assertIn("budget", ev["result"][0])
                bad = await call("submitTransaction", {"transaction": {}}, 25)
                self.assertEqual(bad["error"]["code"], -32602)
        self.run_async(go())

    def test_fragmented_and_large_messages(self):
        async def go():
            async with websockets.connect(self.url(), max_size=None) as ws:
                size = 1 << 20
                await ws.send(rpc("_sim/fragmented", {"size": size, "pieces": 16}, "f"))
                text = await ws.recv()
                self.assertEqual(len(text), size)
                self.assertEqual(json.loads(text)["id"], "f")
                # A fragmented message from the client, reassembled by the server.
                msg = rpc("_sim/echo", {"pad": "y" * 200000}, 8)
                await ws.send([msg[i:i + 50000] for i in range(0, len(msg), 50000)])
                self.assertEqual(json.loads(await ws.recv())["result"]["pad"], "y" * 200000)
                blob = os.urandom(1 << 20)
                await ws.send(blob)
                self.assertEqual(await ws.recv(), blob)
                pong = await ws.ping(b"are you there")
                await asyncio.wait_for(pong, 5)
        before = self.stats()["ws_binary_echoed"]
        self.run_async(go())
        self.assertEqual(self.stats()["ws_binary_echoed"], before + 1)

    def test_close_codes_both_ways(self):
        async def go():
            ws = await websockets.connect(self.url())
            await ws.close(code=4001, reason="client bye")
            ws = await websockets.connect(self.url())
            await ws.send(rpc("_sim/close", {"code": 4005, "reason": "server bye"}, 1))
            with self.assertRaises(ConnectionClosed):
                await ws.recv()
            self.assertEqual(ws.close_code, 4005)
            self.assertEqual(ws.close_reason, "server bye")
        self.run_async(go())
        deadline = time.time() + 5
        while time.time() < deadline:
            st = self.stats()
            if 4001 in st["ws_close_codes_received_log"] and st["ws_open"] == 0:
                break
            time.sleep(0.05)
        self.assertIn(4001, st["ws_close_codes_received_log"])
        self.assertGreaterEqual(st["ws_close_codes_received"].get("4005", 0), 1)  # the reply
        self.assertGreaterEqual(st["ws_close_codes_sent"].get("4005", 0), 1)

    def test_500_concurrent_sockets(self):
        n = 500

        async def one(i):
            ws = await websockets.connect(self.url(port=self.port2), open_timeout=30)
            await ws.send(rpc("queryNetwork/tip", id_=i))
            return ws, json.loads(await ws.recv())

        async def go():
            opened = await asyncio.gather(*(one(i) for i in range(n)))
            self.assertEqual(sorted(r["id"] for _, r in opened), list(range(n)))
            self.assertEqual(self.stats("ogmios-2")["ws_open"], n)
            await asyncio.gather(*(ws.close() for ws, _ in opened))
        self.run_async(go(), timeout=120)

    # ---- HTTP ----

    def test_post_json_rpc(self):
        post = lambda body: harness.get(self.port, "/", method="POST", body=body,  # noqa: E731
                                        headers={"Content-Type": "application/json"})
        status, h, body = post(rpc("queryNetwork/tip", id_="h"))
        self.assertEqual((status, h["x-backend"]), (200, "ogmios-1"))
        self.assertEqual(json.loads(body)["id"], "h")
        self.assertIn("slot", json.loads(body)["result"])
        status, _, body = post("{nope")
        self.assertEqual((status, json.loads(body)["error"]["code"]), (400, -32700))
        status, _, body = post(rpc("nextBlock", id_=1))
        self.assertEqual((status, json.loads(body)["error"]["code"]), (400, -32600))

    def test_health_codes_and_dead(self):
        port, name = self.port2, "ogmios-2"

        def health():
            status, _, body = harness.get(port, "/health")
            return status, json.loads(body)

        try:
            status, h = health()
            self.assertEqual(status, 200)
            for k in ("connectionStatus", "lastKnownTip", "lastTipUpdate", "startTime",
                      "networkSynchronization", "currentEra", "metrics"):
                self.assertIn(k, h)
            self.assertEqual(set(h["lastKnownTip"]), {"slot", "id", "height"})
            self.assertIsNotNone(h["lastTipUpdate"])
            self.fleet.control(name, tip_lag_slots=1000)  # tip 1000 s old
            status, h2 = health()
            self.assertEqual(status, 202)
            self.assertLess(h2["lastKnownTip"]["slot"], h["lastKnownTip"]["slot"])
            self.fleet.control(name, health="disconnected")
            status, h3 = health()
            self.assertEqual((status, h3["connectionStatus"]), (500, "disconnected"))
            self.fleet.control(name, health="synced", tip_lag_slots=0)
            self.assertEqual(health()[0], 200)

            async def go():
                ws = await websockets.connect(self.url(port=port))
                await ws.send(rpc("queryNetwork/tip", id_=1))
                await ws.recv()
                self.fleet.control(name, dead=True)
                with self.assertRaises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                self.assertIsNone(ws.close_rcvd)  # the TCP went, no close frame
                with self.assertRaises(Exception):
                    await websockets.connect(self.url(port=port), open_timeout=3)
            self.run_async(go())
        finally:
            self.fleet.control(name, dead=False, health="synced", tip_lag_slots=0)


if __name__ == "__main__":
    harness.main()

"""A small JSON-RPC 2.0 WebSocket server for test_bench_load_ws.py (python3-websockets 10.4,
run with /usr/bin/python3). Listens on 127.0.0.1:0 and prints "listening PORT".

Every text message {"method": M, "id": N} gets {"jsonrpc":"2.0","method":M,"result":{...},
"id":N} with a nested "id" of its own in the result (as Ogmios' tips have). The 101 carries
X-Backend: with --sticky, a name from the user's path token (/s/<token>/...), so a user's
reconnects land on the same "backend"; without, a random one of three per connection.
The handshake's query string steers the socket:
  close_after=K&code=C  after K answers the server closes with code C (1006: drops the TCP
                        connection without a close frame);
  deny_every=D          every D-th handshake gets 403 instead of 101.
Each line written to its stdin prints "stats {json}" (what the server saw); stdin's end
ends the server."""
import asyncio
import http
import json
import random
import resource
import sys
import urllib.parse
import zlib

import websockets

STICKY = "--sticky" in sys.argv
BACKENDS = ["ws-a", "ws-b", "ws-c"]
stats = {"handshakes": 0, "denied": 0, "messages": 0, "closes": {}, "client_closes": {}}


def backend_for(path):
    parts = path.split("/")
    if STICKY and len(parts) > 2 and parts[1] == "s":
        return BACKENDS[zlib.crc32(parts[2].encode()) % len(BACKENDS)]
    return random.choice(BACKENDS)


def query(path):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))


async def process_request(path, headers):
    stats["handshakes"] += 1
    d = int(query(path).get("deny_every", "0"))
    if d and stats["handshakes"] % d == 0:
        stats["denied"] += 1
        return (http.HTTPStatus.FORBIDDEN, [("Content-Type", "text/plain")], b"denied\n")
    return None


def extra_headers(path, headers):
    return [("X-Backend", backend_for(path))]


async def handler(ws, path):
    q = query(path)
    close_after = int(q.get("close_after", "0"))
    code = int(q.get("code", "1000"))
    answered = 0
    try:
        async for msg in ws:
            req = json.loads(msg)
            stats["messages"] += 1
            await ws.send(json.dumps({"jsonrpc": "2.0", "method": req.get("method"),
                                      "result": {"slot": 1234, "id": "ab" * 16, "height": 7},
                                      "id": req.get("id")}))
            answered += 1
            if close_after and answered >= close_after:
                stats["closes"][str(code)] = stats["closes"].get(str(code), 0) + 1
                if code == 1006:
                    ws.transport.abort()
                else:
                    await ws.close(code, "test close")
                return
    except websockets.ConnectionClosed:
        pass
    if ws.close_code is not None:
        c = str(ws.close_code)
        stats["client_closes"][c] = stats["client_closes"].get(c, 0) + 1


async def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket per simulated user
    server = await websockets.serve(handler, "127.0.0.1", 0, process_request=process_request,
                                    extra_headers=extra_headers, max_queue=None,
                                    backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print("listening %d" % port, flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        print("stats " + json.dumps(stats), flush=True)


asyncio.run(main())

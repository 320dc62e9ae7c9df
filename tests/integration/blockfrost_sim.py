"""A simulated Blockfrost for the integration tests (stdlib only; run with /usr/bin/python3).

It behaves like the hosted service where corral's job depends on it:
- every API request needs the `project_id` header: none or a wrong one is answered 403
  with Blockfrost's error JSON ({"status_code", "error", "message"});
- a token bucket (--burst, refilled at --rps per second) over the accepted requests:
  past it, 429 {"error": "Project Over Limit"};
- list endpoints page like Blockfrost: ?page=N (from 1) &count=M (1..100, default 100)
  &order=asc|desc, anything else 400;
- HTTPS with --cert/--key (HTTP/1.1 keep-alive either way), plain HTTP without.

Its data is deterministic: one address with --utxos UTXOs, one stake account with
--account-addresses addresses, the transactions of those UTXOs, a fixed tip and epoch.
The same functions (utxos(), account_addresses(), ...) give the tests their expectations.
Paths are served with or without Blockfrost's /api/v0 prefix. /health and /health/clock
need the key and spend the bucket like any endpoint (Blockfrost's OpenAPI gives them a 403
too), unless --open-health: then they are open and free, for a prober without the key.

Test hooks, open too: GET /_sim/stats (requests by outcome, pages served per list
endpoint, project_id values seen), POST /_sim/control {"burst", "rps"} (refills the
bucket), POST /_sim/reset (zeroes the counters). Prints "listening blockfrost HOST:PORT
SCHEME" once ready."""
import argparse
import hashlib
import json
import re
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ADDRESS = ("addr_test1qrsimu1a7e5fq3k0d8yx2j0p9w4n6c8m3t5v7z9e2r4y6u8i0o2p4a6s8d0f2h4j6"
           "k8l0z2x4c6v8b0n2m4q6w8e0r2t4y6u8i0o2p4qa7s9d")
STAKE = "stake_test1ursimu1a7e5fq3k0d8yx2j0p9w4n6c8m3t5v7z9e2r4y6u8i0qsim42"
TIP_HEIGHT = 3_141_592
TIP_SLOT = 75_000_000
EPOCH = 173
EPOCH_LENGTH = 432_000
SYSTEM_START = 1_666_656_000  # preprod-like; only used to derive times


def h(*parts):
    """A deterministic 32-byte hex hash of parts."""
    return hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()


def err(status, error, message):
    return status, {"status_code": status, "error": error, "message": message}


NOT_FOUND = err(404, "Not Found", "The requested component has not been found.")


def utxos(n):
    """The UTXOs of ADDRESS, oldest first (Blockfrost's asc order)."""
    out = []
    for i in range(n):
        tx = h("tx", i // 2)  # two outputs per transaction
        out.append({
            "address": ADDRESS, "tx_hash": tx, "tx_index": i % 2, "output_index": i % 2,
            "amount": [{"unit": "lovelace", "quantity": str(1_000_000 + 17 * i)}],
            "block": h("block", TIP_HEIGHT - n + i), "data_hash": None, "inline_datum": None,
            "reference_script_hash": None})
    return out


def account_addresses(n):
    """The addresses of STAKE, in order."""
    return [{"address": ADDRESS if i == 0 else "addr_test1qsim%04d%s" % (i, h("a", i)[:40])}
            for i in range(n)]


def block_latest():
    return {
        "time": SYSTEM_START + TIP_SLOT, "height": TIP_HEIGHT, "hash": h("block", TIP_HEIGHT),
        "slot": TIP_SLOT, "epoch": EPOCH, "epoch_slot": TIP_SLOT % EPOCH_LENGTH,
        "slot_leader": "pool1sim" + h("leader")[:48], "size": 4096, "tx_count": 7,
        "output": "128314491794", "fees": "592661", "block_vrf": "vrf_vk1" + h("vrf")[:58],
        "op_cert": h("opcert"), "op_cert_counter": "18",
        "previous_block": h("block", TIP_HEIGHT - 1), "next_block": None, "confirmations": 0}


def epoch_latest():
    start = SYSTEM_START + EPOCH * EPOCH_LENGTH
    return {"epoch": EPOCH, "start_time": start, "end_time": start + EPOCH_LENGTH,
            "first_block_time": start + 3, "last_block_time": SYSTEM_START + TIP_SLOT,
            "block_count": 12_345, "tx_count": 23_456, "output": "7849943934049314",
            "fees": "4203312194", "active_stake": "784953934049314"}


def tx(n_utxos, tx_hash):
    """The transaction of one of ADDRESS's UTXOs, or None."""
    outs = [u for u in utxos(n_utxos) if u["tx_hash"] == tx_hash]
    if not outs:
        return None
    total = sum(int(u["amount"][0]["quantity"]) for u in outs)
    return {"hash": tx_hash, "block": outs[0]["block"], "block_height": TIP_HEIGHT - 10,
            "block_time": SYSTEM_START + TIP_SLOT - 200, "slot": TIP_SLOT - 200, "index": 0,
            "output_amount": [{"unit": "lovelace", "quantity": str(total)}],
            "fees": "182485", "deposit": "0", "size": 433, "invalid_before": None,
            "invalid_hereafter": None, "utxo_count": len(outs) + 1, "withdrawal_count": 0,
            "mir_cert_count": 0, "delegation_count": 0, "stake_cert_count": 0,
            "pool_update_count": 0, "pool_retire_count": 0, "asset_mint_or_burn_count": 0,
            "redeemer_count": 0, "valid_contract": True}


def paginate(items, query):
    """Blockfrost's page/count/order over items: (status, body); 400 on a bad parameter."""
    def one(name, default):
        vals = query.get(name)
        return vals[-1] if vals else default
    try:
        page, count = int(one("page", "1")), int(one("count", "100"))
    except ValueError:
        return err(400, "Bad Request", "querystring.page and count must be integers")
    order = one("order", "asc")
    if not 1 <= count <= 100 or not 1 <= page <= 21474836 or order not in ("asc", "desc"):
        return err(400, "Bad Request", "querystring must have 1<=page, 1<=count<=100, "
                   "order asc|desc")
    ordered = items if order == "asc" else list(reversed(items))
    return 200, ordered[(page - 1) * count:page * count]


class Sim:
    """State shared by the handler threads: the data sizes, the bucket, the counters."""

    def __init__(self, project_id, burst, rps, n_utxos, n_account_addresses, open_health):
        self.project_id, self.n_utxos, self.n_accounts = project_id, n_utxos, n_account_addresses
        self.open_health = open_health
        self.lock = threading.Lock()
        self.set_limit(burst, rps)
        self.reset()

    def set_limit(self, burst, rps):
        with self.lock:
            self.burst, self.rps = float(burst), float(rps)
            self.tokens, self.last = self.burst, time.monotonic()

    def reset(self):
        with self.lock:
            self.outcomes = {"ok": 0, "missing_key": 0, "wrong_key": 0, "limited": 0,
                             "bad_request": 0, "not_found": 0}
            self.pages = {}  # endpoint -> [page served, ...] in arrival order
            self.keys = {}   # project_id value -> requests

    def count(self, outcome):
        with self.lock:
            self.outcomes[outcome] += 1

    def take(self):
        """One token from the bucket, refilled at rps; False when empty."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rps)
            self.last = now
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True

    def stats(self):
        with self.lock:
            return {"outcomes": dict(self.outcomes), "pages": {k: list(v) for k, v in
                                                               self.pages.items()},
                    "project_ids": dict(self.keys), "burst": self.burst, "rps": self.rps}

    def route(self, path, query):
        """(status, body, endpoint name for page counting or None) of one API GET."""
        routes = [
            (r"/", lambda: (200, {"url": "https://blockfrost.io/", "version": "0.1.0"}), None),
            (r"/blocks/latest", lambda: (200, block_latest()), None),
            (r"/epochs/latest", lambda: (200, epoch_latest()), None),
            (r"/addresses/([^/]+)", lambda a: self.address(a), None),
            (r"/addresses/([^/]+)/utxos",
             lambda a: paginate(utxos(self.n_utxos), query) if a == ADDRESS else NOT_FOUND,
             "/addresses/{address}/utxos"),
            (r"/accounts/([^/]+)/addresses",
             lambda s: (paginate(account_addresses(self.n_accounts), query) if s == STAKE
                        else NOT_FOUND), "/accounts/{stake_address}/addresses"),
            (r"/txs/([0-9a-f]{64})", lambda t: (200, tx(self.n_utxos, t)) if tx(self.n_utxos, t)
             else NOT_FOUND, None),
        ]
        for rx, fn, endpoint in routes:
            m = re.fullmatch(rx, path)
            if m:
                status, body = fn(*m.groups())
                return status, body, endpoint
        return (*NOT_FOUND, None)

    @staticmethod
    def health(path):
        return 200, ({"is_healthy": True} if path == "/health" else
                     {"server_time": int(time.time() * 1000)})

    def address(self, a):
        if a != ADDRESS:
            return NOT_FOUND
        total = sum(int(u["amount"][0]["quantity"]) for u in utxos(self.n_utxos))
        return 200, {"address": ADDRESS, "amount": [{"unit": "lovelace",
                                                      "quantity": str(total)}],
                     "stake_address": STAKE, "type": "shelley", "script": False}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as corral pools its upstream connections
    server_version = "blockfrost-sim"

    def setup(self):
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            # The handshake here, in this connection's thread, not in accept().
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(None)

    def log_message(self, fmt, *args):  # quiet: the tests read the counters instead
        pass

    def reply(self, status, body, extra=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_POST(self):
        sim = self.server.sim
        body = self.read_body()
        path = urlsplit(self.path).path
        if path == "/_sim/control":
            c = json.loads(body or b"{}")
            sim.set_limit(c.get("burst", sim.burst), c.get("rps", sim.rps))
            return self.reply(200, sim.stats())
        if path == "/_sim/reset":
            sim.reset()
            return self.reply(200, sim.stats())
        return self.api(path)  # the API's POSTs (tx/submit) are not simulated: 403/404

    def do_GET(self):
        url = urlsplit(self.path)
        path = url.path
        if path == "/_sim/stats":
            return self.reply(200, self.server.sim.stats())
        self.api(path, parse_qs(url.query))

    def api(self, path, query=None):
        sim = self.server.sim
        if path.startswith("/api/v0"):
            path = path[len("/api/v0"):] or "/"
        path = path.rstrip("/") or "/"
        health = path in ("/health", "/health/clock")
        if health and sim.open_health:
            return self.reply(*sim.health(path))
        key = self.headers.get("project_id")
        if key is not None:
            with sim.lock:
                sim.keys[key] = sim.keys.get(key, 0) + 1
        if key is None:
            sim.count("missing_key")
            return self.reply(*err(403, "Forbidden", "Missing project token. Please include "
                                   "project_id in your request."))
        if key != sim.project_id:
            sim.count("wrong_key")
            return self.reply(*err(403, "Forbidden", "Invalid project token."))
        if not sim.take():
            sim.count("limited")
            return self.reply(*err(429, "Project Over Limit", "Usage is over limit."))
        if self.command != "GET":
            sim.count("not_found")
            return self.reply(*NOT_FOUND)
        status, body, endpoint = ((*sim.health(path), None) if health else
                                  sim.route(path, query or {}))
        sim.count({200: "ok", 400: "bad_request"}.get(status, "not_found"))
        if endpoint and status == 200:
            page = int((query.get("page") or ["1"])[-1])
            with sim.lock:
                sim.pages.setdefault(endpoint, []).append(page)
        self.reply(status, body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--project-id", required=True, help="the one key accepted")
    ap.add_argument("--burst", type=float, default=500)
    ap.add_argument("--rps", type=float, default=10)
    ap.add_argument("--utxos", type=int, default=250)
    ap.add_argument("--account-addresses", type=int, default=130)
    ap.add_argument("--open-health", action="store_true",
                    help="/health and /health/clock without key and outside the bucket")
    ap.add_argument("--cert", help="PEM certificate (chain): serve HTTPS")
    ap.add_argument("--key", help="PEM private key of --cert")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    if host.strip("[]") not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("blockfrost_sim: loopback only")
    srv = ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
    srv.daemon_threads = True
    srv.sim = Sim(a.project_id, a.burst, a.rps, a.utxos, a.account_addresses, a.open_health)
    scheme = "http"
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(a.cert, a.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                     do_handshake_on_connect=False)
        scheme = "https"
    print("listening blockfrost %s:%d %s" % (host, srv.server_address[1], scheme), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the text seed corpora of tests/fuzz/corpus/ (idempotent; run from anywhere).

Seeds are real-looking inputs: requests as clients send them to corral, Kupo / Ogmios /
Blockfrost answers, CIP-19 addresses from the unit tests, the embedded default config and
the README's examples. The binary state-file seeds (corpus/pins/: 0, 3 and 10 pins) were
written once with lb::encode_pins and are committed as they are.
"""
import os
import re

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")

ADDR_BASE = "addr1qx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer3n0d3vllmyqwsx5wktcd8cc3sq835lu7drv2xwl2"
ADDRS = [
    ADDR_BASE,
    "addr1vx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzers66hrl8",
    "addr1w8phkx6acpnf78fuvxn0mkew3l0fd058hzquvz7w36x4gtcyjy7wx",
    "addr1gx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer5pnz75xxcrzqf96k",
    "addr1z8phkx6acpnf78fuvxn0mkew3l0fd058hzquvz7w36x4gten0d3vllmyqwsx5wktcd8cc3sq835lu7drv2xwl2",
    "addr_test1gz2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer5pnz75xxcrdw5vky",
    "stake1uyehkck0lajq8gr28t9uxnuvgcqrc6070x3k9r8048z8y5gh6ffgw",
]

KUPO = ('{"connection_status":"connected","most_recent_checkpoint":134524380,'
        '"most_recent_node_tip":134524380,"seconds_since_last_block":4,'
        '"network_synchronization":1,"version":"v2.11.0"}')
KUPO_BEHIND = ('{"connection_status":"connected","most_recent_checkpoint":51020000,'
               '"most_recent_node_tip":134524380,"seconds_since_last_block":null,'
               '"network_synchronization":0.37921,"version":"v2.11.0"}')
OGMIOS = ('{"startTime":"2024-05-02T09:11:38.150546Z","lastKnownTip":{"slot":124104742,'
          '"id":"c29428f386c701c1d1ba1fd259d4be78921ee9ee6c174eac898245ceb55e8061",'
          '"height":10329481},"lastTipUpdate":"2024-05-03T11:02:40.107935Z",'
          '"networkSynchronization":1.00000,"currentEra":"babbage","metrics":'
          '{"activeConnections":3,"runtimeStats":{"cpuTime":81064672549}},'
          '"connectionStatus":"connected","currentEpoch":483,"slotInEpoch":237142,'
          '"version":"v6.3.0","network":"mainnet"}')
OGMIOS_ORIGIN = ('{"startTime":"2024-05-02T09:11:38Z","lastKnownTip":"origin","lastTipUpdate":null,'
                 '"networkSynchronization":null,"currentEra":null,"metrics":{},'
                 '"connectionStatus":"disconnected","currentEpoch":null,"version":"6.3.0"}')
BLOCKFROST = '{"is_healthy":true}'
ESCAPES = '{"s":"a\\"b\\\\c\\n\\u00e9\\ud83d\\ude00","n":-1.5e3,"t":true,"f":false,"z":null,"a":[1,{"b":2}],}'


def chunked(body, size=7, ext=False, trailer=False):
    out = ""
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out += "%x%s\r\n%s\r\n" % (len(piece), ";name=val" if ext else "", piece)
    out += "0\r\n" + ("Expires: never\r\n" if trailer else "") + "\r\n"
    return out


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def requests():
    body = '{"jsonrpc":"2.0","method":"queryLedgerState/tip","id":1}'
    r = {
        "get": "GET /s/alice/matches/*?unspent HTTP/1.1\r\nHost: localhost:8080\r\n"
               "User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
        "kupo_address": "GET /kupo/matches/%s?unspent HTTP/1.1\r\nHost: lb\r\n"
                        "Accept: application/json\r\n\r\n" % ADDR_BASE,
        "pipelined": "GET /health HTTP/1.1\r\nHost: a\r\n\r\n"
                     "HEAD /kupo/checkpoints HTTP/1.1\r\nHost: a\r\nCookie: x=1; session=\"abc\"\r\n\r\n"
                     "GET /ogmios/ HTTP/1.1\r\nHost: a\r\nX-Session: u-42\r\nConnection: close\r\n\r\n",
        "post_length": "POST /ogmios HTTP/1.1\r\nHost: lb\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\n\r\n%s" % (len(body), body),
        "post_chunked": "POST /ogmios/ HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: chunked\r\n"
                        "Content-Type: application/json\r\n\r\n" + chunked(body, 9, ext=True, trailer=True)
                        + "GET /s/bob/health HTTP/1.1\r\nHost: lb\r\n\r\n",
        "http10": "GET /s/carol/checkpoints HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                  "GET /health HTTP/1.0\r\n\r\n",
        "hop_by_hop": "GET /kupo/patterns HTTP/1.1\r\nHost: lb\r\nConnection: keep-alive, X-Secret\r\n"
                      "X-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: x\r\n"
                      "X-Forwarded-For: 198.51.100.1\r\nX-Forwarded-For: 192.0.2.9\r\n"
                      "project_id: stolen\r\nPROJECT_ID: again\r\n\r\n",
        "kupo_write": "PUT /kupo/patterns/addr1* HTTP/1.1\r\nHost: lb\r\nContent-Length: 2\r\n\r\n{}"
                      "DELETE /matches/* HTTP/1.1\r\nHost: lb\r\n\r\n",
        "upgrade": "GET /ogmios HTTP/1.1\r\nHost: lb\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "absolute_form": "GET http://lb:8080/s/dave/health?x=1 HTTP/1.1\r\nHost: lb:8080\r\n\r\n",
        "smuggle_cl_te": "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "bad_chunk": "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhelloXX0\r\n\r\n",
        "leading_crlf": "\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    }
    for name, data in r.items():
        write("request", name, data)


def responses():
    r = {
        "kupo_health": "HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=utf-8\r\n"
                       "Content-Length: %d\r\n\r\n%s" % (len(KUPO), KUPO),
        "kupo_chunked": "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n"
                        "Content-Type: application/json\r\n\r\n" + chunked(KUPO_BEHIND, 32),
        "ogmios_health": "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                         "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n%s" % (len(OGMIOS), OGMIOS),
        "blockfrost": "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n" + chunked(BLOCKFROST, 5, ext=True, trailer=True),
        "interim": "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "no_body": "HTTP/1.1 204 No Content\r\nX-Backend: k1\r\n\r\n"
                   "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
                   "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
        "until_close": "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nread until the end",
        "error_503": "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\n"
                     "Content-Length: %d\r\n\r\n%s" % (len(OGMIOS_ORIGIN), OGMIOS_ORIGIN),
        "switching": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
    }
    for name, data in r.items():
        write("response", name, data)


def small():
    for name, body in {"kupo": KUPO_BEHIND, "blockfrost": BLOCKFROST, "escapes": ESCAPES}.items():
        write("dechunk", name, chunked(body, 6, ext=name == "escapes", trailer=name == "kupo"))
    write("dechunk", "empty", "0\r\n\r\n")
    for name, body in {"kupo": KUPO, "kupo_behind": KUPO_BEHIND, "ogmios": OGMIOS,
                       "ogmios_origin": OGMIOS_ORIGIN, "blockfrost": BLOCKFROST,
                       "escapes": ESCAPES}.items():
        write("flat_json", name, body)
    # probe: byte 0 picks the status (< 10: 200, 202, 204, 301, 404, 500, 503, 0, 100, 299).
    for name, (st, body) in {"kupo_200": (0, KUPO), "kupo_202": (1, KUPO_BEHIND),
                             "ogmios_200": (0, OGMIOS), "ogmios_origin": (5, OGMIOS_ORIGIN),
                             "blockfrost_200": (0, BLOCKFROST),
                             "blockfrost_503": (6, '{"is_healthy":false}')}.items():
        write("probe", name, bytes([st, 100]) + body.encode())
    for i, a in enumerate(ADDRS):
        write("cip19", "addr%d" % i, a)
    write("cip19", "path", "/matches/%s/*?unspent" % ADDR_BASE)
    write("router", "kupo_address",
          "GET\n/kupo/matches/%s?unspent\n/s/ session x-session /kupo\nHost: lb\n" % ADDR_BASE)
    write("router", "path_token", "GET\n/s/alice/patterns?x\n/s/ session x-session /kupo/\n")
    write("router", "kupo_write", "PUT\n/kupo/patterns/addr1*\n/s/ sid x-user /kupo\n"
          "Cookie: a=b; sid=\"tok\"\n")
    write("router", "ogmios", "POST\n/ogmios/?q\n/s session x-session /kupo\nX-Session:  u-1 \n")
    write("router", "delete", "DELETE\n/s/t/matches/*\n/s/ c h /\n")


def cache_rules():
    # METHOD, TARGET, "BEST-TIP IMMUTABLE-AFTER PREFIX", If-None-Match, ETag, body, headers.
    datum = "/datums/" + "ab" * 32
    script = "/scripts/" + "0f" * 28
    tag = '"c1-0123456789abcdef0123456789abcdef"'
    seeds = {
        "datum": ["GET", datum, "134524380 129600", "", tag, '{"datum":"d87980"}',
                  "Accept: application/json", "Cookie: corral=s1"],
        "datum_v1_upper": ["GET", "/v1/v1/datums/" + "AB" * 32, "", tag, tag, "null"],
        "script_query": ["HEAD", script + "?x=1", "5 1", 'W/' + tag + ', "x"', tag, " null\n"],
        "metadata_deep": ["GET", "/metadata/100?transaction_id=" + "cd" * 32, "200000 2160", "*",
                          tag, "[]", "Accept-Encoding:  GZIP ", "Content-Type: application/json"],
        "metadata_edge": ["GET", "/metadata/197840", "200000 2160", "", tag, "[]"],
        "checkpoints": ["GET", "/checkpoints/42?strict", "9999999 100", '"a", , W/"b"', 'W/"b"',
                        "{}", "Vary: Accept, Origin", "Set-Cookie: a=b"],
        "prefix": ["GET", "/static/%61pp/./x.js?v=2", "  /static/", '"x"', '"x"', "body",
                   "Authorization: Bearer t", "Cache-Control: no-store"],
        "range": ["GET", datum, "1 1", "", tag, "null", "Range: bytes=0-1", "If-Match: *"],
        "dots": ["GET", "/a/../datums//" + "ab" * 32, "", '"unterminated', '""', "null"],
        "post": ["POST", datum, "1", "", tag, "null", "Content-Length: 3"],
    }
    for name, lines in seeds.items():
        write("cache_rules", name, "\n".join(lines) + "\n")


def configs():
    src = open(os.path.join(ROOT, "config", "embedded_default.cpp")).read()
    m = re.search(r'R"\((.*?)\)"', src, re.S)
    write("config", "embedded_default.yaml", m.group(1))
    readme = open(os.path.join(ROOT, "README.md")).read()
    for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", readme, re.S)):
        write("config", "readme_%d.yaml" % i, block)


if __name__ == "__main__":
    requests()
    responses()
    small()
    cache_rules()
    configs()

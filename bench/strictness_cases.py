"""The cases of bench/strictness: malformed (and a few well-formed) HTTP/1.1 inputs, as the
exact bytes a client sends, plus for response-side cases the exact bytes the backend answers.

Routes every proxy in bench/strictness is configured with (same paths everywhere):
  /kupo/...  a Kupo pool (corral: `kind: kupo`, no `methods` list, strip_prefix; HAProxy and
             nginx: a deny rule for writes to Kupo's patterns/matches, see strictness)
  /bf/...    a Blockfrost pool whose proxy injects `project_id: secret`
  /...       a plain pool
All three go to the same recording backend, which answers a plain 200 unless the case
scripts its answer.

Flags: (pattern, label) pairs searched in everything the backend received during the case;
a pattern is a bytes regex or a function of those bytes. A matching flag is shown beside
"fwd" in the table, so the table says what got through, not only that something did.
"""

import re
from typing import Callable, NamedTuple, Optional, Tuple, Union

Flag = Tuple[Union[bytes, Callable[[bytes], bool]], str]


class Case(NamedTuple):
    name: str
    group: str  # "ok" (control), "1".."6" (issue 9 item), "old" (shapes already refused)
    what: str  # a short description for the table (Markdown)
    request: bytes
    response: Optional[bytes] = None  # scripted backend answer; the backend closes after it
    flags: Tuple[Flag, ...] = ()
    head: bool = False  # the request is HEAD: its first response has no body


H = b"Host: t\r\n"
GET = b"GET / HTTP/1.1\r\n" + H + b"\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n"
SMUGGLED_FLAG = (rb"/smuggled", "2nd request")
# A whole second response hidden where no body may be: a client reading it gets two answers
# to one request (response splitting).
SPLIT = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"
SPLIT_CL = b"Content-Length: %d\r\n\r\n" % len(SPLIT)  # a length that covers it
MAX_BODY = 1 << 20  # limits.max_body_bytes (corral) and client_max_body_size (nginx)
EXT_BYTES = 2 << 20  # chunk extension size: 2 MiB against the 1 MiB body limit


def post(path, headers, body=b""):
    return b"POST " + path + b" HTTP/1.1\r\n" + H + headers + b"\r\n" + body


def chunked(headers_extra, body):
    return post(b"/", b"Transfer-Encoding: chunked\r\n" + headers_extra, body)


def with_header(line, target=b"/"):
    """GET target with one extra raw header line (CRLF appended)."""
    return b"GET " + target + b" HTTP/1.1\r\n" + H + line + b"\r\n\r\n"


def no_host(received):
    return b"\r\n\r\n" in received and not re.search(rb"(?im)^host[ \t]*:", received)


def sent_as_11(received):
    return re.match(rb"GET \S+ HTTP/1\.1\r\n", received) is not None


def two_hosts(received):
    head = received.split(b"\r\n\r\n")[0]
    return len(re.findall(rb"(?im)^host[ \t]*:", head)) > 1


CASES = [
    # ---- controls: well-formed, every proxy should answer 200 and forward
    Case("get", "ok", "plain `GET /`", GET),
    Case("get-1.0-no-host", "ok", "`GET / HTTP/1.0` without Host", b"GET / HTTP/1.0\r\n\r\n"),
    Case("chunked-post", "ok", "chunked POST, 2 chunks",
         chunked(b"", b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")),
    Case("pipelined-gets", "ok", "two GETs in one write", GET + GET),
    Case("kupo-get-matches", "ok", "`GET /kupo/matches/*`",
         b"GET /kupo/matches/* HTTP/1.1\r\n" + H + b"\r\n"),
    Case("kupo-put-patterns", "ok", "`PUT /kupo/patterns/*` (guarded today)",
         b"PUT /kupo/patterns/* HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n"),
    # ---- item 1: Kupo write endpoints and path encodings
    Case("kupo-put-v1-patterns", "1", "`PUT /kupo/v1/patterns/*`",
         b"PUT /kupo/v1/patterns/* HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n"),
    Case("kupo-delete-v1-matches", "1", "`DELETE /kupo/v1/matches/*`",
         b"DELETE /kupo/v1/matches/* HTTP/1.1\r\n" + H + b"\r\n"),
    Case("kupo-put-pct70atterns", "1", "`PUT /kupo/%70atterns/*`",
         b"PUT /kupo/%70atterns/* HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n"),
    Case("kupo-put-v1-pct2F", "1", "`PUT /kupo/v1%2Fpatterns/*`",
         b"PUT /kupo/v1%2Fpatterns/* HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n"),
    Case("kupo-get-pct2F", "1", "`GET /kupo/matches/a%2Fb`",
         b"GET /kupo/matches/a%2Fb HTTP/1.1\r\n" + H + b"\r\n"),
    Case("kupo-get-pct00", "1", "`GET /kupo/matches/a%00b`",
         b"GET /kupo/matches/a%00b HTTP/1.1\r\n" + H + b"\r\n"),
    Case("kupo-get-bad-escape", "1", "`GET /kupo/matches/a%zzb`",
         b"GET /kupo/matches/a%zzb HTTP/1.1\r\n" + H + b"\r\n"),
    Case("kupo-get-cut-escape", "1", "`GET /kupo/matches/a%4`",
         b"GET /kupo/matches/a%4 HTTP/1.1\r\n" + H + b"\r\n"),
    # ---- item 2: whitespace in header names
    Case("hdr-project_id-space", "2", "`project_id : x` to a Blockfrost route",
         with_header(b"project_id : x", b"/bf/api/v0/blocks/latest"),
         flags=((rb"(?im)^project_id[ \t]*:[ \t]*x\r?$", "client's project_id"),)),
    Case("hdr-content-length-space", "2", "`Content Length: 5` + 5 bytes",
         post(b"/", b"Content Length: 5\r\n", b"hello"),
         flags=((rb"(?im)^content length", "`Content Length`"),)),
    Case("hdr-name-tab", "2", "`X-A\\t: b`", with_header(b"X-A\t: b"),
         flags=((rb"(?im)^x-a\t", "`X-A\\t`"),)),
    # ---- item 3: a bare CR where the head's last CRLF should be
    Case("cr-rX-after-header", "3", "`Host: t\\r\\n\\rX` then a 2nd request",
         b"GET / HTTP/1.1\r\n" + H + b"\rX" + SMUGGLED, flags=(SMUGGLED_FLAG,)),
    Case("cr-r-after-header", "3", "`Host: t\\r\\n\\r` then a 2nd request",
         b"GET / HTTP/1.1\r\n" + H + b"\r" + SMUGGLED, flags=(SMUGGLED_FLAG,)),
    # ---- item 4: body bytes on responses that have none (backend scripted)
    Case("resp-204-cl-body", "4", "backend: `204`, `Content-Length: 44` + a 2nd response", GET,
         response=b"HTTP/1.1 204 No Content\r\n" + SPLIT_CL + SPLIT),
    Case("resp-304-cl-body", "4", "backend: `304`, `Content-Length: 44` + a 2nd response", GET,
         response=b"HTTP/1.1 304 Not Modified\r\n" + SPLIT_CL + SPLIT),
    Case("resp-204-bytes", "4", "backend: `204` (no length) + a 2nd response", GET,
         response=b"HTTP/1.1 204 No Content\r\n\r\n" + SPLIT),
    Case("resp-head-cl-body", "4", "`HEAD`; backend: 200, `Content-Length: 44` + a 2nd response",
         b"HEAD / HTTP/1.1\r\n" + H + b"\r\n",
         response=b"HTTP/1.1 200 OK\r\n" + SPLIT_CL + SPLIT, head=True),
    # ---- item 5: chunk framing and limits
    Case("chunk-data-no-crlf", "5", "chunked `5\\r\\nhelloXX0\\r\\n\\r\\n`",
         chunked(b"", b"5\r\nhelloXX0\r\n\r\n"), flags=((rb"helloXX", "`helloXX`"),)),
    Case("chunk-ext-2MiB", "5", "chunk extension of 2 MiB (limit 1 MiB)",
         chunked(b"", b"5;a=" + b"x" * EXT_BYTES + b"\r\nhello\r\n0\r\n\r\n"),
         flags=((rb";a=x{4096}", "extension"),)),
    Case("chunk-size-over-max", "5", "chunk size 0x200000 (2 MiB, limit 1 MiB), 5 bytes sent",
         chunked(b"", b"200000\r\nhello")),
    Case("cl-over-max", "5", "`Content-Length: 2097152` (limit 1 MiB), 5 bytes sent",
         post(b"/", b"Content-Length: %d\r\n" % (2 * MAX_BODY), b"hello")),
    Case("resp-bad-chunk", "5", "backend: chunked `5\\r\\nhelloXX0\\r\\n\\r\\n`", GET,
         response=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"),
    # ---- item 6: Host, request-target forms, versions, odd responses
    Case("two-host", "6", "`Host: a` + `Host: b`",
         b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", flags=((two_hosts, "2 Host"),)),
    Case("no-host-1.1", "6", "HTTP/1.1 without Host", b"GET / HTTP/1.1\r\n\r\n",
         flags=((no_host, "no Host"),)),
    Case("host-slash", "6", "`Host: a/b`", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
         flags=((rb"(?im)^host: a/b", "`a/b`"),)),
    Case("host-space", "6", "`Host: a b`", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
         flags=((rb"(?im)^host: a b", "`a b`"),)),
    Case("host-at", "6", "`Host: u@a`", b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n",
         flags=((rb"(?im)^host: u@a", "`u@a`"),)),
    Case("absolute-form", "6", "`GET http://t/kupo/matches/* HTTP/1.1`",
         b"GET http://t/kupo/matches/* HTTP/1.1\r\n" + H + b"\r\n"),
    Case("http-2.0", "6", "`GET / HTTP/2.0`", b"GET / HTTP/2.0\r\n" + H + b"\r\n",
         flags=((sent_as_11, "as 1.1"),)),
    Case("http-0.9", "6", "`GET / HTTP/0.9`", b"GET / HTTP/0.9\r\n" + H + b"\r\n",
         flags=((sent_as_11, "as 1.1"),)),
    Case("resp-101-no-upgrade", "6", "backend: `101` to a plain GET", GET,
         response=b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
         b"Upgrade: websocket\r\n\r\ntunnel"),
    Case("resp-te-identity", "6", "backend: `Transfer-Encoding: identity`", GET,
         response=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nhello"),
    Case("resp-hdr-name-space", "6", "backend: `X Bad: 1` header", GET,
         response=b"HTTP/1.1 200 OK\r\nX Bad: 1\r\nContent-Length: 5\r\n\r\nhello"),
    Case("resp-cl-space", "6", "backend: `Content Length: 5` and no framing", GET,
         response=b"HTTP/1.1 200 OK\r\nContent Length: 5\r\n\r\nhello"),
    # ---- shapes the issue found already refused (kept so they stay that way)
    Case("cl-te", "old", "`Content-Length` + `Transfer-Encoding: chunked`",
         post(b"/", b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
              b"0\r\n\r\n" + SMUGGLED), flags=(SMUGGLED_FLAG,)),
    Case("te-cl", "old", "`Transfer-Encoding: chunked` + `Content-Length`",
         post(b"/", b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n",
              b"0\r\n\r\n" + SMUGGLED), flags=(SMUGGLED_FLAG,)),
    Case("dup-cl", "old", "`Content-Length: 0` + `Content-Length: %d`" % len(SMUGGLED),
         post(b"/", b"Content-Length: 0\r\nContent-Length: %d\r\n" % len(SMUGGLED), SMUGGLED),
         flags=(SMUGGLED_FLAG,)),
    Case("te-chunked-identity", "old", "`Transfer-Encoding: chunked, identity`",
         post(b"/", b"Transfer-Encoding: chunked, identity\r\n", b"0\r\n\r\n" + SMUGGLED),
         flags=(SMUGGLED_FLAG,)),
    Case("te-xchunked", "old", "`Transfer-Encoding: xchunked`",
         post(b"/", b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n" + SMUGGLED),
         flags=(SMUGGLED_FLAG,)),
    Case("te-space-colon", "old", "`Transfer-Encoding : chunked`",
         post(b"/", b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n" + SMUGGLED),
         flags=(SMUGGLED_FLAG,)),
    Case("te-http-1.0", "old", "`Transfer-Encoding: chunked` on HTTP/1.0",
         b"POST / HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
         flags=(SMUGGLED_FLAG,)),
    Case("obs-fold-te", "old", "`Transfer-Encoding:` folded onto ` chunked`",
         post(b"/", b"Transfer-Encoding:\r\n chunked\r\n", b"0\r\n\r\n" + SMUGGLED),
         flags=(SMUGGLED_FLAG,)),
    Case("obs-fold", "old", "`X-A: a` folded onto ` b`", with_header(b"X-A: a\r\n b")),
    Case("bare-lf", "old", "head lines end in bare LF", b"GET / HTTP/1.1\nHost: t\n\n"),
    Case("bare-cr", "old", "`X-A: a\\rb`", with_header(b"X-A: a\rb")),
    Case("nul-in-value", "old", "`X-A: a\\0b`", with_header(b"X-A: a\x00b")),
    Case("ctl-in-value", "old", "`X-A: a\\x01b`", with_header(b"X-A: a\x01b")),
    Case("ctl-in-target", "old", "`GET /a\\x01b`", b"GET /a\x01b HTTP/1.1\r\n" + H + b"\r\n"),
    Case("oversized-head", "old", "one 20,000-byte header (limit 16 KiB)",
         with_header(b"X-A: " + b"a" * 20000)),
]

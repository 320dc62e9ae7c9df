"""Strict HTTP (issue 9, items 2-6): malformed requests get their 4xx/505 and never reach
the backend; malformed or ill-framed backend responses get a 502 (or a cut, once an
answer has started) and none of their smuggled bytes reach the client.

corral runs for real in front of a *recording* backend: a raw socket server on
127.0.0.1 that logs every byte it receives and answers with scripted bytes. Each case
sends raw bytes from a socket and checks corral's status line and what the backend did
or did not receive.

REQUEST_CASES and RESPONSE_CASES are plain data so that a strictness table (corral beside
HAProxy and nginx) can reuse them."""
import re
import time

import harness
from harness import raw, status_of

H = b"Host: x\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"

# (name, raw request bytes, corral's status, bytes that must never reach the backend).
# Every request targets /raw/<something unique>, so "never" is usually that path.
REQUEST_CASES = [
    # item 2: header names are tokens (RFC 9112 5.1)
    ("space_before_colon", b"GET /raw/c-sbc HTTP/1.1\r\n" + H + b"project_id : x\r\n\r\n", 400,
     b"c-sbc"),
    ("space_in_name", b"POST /raw/c-sin HTTP/1.1\r\n" + H + b"Content Length: 5\r\n\r\nhello",
     400, b"c-sin"),
    ("empty_name", b"GET /raw/c-empty HTTP/1.1\r\n" + H + b": x\r\n\r\n", 400, b"c-empty"),
    ("non_token_name", b"GET /raw/c-ntok HTTP/1.1\r\n" + H + b"X(y): 1\r\n\r\n", 400, b"c-ntok"),
    # item 3: a CR not followed by LF is never the end of the head
    ("cr_x_after_header",
     b"GET /raw/c-crx HTTP/1.1\r\n" + H + b"\rXGET /raw/c-crx-smuggled HTTP/1.1\r\n" + H +
     b"\r\n", 400, b"c-crx"),
    ("cr_x_after_request_line",
     b"GET /raw/c-crx2 HTTP/1.1\r\n\rXGET /raw/c-crx2-smuggled HTTP/1.1\r\n" + H + b"\r\n", 400,
     b"c-crx2"),
    ("bare_cr_in_value", b"GET /raw/c-bcr HTTP/1.1\r\n" + H + b"X: a\rb\r\n\r\n", 400, b"c-bcr"),
    ("bare_lf_after_request_line", b"GET /raw/c-blf HTTP/1.1\n" + H + b"\r\n", 400, b"c-blf"),
    ("bare_lf_blank_line", b"GET /raw/c-blf2 HTTP/1.1\r\n" + H + b"\nX", 400, b"c-blf2"),
    # obs-fold (RFC 9112 5.2): refused, never unfolded and forwarded
    ("obs_fold_te",
     b"POST /raw/c-fold HTTP/1.1\r\n" + H + b"Transfer-Encoding:\r\n chunked\r\n\r\n"
     b"0\r\n\r\nGET /raw/c-fold-smuggled HTTP/1.1\r\n" + H + b"\r\n", 400, b"c-fold"),
    # request line
    ("two_spaces_before_target", b"GET  /raw/c-2sp HTTP/1.1\r\n" + H + b"\r\n", 400, b"c-2sp"),
    ("two_spaces_after_target", b"GET /raw/c-2sp2  HTTP/1.1\r\n" + H + b"\r\n", 400, b"c-2sp2"),
    # item 6: versions
    ("http_2_0", b"GET /raw/c-h2 HTTP/2.0\r\n" + H + b"\r\n", 505, b"c-h2"),
    ("http_3_0", b"GET /raw/c-h3 HTTP/3.0\r\n" + H + b"\r\n", 505, b"c-h3"),
    ("http_0_9", b"GET /raw/c-h09 HTTP/0.9\r\n" + H + b"\r\n", 400, b"c-h09"),
    ("http_0_9_no_version", b"GET /raw/c-h09b\r\n\r\n", 400, b"c-h09b"),
    # item 6: Host
    ("two_hosts", b"GET /raw/c-2host HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, b"c-2host"),
    ("no_host_http11", b"GET /raw/c-nohost HTTP/1.1\r\nX: 1\r\n\r\n", 400, b"c-nohost"),
    ("host_with_space", b"GET /raw/c-hsp HTTP/1.1\r\nHost: a b\r\n\r\n", 400, b"c-hsp"),
    ("host_with_slash", b"GET /raw/c-hsl HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, b"c-hsl"),
    ("host_with_userinfo", b"GET /raw/c-hui HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, b"c-hui"),
    ("host_bad_port", b"GET /raw/c-hbp HTTP/1.1\r\nHost: a:99999\r\n\r\n", 400, b"c-hbp"),
    ("host_open_bracket", b"GET /raw/c-hob HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, b"c-hob"),
    ("host_empty", b"GET /raw/c-hemp HTTP/1.1\r\nHost: \r\n\r\n", 400, b"c-hemp"),
    # Content-Length shapes
    ("content_length_plus", b"POST /raw/c-clp HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\n"
     b"hello", 400, b"c-clp"),
    ("content_length_inner_space", b"POST /raw/c-cls HTTP/1.1\r\n" + H +
     b"Content-Length: 1 5\r\n\r\nhello", 400, b"c-cls"),
    # item 5: chunked framing (the head may already be on its way; the body never ends
    # and the smuggled request after it never arrives)
    ("chunk_data_without_crlf",
     b"POST /raw/c-ch1 HTTP/1.1\r\n" + H + CHUNKED + b"\r\n5\r\nhelloXX0\r\n\r\n"
     b"GET /raw/c-ch1-smuggled HTTP/1.1\r\n" + H + b"\r\n", 400, b"c-ch1-smuggled"),
    ("chunk_trailer_cr_x",
     b"POST /raw/c-ch2 HTTP/1.1\r\n" + H + CHUNKED + b"\r\n0\r\n\rXGET /raw/c-ch2-smuggled "
     b"HTTP/1.1\r\n" + H + b"\r\n", 400, b"c-ch2-smuggled"),
    ("chunk_size_over_max_body",
     b"POST /raw/c-ch3 HTTP/1.1\r\n" + H + CHUNKED + b"\r\nfffffff\r\nSECRET-DATA", 413,
     b"SECRET-DATA"),
    ("chunk_extension_too_long",
     b"POST /raw/c-ch4 HTTP/1.1\r\n" + H + CHUNKED + b"\r\n1;" + b"e" * 5000 + b"\r\na\r\n0\r\n"
     b"\r\n", 413, b"e" * 4097),
    ("chunk_extensions_over_max_body",
     b"POST /raw/c-ch5 HTTP/1.1\r\n" + H + CHUNKED + b"\r\n" +
     (b"1;" + b"e" * 1000 + b"\r\na\r\n") * 70 + b"0\r\n\r\n", 413, b";eeee"),
]

# (name, the backend's scripted answer, statuses the client may see (None: cut with no
# answer), bytes that must never reach the client).
RESPONSE_CASES = [
    ("transfer_encoding_identity",
     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nEVIL-BODY", (502,), b"EVIL"),
    ("transfer_encoding_gzip_chunked",
     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\nEVIL\r\n0\r\n\r\n", (502,),
     b"EVIL"),
    ("status_101_without_upgrade",
     b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
     b"EVIL-FRAME", (502,), b"EVIL"),
    ("space_in_header_name",
     b"HTTP/1.1 200 OK\r\nX Evil: 1\r\nContent-Length: 2\r\n\r\nok", (502,), b"X Evil"),
    ("content_length_and_chunked",
     b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nEVIL\r\n"
     b"0\r\n\r\n", (502,), b"EVIL"),
    ("http_2_0_status_line", b"HTTP/2.0 200 OK\r\nContent-Length: 4\r\n\r\nEVIL", (502,), b"EVIL"),
    ("cr_x_in_head",
     b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\rXHTTP/1.1 200 OK\r\nX-Evil: 1\r\n\r\n", (502,),
     b"X-Evil"),
    ("chunk_data_without_crlf",
     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", (502, None),
     b"XX"),
    ("chunk_extension_too_long",
     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + b"e" * 5000 + b"\r\na\r\n0\r\n"
     b"\r\n", (502, None), b"eeee"),
]

# A backend's 204/304 followed by bytes: they are no body, and must never reach the client
# (response splitting on a keep-alive connection).
SPLIT_CASES = [
    ("204_with_body", b"HTTP/1.1 204 No Content\r\nContent-Length: 38\r\n\r\n"
     b"HTTP/1.1 200 OK\r\nX-Evil: 1\r\nContent-Length: 0\r\n\r\n", 204),
    ("304_with_body", b"HTTP/1.1 304 Not Modified\r\n\r\n"
     b"HTTP/1.1 200 OK\r\nX-Evil: 1\r\nContent-Length: 0\r\n\r\n", 304),
    ("204_chunked_body", b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"1a\r\nHTTP/1.1 200 OK\r\nX-Evil: 1\r\n0\r\n\r\n", 204),
]

def counter(metrics, name, backend, extra=""):
    """The sample of `name` for `backend` whose labels also hold `extra` (0 if none)."""
    m = re.search(r'^%s\{[^}]*backend="%s"[^}]*%s[^}]*\} (\d+)' % (name, backend, re.escape(extra)),
                  metrics, re.M)
    return int(m.group(1)) if m else 0


class StrictHttp(harness.OneBackendSuite):
    SCRIPT = {}  # path -> the backend's answer (default: 200 "ok")

    @staticmethod
    def respond(req):
        return StrictHttp.SCRIPT.get(harness.request_path(req), harness.OK)

    @classmethod
    def config(cls, backend_port):
        routes = "      - {prefix: /raw/, pool: raw, strip_prefix: true}\n"
        return harness.listener_config(routes) + (
                "sticky:\n"
                "  keys:\n"
                "    - {from: header, name: X-Session-Key}\n"
                "pools:\n"
                "  raw:\n"
                "    kind: http\n"
                "    backends:\n"
                "      - {name: rec-1, address: 127.0.0.1:%d}\n"
                # Probes rarely, and never lets the refused answers below mark it down.
                "    health: {interval: 1h, timeout: 500ms, fall: 1000}\n"
                "    timeouts: {connect: 1s, response: 2s}\n"
                "limits: {max_header_bytes: 8192, max_body_bytes: 65536, header_timeout: 2s, "
                "idle_timeout: 2s}\n" % backend_port)

    def test_valid_requests_reach_the_backend(self):
        # The negative checks below mean something only if the same shapes, well formed,
        # do reach the recording backend.
        reqs = [
            b"GET /raw/v-plain HTTP/1.1\r\nHost: example.com:8080\r\nConnection: close\r\n\r\n",
            b"GET /raw/v-ipv6 HTTP/1.1\r\nHost: [::1]:80\r\nConnection: close\r\n\r\n",
            b"GET /raw/v-http10 HTTP/1.0\r\n\r\n",
            b"POST /raw/v-chunked HTTP/1.1\r\n" + H + CHUNKED + b"Connection: close\r\n\r\n"
            b"5;ext=1\r\nhello\r\n0\r\n\r\n",
        ]
        for req in reqs:
            out = raw(self.port, req, timeout=3)
            self.assertEqual(status_of(out), 200, (req, out[:200]))
        got = self.backend.received()
        for marker in (b"v-plain", b"v-ipv6", b"v-http10", b"v-chunked", b"hello"):
            self.assertIn(marker, got)

    def test_malformed_requests(self):
        for name, data, status, never in REQUEST_CASES:
            with self.subTest(name):
                out = raw(self.port, data, timeout=3)
                self.assertEqual(status_of(out), status, out[:300])
                self.assertIn(b"Connection: close", out.partition(b"\r\n\r\n")[0])
                time.sleep(0.05)  # anything corral sent on has had time to arrive
                self.assertNotIn(never, self.backend.received(), name)
        # Each refusal is logged with its reason.
        self.corral.proc.wait_line(r"invalid header field name")
        self.corral.proc.wait_line(r"CR not followed by LF")
        self.corral.proc.wait_line(r"chunk data not followed by CRLF")
        # And corral still serves.
        out = raw(self.port, b"GET /raw/after HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
        self.assertEqual(status_of(out), 200, out[:200])

    def test_bad_responses_are_502_and_count_as_backend_failures(self):
        before = counter(self.corral.metrics(), "corral_upstream_failures_total", "rec-1",
                         'reason="reset"')
        for name, answer, statuses, never in RESPONSE_CASES:
            with self.subTest(name):
                path = "/r-" + name
                self.SCRIPT[path] = answer
                out = raw(self.port, b"GET /raw" + path.encode() + b" HTTP/1.1\r\n" + H +
                          b"\r\n", timeout=3)
                self.assertIn(status_of(out), statuses, out[:300])
                self.assertNotIn(never, out)
        after = counter(self.corral.metrics(), "corral_upstream_failures_total", "rec-1",
                         'reason="reset"')
        self.assertEqual(after - before, len(RESPONSE_CASES))
        self.corral.proc.wait_line(r"bad_response: 101 to a request that asked for no upgrade")
        self.corral.proc.wait_line(r"bad_response: response Transfer-Encoding other than chunked")

    def test_204_and_304_bytes_never_reach_the_client(self):
        for name, answer, status in SPLIT_CASES:
            with self.subTest(name):
                first, second = "/s-%s" % name, "/s-%s-next" % name
                self.SCRIPT[first] = answer
                # Two requests on one keep-alive connection: the second answer must be the
                # backend's real one, never the bytes that followed the 204/304 head.
                out = raw(self.port,
                          b"GET /raw" + first.encode() + b" HTTP/1.1\r\n" + H + b"\r\n"
                          b"GET /raw" + second.encode() + b" HTTP/1.1\r\n" + H +
                          b"Connection: close\r\n\r\n", timeout=3)
                self.assertEqual(status_of(out), status, out[:300])
                self.assertNotIn(b"X-Evil", out)
                self.assertEqual(out.count(b"HTTP/1.1 "), 2, out)
                self.assertTrue(out.endswith(b"\r\n\r\nok"), out)
                # The connection that carried the 204/304 was not reused for the next one.
                line1 = b"GET " + first.encode() + b" HTTP/1.1"
                line2 = b"GET " + second.encode() + b" HTTP/1.1"
                logs = self.backend.logs()
                self.assertFalse(any(line1 in c and line2 in c for c in logs), logs)
                self.assertTrue(any(line2 in c for c in logs), logs)

if __name__ == "__main__":
    harness.main()

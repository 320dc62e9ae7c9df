"""The two peers bench/strictness puts around each proxy: the recording backend and the
client's exchange, with the lenient HTTP/1.1 framing both use to tell where a message
ends. Lenient on purpose: they must record what a proxy lets through, not judge it."""

import re
import select
import socket
import threading
import time

HOST = "127.0.0.1"  # the only address bound to or connected to
CLIENT_TIMEOUT = 2.0  # the longest a case waits for its answer
QUIET = 0.5  # a complete answer followed by this much silence ends the case early
BACKEND_QUIET = 0.2  # the backend must be silent this long before the next case starts
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
# One body that every kind of corral health probe reads as healthy (Kupo, Blockfrost).
HEALTH_BODY = (b'{"connection_status":"connected","most_recent_checkpoint":100,'
               b'"most_recent_node_tip":100,"seconds_since_last_block":1,'
               b'"network_synchronization":1,"is_healthy":true}')
HEALTH = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (
    len(HEALTH_BODY), HEALTH_BODY)


# ---------------------------------------------------------------- HTTP framing (both sides)


def chunked_end(buf, i):
    """End index of a chunked body starting at buf[i], None while incomplete, -1 if malformed."""
    while True:
        e = buf.find(b"\r\n", i)
        if e < 0:
            return None
        try:
            size = int(bytes(buf[i:e]).split(b";")[0].strip(), 16)
        except ValueError:
            return -1
        if size == 0:  # trailers (usually none), then an empty line
            if buf[e + 2:e + 4] == b"\r\n":
                return e + 4
            t = buf.find(b"\r\n\r\n", e + 2)
            return None if t < 0 else t + 4
        data_end = e + 2 + size
        if len(buf) < data_end + 2:
            return None
        if buf[data_end:data_end + 2] != b"\r\n":
            return -1
        i = data_end + 2


def request_end(buf):
    """End index of the first request in buf, None while incomplete, -1 if unreadable.
    Lenient on purpose (bare LF, any header spelling): it must record, not judge."""
    m = re.search(rb"\r?\n\r?\n", buf)
    if not m:
        return None
    head, body = bytes(buf[:m.start()]), m.end()
    if re.search(rb"(?im)^transfer-encoding[ \t]*:.*chunked", head):
        return chunked_end(buf, body)
    cl = re.search(rb"(?im)^content-length[ \t]*:[ \t]*(\d+)", head)
    n = body + (int(cl.group(1)) if cl else 0)
    return n if len(buf) >= n else None


STATUS_RX = re.compile(rb"HTTP/\d\.\d (\d{3})[^\r\n]*\r\n")


def parse_responses(buf, head):
    """(status codes, complete, note) for the bytes a client got. complete: nothing more is
    expected (the last answer is whole, or what follows cannot be HTTP)."""
    codes, i = [], 0
    while i < len(buf):
        m = STATUS_RX.match(buf, i)
        if not m:
            rest = bytes(buf[i:i + 9])
            if b"HTTP/1.1 "[:len(rest)] == rest or b"\r\n" not in buf[i:]:
                return codes, False, ""  # a status line still arriving
            return codes, True, "+junk"
        e = buf.find(b"\r\n\r\n", i)
        if e < 0:
            return codes, False, ""
        code = int(m.group(1))
        codes.append(str(code))
        fields = bytes(buf[m.end():e]).lower()
        body = e + 4
        if code == 101:
            return codes, True, "+tunnel" if len(buf) > body else ""
        if 100 <= code < 200 or code in (204, 304) or (head and len(codes) == 1):
            i = body
            continue
        if re.search(rb"(?m)^transfer-encoding[ \t]*:.*chunked", fields):
            end = chunked_end(buf, body)
            if end is None:
                return codes, False, ""
            if end < 0:
                return codes, True, "(bad chunks)"
            i = end
            continue
        cl = re.search(rb"(?m)^content-length[ \t]*:[ \t]*(\d+)", fields)
        if not cl:
            return codes, False, ""  # the body runs to the close
        if len(buf) < body + int(cl.group(1)):
            return codes, False, ""
        i = body + int(cl.group(1))
    return codes, True, ""


# ---------------------------------------------------------------- recording backend


class Backend:
    """127.0.0.1, ephemeral port, a thread per connection. Records every byte it receives
    (per connection) and answers each complete request with OK, or with `script` followed by
    a close. A connection whose first request is `GET /health` is a probe: answered, closed
    and left out of the record, so corral's health checks never show up in a case."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.chunks = []  # (connection id, bytes) in arrival order
        self.requests = []  # connection id of each complete request (probes left out)
        self.probes = set()
        self.conns = []
        self.last_rx = time.monotonic()
        self.script = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(c)
                cid = len(self.conns)
            threading.Thread(target=self._serve, args=(c, cid), daemon=True).start()

    def _serve(self, c, cid):
        buf, first, unreadable = bytearray(), True, False
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                with self.lock:
                    self.chunks.append((cid, d))
                    self.last_rx = time.monotonic()
                buf += d
                while not unreadable:
                    n = request_end(buf)
                    if n is None:
                        break
                    if n < 0:
                        unreadable = True  # keep recording, stop answering
                        break
                    req = bytes(buf[:n])
                    del buf[:n]
                    if first and req.startswith(b"GET /health "):
                        with self.lock:
                            self.probes.add(cid)
                        c.sendall(HEALTH)
                        return
                    first = False
                    with self.lock:
                        self.requests.append(cid)
                        script = self.script
                    if script is not None:
                        c.sendall(script)
                        return
                    c.sendall(OK)
        except OSError:
            return
        finally:
            c.close()

    def mark(self):
        with self.lock:
            return len(self.chunks), len(self.requests)

    def since(self, mark):
        """(bytes received, complete requests) since mark, probes left out, after waiting
        (at most 1 s) for BACKEND_QUIET of silence."""
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            with self.lock:
                if time.monotonic() - self.last_rx >= BACKEND_QUIET:
                    break
            time.sleep(0.05)
        with self.lock:
            data = b"".join(d for cid, d in self.chunks[mark[0]:] if cid not in self.probes)
            n = sum(1 for cid in self.requests[mark[1]:] if cid not in self.probes)
        return data, n

    def close(self):
        self.sock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


# ---------------------------------------------------------------- client


def exchange(port, payload, head):
    """Sends payload on a fresh connection while reading; returns the client's cell text."""
    try:
        s = socket.create_connection((HOST, port), timeout=CLIENT_TIMEOUT)
    except OSError:
        return "refused"  # the proxy is gone: the caller reports the crash
    s.setblocking(False)
    sent, buf, closed = 0, bytearray(), False
    start = last_rx = time.monotonic()
    codes, complete, note = [], False, ""
    try:
        while True:
            now = time.monotonic()
            if now - start >= CLIENT_TIMEOUT or (codes and complete and now - last_rx >= QUIET):
                break
            writing = sent < len(payload)
            r, w, _ = select.select([s], [s] if writing else [], [],
                                    min(0.1, start + CLIENT_TIMEOUT - now))
            if w:
                try:
                    sent += s.send(payload[sent:sent + 65536])
                except BlockingIOError:
                    pass
                except OSError:
                    sent = len(payload)  # the proxy stopped reading: keep what it answered
            if r:
                try:
                    d = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    d = b""  # a reset: what arrived before it still counts
                if not d:
                    closed = True
                    break
                buf += d
                last_rx = time.monotonic()
                codes, complete, note = parse_responses(buf, head)
    finally:
        s.close()
    codes, complete, note = parse_responses(buf, head)
    if not codes:
        return "junk" if buf else ("-" if closed else "t/o")
    return " ".join(codes) + (" " + note if note else "")

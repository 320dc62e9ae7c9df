"""Integration test harness: starts the real corral and corral-bench binaries on
loopback with ephemeral ports, and cleans them up. Only 127.0.0.1 is ever targeted."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import atexit
import ctypes
import http.client
import unittest

CORRAL = os.environ.get("CORRAL", os.path.join(os.path.dirname(__file__), "../../build/corral"))
BENCH = os.environ.get("CORRAL_BENCH",
                       os.path.join(os.path.dirname(__file__), "../../build/corral-bench"))


def free_port():
    """A loopback port nothing listens on now (bound, then closed): connections to it are
    refused, and a server of a test's own can take it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


_LIVE = set()  # every child still running: killed when the test process exits
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # A test killed outright (a ctest timeout) takes its servers with it.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@atexit.register
def _kill_leftovers():
    for p in list(_LIVE):
        if p.poll() is None:
            p.kill()
            p.wait()


class Proc:
    """A child process whose stdout/stderr lines are collected by reader threads. Whatever
    happens to the test, it does not outlive the test process."""

    def __init__(self, argv, env=None, pass_fds=()):
        self.argv = argv
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env, preexec_fn=_die_with_parent,
                                  pass_fds=pass_fds)
        _LIVE.add(self.p)
        self.lines = []
        self.cv = threading.Condition()
        for stream in (self.p.stdout, self.p.stderr):
            threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream):
        for line in stream:
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()

    def wait_line(self, pattern, timeout=10.0, start=0):
        """Returns the regex match of the first line (from index start) matching pattern."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        with self.cv:
            while True:
                for line in self.lines[start:]:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.time()
                if left <= 0 or self.p.poll() is not None:
                    raise AssertionError("no line matching %r from %s; got:\n%s" %
                                         (pattern, self.argv[0], "\n".join(self.lines[-30:])))
                self.cv.wait(min(left, 0.1))

    def log(self):
        with self.cv:
            return "\n".join(self.lines)

    def send(self, sig):
        self.p.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        _LIVE.discard(self.p)
        for stream in (self.p.stdout, self.p.stderr):
            stream.close()
        return self.p.returncode


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def read_request(c, buf):
    """Reads one request (head + body framed by Content-Length or chunked) from socket c,
    starting with the bytes already in buf: (request, leftover bytes), or (None, b"") if
    the peer closes first."""
    while b"\r\n\r\n" not in buf:
        chunk = c.recv(65536)
        if not chunk:
            return None, b""
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lower = head.lower()
    m = re.search(rb"content-length: *(\d+)", lower)
    if b"transfer-encoding: chunked" in lower:
        while not re.search(rb"(^|\r\n)0\r\n\r\n", rest):
            chunk = c.recv(65536)
            if not chunk:
                return None, b""
            rest += chunk
        end = re.search(rb"(^|\r\n)0\r\n\r\n", rest).end()
    else:
        end = int(m.group(1)) if m else 0
        while len(rest) < end:
            chunk = c.recv(65536)
            if not chunk:
                return None, b""
            rest += chunk
    return head + b"\r\n\r\n" + rest[:end], rest[end:]


def request_path(req):
    """The request target of a raw request ("" if it has none)."""
    parts = req.split(b" ", 2)
    return parts[1].decode("latin-1") if len(parts) > 1 else ""


class _Recorder:
    """Wraps a socket: every byte received is appended to log (under lock)."""

    def __init__(self, sock, log, lock):
        self.sock, self.log, self.lock = sock, log, lock

    def recv(self, n):
        data = self.sock.recv(n)
        with self.lock:
            self.log.extend(data)
        return data


class RecordingBackend:
    """A scripted HTTP peer on 127.0.0.1 that logs every byte it receives, per connection.

    Each request it reads whole (read_request) and answers with respond(raw_request) ->
    bytes (default: 200 "ok"); None resets the connection. delay(raw_request) -> seconds
    holds the answer back, unless the peer hangs up first. A response head with
    "Connection: close" or "X-Then-Close: 1", or a response framed by the close, is
    followed by a close.

    What it keeps: conns (a bytearray of every byte received, per accepted connection),
    requests (every complete request), answered (every request answered), hangups
    ((time, last request or None, early) each time a peer closed a connection; early:
    in the middle of a request or while its answer was held back)."""

    def __init__(self, respond=None, delay=None):
        self.respond = respond or (lambda req: OK)
        self.delay = delay
        self.lock = threading.Lock()
        self.conns = []
        self.requests = []
        self.answered = []
        self.hangups = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        self.local = threading.local()  # .n: index of the request on its connection
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            log = bytearray()
            with self.lock:
                self.conns.append(log)
            threading.Thread(target=self._conn, args=(c, log), daemon=True).start()

    def _hung_up(self, last, early):
        with self.lock:
            self.hangups.append((time.time(), last, early))

    @staticmethod
    def _held_back(rec, seconds):
        """Waits up to seconds for the peer: the bytes it sent meanwhile (b"" if it hung
        up; a byte that arrives ends the wait)."""
        rec.sock.settimeout(seconds)
        try:
            chunk = rec.recv(1)
        except socket.timeout:
            chunk = None
        except OSError:
            chunk = b""
        rec.sock.settimeout(None)
        return chunk

    def _conn(self, c, log):
        rec = _Recorder(c, log, self.lock)
        buf = b""
        last = None
        consumed = 0  # bytes of the complete requests read so far
        self.local.n = -1
        with c:
            while True:
                self.local.n += 1
                try:
                    req, buf = read_request(rec, buf)
                except OSError:
                    req = None
                if req is None:
                    # Bytes beyond the last complete request: it hung up mid-request.
                    self._hung_up(last, len(log) > consumed)
                    return
                last = req
                consumed += len(req)
                with self.lock:
                    self.requests.append(req)
                out = self.respond(req)
                if out is None:
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    return
                seconds = self.delay(req) if self.delay else 0
                if seconds:
                    early = self._held_back(rec, seconds)
                    if early == b"":
                        self._hung_up(last, True)
                        return
                    buf += early or b""
                try:
                    c.sendall(out)
                except OSError:
                    self._hung_up(last, False)
                    return
                with self.lock:
                    self.answered.append(req)
                head = out.lower().split(b"\r\n\r\n")[0]
                if b"connection: close" in head or b"x-then-close: 1" in head or \
                        (b"content-length" not in out.lower() and b"chunked" not in out.lower()
                         and not re.match(rb"HTTP/1\.1 (1\d\d|204|304)", out)
                         and not req.startswith(b"HEAD")):
                    return

    def received(self):
        """Every byte received so far, connection after connection."""
        with self.lock:
            return b"".join(bytes(c) for c in self.conns)

    def logs(self):
        """A copy of each connection's bytes."""
        with self.lock:
            return [bytes(c) for c in self.conns]

    def last(self, request_line_prefix):
        """The most recent request whose request line starts with the prefix (health
        probes interleave with the test's own requests)."""
        for req in reversed(self.requests):
            if req.startswith(request_line_prefix):
                return req
        return None

    def close(self):
        self.closed = True
        self.sock.close()


class OneBackendSuite(unittest.TestCase):
    """A test class with corral in front of one RecordingBackend for all its tests.
    Subclasses define config(backend_port) -> config text, and may define respond(req)
    (a staticmethod, as RecordingBackend takes it)."""
    respond = None

    @classmethod
    def config(cls, backend_port):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.backend = RecordingBackend(cls.respond)
        try:
            cls.corral = Corral(cls.config(cls.backend.port))
        except BaseException:
            cls.backend.close()
            raise
        cls.port = cls.corral.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.corral.stop()
        cls.backend.close()
        assert rc == 0, rc


class Fleet:
    """N simulated Kupo instances from `corral-bench backend`."""

    def __init__(self, n, name="kupo", extra=()):
        self.proc = Proc([BENCH, "backend", "--listen", "127.0.0.1:0", "--name", name,
                          "--count", str(n), *extra])
        self.backends = {}  # name -> port
        deadline = time.time() + 10
        while len(self.backends) < n:
            assert time.time() < deadline and self.proc.p.poll() is None, self.proc.log()
            with self.proc.cv:
                for line in self.proc.lines:
                    m = re.match(r"^listening (\S+) 127\.0\.0\.1:(\d+)", line)
                    if m:
                        self.backends[m.group(1)] = int(m.group(2))
            time.sleep(0.01)

    def names(self):
        return sorted(self.backends)

    def control(self, name, **settings):
        return post_json(self.backends[name], "/_sim/control", settings)

    def stats(self, name):
        return get_json(self.backends[name], "/_sim/stats")

    def stop(self):
        return self.proc.stop(signal.SIGINT)


class OneSimCase(unittest.TestCase):
    """A test class sharing one simulated Kupo (cls.fleet, named cls.name) for its tests."""

    @classmethod
    def setUpClass(cls):
        cls.fleet = Fleet(1)
        cls.name = cls.fleet.names()[0]

    @classmethod
    def tearDownClass(cls):
        cls.fleet.stop()


def answers(port, n, path="/kupo/matches/a"):
    """n GETs of path + i, each on a new connection: the (status, X-Backend) of each."""
    out = []
    for i in range(n):
        status, headers, _ = get(port, "%s%d" % (path, i))
        out.append((status, headers.get("x-backend")))
    return out


def backends_yaml(fleet, names=None, indent="      "):
    names = names or fleet.names()
    return "".join("%s- {name: %s, address: 127.0.0.1:%d}\n" % (indent, n, fleet.backends[n])
                   for n in names)


def listener_config(routes, workers=1):
    """The start of a config file: `workers`, the admin API and the listener "public" (both
    on ephemeral ports of 127.0.0.1) with `routes`, its lines under "routes:"."""
    return ("workers: %d\n"
            "admin: {listen: 127.0.0.1:0}\n"
            "listeners:\n"
            "  - name: public\n"
            "    listen: 127.0.0.1:0\n"
            "    routes:\n%s") % (workers, routes)


def kupo_config(fleet, extra_sticky="", limits="", route_extra="", workers=1, pool_extra="",
                routes=None):
    routes = routes or ("      - {prefix: /kupo/, pool: kupo, strip_prefix: true, "
                        "methods: [GET, HEAD, OPTIONS]%s}\n" % route_extra)
    return listener_config(routes, workers) + (
        "sticky:\n"
        "  keys:\n"
        "    - {from: path, prefix: /s/}\n"
        "    - {from: cookie, name: corral}\n"
        "    - {from: header, name: X-Session-Key}\n"
        "    - {from: address}\n"
        "    - {from: client_ip}\n"
        "%s"
        "pools:\n"
        "  kupo:\n"
        "    kind: kupo\n"
        "    backends:\n%s%s"
        "%s") % (extra_sticky, backends_yaml(fleet), pool_extra,
                 ("limits: " + limits + "\n") if limits else "")


class Corral:
    """The real corral binary on a temporary config file."""

    def __init__(self, config_text, args=(), env=None):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "corral.yaml")
        with open(self.path, "w") as f:
            f.write(config_text)
        full_env = dict(os.environ, **(env or {}))
        self.proc = Proc([CORRAL, "--config", self.path, *args], env=full_env)
        self.ports = {}
        m = self.proc.wait_line(r"admin listening \S+:(\d+)")
        self.admin_port = int(m.group(1))
        self.proc.wait_line(r"corral \S+ running")
        for line in self.proc.lines:
            # msg="listening NAME HOST:PORT" (logfmt) or "msg":"listening ..." (JSON)
            m = re.search(r'listening (\S+) \S+:(\d+)"', line)
            if m and m.group(1) != "admin":
                self.ports[m.group(1)] = int(m.group(2))
        self.port = self.ports.get("public")

    def rewrite(self, config_text):
        with open(self.path, "w") as f:
            f.write(config_text)

    def status(self):
        return get_json(self.admin_port, "/status")

    def metrics(self):
        return get(self.admin_port, "/metrics")[2]

    def stop(self, sig=signal.SIGTERM):
        rc = self.proc.stop(sig)
        self.dir.cleanup()
        return rc


def get(port, path, headers=None, method="GET", body=None, timeout=10):
    """One request on a fresh connection: (status, headers dict lower-cased, body str)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read().decode("utf-8", "replace")
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def get_json(port, path):
    status, _, body = get(port, path)
    assert status == 200, (status, body)
    return json.loads(body)


def post_json(port, path, obj):
    status, _, body = get(port, path, method="POST", body=json.dumps(obj),
                          headers={"Content-Type": "application/json"})
    assert status == 200, (status, body)
    return body


def raw(port, data, timeout=5, shut=False):
    """Sends raw bytes on a new connection and returns everything read until close/timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


RESET = (ConnectionResetError, BrokenPipeError)


def until_close(port, data, shut=False, timeout=5, ends=RESET):
    """Sends raw bytes on a new connection (then a FIN if shut) and returns everything read
    until the close; an exception in `ends` (by default a reset: corral closed with bytes of
    ours unread) reads as what arrived before it."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    except ends:
        return out
    finally:
        s.close()


def check_config(text):
    """Runs `corral --check` on `text` written to a temporary file (removed after):
    (completed process, the file's path as corral named it)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        p = subprocess.run([CORRAL, "--check", f.name], capture_output=True, text=True,
                           timeout=10)
        return p, f.name
    finally:
        os.unlink(f.name)


def wait_for(cond, what="condition", timeout=10):
    """Polls `cond` until it returns something true, and returns that; fails naming `what`
    after `timeout` seconds."""
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def status_of(response_bytes):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", response_bytes)
    return int(m.group(1)) if m else None


def pinned(corral, pool="kupo"):
    st = corral.status()
    for p in st["pools"]:
        if p["name"] == pool:
            return {b["name"]: b["pinned_sessions"] for b in p["backends"]}
    raise KeyError(pool)


REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
NO_REDIS = "redis-server or redis-cli is not installed (scripts/install-deps.sh installs them)"


def needs_redis(cls_or_fn):
    """Skips a test (class) with a message when redis-server or redis-cli is absent."""
    return unittest.skipUnless(REDIS_SERVER and REDIS_CLI, NO_REDIS)(cls_or_fn)


class RedisServer:
    """A throw-away redis-server on 127.0.0.1, no persistence, no protected mode. Redis reads
    `--port 0` as "no TCP listener", so the port comes from free_port(); another process may
    take it before Redis binds, so the start is retried on a new port (up to 5 times).

    pause() (SIGSTOP: TCP still accepts, nothing answers), resume() (SIGCONT), kill()
    (SIGKILL: connections reset, data gone), restart() (a new, empty server on the same
    port), cli(*args) (redis-cli's raw answer). A context manager whose exit kills it; like
    every Proc, it also dies with the test process."""

    READY = r"Ready to accept connections"

    def __init__(self, tries=5, port=None, args=()):
        """port: this one (retried after a pause) instead of a free one; args: more
        redis-server options, e.g. ("--requirepass", "secret")."""
        assert REDIS_SERVER and REDIS_CLI, NO_REDIS
        self.proc = None
        self.paused = False
        self.args = list(args)
        self.password = None
        if "--requirepass" in self.args:
            self.password = self.args[self.args.index("--requirepass") + 1]
        last = ""
        for _ in range(tries):
            self.port = port or free_port()
            last = self._start()
            if not last:
                return
            if port:
                time.sleep(0.2)
        raise AssertionError("redis-server did not start in %d tries:\n%s" % (tries, last))

    def _start(self):
        """Starts redis-server on self.port: "" once it is ready, else its log."""
        self.proc = Proc([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no", "--protected-mode", "no",
                          "--daemonize", "no", "--loglevel", "notice", *self.args])
        self.paused = False
        try:
            self.proc.wait_line(self.READY, timeout=10)
            return ""
        except AssertionError:
            log = self.proc.log()
            self.proc.stop(signal.SIGKILL, timeout=5)
            self.proc = None
            return log

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def running(self):
        return self.proc is not None and self.proc.p.poll() is None

    def pause(self):
        self.proc.send(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.proc.send(signal.SIGCONT)
        self.paused = False

    def kill(self):
        """SIGKILL (works on a paused server too); nothing is kept."""
        if self.proc is not None:
            self.proc.stop(signal.SIGKILL, timeout=5)
            self.proc = None
        self.paused = False

    def restart(self, tries=5):
        """A new, empty redis-server on the same port (the old one killed first). The port is
        free once the old process is gone (Redis sets SO_REUSEADDR), unless another process
        took it meanwhile: retried a few times, then fails."""
        self.kill()
        last = ""
        for _ in range(tries):
            last = self._start()
            if not last:
                return
            time.sleep(0.2)
        raise AssertionError("redis-server did not restart on port %d:\n%s" % (self.port, last))

    def cli(self, *args, timeout=10):
        """Runs redis-cli against this server: its stdout (raw, stripped). Fails on a
        non-zero exit or an error reply."""
        auth = ["--no-auth-warning", "-a", self.password] if self.password else []
        p = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port), *auth,
                            *map(str, args)], capture_output=True, text=True, timeout=timeout)
        out = p.stdout.strip()
        assert p.returncode == 0 and not out.startswith("ERR"), (args, p.returncode, out,
                                                                  p.stderr)
        return out

    def keys(self, pattern):
        """Every key matching pattern (SCAN, not KEYS: fine on a test server either way)."""
        out = self.cli("--scan", "--pattern", pattern)
        return [k for k in out.splitlines() if k]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.paused and self.running():
            self.resume()
        self.kill()
        return False


def main():
    unittest.main(verbosity=2)

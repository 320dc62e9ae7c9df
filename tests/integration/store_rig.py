"""What the shared-pin store tests (test_store_*.py, issue 15) have in common: the config
of a corral in front of a Kupo Fleet with `sticky.store` on a RedisServer, keep-alive users
that name their backend through X-Corral-Backend (the route's expose_backend), and readers
of /status.store. Not a test file itself (ctest only runs test_*.py)."""
import http.client
import re
import threading
import time

import harness

ROUTE = ("      - {prefix: /kupo/, pool: kupo, strip_prefix: true, methods: [GET, HEAD], "
         "expose_backend: X-Corral-Backend}\n")


def store_line(redis, timeout="50ms", sync_interval="500ms", extra=""):
    """The sticky.store line (under "sticky:") for a RedisServer; None: no store."""
    if redis is None:
        return ""
    return ("  store: {redis: \"%s\", prefix: \"corral:\", timeout: %s, sync_interval: %s, "
            "max_pending: 100000%s}\n") % (redis.address, timeout, sync_interval, extra)


def config(fleet, redis, weights=None, timeout="50ms", sync_interval="500ms", workers=2,
           balance_factor="1.25", sticky_extra="", pool_extra="", state_file=None,
           access_log=False, ttl="1h"):
    """A corral in front of every backend of `fleet` (weights: name -> weight, default 1),
    users keyed by the path token /s/<user>/, pins shared through `redis` (None: no
    store; access_log: request lines on stderr). Health probes are quick (a dead backend
    is down within about a second) and slow start is off, so a backend back up takes
    users at once."""
    weights = weights or {}
    backends = "".join("      - {name: %s, address: 127.0.0.1:%d, weight: %d}\n"
                       % (n, fleet.backends[n], weights.get(n, 1)) for n in fleet.names())
    return (("state_file: %s\n" % state_file if state_file else "") +
            ("log: {access: true}\n" if access_log else "") +
            harness.listener_config(ROUTE, workers) +
            "sticky:\n"
            "  keys:\n"
            "    - {from: path, prefix: /s/}\n"
            "  ttl: %s\n"
            "  balance_factor: %s\n"
            "%s%s"
            "pools:\n"
            "  kupo:\n"
            "    kind: kupo\n"
            "    slow_start: 0s\n"
            "    health: {interval: 200ms, timeout: 150ms, rise: 1, fall: 2}\n"
            "%s"
            "    backends:\n%s") % (ttl, balance_factor, store_line(redis, timeout, sync_interval),
                                   sticky_extra, pool_extra, backends)


def path(user):
    return "/s/%s/kupo/matches/*?unspent" % user


class Client:
    """One keep-alive connection to one corral's public port, reopened after an error.
    send() then recv() lets a caller have requests in flight on several instances at once."""

    def __init__(self, port, timeout=10):
        self.port, self.timeout = port, timeout
        self.c = None
        self.pending = None  # (user, start time) of the request sent and not yet read

    def send(self, user):
        if self.c is None:
            self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        start = time.monotonic()
        try:
            self.c.request("GET", path(user))
            self.pending = (user, start, None)
        except (OSError, http.client.HTTPException) as e:
            self.pending = (user, start, repr(e))

    def recv(self):
        """(status, backend, seconds) of the request sent: status 0 and backend the error
        when it failed (the connection is then reopened for the next one)."""
        user, start, failed = self.pending
        self.pending = None
        if failed is None:
            try:
                r = self.c.getresponse()
                r.read()
                backend = r.getheader("X-Corral-Backend")
                sim = r.getheader("X-Backend")  # the simulator names itself too
                if r.status == 200 and backend != sim:
                    return 0, "X-Corral-Backend %r but X-Backend %r" % (backend, sim), 0
                if r.will_close:
                    self.close()
                return r.status, backend, time.monotonic() - start
            except (OSError, http.client.HTTPException) as e:
                failed = repr(e)
        self.close()
        return 0, failed, time.monotonic() - start

    def ask(self, user):
        self.send(user)
        return self.recv()

    def close(self):
        if self.c is not None:
            self.c.close()
            self.c = None


class Log:
    """What users saw, shared by the driving threads: per user the (instance, backend) of
    each successful answer, every failure, and per-request latencies."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seen = {}       # user -> [(instance index, backend)]
        self.failures = []   # (user, instance index, status, what)
        self.latency = []    # (user, instance index, seconds)

    def add(self, user, idx, answer):
        status, backend, seconds = answer
        with self.lock:
            if status == 200 and backend:
                self.seen.setdefault(user, []).append((idx, backend))
                self.latency.append((user, idx, seconds))
            else:
                self.failures.append((user, idx, status, backend))

    def backends(self, user, instance=None):
        with self.lock:
            return {b for i, b in self.seen.get(user, []) if instance is None or i == instance}

    def split(self, users):
        """The users among `users` that saw more than one backend: user -> backends."""
        out = {}
        for u in users:
            b = self.backends(u)
            if len(b) != 1:
                out[u] = sorted(b)
        return out


def _in_threads(corrals, users, threads, work):
    """Deals `users` to `threads` threads; each opens one keep-alive Client per instance,
    runs work(clients, its users), then closes them. Returns when every thread is done."""

    def run(mine):
        clients = [Client(c.port) for c in corrals]
        try:
            work(clients, mine)
        finally:
            for c in clients:
                c.close()

    ts = [threading.Thread(target=run, args=(users[t::threads],)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def drive(corrals, users, rounds, log, threads=8, stop=None):
    """Each user sends its first request to every instance at once (one keep-alive
    connection per instance and thread, all sent before any answer is read: the instances
    place the new user concurrently), then `rounds` more, alternating instances. Users are
    dealt to `threads` threads. stop: a threading.Event that ends the drive early."""

    def work(clients, mine):
        for u in mine:
            if stop is not None and stop.is_set():
                return
            for c in clients:
                c.send(u)
            for idx, c in enumerate(clients):
                log.add(u, idx, c.recv())
            for r in range(rounds):
                idx = (r + 1) % len(clients)
                log.add(u, idx, clients[idx].ask(u))

    _in_threads(corrals, users, threads, work)


def ask_all(corrals, users, threads=8):
    """One request per user to every instance, in parallel threads: user -> [backend per
    instance] (None where it failed)."""
    out = {}
    lock = threading.Lock()

    def work(clients, mine):
        for u in mine:
            got = []
            for c in clients:
                status, backend, _ = c.ask(u)
                got.append(backend if status == 200 else None)
            with lock:
                out[u] = got

    _in_threads(corrals, users, threads, work)
    return out


def store(corral):
    """/status.store of a corral."""
    st = corral.status()
    assert "store" in st, "no store in /status: %s" % sorted(st)
    return st["store"]


def backends_status(corral, pool="kupo"):
    for p in corral.status()["pools"]:
        if p["name"] == pool:
            return {b["name"]: b for b in p["backends"]}
    raise KeyError(pool)


def wait_state(corrals, state, timeout=15):
    """Waits until /status.store.state is `state` on every corral; for "up", also every
    worker's own link (a worker whose link is still reconnecting places locally)."""
    def reached(c):
        st = store(c)
        if st["state"] != state:
            return False
        return state != "up" or (st["worker_links"] > 0 and
                                 st["worker_links_up"] == st["worker_links"])
    harness.wait_for(lambda: all(reached(c) for c in corrals),
                     "store.state %s on every instance" % state, timeout)


def wait_backend_state(corrals, name, state, timeout=10):
    harness.wait_for(lambda: all(backends_status(c)[name]["state"] == state for c in corrals),
                     "%s %s on every instance" % (name, state), timeout)


def stop_all(*things):
    """Stops corrals, fleets and Redis servers (None skipped), the first failure raised
    only after every one was stopped: a failing test leaves nothing running."""
    first = None
    for t in things:
        if t is None:
            continue
        try:
            if isinstance(t, harness.RedisServer):
                t.__exit__(None, None, None)
            else:
                t.stop()
        except BaseException as e:  # noqa: B902 - keep stopping the others
            first = first or e
    if first is not None:
        raise first


def metric(text, name, labels=""):
    """The value of one sample of /metrics text (None when absent)."""
    rx = r"^%s%s (\S+)$" % (re.escape(name), re.escape("{%s}" % labels) if labels else "")
    m = re.search(rx, text, re.M)
    return float(m.group(1)) if m else None


def stored_pins(redis, prefix="corral:"):
    """Every pin in Redis, decoded: key -> (backend, last_slot, reason). Values follow
    lb/core/pin_codec.h: v1|<backend>|<last_slot>|<reason>."""
    keys = redis.keys(prefix + "pin:*")
    out = {}
    for i in range(0, len(keys), 200):
        chunk = keys[i:i + 200]
        values = redis.cli("MGET", *chunk).split("\n")
        assert len(values) == len(chunk), (len(values), len(chunk))
        for k, v in zip(chunk, values):
            parts = v.split("|")
            assert len(parts) == 4 and parts[0] == "v1", (k, v)
            out[k] = (parts[1], int(parts[2]), parts[3])
    return out

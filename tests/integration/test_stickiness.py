"""1,000 users x 10 requests: every user lands on one backend whatever carries the key
(path token, cookie, header, Cardano address, client IP), across connections and
workers; pins stay within balance_factor."""
import math
import threading
import http.client

import harness
from cardano import base_address

USERS = 1000
REQUESTS = 10
IP_USERS = 40  # extra users told apart only by their source address 127.0.0.x


def user_request(i, r):
    """(path, headers, source_ip) of user i's r-th request."""
    kind = i % 4
    if kind == 0:
        return "/s/tok%d/kupo/matches/*?unspent" % i, {}, "127.0.0.1"
    if kind == 1:
        return "/kupo/checkpoints", {"Cookie": "theme=dark; corral=c%d" % i}, "127.0.0.1"
    if kind == 2:
        return "/kupo/health", {"X-Session-Key": "h%d" % i}, "127.0.0.1"
    # A different address of the same wallet on every request.
    addr = base_address("pay-%d-%d" % (i, r), "stake-%d" % i)
    return "/kupo/matches/%s?unspent" % addr, {}, "127.0.0.1"


class Stickiness(harness.unittest.TestCase):
    def run_users(self, corral, users, seen, errors):
        for i, extra_ip in users:
            conns = {}
            for r in range(REQUESTS):
                if extra_ip:
                    path, headers, src = "/kupo/health", {}, extra_ip
                else:
                    path, headers, src = user_request(i, r)
                # Two connections per user, alternating: a pin must hold across them.
                c = conns.get(r % 2)
                if c is None:
                    c = http.client.HTTPConnection("127.0.0.1", corral.port, timeout=10,
                                                   source_address=(src, 0))
                    conns[r % 2] = c
                c.request("GET", path, headers=headers)
                resp = c.getresponse()
                resp.read()
                if resp.status != 200:
                    errors.append((i, path, resp.status))
                    continue
                seen.setdefault((i, extra_ip), set()).add(resp.getheader("X-Backend"))
            for c in conns.values():
                c.close()

    def check(self, workers):
        fleet = harness.Fleet(3)
        corral = harness.Corral(harness.kupo_config(fleet, workers=workers))
        try:
            users = [(i, None) for i in range(USERS)]
            users += [(USERS + k, "127.0.0.%d" % (10 + k)) for k in range(IP_USERS)]
            seen, errors = {}, []
            threads = [threading.Thread(target=self.run_users,
                                        args=(corral, users[t::4], seen, errors))
                       for t in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])
            self.assertEqual(len(seen), USERS + IP_USERS)
            moved = {u: b for u, b in seen.items() if len(b) != 1}
            self.assertEqual(moved, {}, "users that saw more than one backend")
            per_backend = {}
            for b in seen.values():
                name = next(iter(b))
                per_backend[name] = per_backend.get(name, 0) + 1
            self.assertEqual(set(per_backend), set(fleet.names()), "every backend gets users")
            pins = harness.pinned(corral)
            # The 127.0.0.1 client-IP key is a user too (none of the first 1000 use it,
            # but keyless requests would); pins count distinct users.
            self.assertEqual(sum(pins.values()), USERS + IP_USERS)
            mean = (USERS + IP_USERS) / 3
            bound = math.ceil(1.25 * (mean + 1))
            self.assertLessEqual(max(pins.values()), bound, pins)
            self.assertEqual(pins, per_backend)
        finally:
            self.assertEqual(corral.stop(), 0)
            fleet.stop()

    def test_one_worker(self):
        self.check(workers=1)

    def test_two_workers_share_pins(self):
        self.check(workers=2)


if __name__ == "__main__":
    harness.main()

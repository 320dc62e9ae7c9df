"""The real @blockfrost/blockfrost-js (npm, pinned in tests/node/package-lock.json) through
the real corral to a simulated Blockfrost (blockfrost_sim.py) that, like the hosted one,
answers 403 without the right `project_id` header and 429 past its rate limit.

The library is given corral's URL as its customBackend and no projectId. Its calls succeed
only on the route whose pool injects the key (`set_headers: {project_id: {env: ...}}`);
the same calls on a route without it, or straight to the simulator, get Blockfrost's 403.
A projectId the client sends itself is dropped for corral's. Its pagination helpers
(addressesUtxosAll, accountsAddressesAll, in both orders and with parallel pages) return
every item, and the simulator counts each page it served.

The simulator serves HTTPS (a test CA and a certificate for 127.0.0.1 and blockfrost.test,
made by the openssl CLI at test time), as hosted Blockfrost does: corral reaches it with
upstream TLS (`tls: {ca, server_name}` on the backends), verified by that CA. The same tests
run once more with the simulator on plain HTTP. The real library also talks to the HTTPS
simulator directly, verifying it by the test CA.

tests/node/blockfrost_client.mjs is the client; scripts/install-deps.sh runs `npm ci` in
tests/node. Without node or those modules the tests are skipped, unless CI is set: there
they fail."""
import http.client
import json
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

import blockfrost_sim as bf
from harness import wait_for
import node_client
from harness import Corral, Proc, get, listener_config, main

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "blockfrost_sim.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
OPENSSL = shutil.which("openssl")
KEY_ENV = "CORRAL_TEST_BF_KEY"
SERVER_NAME = "blockfrost.test"
N_UTXOS, N_ACCOUNT_ADDRESSES = 250, 130
PAGE = 100  # the library's page size in its ...All helpers


def setUpModule():
    node_client.require("Blockfrost client", ("@blockfrost/blockfrost-js",),
                        () if OPENSSL else ("the openssl CLI is not on PATH",))


def openssl(*argv, cwd):
    subprocess.run([OPENSSL, *argv], cwd=cwd, check=True, capture_output=True)


def make_certs(d):
    """A test CA and a server certificate it signs for 127.0.0.1 and SERVER_NAME, in d:
    {ca, cert, key} paths."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=corral test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=" + SERVER_NAME, cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:%s,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n" % SERVER_NAME)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
            cwd=d)
    return {n: os.path.join(d, f) for n, f in
            (("ca", "ca.pem"), ("cert", "server.pem"), ("key", "server.key"))}


class Sim:
    """One blockfrost_sim.py process, plain HTTP or (with certs) HTTPS."""

    def __init__(self, key, certs=None, open_health=True):
        self.certs = certs
        argv = [PYTHON, SIM, "--listen", "127.0.0.1:0", "--project-id", key,
                "--utxos", str(N_UTXOS), "--account-addresses", str(N_ACCOUNT_ADDRESSES)]
        if open_health:
            argv.append("--open-health")
        if certs:
            argv += ["--cert", certs["cert"], "--key", certs["key"]]
        self.proc = Proc(argv)
        m = self.proc.wait_line(r"^listening blockfrost 127\.0\.0\.1:(\d+) (https?)$")
        self.port, self.scheme = int(m.group(1)), m.group(2)
        self.url = "%s://127.0.0.1:%d" % (self.scheme, self.port)

    def call(self, method, path, obj=None):
        if self.certs:
            ctx = ssl.create_default_context(cafile=self.certs["ca"])
            c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=ctx)
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request(method, path, body=None if obj is None else json.dumps(obj))
            r = c.getresponse()
            body = r.read()
            assert r.status == 200, (r.status, body)
            return json.loads(body)
        finally:
            c.close()

    def stats(self):
        return self.call("GET", "/_sim/stats")

    def reset(self):
        self.call("POST", "/_sim/reset")

    def limit(self, burst, rps):
        self.call("POST", "/_sim/control", {"burst": burst, "rps": rps})

    def stop(self):
        self.proc.stop()


def run_node(mode, url, *extra, timeout=60):
    return node_client.run("blockfrost_client.mjs", mode, url, *extra, timeout=timeout)


def tour(url, *extra):
    return run_node("tour", url, "--address", bf.ADDRESS, "--stake", bf.STAKE, *extra)


def pages_fetched(n_items, batch):
    """The pages an ...All helper asks for: batches of `batch` parallel pages of PAGE items
    until a batch holds a short page."""
    short = n_items // PAGE + 1
    return list(range(1, -(-short // batch) * batch + 1))


def config(sim, tls_yaml=""):
    """corral with two Blockfrost pools on the same simulator: `blockfrost` injects the key
    from KEY_ENV, `blockfrost_nokey` does not."""
    backend = "{name: %%s, address: 127.0.0.1:%d%s}" % (sim.port, tls_yaml)
    return listener_config(
        "      - {prefix: /blockfrost/, pool: blockfrost, strip_prefix: true}\n"
        "      - {prefix: /nokey/, pool: blockfrost_nokey, strip_prefix: true}\n") + (
        "sticky:\n"
        "  keys:\n"
        "    - {from: client_ip}\n"
        "pools:\n"
        "  blockfrost:\n"
        "    kind: blockfrost\n"
        "    health: {interval: 200ms, timeout: 150ms, rise: 1, fall: 1}\n"
        "    set_headers: {project_id: {env: %s}}\n"
        "    backends:\n"
        "      - %s\n"
        "  blockfrost_nokey:\n"
        "    kind: blockfrost\n"
        "    health: {interval: 200ms, timeout: 150ms, rise: 1, fall: 1}\n"
        "    backends:\n"
        "      - %s\n") % (KEY_ENV, backend % "bf-keyed", backend % "bf-nokey")


def upstream_tls_ca_yaml(ca):
    return ", tls: {ca: %s, server_name: %s}" % (ca, SERVER_NAME)


class ClientThroughCorral:
    """The tests, over a simulator in one mode; subclasses set TLS and start everything."""
    TLS = False

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.certs = make_certs(cls.dir.name)
        cls.key = "preprod" + secrets.token_hex(16)
        cls.sim = Sim(cls.key, cls.certs if cls.TLS else None)
        try:
            tls = upstream_tls_ca_yaml(cls.certs["ca"]) if cls.TLS else ""
            cls.corral = Corral(config(cls.sim, tls), env={KEY_ENV: cls.key})
        except BaseException:
            cls.sim.stop()
            cls.dir.cleanup()
            raise
        wait_for(lambda: cls.states() == {"up"}, "both pools up")

    @classmethod
    def tearDownClass(cls):
        cls.corral.stop()
        cls.sim.stop()
        cls.dir.cleanup()

    @classmethod
    def states(cls):
        return {b["state"] for p in cls.corral.status()["pools"] for b in p["backends"]}

    def setUp(self):
        self.sim.reset()

    def keyed(self):
        return "http://127.0.0.1:%d/blockfrost" % self.corral.port

    def unkeyed(self):
        return "http://127.0.0.1:%d/nokey" % self.corral.port

    def check_tour(self, out):
        want = bf.utxos(N_UTXOS)
        self.assertEqual(out["root"]["url"], "https://blockfrost.io/")
        self.assertEqual(out["health"], {"is_healthy": True})
        self.assertEqual(out["blocksLatest"], bf.block_latest())
        self.assertEqual(out["epochsLatest"], bf.epoch_latest())
        self.assertEqual(out["address"]["stake_address"], bf.STAKE)
        self.assertEqual(out["utxosPage"], want[::-1][10:20])
        self.assertEqual(out["utxosAll"], want)
        self.assertEqual(out["utxosAllDesc"], want[::-1])
        self.assertEqual(out["accountAddressesAll"], bf.account_addresses(N_ACCOUNT_ADDRESSES))
        self.assertEqual(out["tx"]["hash"], want[0]["tx_hash"])

    def test_calls_and_pagination_succeed_only_by_corrals_key(self):
        for batch in (1, 2, 10):  # 10: the library's own default, all in parallel
            with self.subTest(batch_size=batch):
                self.sim.reset()
                rc, out, log = tour(self.keyed(), "--batch-size", str(batch))
                self.assertEqual(rc, 0, log)
                self.check_tour(out)
                st = self.sim.stats()
                utxo_pages = [2] + pages_fetched(N_UTXOS, batch) * 2  # the page, asc, desc
                self.assertEqual(sorted(st["pages"]["/addresses/{address}/utxos"]),
                                 sorted(utxo_pages))
                acc_pages = pages_fetched(N_ACCOUNT_ADDRESSES, batch)
                self.assertEqual(sorted(st["pages"]["/accounts/{stake_address}/addresses"]),
                                 acc_pages)
                # root, blocks, epochs, address, tx + the pages; /health is not counted.
                total = 5 + len(utxo_pages) + len(acc_pages)
                self.assertEqual(st["outcomes"]["ok"], total, st)
                self.assertEqual(st["project_ids"], {self.key: total})
                self.assertEqual(st["outcomes"]["missing_key"], 0)

    def test_without_corrals_key_the_same_calls_get_403(self):
        for url, extra in ((self.unkeyed(), []), (self.sim.url, ["--ca", self.certs["ca"]])):
            with self.subTest(url=url):
                rc, out, log = tour(url, *extra)
                self.assertEqual(rc, 1, log)
                e = out["error"]
                self.assertEqual((e["name"], e["status_code"], e["error"]),
                                 ("BlockfrostServerError", 403, "Forbidden"), e)
                self.assertIn("Missing project token", e["message"])
        st = self.sim.stats()
        self.assertEqual(st["outcomes"]["missing_key"], 2, st)
        self.assertEqual(st["outcomes"]["ok"], 0, st)
        self.assertEqual(st["project_ids"], {})

    def test_clients_own_project_id_is_replaced_by_corrals(self):
        own = "preprod" + "d" * 32  # a key baked into a dApp: never reaches Blockfrost
        rc, out, log = tour(self.keyed(), "--project-id", own)
        self.assertEqual(rc, 0, log)
        self.check_tour(out)
        st = self.sim.stats()
        self.assertEqual(list(st["project_ids"]), [self.key], st)
        # The client did send it: through the pool without set_headers it arrives, and is
        # refused as Blockfrost refuses a wrong key.
        rc, out, log = tour(self.unkeyed(), "--project-id", own)
        self.assertEqual(rc, 1, log)
        self.assertEqual((out["error"]["status_code"], out["error"]["message"]),
                         (403, "Invalid project token."), out)
        self.assertEqual(self.sim.stats()["project_ids"].get(own), 1)

    def test_paging_parameters_pass_through_corral(self):
        path = "/blockfrost/api/v0/addresses/%s/utxos" % bf.ADDRESS
        status, _, body = get(self.corral.port, path + "?page=3&count=100&order=desc")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body), bf.utxos(N_UTXOS)[::-1][200:300])
        status, _, body = get(self.corral.port, path + "?count=101")
        self.assertEqual((status, json.loads(body)["error"]), (400, "Bad Request"), body)
        self.assertEqual(self.sim.stats()["outcomes"]["bad_request"], 1)

    def test_simulator_answers_429_past_its_burst(self):
        try:
            self.sim.limit(burst=5, rps=0)
            rc, out, log = run_node("burst", self.keyed(), "--n", "12")
            self.assertEqual(rc, 0, log)
            self.assertEqual(out["statuses"][:5], [200] * 5, out)
            self.assertEqual(set(out["statuses"][5:]), {429}, out)
            self.assertEqual(out["errors"][0]["status_code"], 429)
            st = self.sim.stats()["outcomes"]
            self.assertEqual(st["ok"], 5, st)
            # At least the first 429 came from the simulator; a corral with a quota guard
            # may answer the later ones itself.
            self.assertGreaterEqual(st["limited"], 1, st)
            self.assertLessEqual(st["limited"], 7, st)
        finally:
            self.sim.limit(burst=500, rps=10)
            # A corral cooling down after the upstream 429 answers 429 itself for a while.
            wait_for(lambda: get(self.corral.port, "/blockfrost/blocks/latest")[0] == 200,
                     "corral passing requests again", timeout=70)


class HttpsBlockfrostBehindCorral(ClientThroughCorral, unittest.TestCase):
    TLS = True


class PlainHttpBlockfrostBehindCorral(ClientThroughCorral, unittest.TestCase):
    TLS = False


class HealthProbesCarryTheKey(unittest.TestCase):
    """Hosted Blockfrost answers /health 403 without a project_id too (its OpenAPI lists
    403 there): corral's probes carry the pool's injected headers, so a keyed pool stays
    up against a strict simulator (the unkeyed pool's probes are still refused)."""

    def setUp(self):
        # Here, not in the test: a failure to start is an error, not the expected failure.
        key = "preprod" + secrets.token_hex(16)
        self.sim = Sim(key, open_health=False)
        self.addCleanup(self.sim.stop)
        self.corral = Corral(config(self.sim), env={KEY_ENV: key})
        self.addCleanup(self.corral.stop)
        # Probes are arriving (the unkeyed pool's are refused in either case).
        wait_for(lambda: self.sim.stats()["outcomes"]["missing_key"] >= 2, "probes")

    def keyed_state(self):
        for p in self.corral.status()["pools"]:
            if p["name"] == "blockfrost":
                return p["backends"][0]["state"]

    def test_keyed_pool_is_up_against_a_strict_simulator(self):
        # Up for a second straight (5 probes at fall 1), not merely in its starting state.
        since = [None]

        def steadily_up():
            up = self.keyed_state() == "up"
            since[0] = (since[0] or time.time()) if up else None
            return up and time.time() - since[0] >= 1.0
        wait_for(steadily_up, "the keyed pool steadily up", timeout=4)


class LibraryAgainstHttpsSim(unittest.TestCase):
    """The library straight to the HTTPS simulator: verified by the test CA, refused
    without it, and 403 without a key, as hosted Blockfrost."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.certs = make_certs(cls.dir.name)
        cls.key = "preprod" + secrets.token_hex(16)
        try:
            cls.sim = Sim(cls.key, cls.certs, open_health=False)
        except BaseException:
            cls.dir.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()
        cls.dir.cleanup()

    def test_with_the_key_and_the_ca(self):
        rc, out, log = tour(self.sim.url, "--ca", self.certs["ca"], "--project-id", self.key)
        self.assertEqual(rc, 0, log)
        self.assertEqual(out["utxosAll"], bf.utxos(N_UTXOS))
        self.assertEqual(out["accountAddressesAll"], bf.account_addresses(N_ACCOUNT_ADDRESSES))

    def test_without_the_key_403(self):
        rc, out, log = tour(self.sim.url, "--ca", self.certs["ca"])
        self.assertEqual((rc, out["error"]["status_code"]), (1, 403), log)

    def test_without_the_ca_the_certificate_does_not_verify(self):
        before = self.sim.stats()["outcomes"]
        rc, out, log = tour(self.sim.url, "--project-id", self.key)
        self.assertEqual(rc, 1, log)
        self.assertEqual(out["error"]["name"], "BlockfrostClientError", out)
        self.assertIn("certificate", out["error"]["message"].lower(), out)
        self.assertEqual(self.sim.stats()["outcomes"], before)


if __name__ == "__main__":
    main()

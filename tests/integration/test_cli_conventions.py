"""corral's and corral-bench's command lines (issue 14): -v, -t in each form,
--print-default-config piped into -t /dev/stdin, --help listing every option, and the
exit codes 0 (fine), 1 (configuration error), 2 (usage)."""
import json
import os
import re
import subprocess
import tempfile

import harness

GOOD = """\
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {prefix: /, pool: kupo}
pools:
  kupo:
    kind: kupo
    backends:
      - {name: kupo-1, address: 127.0.0.1:1442}
"""

# Line 5, column 32: the pool name that does not exist.
BAD = GOOD.replace("pool: kupo}", "pool: kupoo}")


def corral(*args, stdin=None):
    return subprocess.run([harness.CORRAL, *args], capture_output=True, text=True, timeout=20,
                          input=stdin)


def bench(*args):
    return subprocess.run([harness.BENCH, *args], capture_output=True, text=True, timeout=20)


class Corral(harness.unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.good = os.path.join(self.dir.name, "good.yaml")
        self.bad = os.path.join(self.dir.name, "bad.yaml")
        with open(self.good, "w") as f:
            f.write(GOOD)
        with open(self.bad, "w") as f:
            f.write(BAD)

    def tearDown(self):
        self.dir.cleanup()

    def test_version_names_the_build_and_every_library(self):
        for flag in ("-v", "-V", "--version"):
            p = corral(flag)
            self.assertEqual(p.returncode, 0, p.stderr)
            lines = p.stdout.splitlines()
            self.assertRegex(lines[0], r"^corral \d+\.\d+\.\d+$")
            for lib in ("build: ", "libuv 1.", "OpenSSL 3", "yaml-cpp 0.", "llhttp 8.",
                        "xxhash 0."):
                self.assertTrue(any(l.startswith(lib) for l in lines), (lib, p.stdout))

    def test_check_a_good_and_a_bad_file(self):
        p = corral("-t", self.good)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(self.good + ": ok", p.stdout)
        p = corral("--check", self.bad)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:5:" % self.bad, p.stderr)
        self.assertRegex(p.stderr, re.escape(self.bad) + r":5:\d+: listeners\[0\]\.routes")

    def test_check_the_config_file(self):
        # -t without FILE checks the --config file, either order.
        p = corral("-t", "-c", self.bad)
        self.assertEqual(p.returncode, 1)
        self.assertIn(self.bad + ":5:", p.stderr)
        p = corral("-c", self.good, "-t")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(self.good + ": ok", p.stdout)
        p = corral("--config", self.good, "--check")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_check_alone_checks_the_embedded_default(self):
        p = corral("-t")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("<embedded>: ok", p.stdout)

    def test_print_default_config_passes_check_on_stdin(self):
        printed = corral("--print-default-config")
        self.assertEqual(printed.returncode, 0)
        self.assertIn("listeners:", printed.stdout)
        self.assertIn("127.0.0.1:1442", printed.stdout)
        # Through a real pipe, as `corral --print-default-config | corral -t /dev/stdin`.
        p = subprocess.run("'%s' --print-default-config | '%s' -t /dev/stdin" %
                           (harness.CORRAL, harness.CORRAL), shell=True, capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("/dev/stdin: ok", p.stdout)
        # And the pipe carries what it says: a bad file on stdin fails.
        p = corral("-t", "/dev/stdin", stdin=BAD)
        self.assertEqual(p.returncode, 1)
        self.assertIn("/dev/stdin:5:", p.stderr)

    def test_usage_errors_exit_2(self):
        for args in (["--bogus"], ["-x"], ["-c"], ["--config"], ["stray.yaml"],
                     ["--version=1"], ["--config="], ["--check="], ["--demo", "-c", "x.yaml"],
                     ["--demo", "-t"]):
            with self.subTest(args=args):
                p = corral(*args)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("corral: ", p.stderr)
                self.assertIn("--help", p.stderr)
        p = corral("--bogus")
        self.assertIn("unknown option '--bogus'", p.stderr)
        # --check= does not check the embedded default (it used to say "<embedded>: ok").
        p = corral("--check=")
        self.assertNotIn("ok", p.stdout)
        self.assertIn("--check=", p.stderr)
        p = corral("--demo", "-c", "x.yaml")
        self.assertIn("--demo", p.stderr)
        self.assertNotIn("listening", p.stdout + p.stderr)

    def test_help_lists_every_option_the_signals_and_exit_codes(self):
        p = corral("--help")
        self.assertEqual(p.returncode, 0)
        self.assertEqual(corral("-h").stdout, p.stdout)
        for opt in ("-c, --config FILE", "-t, --check [FILE]", "-v, -V, --version",
                    "--print-default-config", "--demo", "-h, --help", "SIGHUP", "SIGTERM",
                    "SIGINT", "SIGUSR1"):
            self.assertIn(opt, p.stdout)
        self.assertRegex(p.stdout, r"\n  0  fine")
        self.assertRegex(p.stdout, r"\n  1  configuration error")
        self.assertRegex(p.stdout, r"\n  2  usage error")
        # Every option the help names is one corral takes: none of them is unknown.
        for opt in set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", p.stdout)):
            with self.subTest(opt=opt):
                q = corral(opt, "-h") if opt not in ("-c", "--config", "-t", "--check") \
                    else corral(opt, self.good, "-h")
                self.assertNotEqual(q.returncode, 2, (opt, q.stderr))


class Bench(harness.unittest.TestCase):
    def test_version(self):
        for flag in ("--version", "-v"):
            p = bench(flag)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertRegex(p.stdout.splitlines()[0], r"^corral-bench \d+\.\d+\.\d+$")
            self.assertIn("libuv ", p.stdout)
        # One build: corral and corral-bench print the same version.
        self.assertEqual(bench("-v").stdout.split()[1], corral("-v").stdout.split()[1])

    def test_help_for_an_unknown_command_exits_2(self):
        p = bench("help", "bogus")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command 'bogus'", p.stderr)
        self.assertEqual(bench("help", "load").returncode, 0)
        self.assertEqual(bench("help").returncode, 0)

    def test_unknown_command_exits_2(self):
        p = bench("bogus")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command 'bogus'", p.stderr)

    def test_load_help_documents_max_error_rate(self):
        p = bench("help", "load")
        self.assertIn("--max-error-rate R", p.stdout)
        self.assertIn("3 when a threshold is exceeded", p.stdout)

    def test_max_error_rate_wants_a_fraction(self):
        for bad in ("1.5", "-0.1", "x"):
            with self.subTest(value=bad):
                p = bench("load", "--url", "http://127.0.0.1:1/", "--max-error-rate", bad)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("--max-error-rate", p.stderr)

    def test_max_error_rate_fails_a_run_of_503s_with_exit_3(self):
        # One simulated Kupo that takes one request at a time: ten connections get mostly
        # 503s. The same run passes a threshold above its error rate and fails one below.
        fleet = harness.Fleet(1, extra=("--capacity", "1", "--latency-ms", "2"))
        try:
            url = "http://127.0.0.1:%d/matches" % fleet.backends["kupo-1"]
            args = ("load", "--url", url, "--connections", "10", "--duration", "1",
                    "--no-progress", "--json")
            p = bench(*args, "--max-error-rate", "0.05")
            self.assertEqual(p.returncode, 3, p.stderr)
            self.assertIn("exceeds --max-error-rate 0.05", p.stderr)
            report = json.loads(p.stdout)
            self.assertGreater(report["statuses"].get("503", 0), 0)
            self.assertGreater(report["error_rate"], 0.05)
            p = bench(*args, "--max-error-rate", "1")
            self.assertEqual(p.returncode, 0, p.stderr)
        finally:
            fleet.stop()


if __name__ == "__main__":
    harness.main()

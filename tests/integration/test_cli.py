"""corral --check: a good file passes; a bad one prints every error with file:line:col
and key, exits non-zero, and never echoes a secret."""
import subprocess

import harness

GOOD = """\
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {prefix: /kupo/, pool: kupo, strip_prefix: true}
pools:
  kupo:
    kind: kupo
    backends:
      - {name: kupo-1, address: 127.0.0.1:1442}
"""

BAD = """\
listeners:
  - name: public
    lisen: 127.0.0.1:8080
    routes:
      - {prefix: /kupo/, pool: kupoo}
sticky:
  ttl: 10 minutes
pools:
  kupo:
    kind: kupo
    backends:
      - {name: kupo-1, address: 127.0.0.1:99999}
"""


class Check(harness.unittest.TestCase):
    def test_good_file(self):
        p, name = harness.check_config(GOOD)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("ok", p.stdout)

    def test_bad_file_lists_every_error(self):
        p, name = harness.check_config(BAD)
        self.assertNotEqual(p.returncode, 0)
        err = p.stderr
        self.assertIn("%s:3:5: listeners[0].lisen: unknown key 'lisen'" % name, err)
        self.assertIn("did you mean 'listen'", err)
        self.assertIn("%s:5:32: listeners[0].routes[0].pool" % name, err)
        self.assertIn("kupoo", err)
        self.assertIn("%s:7:8: sticky.ttl" % name, err)
        self.assertIn("%s:12:33: pools.kupo.backends[0].address" % name, err)

    def test_missing_secret_never_leaks(self):
        text = GOOD + "    set_headers: {project_id: {env: CORRAL_TEST_UNSET_VAR}}\n"
        p, name = harness.check_config(text)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("CORRAL_TEST_UNSET_VAR", p.stderr)

    def test_unreadable_file(self):
        p = subprocess.run([harness.CORRAL, "--check", "/nonexistent/corral.yaml"],
                           capture_output=True, text=True, timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("/nonexistent/corral.yaml", p.stderr)

    def test_bad_arguments(self):
        p = subprocess.run([harness.CORRAL, "--bogus"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown option", p.stderr)


if __name__ == "__main__":
    harness.main()

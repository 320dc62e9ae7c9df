"""corral --check on YAML mistakes (issue 14): a tab in indentation, an unquoted IPv6
address, a bad duration and a bad size each print FILE:LINE:COL, the key when there is
one, what is wrong and the value as written; the exit status is 1 (configuration error)."""

import harness

BASE = """\
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes: [{prefix: /, pool: kupo}]
pools:
  kupo:
    kind: kupo
    backends: [{name: k, address: 127.0.0.1:1442}]
"""


class ConfigErrors(harness.unittest.TestCase):
    def test_base_file_passes(self):
        p, _ = harness.check_config(BASE)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_tab_in_indentation(self):
        p, name = harness.check_config(BASE.replace("    kind: kupo", "\tkind: kupo"))
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("%s:7:1: tab character in indentation; YAML indents with spaces only"
                      % name, p.stderr)
        self.assertIn('"\\tkind: kupo"', p.stderr)
        self.assertNotIn("end of map not found", p.stderr)

    def test_unquoted_ipv6(self):
        p, name = harness.check_config(BASE.replace("address: 127.0.0.1:1442", "address: [::1]:1442"))
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn('%s:8:35: address: IPv6 address must be quoted in YAML: "[::1]:1442"'
                      % name, p.stderr)

    def test_bad_duration_and_size_both_reported(self):
        p, name = harness.check_config(BASE + "sticky: {ttl: 5 mins}\nlimits: {max_body_bytes: 10 MB}\n")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn('%s:9:15: sticky.ttl: bad duration "5 mins": no space' % name, p.stderr)
        self.assertIn("ms, s, m, h or d", p.stderr)
        self.assertIn('%s:10:26: limits.max_body_bytes: bad size "10 MB": no space' % name,
                      p.stderr)
        self.assertIn("KB, MB or GB", p.stderr)


if __name__ == "__main__":
    harness.main()

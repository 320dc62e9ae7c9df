"""corral --check on YAML mistakes (issue 14): a tab in indentation, an unquoted IPv6
address, a bad duration and a bad size each print FILE:LINE:COL, the key when there is
one, what is wrong and the value as written; the exit status is 1 (configuration error).
The same holds for the pool cache's keys (issue 16)."""

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


class CacheConfigErrors(harness.unittest.TestCase):
    """pools.NAME.cache (issue 16): each refusal names FILE:LINE:COL, the key and the value."""

    def check(self, kind, cache, expected):
        text = BASE.replace("kind: kupo", "kind: " + kind) + "    cache: " + cache + "\n"
        p, name = harness.check_config(text)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(expected % name, p.stderr)
        return p

    def test_cache_on_kupo_passes(self):
        p, _ = harness.check_config(BASE + "    cache: {max_bytes: 256MB}\n")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_cache_on_ogmios(self):
        self.check("ogmios", "{max_bytes: 256MB}",
                   "%s:9:5: pools.kupo.cache: cache does not apply to kind: ogmios: it answers "
                   "POST and WebSocket only")

    def test_http_without_prefixes(self):
        self.check("http", "{max_bytes: 256MB}",
                   "%s:9:5: pools.kupo.cache: corral knows no immutable answers of kind http; "
                   "list prefixes")

    def test_immutable_after_slots_on_http(self):
        self.check("http", "{prefixes: [/a/], max_age: 1m, immutable_after_slots: 25920}",
                   "%s:9:43: pools.kupo.cache.immutable_after_slots: 'immutable_after_slots' "
                   "applies only to kind: kupo; this pool's kind (http) never reads it")

    def test_max_age_without_prefixes(self):
        p = self.check("kupo", "{max_age: 10m}",
                       "%s:9:13: pools.kupo.cache.max_age: max_age applies to prefixes")
        self.assertIn('(got max_age: "10m")', p.stderr)

    def test_bad_size(self):
        p = self.check("kupo", "{max_bytes: 256mb}",
                       '%s:9:24: pools.kupo.cache.max_bytes: bad size "256mb": units are '
                       "upper-case")
        self.assertIn("KB, MB or GB", p.stderr)

    def test_unknown_key_inside_cache(self):
        self.check("kupo", "{max_byte: 256MB}",
                   "%s:9:13: pools.kupo.cache.max_byte: unknown key 'max_byte'; did you mean "
                   "'max_bytes'?")

    def test_range_edges_echo_the_value(self):
        self.check("kupo", "{immutable_after_slots: 0}",
                   '%s:9:36: pools.kupo.cache.immutable_after_slots: bad immutable_after_slots '
                   '"0": expected an integer from 1 to 10000000')


if __name__ == "__main__":
    harness.main()

// corral-bench ring: the selector lab. Runs the real lb/core selectors over synthetic keys
// and prints balance, disruption on removing/adding a backend and ns per lookup, without
// and with bounded loads. The computations live in bench/ring_lab.{h,cpp}.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "bench/commands.h"
#include "bench/ring_lab.h"

namespace bench {

namespace {

constexpr size_t kDefaultKeys = 1'000'000;

bool parse_size(std::string_view s, size_t& out) {
  if (s.empty() || s.size() > 12) return false;
  size_t v = 0;
  for (char c : s) {
    if (c == '_' || c == ',') continue;  // 1_000_000
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<size_t>(c - '0');
  }
  out = v;
  return true;
}

bool parse_list(std::string_view s, std::vector<size_t>& out) {
  out.clear();
  while (!s.empty()) {
    const size_t comma = s.find(',');
    size_t v = 0;
    if (!parse_size(s.substr(0, comma), v)) return false;
    out.push_back(v);
    s = comma == std::string_view::npos ? std::string_view{} : s.substr(comma + 1);
  }
  return !out.empty();
}

int fail(const char* msg, const char* arg = "") {
  std::fprintf(stderr, "corral-bench ring: %s%s\n", msg, arg);
  return 2;
}

}  // namespace

void help_ring(FILE* out) {
  std::fprintf(
      out,
      "usage: corral-bench ring [options]\n"
      "Selector lab on the real lb/core code: for each selector and pool size n, hashes\n"
      "synthetic keys (SplitMix64 of 0..K-1) onto backends kupo-1..kupo-n and reports\n"
      "  max/mean   keys on the busiest backend over the mean (1 = perfect balance)\n"
      "  held-1     share of keys kupo-n held before it is removed\n"
      "  moved-1    share of all keys whose backend changes when kupo-n is removed;\n"
      "             ideal-1 = 1/n (only the removed backend's keys move)\n"
      "  got+1      share of keys kupo-(n+1) takes when added\n"
      "  moved+1    share of all keys whose backend changes when it is added;\n"
      "             ideal+1 = 1/(n+1)\n"
      "  ns/lookup  median of 3 timed passes; plain: rank() of the first choice;\n"
      "             bounded: lb::place() (the proxy's placement: full ranking, bounded\n"
      "             loads) + load update per new user\n"
      "Each (selector, n) gets a plain row and a bounded-loads row (keys assigned one after\n"
      "another with loads updated; disruption compares the assignments before and after\n"
      "for the same key order, i.e. as if every user arrived afresh).\n\n"
      "options:\n"
      "  --n LIST               pool sizes, comma-separated (default 3,5,10,20,64)\n"
      "  --keys K               keys for plain rows (default 1000000)\n"
      "  --bounded-keys K       keys for bounded-loads rows (default: as --keys; the bounded\n"
      "                         pass costs ~5x at n = 64, lower it for a quick run)\n"
      "  --balance-factor C     bounded loads factor c > 1 (default 1.25)\n"
      "  --selector S           rendezvous | maglev | both (default both)\n"
      "  --passes P             timed passes, median reported (default 3)\n"
      "  --no-bounded           plain rows only\n"
      "  --json                 one JSON object {\"rows\": [...]} instead of the table\n");
}

int run_ring(int argc, char** argv) {
  std::vector<size_t> ns = {3, 5, 10, 20, 64};
  // The bounded pass ranks every backend for every key (as the proxy does for a new user),
  // ~5x the plain cost at n = 64 (about 30 s for the default run on 2 cores). It defaults
  // to the plain key count all the same: max/mean depends on keys per backend, and rows
  // over different key counts would make the bound look like it worsens balance.
  size_t keys = kDefaultKeys, passes = 3;
  size_t bounded_keys = 0;  // 0 = same as --keys
  double c = 1.25;
  bool json = false, with_bounded = true;
  std::vector<lb::SelectorKind> kinds = {lb::SelectorKind::rendezvous, lb::SelectorKind::maglev};

  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      help_ring(stdout);
      return 0;
    }
    if (a == "--json") {
      json = true;
      continue;
    }
    if (a == "--no-bounded") {
      with_bounded = false;
      continue;
    }
    if (i + 1 >= argc) return fail("needs a value (or is unknown): ", argv[i]);
    const std::string_view v = argv[++i];
    if (a == "--n") {
      if (!parse_list(v, ns)) return fail("--n wants a comma-separated list, got ", argv[i]);
      for (size_t n : ns)
        if (n < 1 || n > 65534) return fail("--n values must be 1..65534, got ", argv[i]);
    } else if (a == "--keys") {
      if (!parse_size(v, keys) || keys == 0) return fail("--keys wants K >= 1, got ", argv[i]);
    } else if (a == "--bounded-keys") {
      if (!parse_size(v, bounded_keys) || bounded_keys == 0)
        return fail("--bounded-keys wants K >= 1, got ", argv[i]);
    } else if (a == "--passes") {
      if (!parse_size(v, passes) || passes == 0 || passes > 99)
        return fail("--passes wants 1..99, got ", argv[i]);
    } else if (a == "--balance-factor") {
      char* end = nullptr;
      errno = 0;
      c = std::strtod(argv[i], &end);
      // c <= 1 would make the bounds sum to less than the load (Mirrokni et al. need c > 1).
      if (errno || end == argv[i] || *end || !std::isfinite(c) || c <= 1.0)
        return fail("--balance-factor wants a number > 1, got ", argv[i]);
    } else if (a == "--selector") {
      if (v == "rendezvous")
        kinds = {lb::SelectorKind::rendezvous};
      else if (v == "maglev")
        kinds = {lb::SelectorKind::maglev};
      else if (v == "both")
        kinds = {lb::SelectorKind::rendezvous, lb::SelectorKind::maglev};
      else
        return fail("--selector wants rendezvous|maglev|both, got ", argv[i]);
    } else {
      return fail("unknown option ", argv[i]);
    }
  }

  if (bounded_keys == 0) bounded_keys = keys;
  if (!json) {
    std::printf("corral-bench ring: %zu keys per plain row", keys);
    if (with_bounded) std::printf(", %zu per bounded-loads row (c = %.2f)", bounded_keys, c);
    std::printf("; removing kupo-n, adding kupo-(n+1); ns/lookup = median of %zu passes\n\n",
                passes);
    std::fflush(stdout);
  }
  std::vector<RingRow> rows;
  for (lb::SelectorKind kind : kinds)
    for (size_t n : ns) {
      rows.push_back(measure_ring(kind, n, keys, false, c, static_cast<int>(passes)));
      if (with_bounded)
        rows.push_back(measure_ring(kind, n, bounded_keys, true, c, static_cast<int>(passes)));
    }
  if (json)
    std::printf("%s\n", ring_rows_json(rows).c_str());
  else
    std::printf("%s", ring_table(rows).c_str());
  return 0;
}

}  // namespace bench

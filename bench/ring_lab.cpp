#include "bench/ring_lab.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "lb/core/balancer.h"
#include "lb/core/session_key.h"
#include "lb/core/splitmix.h"

namespace bench {

namespace {

using Clock = std::chrono::steady_clock;

// Keeps a value alive past the optimiser without a memory barrier in the timed loop.
volatile uint64_t g_sink = 0;

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

double elapsed_ns(Clock::time_point t0) {
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
}

// One bounded assignment pass; the loads live here so that every pass starts empty, as a
// freshly started proxy does. Each key is a new user placed by lb::place(), the proxy's
// own placement (full ranking, bounded loads), over n up backends of equal weight.
std::vector<uint16_t> bounded_pass(const lb::Selector& selector, size_t keys, double c) {
  const size_t n = selector.size();
  std::vector<uint16_t> out(keys);
  std::vector<lb::Candidate> pool(n);
  for (size_t i = 0; i < n; ++i) pool[i].ref = static_cast<lb::BackendRef>(i);
  const lb::PoolView view{pool, &selector, c, 0};
  lb::PlacementRequest req;
  for (size_t i = 0; i < keys; ++i) {
    req.hash = lab_key(i);
    const lb::Decision d = lb::place(view, req);
    const uint16_t b = d.kind == lb::Placement::none ? 0 : static_cast<uint16_t>(d.index);
    ++pool[b].pinned;
    out[i] = b;
  }
  return out;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string percent(double v) { return fixed(100 * v, 2) + "%"; }

}  // namespace

uint64_t lab_key(uint64_t i) { return lb::splitmix64(i); }

std::vector<lb::SelectorBackend> lab_backends(size_t n) {
  std::vector<lb::SelectorBackend> b;
  b.reserve(n);
  for (size_t i = 1; i <= n; ++i) b.push_back({lb::name_hash("kupo-" + std::to_string(i)), 1});
  return b;
}

std::vector<uint16_t> assign_first(const lb::Selector& selector, size_t keys) {
  std::vector<uint16_t> out(keys);
  uint16_t first = 0;
  for (size_t i = 0; i < keys; ++i) {
    selector.rank(lab_key(i), std::span<uint16_t>(&first, 1));
    out[i] = first;
  }
  return out;
}

std::vector<uint16_t> assign_bounded(const lb::Selector& selector, size_t keys,
                                     double balance_factor) {
  return bounded_pass(selector, keys, balance_factor);
}

double balance(std::span<const uint16_t> assignment, size_t n) {
  if (n == 0 || assignment.empty()) return 0;
  std::vector<uint64_t> count(n, 0);
  for (uint16_t b : assignment)
    if (b < n) ++count[b];
  const double mean = static_cast<double>(assignment.size()) / static_cast<double>(n);
  return static_cast<double>(*std::max_element(count.begin(), count.end())) / mean;
}

double moved_fraction(std::span<const uint16_t> before,
                      std::span<const lb::SelectorBackend> before_pool,
                      std::span<const uint16_t> after,
                      std::span<const lb::SelectorBackend> after_pool) {
  const size_t keys = std::min(before.size(), after.size());
  if (keys == 0) return 0;
  size_t moved = 0;
  for (size_t i = 0; i < keys; ++i)
    if (before_pool[before[i]].id != after_pool[after[i]].id) ++moved;
  return static_cast<double>(moved) / static_cast<double>(keys);
}

double share_of(std::span<const uint16_t> assignment, uint16_t b) {
  if (assignment.empty()) return 0;
  const auto c = std::count(assignment.begin(), assignment.end(), b);
  return static_cast<double>(c) / static_cast<double>(assignment.size());
}

double ns_first_lookup(const lb::Selector& selector, size_t keys, int passes) {
  if (keys == 0) return 0;
  std::vector<double> per_pass;
  uint16_t first = 0;
  for (int p = 0; p < std::max(passes, 1); ++p) {
    uint64_t sum = 0;
    const auto t0 = Clock::now();
    for (size_t i = 0; i < keys; ++i) {
      selector.rank(lab_key(i), std::span<uint16_t>(&first, 1));
      sum += first;
    }
    per_pass.push_back(elapsed_ns(t0) / static_cast<double>(keys));
    g_sink = g_sink + sum;
  }
  return median_of(per_pass);
}

const char* selector_name(lb::SelectorKind kind) {
  return kind == lb::SelectorKind::maglev ? "maglev" : "rendezvous";
}

RingRow measure_ring(lb::SelectorKind kind, size_t n, size_t keys, bool bounded,
                     double balance_factor, int passes) {
  RingRow row;
  row.selector = selector_name(kind);
  row.n = n;
  row.bounded = bounded;
  row.balance_factor = bounded ? balance_factor : 0;
  row.keys = keys;
  row.ideal_remove = n ? 1.0 / static_cast<double>(n) : 0;
  row.ideal_add = 1.0 / static_cast<double>(n + 1);
  if (n == 0 || keys == 0) return row;

  const auto pool = lab_backends(n + 1);
  const std::span<const lb::SelectorBackend> base(pool.data(), n);
  const std::span<const lb::SelectorBackend> removed(pool.data(), n - 1);
  const std::span<const lb::SelectorBackend> added(pool.data(), n + 1);
  const auto sel = lb::make_selector(kind, base);
  const auto sel_added = lb::make_selector(kind, added);

  std::vector<uint16_t> a_base, a_removed, a_added;
  if (bounded) {
    // Timed passes are real assignment passes: their result is the base assignment.
    std::vector<double> per_pass;
    for (int p = 0; p < std::max(passes, 1); ++p) {
      const auto t0 = Clock::now();
      a_base = bounded_pass(*sel, keys, balance_factor);
      per_pass.push_back(elapsed_ns(t0) / static_cast<double>(keys));
    }
    row.ns_per_lookup = median_of(per_pass);
    a_added = bounded_pass(*sel_added, keys, balance_factor);
    if (n > 1) a_removed = bounded_pass(*lb::make_selector(kind, removed), keys, balance_factor);
  } else {
    row.ns_per_lookup = ns_first_lookup(*sel, keys, passes);
    a_base = assign_first(*sel, keys);
    a_added = assign_first(*sel_added, keys);
    if (n > 1) a_removed = assign_first(*lb::make_selector(kind, removed), keys);
  }

  row.balance = balance(a_base, n);
  row.removed_share = share_of(a_base, static_cast<uint16_t>(n - 1));
  // With one backend there is nowhere to go: removing it moves every key.
  row.moved_remove = n > 1 ? moved_fraction(a_base, base, a_removed, removed) : 1.0;
  row.added_share = share_of(a_added, static_cast<uint16_t>(n));
  row.moved_add = moved_fraction(a_base, base, a_added, added);
  return row;
}

std::string ring_row_json(const RingRow& r) {
  std::string s = "{\"selector\":\"" + r.selector + "\"";
  s += ",\"n\":" + std::to_string(r.n);
  s += std::string(",\"bounded\":") + (r.bounded ? "true" : "false");
  s += ",\"balance_factor\":" + fixed(r.balance_factor, 3);
  s += ",\"keys\":" + std::to_string(r.keys);
  s += ",\"balance\":" + fixed(r.balance, 6);
  s += ",\"removed_share\":" + fixed(r.removed_share, 6);
  s += ",\"moved_remove\":" + fixed(r.moved_remove, 6);
  s += ",\"ideal_remove\":" + fixed(r.ideal_remove, 6);
  s += ",\"added_share\":" + fixed(r.added_share, 6);
  s += ",\"moved_add\":" + fixed(r.moved_add, 6);
  s += ",\"ideal_add\":" + fixed(r.ideal_add, 6);
  s += ",\"ns_per_lookup\":" + fixed(r.ns_per_lookup, 1);
  return s + "}";
}

std::string ring_rows_json(std::span<const RingRow> rows) {
  std::string s = "{\"rows\":[";
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i) s += ",";
    s += ring_row_json(rows[i]);
  }
  return s + "]}";
}

std::string ring_table(std::span<const RingRow> rows) {
  std::string s;
  char line[256];
  std::snprintf(line, sizeof line, "%-10s %3s %-11s %8s %8s  %8s %8s %8s  %8s %8s %8s  %9s\n",
                "selector", "n", "loads", "keys", "max/mean", "held-1", "moved-1", "ideal-1",
                "got+1", "moved+1", "ideal+1", "ns/lookup");
  s += line;
  for (const RingRow& r : rows) {
    const std::string loads = r.bounded ? "c=" + fixed(r.balance_factor, 2) : "plain";
    std::snprintf(line, sizeof line,
                  "%-10s %3zu %-11s %8zu %8.4f  %8s %8s %8s  %8s %8s %8s  %9.1f\n",
                  r.selector.c_str(), r.n, loads.c_str(), r.keys, r.balance,
                  percent(r.removed_share).c_str(), percent(r.moved_remove).c_str(),
                  percent(r.ideal_remove).c_str(), percent(r.added_share).c_str(),
                  percent(r.moved_add).c_str(), percent(r.ideal_add).c_str(), r.ns_per_lookup);
    s += line;
  }
  return s;
}

}  // namespace bench

// The `--mix lucid` draw (bench/load_mix.h): Zipf frequencies, determinism, the 60/40 split,
// the targets and the answer checks the load client counts wrong_answers with.
#include <doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "bench/load_client.h"
#include "bench/load_mix.h"
#include "bench/sim/kupo_api.h"

using bench::LucidMix;
using bench::MixDraw;
using bench::MixKind;
using bench::MixSampler;
using bench::ZipfSampler;

TEST_CASE("load_mix: Zipf ranks 1 and 10 within 5% of theory over 10^6 draws") {
  const LucidMix mix;  // 10000 hashes, s = 1, 60% lookups
  MixSampler m(mix);
  // Theory: P(r) = 1 / (r * H(10000)), H(10000) ≈ 9.7876; independent of the CDF code.
  double h = 0;
  for (int r = 1; r <= 10000; ++r) h += 1.0 / r;
  const double p1 = 1.0 / h, p10 = 1.0 / (10 * h);
  CHECK(m.zipf().probability(1) == doctest::Approx(p1).epsilon(1e-9));
  uint64_t lookups = 0, rank1 = 0, rank10 = 0;
  for (uint64_t seq = 0; seq < 1'000'000; ++seq) {
    MixDraw d = m.draw(seq);
    if (d.kind == MixKind::matches) continue;
    ++lookups;
    REQUIRE(d.rank >= 1);
    REQUIRE(d.rank <= 10000);
    rank1 += d.rank == 1;
    rank10 += d.rank == 10;
  }
  const double f1 = double(rank1) / double(lookups), f10 = double(rank10) / double(lookups);
  CHECK(std::abs(f1 - p1) / p1 < 0.05);
  CHECK(std::abs(f10 - p10) / p10 < 0.05);
  CHECK(rank1 > 5 * rank10);  // the head really is heavier (s = 1: 10x)
}

TEST_CASE("load_mix: the 60/40 split and two thirds datums among lookups") {
  MixSampler m(LucidMix{});
  uint64_t datums = 0, scripts = 0, matches = 0;
  const uint64_t n = 300'000;
  for (uint64_t seq = 0; seq < n; ++seq) {
    switch (m.draw(seq).kind) {
      case MixKind::datum:
        ++datums;
        break;
      case MixKind::script:
        ++scripts;
        break;
      case MixKind::matches:
        ++matches;
        break;
    }
  }
  CHECK(double(datums + scripts) / double(n) == doctest::Approx(0.6).epsilon(0.01));
  CHECK(double(matches) / double(n) == doctest::Approx(0.4).epsilon(0.015));
  CHECK(double(datums) / double(datums + scripts) == doctest::Approx(2.0 / 3).epsilon(0.01));

  LucidMix all_matches;
  all_matches.lookup_share = 0;
  MixSampler z(all_matches);
  for (uint64_t seq = 0; seq < 1000; ++seq) CHECK(z.draw(seq).kind == MixKind::matches);
}

TEST_CASE("load_mix: draws and targets are deterministic and well formed") {
  MixSampler a(LucidMix{}), b(LucidMix{});
  bool differ = false;
  for (uint64_t seq = 0; seq < 2000; ++seq) {
    MixDraw x = a.draw(seq), y = b.draw(seq);
    CHECK(int(x.kind) == int(y.kind));
    CHECK(x.rank == y.rank);
    differ |= x.rank != a.draw(seq + 1).rank;
    char t1[bench::kMixTargetMax], t2[bench::kMixTargetMax], h1[64], h2[64];
    size_t l1 = 0, l2 = 0;
    const size_t n1 = bench::format_mix_target(x, 7, seq, t1, h1, l1);
    const size_t n2 = bench::format_mix_target(y, 7, seq, t2, h2, l2);
    REQUIRE(n1 <= bench::kMixTargetMax);
    CHECK(std::string_view(t1, n1) == std::string_view(t2, n2));
    const std::string_view t(t1, n1), hash(h1, l1);
    if (x.kind == MixKind::datum) {
      CHECK(t.substr(0, 8) == "/datums/");
      CHECK(bench::kupo_api::is_hex(hash, 64));
      CHECK(t.substr(8) == hash);
    } else if (x.kind == MixKind::script) {
      CHECK(t.substr(0, 9) == "/scripts/");
      CHECK(bench::kupo_api::is_hex(hash, 56));
      CHECK(t.substr(9) == hash);
    } else {
      CHECK(l1 == 0);
      CHECK(t.substr(0, 14) == "/matches/addr1");
      CHECK(t.substr(t.size() - 8) == "?unspent");
      CHECK(n1 == 9 + bench::kAddressWidth + 8);
    }
  }
  CHECK(differ);
  // A user's matches use four addresses, the same for seq and seq + 4.
  char t1[bench::kMixTargetMax], t2[bench::kMixTargetMax], t3[bench::kMixTargetMax], h[64];
  size_t hl = 0;
  const size_t n1 = bench::format_mix_target({}, 3, 1, t1, h, hl);
  const size_t n2 = bench::format_mix_target({}, 3, 5, t2, h, hl);
  const size_t n3 = bench::format_mix_target({}, 3, 2, t3, h, hl);
  CHECK(std::string_view(t1, n1) == std::string_view(t2, n2));
  CHECK(std::string_view(t1, n1) != std::string_view(t3, n3));
  // Datum and script of one rank differ in length, so they are distinct keys.
  char d[64], s[64];
  CHECK(bench::mix_hash(MixKind::datum, 1, d) == 64);
  CHECK(bench::mix_hash(MixKind::script, 1, s) == 56);
  CHECK(std::string_view(d, 56) == std::string_view(s, 56));
  char d2[64];
  bench::mix_hash(MixKind::datum, 2, d2);
  CHECK(std::string_view(d, 64) != std::string_view(d2, 64));
}

TEST_CASE("load_mix: the answer checks accept the simulator's answers and refuse others") {
  // Find a hash in and a hash out of the 5% null set among the mix's ranks.
  std::string in_null, out_null, script_out;
  for (uint32_t r = 1; r < 5000 && (in_null.empty() || out_null.empty()); ++r) {
    char h[64];
    bench::mix_hash(MixKind::datum, r, h);
    std::string s(h, 64);
    (bench::kupo_api::is_null_hash(s, 5) ? in_null : out_null) = s;
  }
  for (uint32_t r = 1; script_out.empty(); ++r) {
    char h[64];
    bench::mix_hash(MixKind::script, r, h);
    if (!bench::kupo_api::is_null_hash(std::string_view(h, 56), 5)) script_out.assign(h, 56);
  }
  REQUIRE(!in_null.empty());
  REQUIRE(!out_null.empty());
  CHECK(bench::is_null_body("null", 4));
  CHECK(!bench::is_null_body("null", 5));
  CHECK(!bench::is_null_body("nulx", 4));

  const std::string good = bench::kupo_api::datum(out_null);
  const std::string other = bench::kupo_api::datum(in_null);
  CHECK(!bench::wrong_lookup_answer(MixKind::datum, out_null, 5, good, good.size()));
  CHECK(bench::wrong_lookup_answer(MixKind::datum, out_null, 5, other, other.size()));
  CHECK(bench::wrong_lookup_answer(MixKind::datum, out_null, 5, "null", 4));
  CHECK(!bench::wrong_lookup_answer(MixKind::datum, in_null, 5, "null", 4));
  CHECK(bench::wrong_lookup_answer(MixKind::datum, in_null, 5, other, other.size()));
  const std::string script = bench::kupo_api::script(script_out);
  CHECK(!bench::wrong_lookup_answer(MixKind::script, script_out, 5, script, script.size()));
  CHECK(bench::wrong_lookup_answer(MixKind::script, script_out, 5, good, good.size()));
  // With null_percent 0 nothing is in the null set, so a `null` is always wrong.
  CHECK(bench::wrong_lookup_answer(MixKind::datum, in_null, 0, "null", 4));
}

#include "bench/load_mix.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "bench/load_client.h"
#include "bench/sim/kupo_api.h"
#include "lb/core/splitmix.h"

namespace bench {

ZipfSampler::ZipfSampler(uint32_t n, double s) {
  cdf_.resize(std::max<uint32_t>(n, 1));
  double sum = 0;
  for (size_t r = 1; r <= cdf_.size(); ++r) {
    sum += 1.0 / std::pow(double(r), s);
    cdf_[r - 1] = sum;
  }
  for (double& c : cdf_) c /= sum;
  cdf_.back() = 1.0;  // no rounding gap above the last rank
}

uint32_t ZipfSampler::rank(double u) const {
  // The first rank whose cumulative probability exceeds u.
  auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
  if (it == cdf_.end()) --it;
  return uint32_t(it - cdf_.begin()) + 1;
}

double ZipfSampler::probability(uint32_t r) const {
  if (r == 0 || r > cdf_.size()) return 0;
  return r == 1 ? cdf_[0] : cdf_[r - 1] - cdf_[r - 2];
}

MixSampler::MixSampler(const LucidMix& mix) : mix_(mix), zipf_(mix.hashes, mix.s) {}

namespace {

constexpr uint64_t kMixSeed = 0x6c75636964u;  // "lucid"

// A uniform double in [0, 1) from the top 53 bits.
double unit(uint64_t x) { return double(x >> 11) * 0x1.0p-53; }

}  // namespace

MixDraw MixSampler::draw(uint64_t seq) const {
  const uint64_t a = lb::splitmix64(seq ^ kMixSeed);
  const uint64_t b = lb::splitmix64(a);
  const uint64_t c = lb::splitmix64(b);
  MixDraw d;
  if (unit(a) >= mix_.lookup_share) return d;  // matches
  d.kind = b % 3 == 2 ? MixKind::script : MixKind::datum;
  d.rank = zipf_.rank(unit(c));
  return d;
}

size_t mix_hash(MixKind kind, uint32_t rank, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  const size_t n = kind == MixKind::script ? kScriptHashHex : kDatumHashHex;
  uint64_t x = rank;
  for (size_t i = 0; i < n; i += 16) {
    x = lb::splitmix64(x);
    for (size_t k = 0; k < 16 && i + k < n; ++k) out[i + k] = kHex[(x >> (60 - 4 * k)) & 0xF];
  }
  return n;
}

size_t format_mix_target(const MixDraw& d, uint32_t user, uint64_t seq, char* out, char* hash,
                         size_t& hash_len) {
  auto put = [&out](size_t at, std::string_view s) {
    std::memcpy(out + at, s.data(), s.size());
    return at + s.size();
  };
  size_t n = 0;
  hash_len = 0;
  switch (d.kind) {
    case MixKind::datum:
    case MixKind::script:
      n = put(0, d.kind == MixKind::datum ? "/datums/" : "/scripts/");
      hash_len = mix_hash(d.kind, d.rank, hash);
      std::memcpy(out + n, hash, hash_len);
      return n + hash_len;
    case MixKind::matches:
      n = put(0, "/matches/");
      format_base_address(user, seq % 4, out + n);
      return put(n + kAddressWidth, "?unspent");
  }
  return 0;
}

bool is_null_body(std::string_view head, uint64_t length) {
  return length == 4 && head.substr(0, 4) == "null";
}

bool wrong_lookup_answer(MixKind kind, std::string_view hash, uint64_t null_percent,
                         std::string_view head, uint64_t length) {
  const bool null_body = is_null_body(head, length);
  if (kupo_api::is_null_hash(hash, null_percent)) return !null_body;
  if (null_body) return true;
  if (kind == MixKind::datum) return head.find(hash.substr(0, 56)) == std::string_view::npos;
  return head.find("\"script\"") == std::string_view::npos;
}

void MixResult::merge(const MixResult& o) {
  lookups += o.lookups;
  lookup_requests += o.lookup_requests;
  null_answers += o.null_answers;
  null_final += o.null_final;
  retries += o.retries;
  matches += o.matches;
  wrong_answers += o.wrong_answers;
  lookup_latency.merge(o.lookup_latency);
  matches_latency.merge(o.matches_latency);
}

}  // namespace bench

// Fuzz target: the cache's rules (lb/core/cache_rules, cache_key, etag; issue 16) on a
// request given as text lines:
//   METHOD \n TARGET \n BEST-TIP IMMUTABLE-AFTER-SLOTS PREFIX \n IF-NONE-MATCH \n ETAG \n
//   BODY \n header lines "Name: value"...
// (an empty or non-numeric BEST-TIP is "unknown"; PREFIX, if it starts with '/', is an
// operator prefix rule). Checks:
// - classify never crashes, and gives the same verdict on the same input;
// - a cacheable verdict's target is a fixed point of normalize_target, so its canonical
//   string and key are the same after normalising again (what corral keys is stable);
// - if_none_match reads only its inputs (each in a buffer of exactly its size) and is
//   symmetric for two single well-formed entity-tags, and true for a tag against itself;
// - storable refuses a body that is JSON null (Kupo's "not found yet"), whatever the
//   headers and the verdict.
#include <charconv>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lb/core/cache_key.h"
#include "lb/core/cache_rules.h"
#include "lb/core/etag.h"
#include "lb/core/path_normalizer.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

std::string_view next_line(std::string_view& in) {
  size_t nl = in.find('\n');
  std::string_view line = in.substr(0, nl);
  in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
  return line;
}

std::string_view next_word(std::string_view& in) {
  while (in.starts_with(' ')) in.remove_prefix(1);
  size_t sp = in.find(' ');
  std::string_view w = in.substr(0, sp);
  in = sp == std::string_view::npos ? std::string_view{} : in.substr(sp);
  return w;
}

std::optional<uint64_t> number(std::string_view s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// A copy of `s` in a heap buffer of exactly its size, so ASan reports any read past it.
struct Exact {
  explicit Exact(std::string_view s) : buf(new char[s.size() ? s.size() : 1]), n(s.size()) {
    if (n) std::memcpy(buf.get(), s.data(), n);
  }
  std::string_view view() const { return {buf.get(), n}; }
  std::unique_ptr<char[]> buf;
  size_t n;
};

// One entity-tag as RFC 9110 §8.8.3 writes it: [W/] DQUOTE *etagc DQUOTE.
bool single_tag(std::string_view t) {
  if (t.starts_with("W/")) t.remove_prefix(2);
  if (t.size() < 2 || t.front() != '"' || t.back() != '"') return false;
  for (unsigned char c : t.substr(1, t.size() - 2))
    if (!(c == 0x21 || (c >= 0x23 && c != 0x7f))) return false;
  return true;
}

std::string_view opaque(std::string_view t) { return t.starts_with("W/") ? t.substr(2) : t; }

// The origin-form target after normalize_target, in `buf`; nullopt when corral refuses it.
std::optional<std::string_view> normalised(std::string& buf, std::string_view target) {
  buf.assign(target);
  lb::NormalizedTarget n = lb::normalize_target(buf.data(), buf.size());
  if (n.error != nullptr) return std::nullopt;
  return n.origin;
}

void check_etags(std::string_view value, std::string_view etag, std::string_view body) {
  const Exact v(value), e(etag);
  const bool ab = lb::if_none_match(v.view(), e.view());
  FUZZ_CHECK(ab == lb::if_none_match(v.view(), e.view()), "if_none_match is deterministic");
  if (single_tag(value) && single_tag(etag)) {
    FUZZ_CHECK(ab == lb::if_none_match(e.view(), v.view()), "symmetric for single tags");
    FUZZ_CHECK(ab == (opaque(value) == opaque(etag)), "weak comparison of single tags");
  }
  if (single_tag(value)) FUZZ_CHECK(lb::if_none_match(v.view(), v.view()), "a tag matches itself");
  const std::string mine = lb::body_etag(body);
  FUZZ_CHECK(mine.size() == lb::kBodyEtagLen && single_tag(mine), "body_etag is one strong tag");
  const Exact m(mine);
  FUZZ_CHECK(lb::if_none_match(m.view(), m.view()), "a body's tag matches itself");
  FUZZ_CHECK(lb::if_none_match(std::string("W/") + mine, m.view()), "W/ is ignored");
  (void)lb::if_none_match(v.view(), m.view());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string_view method = next_line(in);
  const std::string_view target = next_line(in);
  std::string_view args = next_line(in);
  const std::string_view inm = next_line(in);
  const std::string_view etag = next_line(in);
  const std::string_view body = next_line(in);
  const std::optional<uint64_t> tip = number(next_word(args));
  const std::optional<uint64_t> after = number(next_word(args));
  const std::string_view prefix = next_word(args);
  std::vector<lb::HeaderView> headers;
  while (!in.empty() && headers.size() < 32) {
    std::string_view line = next_line(in);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (value.starts_with(' ')) value.remove_prefix(1);
    headers.push_back({line.substr(0, colon), value});
  }

  check_etags(inm, etag, body);

  lb::CacheRules rules;
  rules.kupo = (size & 1) == 0;
  if (after && *after > 0) rules.immutable_after_slots = *after;
  if (prefix.starts_with('/')) {
    rules.prefixes.emplace_back(prefix);
    rules.max_age_ms = 60'000;
  }
  lb::ReqFacts facts = lb::req_facts(headers);
  facts.has_body = (size & 2) != 0;

  std::string buf1;
  const std::optional<std::string_view> origin = normalised(buf1, target);
  if (!origin) return 0;  // corral answers 400 before any rule runs
  const size_t q = origin->find('?');
  const std::string_view path = origin->substr(0, q);
  const std::string_view query = q == std::string_view::npos ? "" : origin->substr(q + 1);
  const lb::CacheVerdict v = lb::classify(rules, method, path, query, facts, tip);
  const lb::CacheVerdict again = lb::classify(rules, method, path, query, facts, tip);
  FUZZ_CHECK(v.kind == again.kind && v.slot == again.slot, "classify is deterministic");
  FUZZ_CHECK(v.cacheable() || v.reason != nullptr, "a refusal names its reason");

  // storable never takes a null body, whatever the verdict and the headers.
  lb::AnswerFacts a = lb::answer_facts(headers);
  a.status = 200;
  a.get = true;
  for (std::string_view nb : {std::string_view("null"), std::string_view(" null\n"), body}) {
    if (!lb::is_null_body(nb)) continue;
    a.body = nb;
    for (lb::CacheClass k :
         {lb::CacheClass::immutable, lb::CacheClass::slot_bound, lb::CacheClass::max_age, v.kind}) {
      lb::CacheVerdict verdict = v;
      verdict.kind = k;
      FUZZ_CHECK(!lb::storable(a, verdict, rules).ok, "storable refuses a null body");
    }
  }
  if (!v.cacheable()) return 0;
  FUZZ_CHECK(method == "GET" || method == "HEAD", "only GET and HEAD are cacheable");
  FUZZ_CHECK(!facts.range && !facts.if_match && !facts.if_range && !facts.if_modified_since,
             "conditional and range requests are not cacheable");

  // The key corral stores under does not change when the target is normalised again.
  std::string c1, c2, buf2;
  lb::canonical_request(c1, path, query, facts.accept, facts.accept_encoding);
  const std::optional<std::string_view> origin2 = normalised(buf2, *origin);
  FUZZ_CHECK(origin2.has_value(), "a normal form is accepted again");
  FUZZ_CHECK(*origin2 == *origin, "normalize_target is idempotent on a cacheable target");
  const size_t q2 = origin2->find('?');
  const std::string_view path2 = origin2->substr(0, q2);
  const std::string_view query2 = q2 == std::string_view::npos ? "" : origin2->substr(q2 + 1);
  lb::canonical_request(c2, path2, query2, facts.accept, facts.accept_encoding);
  FUZZ_CHECK(c1 == c2, "the canonical string is stable");
  FUZZ_CHECK(lb::cache_key(7, c1) == lb::cache_key(7, c2), "the key is stable");
  FUZZ_CHECK(c1.starts_with(path), "the canonical string starts with the path (purge)");
  const lb::CacheVerdict v2 = lb::classify(rules, method, path2, query2, facts, tip);
  FUZZ_CHECK(v2.kind == v.kind && v2.slot == v.slot, "the verdict is stable");
  return 0;
}

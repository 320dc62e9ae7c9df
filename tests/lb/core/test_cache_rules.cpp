#include <doctest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lb/core/cache_rules.h"

using namespace lb;

namespace {
const std::string kH64(64, 'a');
const std::string kH56(56, 'B');

CacheRules kupo_rules() {
  CacheRules r;
  r.kupo = true;
  r.immutable_after_slots = 1000;
  return r;
}

CacheVerdict get(const CacheRules& r, std::string_view path, std::string_view query = "",
                 ReqFacts f = {}, std::optional<uint64_t> tip = 5000) {
  return classify(r, "GET", path, query, f, tip);
}

AnswerFacts ok_answer() {
  AnswerFacts a;
  a.status = 200;
  a.body = "{\"datum\":\"d87980\"}";
  a.checkpoint = 5000;
  return a;
}
}  // namespace

TEST_CASE("cache_rules: Kupo datums and scripts are immutable with the exact hash length") {
  CacheRules r = kupo_rules();
  CHECK(get(r, "/datums/" + kH64).kind == CacheClass::immutable);
  CHECK(get(r, "/v1/datums/" + kH64).kind == CacheClass::immutable);
  CHECK(get(r, "/scripts/" + kH56).kind == CacheClass::immutable);
  CHECK_FALSE(get(r, "/datums/" + kH56).cacheable());
  CHECK_FALSE(get(r, "/scripts/" + kH64).cacheable());
  CHECK_FALSE(get(r, "/datums/" + kH64 + "/").cacheable());
  CHECK_FALSE(get(r, "/datums/" + std::string(63, 'a') + "g").cacheable());
  CHECK(std::string(get(r, "/datums/" + kH64, "x=1").reason) == "query");
  CHECK(classify(r, "HEAD", "/datums/" + kH64, "", {}, std::nullopt).kind ==
        CacheClass::immutable);  // immutable needs no tip
  CHECK_FALSE(get(r, "/matches/addr1x").cacheable());
  CHECK_FALSE(get(r, "/checkpoints").cacheable());
}

TEST_CASE("cache_rules: metadata and checkpoints are slot-bound once deep enough") {
  CacheRules r = kupo_rules();  // immutable_after_slots 1000
  CacheVerdict v = get(r, "/metadata/4000", "", {}, 5000);
  CHECK(v.kind == CacheClass::slot_bound);
  CHECK(v.slot == 4000);
  CHECK(std::string(get(r, "/metadata/4001", "", {}, 5000).reason) == "not_deep");
  CHECK(get(r, "/checkpoints/4000", "strict", {}, 5000).kind == CacheClass::slot_bound);
  CHECK(get(r, "/metadata/12", "transaction_id=" + kH64).kind == CacheClass::slot_bound);
  CHECK(std::string(get(r, "/metadata/12", "transaction_id=abc").reason) == "query");
  CHECK(std::string(get(r, "/checkpoints/12", "transaction_id=" + kH64).reason) == "query");
  CHECK(std::string(get(r, "/metadata/12", "strict").reason) == "query");
  CHECK(std::string(get(r, "/metadata/12", "", {}, std::nullopt).reason) == "no_tip");
  CHECK(std::string(get(r, "/metadata/12", "", {}, 999).reason) == "not_deep");  // tip < depth
  CHECK_FALSE(get(r, "/metadata/-1").cacheable());
  CHECK_FALSE(get(r, "/metadata/99999999999999999999").cacheable());  // 20 digits
  CHECK_FALSE(get(r, "/metadata/").cacheable());
  // slot + immutable_after_slots is never computed where it could wrap around: a naive sum
  // would be 9 here, "deep" under a tip of 100.
  CacheRules huge = kupo_rules();
  huge.immutable_after_slots = UINT64_MAX - 10;
  CHECK(std::string(get(huge, "/metadata/20", "", {}, 100).reason) == "not_deep");
  CHECK(get(r, "/metadata/9999999999999999999", "", {}, UINT64_MAX).kind == CacheClass::slot_bound);
}

TEST_CASE("cache_rules: never for other methods, ranges or conditionals") {
  CacheRules r = kupo_rules();
  std::string p = "/datums/" + kH64;
  CHECK(std::string(classify(r, "POST", p, "", {}, 5000).reason) == "method");
  CHECK(std::string(classify(r, "DELETE", p, "", {}, 5000).reason) == "method");
  ReqFacts f;
  f.range = true;
  CHECK(std::string(get(r, p, "", f).reason) == "range");
  for (bool ReqFacts::*m :
       {&ReqFacts::if_match, &ReqFacts::if_range, &ReqFacts::if_modified_since}) {
    ReqFacts c;
    c.*m = true;
    CHECK(std::string(get(r, p, "", c).reason) == "conditional");
  }
  ReqFacts inm;
  inm.if_none_match = true;  // served as 304 from the entry
  CHECK(get(r, p, "", inm).cacheable());
}

TEST_CASE("cache_rules: operator prefixes give max_age, ruled out by credentials only there") {
  CacheRules r = kupo_rules();
  r.prefixes = {"/health/"};
  r.max_age_ms = 10'000;
  CHECK(get(r, "/health/x").kind == CacheClass::max_age);
  CHECK_FALSE(get(r, "/healthy").cacheable());
  ReqFacts cred;
  cred.cookie = true;
  CHECK(std::string(get(r, "/health/x", "", cred).reason) == "credentials");
  cred = {};
  cred.authorization = true;
  CHECK_FALSE(get(r, "/health/x", "", cred).cacheable());
  // Kupo's built-in rules ignore Authorization and Cookie (Kupo reads neither).
  CHECK(get(r, "/datums/" + kH64, "", cred).kind == CacheClass::immutable);
  // Prefixes apply to any kind; built-in rules only to Kupo.
  r.kupo = false;
  CHECK(get(r, "/health/x").kind == CacheClass::max_age);
  CHECK_FALSE(get(r, "/datums/" + kH64).cacheable());
}

TEST_CASE("cache_rules: req_facts and answer_facts read header fields") {
  std::vector<HeaderView> h = {{"Accept", "application/json"},
                               {"RANGE", "bytes=0-1"},
                               {"cookie", "corral=x"},
                               {"If-None-Match", "*"}};
  ReqFacts f = req_facts(h);
  CHECK(f.range);
  CHECK(f.cookie);
  CHECK(f.if_none_match);
  CHECK_FALSE(f.authorization);
  CHECK(f.accept == "application/json");
  std::vector<HeaderView> a = {{"Content-Type", "application/json"},
                               {"X-Most-Recent-Checkpoint", " 12345 "},
                               {"Vary", "Accept"}};
  AnswerFacts af = answer_facts(a);
  CHECK(af.checkpoint == std::optional<uint64_t>(12345));
  CHECK(af.vary == "Accept");
  CHECK_FALSE(af.repeated);
  a.push_back({"vary", "Origin"});
  CHECK(answer_facts(a).repeated);
  CHECK(answer_facts(std::vector<HeaderView>{{"X-Most-Recent-Checkpoint", "x1"}}).repeated);
}

TEST_CASE("cache_rules: storable checks") {
  CacheRules r = kupo_rules();
  CacheVerdict imm{CacheClass::immutable, 0, ""};
  auto why = [&](const AnswerFacts& a, CacheVerdict v) {
    return std::string(storable(a, v, r).reason);
  };
  CHECK(storable(ok_answer(), imm, r).ok);

  AnswerFacts a = ok_answer();
  a.status = 404;
  CHECK(why(a, imm) == "status");
  a = ok_answer();
  a.get = false;
  CHECK(why(a, imm) == "status");
  a = ok_answer();
  a.body = " null\n";
  CHECK(why(a, imm) == "null");
  a.body = "[null]";
  CHECK(storable(a, imm, r).ok);
  std::string big(kMaxEntryBytes + 1, 'x');
  a.body = big;
  CHECK(why(a, imm) == "too_large");
  a = ok_answer();
  a.budget = 4;
  CHECK(why(a, imm) == "too_large");
  a = ok_answer();
  a.content_encoding = "gzip";
  CHECK(why(a, imm) == "encoded");
  a.content_encoding = " Identity ";
  CHECK(storable(a, imm, r).ok);
  a = ok_answer();
  a.set_cookie = true;
  CHECK(why(a, imm) == "private");
  a = ok_answer();
  a.cache_control = "max-age=0, No-Store";
  CHECK(why(a, imm) == "private");
  a.cache_control = "private=\"x\"";
  CHECK(why(a, imm) == "private");
  a.cache_control = "public, max-age=60";
  CHECK(storable(a, imm, r).ok);
  a = ok_answer();
  a.vary = "Accept, accept-encoding";
  CHECK(storable(a, imm, r).ok);
  a.vary = "Accept, Origin";
  CHECK(why(a, imm) == "vary");
  a.vary = "*";
  CHECK(why(a, imm) == "vary");
  a = ok_answer();
  a.acao_present = true;
  a.acao = "*";
  CHECK(storable(a, imm, r).ok);
  a.acao = "https://app.example";
  CHECK(why(a, imm) == "cors");
  a = ok_answer();
  a.producer_healthy = false;
  CHECK(why(a, imm) == "producer");
  a = ok_answer();
  a.repeated = true;
  CHECK_FALSE(storable(a, imm, r).ok);
  CHECK_FALSE(storable(ok_answer(), CacheVerdict{}, r).ok);
}

TEST_CASE("cache_rules: a slot-bound answer needs a deep producer") {
  CacheRules r = kupo_rules();  // immutable_after_slots 1000
  CacheVerdict v{CacheClass::slot_bound, 4000, ""};
  AnswerFacts a = ok_answer();
  a.checkpoint = 5000;
  CHECK(storable(a, v, r).ok);
  a.checkpoint = 4999;  // a lagging producer: its answer may be incomplete
  CHECK(std::string(storable(a, v, r).reason) == "not_deep");
  a.checkpoint = std::nullopt;
  CHECK_FALSE(storable(a, v, r).ok);
  a.checkpoint = 10;  // below the depth itself
  CHECK_FALSE(storable(a, v, r).ok);
  // Immutable answers do not look at the checkpoint.
  CHECK(storable(a, CacheVerdict{CacheClass::immutable, 0, ""}, r).ok);
}

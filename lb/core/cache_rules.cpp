#include "lb/core/cache_rules.h"

#include "lb/core/kupo_path.h"
#include "lb/core/router.h"

namespace lb {

namespace {

bool all_hex(std::string_view s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  return true;
}

// A decimal slot that fits in 64 bits (at most 19 digits, so no overflow check is needed).
std::optional<uint64_t> parse_slot(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

CacheVerdict none(const char* why) { return {CacheClass::none, 0, why}; }

// Kupo's built-in rules; `none("not_kupo_rule")` when the path is not one of them.
CacheVerdict kupo_verdict(const CacheRules& rules, std::string_view path, std::string_view query,
                          std::optional<uint64_t> best_tip) {
  std::string_view rest;
  std::string_view ep = kupo_endpoint(path, &rest);
  if (ep == "datums" || ep == "scripts") {
    if (!all_hex(rest, ep == "datums" ? 64 : 56)) return none("not_kupo_rule");
    if (!query.empty()) return none("query");
    return {CacheClass::immutable, 0, ""};
  }
  if (ep != "metadata" && ep != "checkpoints") return none("not_kupo_rule");
  std::optional<uint64_t> slot = parse_slot(rest);
  if (!slot) return none("not_kupo_rule");
  bool query_ok =
      query.empty() ||
      (ep == "metadata" && query.starts_with("transaction_id=") && all_hex(query.substr(15), 64)) ||
      (ep == "checkpoints" && query == "strict");
  if (!query_ok) return none("query");
  if (!best_tip) return none("no_tip");
  // slot + immutable_after_slots <= best_tip, written so that it cannot overflow.
  if (*best_tip < rules.immutable_after_slots || *slot > *best_tip - rules.immutable_after_slots)
    return none("not_deep");
  return {CacheClass::slot_bound, *slot, ""};
}

// True if the comma-separated `list` has a member equal (case-insensitively) to one of
// `names`, ignoring anything after "=" (Cache-Control's private="x").
bool list_has(std::string_view list, std::initializer_list<std::string_view> names) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view m = list.substr(0, comma);
    m = trim_ows(m.substr(0, m.find('=')));
    for (std::string_view n : names)
      if (iequals(m, n)) return true;
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return false;
}

// True if every member of Vary is Accept or Accept-Encoding (or empty).
bool vary_ok(std::string_view list) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view m = trim_ows(list.substr(0, comma));
    if (!m.empty() && !iequals(m, "accept") && !iequals(m, "accept-encoding")) return false;
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return true;
}

}  // namespace

ReqFacts req_facts(std::span<const HeaderView> headers) {
  ReqFacts r;
  for (const HeaderView& h : headers) {
    if (iequals(h.name, "range"))
      r.range = true;
    else if (iequals(h.name, "if-match"))
      r.if_match = true;
    else if (iequals(h.name, "if-range"))
      r.if_range = true;
    else if (iequals(h.name, "if-modified-since"))
      r.if_modified_since = true;
    else if (iequals(h.name, "if-none-match"))
      r.if_none_match = true;
    else if (iequals(h.name, "authorization"))
      r.authorization = true;
    else if (iequals(h.name, "cookie"))
      r.cookie = true;
    else if (iequals(h.name, "upgrade"))
      r.upgrade = true;
    else if (iequals(h.name, "expect"))
      r.expect = true;
    else if (iequals(h.name, "accept") && r.accept.empty())
      r.accept = h.value;
    else if (iequals(h.name, "accept-encoding") && r.accept_encoding.empty())
      r.accept_encoding = h.value;
  }
  return r;
}

CacheVerdict classify(const CacheRules& rules, std::string_view method, std::string_view path,
                      std::string_view query, const ReqFacts& req,
                      std::optional<uint64_t> best_tip) {
  if (method != "GET" && method != "HEAD") return none("method");
  if (req.range) return none("range");
  if (req.if_match || req.if_range || req.if_modified_since) return none("conditional");
  if (req.has_body || req.upgrade) return none("body");
  CacheVerdict v = none("no_rule");
  if (rules.kupo) {
    // Kupo reads neither Authorization nor Cookie, so they do not vary its answers.
    v = kupo_verdict(rules, path, query, best_tip);
    if (v.cacheable()) return v;
  }
  if (rules.max_age_ms == 0) return v;
  for (const std::string& p : rules.prefixes) {
    if (!prefix_matches(p, path)) continue;
    // An operator's backend may answer per user: credentials rule a prefix rule out.
    if (req.authorization || req.cookie) return none("credentials");
    return {CacheClass::max_age, 0, ""};
  }
  return v;
}

AnswerFacts answer_facts(std::span<const HeaderView> headers) {
  AnswerFacts a;
  auto take = [&](std::string_view& field, std::string_view value, bool& seen) {
    if (seen) a.repeated = true;
    seen = true;
    field = value;
  };
  bool ce = false, cc = false, vary = false;
  for (const HeaderView& h : headers) {
    if (iequals(h.name, "content-encoding"))
      take(a.content_encoding, h.value, ce);
    else if (iequals(h.name, "cache-control"))
      take(a.cache_control, h.value, cc);
    else if (iequals(h.name, "vary"))
      take(a.vary, h.value, vary);
    else if (iequals(h.name, "access-control-allow-origin"))
      take(a.acao, h.value, a.acao_present);
    else if (iequals(h.name, "set-cookie"))
      a.set_cookie = true;
    else if (iequals(h.name, "x-most-recent-checkpoint")) {
      if (a.checkpoint) a.repeated = true;
      a.checkpoint = parse_slot(trim_ows(h.value));
      if (!a.checkpoint) a.repeated = true;  // unreadable: do not guess
    }
  }
  return a;
}

bool is_null_body(std::string_view body) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!body.empty() && ws(body.front())) body.remove_prefix(1);
  while (!body.empty() && ws(body.back())) body.remove_suffix(1);
  return body == "null";
}

StoreCheck storable(const AnswerFacts& a, const CacheVerdict& verdict, const CacheRules& rules) {
  auto no = [](const char* why) { return StoreCheck{false, why}; };
  if (!verdict.cacheable()) return no("status");
  if (a.status != 200 || !a.get) return no("status");
  if (is_null_body(a.body)) return no("null");
  if (a.body.size() > kMaxEntryBytes || a.body.size() > a.budget) return no("too_large");
  if (a.repeated) return no("headers");
  if (!a.content_encoding.empty() && !iequals(trim_ows(a.content_encoding), "identity"))
    return no("encoded");
  if (a.set_cookie || list_has(a.cache_control, {"no-store", "private"})) return no("private");
  if (!vary_ok(a.vary)) return no("vary");
  if (a.acao_present && trim_ows(a.acao) != "*") return no("cors");
  if (!a.producer_healthy) return no("producer");
  if (verdict.kind == CacheClass::slot_bound) {
    // The producer itself must be deep past the slot: a lagging backend's answer (an
    // empty list for a slot it has not reached) must never be stored.
    if (!a.checkpoint || *a.checkpoint < rules.immutable_after_slots ||
        verdict.slot > *a.checkpoint - rules.immutable_after_slots)
      return no("not_deep");
  }
  return {true, ""};
}

}  // namespace lb

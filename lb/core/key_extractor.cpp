#include "lb/core/key_extractor.h"

#include <optional>

#include "lb/core/cip19.h"

namespace lb {
namespace {

// Every helper below works on views of the request so that the path, cookie, header and
// client-IP extractors never touch the heap; only address decoding builds a string.

struct PathMatch {
  std::string_view token;
  std::string_view rest;  // from the '/' after the token, or the "?query"/empty tail
  bool needs_slash = false;
};

// Matches `/prefix/<token>[/rest][?query]`: the token is the segment right after the
// prefix, cut at '/', '?' or the end, and must be non-empty. A prefix written without
// its trailing slash ("/s") still requires one ("/s/<token>"), so "/sx/…" never matches.
std::optional<PathMatch> match_path(std::string_view target, std::string_view prefix) {
  if (prefix.empty() || !target.starts_with(prefix)) return std::nullopt;
  std::string_view after = target.substr(prefix.size());
  if (prefix.back() != '/') {
    if (!after.starts_with('/')) return std::nullopt;
    after.remove_prefix(1);
  }
  const size_t end = after.find_first_of("/?");
  PathMatch m;
  m.token = after.substr(0, end);
  if (m.token.empty()) return std::nullopt;
  m.rest = end == std::string_view::npos ? std::string_view{} : after.substr(end);
  m.needs_slash = m.rest.empty() || m.rest.front() == '?';
  return m;
}

// The value of the first cookie named `name` (exact, case-sensitive as RFC 6265 compares
// names) with a non-empty value, across every Cookie header. Pairs are `a=b; c=d` with
// optional whitespace; a DQUOTE-wrapped value is unwrapped.
std::string_view find_cookie(std::span<const HeaderView> headers, std::string_view name) {
  if (name.empty()) return {};
  for (const HeaderView& h : headers) {
    if (!iequals(h.name, "cookie")) continue;
    std::string_view list = h.value;
    while (!list.empty()) {
      const size_t semi = list.find(';');
      std::string_view pair = list.substr(0, semi);
      list = semi == std::string_view::npos ? std::string_view{} : list.substr(semi + 1);
      const size_t eq = pair.find('=');
      if (eq == std::string_view::npos) continue;
      if (trim_ows(pair.substr(0, eq)) != name) continue;
      std::string_view value = trim_ows(pair.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      if (!value.empty()) return value;
    }
  }
  return {};
}

// The first header named `name` (case-insensitive) whose value is non-empty once trimmed.
std::string_view find_header_value(std::span<const HeaderView> headers, std::string_view name) {
  if (name.empty()) return {};
  for (const HeaderView& h : headers) {
    if (!iequals(h.name, name)) continue;
    const std::string_view v = trim_ows(h.value);
    if (!v.empty()) return v;
  }
  return {};
}

// The part of a client address that identifies a user: IPv4 as is; an IPv4-mapped IPv6
// address (::ffff:a.b.c.d, RFC 4291 §2.5.5.2) as the IPv4 it maps, so dual-stack sockets
// agree with plain IPv4 ones; other IPv6 by their /64, since privacy extensions (RFC 8981)
// rotate the interface half while one household keeps its prefix.
std::string_view ip_material(std::span<const uint8_t> ip) {
  const char* p = reinterpret_cast<const char*>(ip.data());
  if (ip.size() == 4) return {p, 4};
  if (ip.size() != 16) return {};
  bool mapped = ip[10] == 0xff && ip[11] == 0xff;
  for (size_t i = 0; mapped && i < 10; ++i) mapped = ip[i] == 0;
  return mapped ? std::string_view{p + 12, 4} : std::string_view{p, 8};
}

}  // namespace

// Runs the extractors in order and keeps the first key. The path token prefix is stripped
// from the forwarded target by the first path extractor that matches, even if another
// extractor supplied the key, because a backend never knows the /s/<token> prefix. The
// address extractor reads the forwarded path so a token can never pass for an address.
Extraction extract_key(std::span<const ExtractorSpec> extractors, const RequestView& req) {
  Extraction out;
  out.forward_target = req.target;
  for (const ExtractorSpec& spec : extractors) {
    if (spec.from != KeySource::path) continue;
    if (auto m = match_path(req.target, spec.arg)) {
      out.forward_target = m->rest;
      out.forward_needs_slash = m->needs_slash;
      break;
    }
  }

  for (const ExtractorSpec& spec : extractors) {
    std::string_view material;
    std::optional<std::string> address;  // owns the material of an address key
    switch (spec.from) {
      case KeySource::path:
        if (auto m = match_path(req.target, spec.arg)) material = m->token;
        break;
      case KeySource::cookie:
        material = find_cookie(req.headers, spec.arg);
        break;
      case KeySource::header:
        material = find_header_value(req.headers, spec.arg);
        break;
      case KeySource::address:
        address = stake_key_in_path(out.forward_target);
        if (address) material = *address;
        break;
      case KeySource::client_ip:
        material = ip_material(req.client_ip);
        break;
    }
    if (material.empty()) continue;
    out.found = true;
    out.source = spec.from;
    out.key = make_session_key(spec.from, material);
    return out;
  }
  return out;
}

}  // namespace lb

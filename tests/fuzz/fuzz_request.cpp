// Fuzz target: a client's byte stream through corral's request path. The request parser
// is driven as lb/net/client_conn.cpp drives it (parser_driver.h), once in one read and
// once in reads drawn from the input's hash, and both runs must agree. Each head is then
// handled as lb/net/client_request.cpp handles it (key extraction, routing with a Kupo
// route, rewriting with an injected secret header) and the head corral would send must
// parse back to the same method and target, with the secret once, no hop-by-hop fields
// and the client's address last in X-Forwarded-For.
#include <xxhash.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "lb/core/key_extractor.h"
#include "lb/core/router.h"
#include "lb/http/head_writer.h"
#include "tests/fuzz/parser_driver.h"

namespace {

using lb::HeaderView;
using lb::iequals;

const std::vector<lb::ExtractorSpec>& extractors() {
  static const std::vector<lb::ExtractorSpec> x = {
      {lb::KeySource::path, "/s/"},         {lb::KeySource::cookie, "session"},
      {lb::KeySource::header, "x-session"}, {lb::KeySource::address, ""},
      {lb::KeySource::client_ip, ""},
  };
  return x;
}

const std::vector<lb::RouteSpec>& routes() {
  static const std::vector<lb::RouteSpec> r = [] {
    std::vector<lb::RouteSpec> v(3);
    v[0].prefix = "/kupo/";
    v[0].strip_prefix = true;
    v[0].kupo = true;
    v[1].prefix = "/ogmios";
    v[1].strip_prefix = true;
    v[1].methods = {"GET", "POST"};
    v[2].prefix = "/";
    v[2].kupo = true;
    return v;
  }();
  return r;
}

const std::array<lb::http::InjectedHeader, 1> kInject = {{{"project_id", "secret"}}};
constexpr std::array<uint8_t, 4> kClientIp = {203, 0, 113, 7};
constexpr std::string_view kClientIpText = "203.0.113.7";

bool within(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

// Mirrors ClientConn::check_head: what corral refuses before it would write a head.
bool corral_forwards(const lb::http::MessageParser& p) {
  if (p.upgrade() || p.method() == "CONNECT") return false;
  int te = 0;
  for (const HeaderView& h : p.headers()) {
    if (iequals(h.name, "upgrade")) return false;
    if (!iequals(h.name, "transfer-encoding")) continue;
    std::string_view v = h.value;
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    if (++te > 1 || !iequals(v, "chunked") || !p.chunked()) return false;
  }
  bool http10 = p.version_major() == 1 && p.version_minor() == 0;
  return !(te > 0 && http10);
}

// One request head as corral handles it, and the head it would send checked by parsing
// it back.
void check_forwarded_head(const lb::http::MessageParser& p) {
  lb::RequestView view{p.method(), p.target(), p.headers(), kClientIp};
  lb::Extraction ex = lb::extract_key(extractors(), view);
  FUZZ_CHECK(ex.found, "the client_ip extractor always yields a key");
  FUZZ_CHECK(within(ex.forward_target, p.target()), "forward_target is part of the target");
  if (!corral_forwards(p)) return;
  std::string scratch;
  std::string_view target = ex.forward_target;
  if (ex.forward_needs_slash) target = scratch.assign("/").append(target);
  lb::RouteMatch m = lb::match_route(routes(), p.method(), target);
  if (m.admission != lb::Admission::ok) return;
  FUZZ_CHECK(within(m.forward, target), "the forwarded path is part of the target");

  lb::http::RequestHead head;
  head.method = p.method();
  head.path = m.forward;
  head.path_needs_slash = m.needs_slash;
  head.http10 = p.version_major() == 1 && p.version_minor() == 0;
  head.headers = p.headers();
  head.client_ip = kClientIpText;
  head.inject = kInject;
  head.chunked = p.chunked();
  std::string out;
  lb::http::write_request_head(out, head);
  lb::http::MessageParser back(lb::http::MessageParser::Kind::request, out.size());
  if (!fuzz::parse_back(back, p, out, "a written request head parses back whole")) return;
  FUZZ_CHECK(back.method() == p.method(), "the method is forwarded");
  std::string want = std::string(m.needs_slash ? "/" : "").append(m.forward);
  FUZZ_CHECK(back.target() == want, "the target is forwarded as routed");
  FUZZ_CHECK(back.chunked() == p.chunked(), "chunked bodies stay chunked");
  int secrets = 0, xffs = 0, tes = 0;
  for (const HeaderView& h : back.headers()) {
    FUZZ_CHECK(!iequals(h.name, "connection") && !iequals(h.name, "keep-alive") &&
                   !iequals(h.name, "proxy-connection") && !iequals(h.name, "te") &&
                   !iequals(h.name, "upgrade"),
               "no hop-by-hop field is forwarded");
    if (iequals(h.name, "project_id")) {
      ++secrets;
      FUZZ_CHECK(h.value == "secret", "the injected value replaces the client's");
    }
    if (iequals(h.name, "x-forwarded-for")) {
      ++xffs;
      FUZZ_CHECK(h.value.ends_with(kClientIpText), "X-Forwarded-For ends with the client");
    }
    if (iequals(h.name, "transfer-encoding")) ++tes;
  }
  FUZZ_CHECK(secrets == 1, "the injected header is sent exactly once");
  FUZZ_CHECK(xffs == 1, "one X-Forwarded-For");
  FUZZ_CHECK(tes == (p.chunked() ? 1 : 0), "a re-framed body has one Transfer-Encoding");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const uint64_t seed = XXH3_64bits(data, size);
  // corral's default max_header_bytes, or a small cap so that 431 paths are reached.
  const size_t max_head = (seed & 3) == 0 ? 64 + (seed >> 2) % 512 : 16384;
  const bool reset_between = (seed & 4) == 0;
  auto hook = [](const lb::http::MessageParser& p, std::string_view) {
    check_forwarded_head(p);
    return false;
  };
  using Kind = lb::http::MessageParser::Kind;
  fuzz::ParseRun whole = fuzz::drive(Kind::request, in, max_head, {}, reset_between, hook);
  std::vector<size_t> reads = fuzz::read_sizes(seed, size);
  fuzz::ParseRun split = fuzz::drive(Kind::request, in, max_head, reads, reset_between, hook);
  fuzz::check_same(whole, split);
  return 0;
}

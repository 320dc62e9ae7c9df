// Fuzz target: session key extraction (lb/core/key_extractor) and routing with the Kupo
// write guard (lb/core/router) on a request given as text lines:
//   METHOD \n TARGET \n PATH-PREFIX COOKIE-NAME HEADER-NAME ROUTE-PREFIX \n
//   header lines "Name: value"...
// Checks: extraction is deterministic and its views stay inside the target; a matched
// route's prefix matches; an admitted request on a Kupo route is never a Kupo write.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lb/core/cip19.h"
#include "lb/core/key_extractor.h"
#include "lb/core/router.h"
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

bool within(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view method = next_line(in);
  std::string_view target = next_line(in);
  std::string_view args = next_line(in);
  std::string path_prefix(next_word(args)), cookie(next_word(args)), header(next_word(args));
  std::string route_prefix(next_word(args));
  std::vector<lb::HeaderView> headers;
  while (!in.empty() && headers.size() < 64) {
    std::string_view line = next_line(in);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (value.starts_with(' ')) value.remove_prefix(1);
    headers.push_back({line.substr(0, colon), value});
  }

  std::vector<lb::ExtractorSpec> extractors;
  if (!path_prefix.empty()) extractors.push_back({lb::KeySource::path, path_prefix});
  extractors.push_back({lb::KeySource::cookie, cookie});
  extractors.push_back({lb::KeySource::header, header});
  extractors.push_back({lb::KeySource::address, ""});
  const std::array<uint8_t, 16> ip6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  lb::RequestView req{method, target, headers, std::span<const uint8_t>(ip6.data(), size & 16)};
  lb::Extraction a = lb::extract_key(extractors, req);
  lb::Extraction b = lb::extract_key(extractors, req);
  FUZZ_CHECK(a.found == b.found && a.key == b.key, "extraction is deterministic");
  FUZZ_CHECK(within(a.forward_target, target), "forward_target is part of the target");
  if (a.found) FUZZ_CHECK(!a.key.empty(), "a found key is not empty");
  if (auto stake = lb::stake_key_in_path(target))
    FUZZ_CHECK(stake->size() == 30, "stake key material is 30 bytes");

  // Routes as config/read_listeners.cpp admits them: prefixes start with '/'.
  std::vector<lb::RouteSpec> routes(3);
  routes[0].prefix = route_prefix.starts_with('/') ? route_prefix : "/kupo";
  routes[0].strip_prefix = (size & 1) != 0;
  routes[0].kupo = true;
  routes[1].prefix = "/ogmios/";
  routes[1].strip_prefix = true;
  routes[1].methods = {"GET", "POST"};
  routes[2].prefix = "/";
  routes[2].kupo = (size & 2) != 0;
  std::string scratch;
  std::string_view routed = a.forward_target;
  if (a.forward_needs_slash) routed = scratch.assign("/").append(routed);
  lb::RouteMatch m = lb::match_route(routes, method, routed);
  if (m.admission == lb::Admission::no_route) return 0;
  FUZZ_CHECK(m.route != nullptr, "a matched request names its route");
  FUZZ_CHECK(lb::prefix_matches(m.route->prefix, routed), "the route's prefix matches");
  FUZZ_CHECK(within(m.forward, routed), "the forwarded path is part of the target");
  if (m.admission == lb::Admission::ok && m.route->kupo && !m.route->allow_writes) {
    std::string_view path = m.forward.substr(0, m.forward.find('?'));
    std::string slashed = std::string(m.needs_slash ? "/" : "").append(path);
    FUZZ_CHECK(!lb::is_kupo_write(method, slashed), "no Kupo write passes a Kupo route");
  }
  return 0;
}

// Fuzz target: the request-target normaliser (lb/core/path_normalizer) and the Kupo write
// guard on its output (lb/core/router). Checks: the normal form is never longer, starts
// with '/', is a fixed point (normalising it again changes nothing), has no empty, "." or
// ".." segment and no escape of an unreserved character left; and the guard agrees with a
// model of Kupo's router on the normal form (segments decoded, leading "v1" dropped).
#include <cstdint>
#include <string>
#include <string_view>

#include "lb/core/path_normalizer.h"
#include "lb/core/router.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

bool unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // the normal form keeps escapes in upper case
}

// Kupo's reading: the first segment after any leading "v1" segments, percent-decoded.
std::string kupo_first_segment(std::string_view path) {
  std::string seg;
  size_t at = 1;
  while (true) {
    size_t end = path.find('/', at);
    std::string_view s = path.substr(at, end == std::string_view::npos ? path.npos : end - at);
    if (s != "v1" || end == std::string_view::npos) {
      for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
          seg.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
          i += 2;
        } else {
          seg.push_back(s[i]);
        }
      }
      return seg;
    }
    at = end + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string buf(reinterpret_cast<const char*>(data), size);
  lb::NormalizedTarget t = lb::normalize_target(buf.data(), buf.size());
  if (t.error) return 0;
  FUZZ_CHECK(t.origin.size() <= size, "the normal form is never longer");
  FUZZ_CHECK(!t.origin.empty() && t.origin[0] == '/', "an origin-form target starts with '/'");
  const std::string_view path = t.origin.substr(0, t.origin.find('?'));
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '/') {
      std::string_view rest = path.substr(i + 1);
      std::string_view seg = rest.substr(0, rest.find('/'));
      FUZZ_CHECK(!(seg.empty() && i + 1 < path.size()), "no empty segment but a last one");
      FUZZ_CHECK(seg != "." && seg != "..", "no dot segment");
    }
    if (path[i] == '%') {
      int hi = i + 1 < path.size() ? hex(path[i + 1]) : -1;
      int lo = i + 2 < path.size() ? hex(path[i + 2]) : -1;
      FUZZ_CHECK(hi >= 0 && lo >= 0, "escapes are whole and upper case");
      FUZZ_CHECK(!unreserved(static_cast<char>(hi * 16 + lo)), "unreserved bytes are decoded");
    }
  }
  std::string again(t.origin);
  lb::NormalizedTarget t2 = lb::normalize_target(again.data(), again.size());
  FUZZ_CHECK(!t2.error && t2.origin == t.origin, "the normal form is a fixed point");

  const std::string first = kupo_first_segment(path);
  for (const char* method : {"PUT", "DELETE", "GET"}) {
    const std::string_view m = method;
    const bool kupo_write =
        (first == "patterns" && m != "GET") || (first == "matches" && m == "DELETE");
    FUZZ_CHECK(lb::is_kupo_write(m, path) == kupo_write, "the guard reads paths as Kupo does");
  }
  return 0;
}

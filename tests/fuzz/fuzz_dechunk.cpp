// Fuzz target: lb/http/dechunk, which decodes the chunked health answers of backends
// (lb/net/http_probe.cpp). Whatever the bytes, it must return (never throw or read out of
// bounds); what it accepts must be no larger than its input, and re-framing the decoded
// body in chunks of any size must decode to the same bytes.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "lb/http/dechunk.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  std::string out;
  if (!lb::http::dechunk(raw, out)) return 0;
  FUZZ_CHECK(out.size() <= raw.size(), "a decoded body is no larger than its framing");
  // Re-frame in chunks whose size comes from the input, then decode again.
  const size_t step = 1 + (size ? data[0] % 17 : 0);
  std::string framed;
  char line[32];
  for (size_t at = 0; at < out.size(); at += step) {
    std::string_view piece = std::string_view(out).substr(at, step);
    std::snprintf(line, sizeof line, "%zx;ext=1\r\n", piece.size());
    framed.append(line).append(piece).append("\r\n");
  }
  framed.append("0\r\nTrailer: x\r\n\r\n");
  std::string again;
  FUZZ_CHECK(lb::http::dechunk(framed, again), "a well-framed body decodes");
  FUZZ_CHECK(again == out, "re-framing keeps the bytes");
  return 0;
}

// Fuzz target: the PROXY protocol header parser (lb/core/proxy_header), which reads the
// first bytes of every connection on a `proxy_protocol: true` listener. Checks: a header
// is never longer than the input nor than the bounds; need_more means the header has not
// ended (so the caller may consume those bytes); the same header alone parses the same;
// each of its proper prefixes asks for more; a bad input says why.
#include <cstdint>
#include <cstring>

#include "lb/core/proxy_header.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using lb::ProxyStatus;
  const lb::ProxyParse p = lb::parse_proxy_header(data, size);
  if (p.status == ProxyStatus::bad) {
    FUZZ_CHECK(p.error != nullptr, "a bad header says why");
    return 0;
  }
  if (p.status == ProxyStatus::need_more) {
    FUZZ_CHECK(size < lb::kProxyHeaderMax, "need_more only below the bound");
    return 0;
  }
  FUZZ_CHECK(p.consumed > 0 && p.consumed <= size, "consumed within the input");
  FUZZ_CHECK(p.consumed <= (p.version == 1 ? lb::kProxyV1Max : lb::kProxyHeaderMax),
             "consumed within the bound");
  FUZZ_CHECK(p.local == (p.src_len == 0), "an address unless local");
  FUZZ_CHECK(p.src_len == 0 || p.src_len == 4 || p.src_len == 16, "address length");
  const lb::ProxyParse alone = lb::parse_proxy_header(data, p.consumed);
  FUZZ_CHECK(alone.status == ProxyStatus::ok && alone.consumed == p.consumed &&
                 alone.local == p.local && alone.src_len == p.src_len &&
                 alone.src_port == p.src_port && std::memcmp(alone.src, p.src, 16) == 0,
             "the header alone parses the same");
  for (size_t n = 0; n < p.consumed; ++n)
    FUZZ_CHECK(lb::parse_proxy_header(data, n).status == ProxyStatus::need_more,
               "a proper prefix of a header asks for more");
  return 0;
}

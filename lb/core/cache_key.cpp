#include "lb/core/cache_key.h"

#include <xxhash.h>

#include "lb/core/header_view.h"

namespace lb {

namespace {
void append_lower(std::string& out, std::string_view v) {
  for (char c : trim_ows(v)) out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
}
}  // namespace

void canonical_request(std::string& out, std::string_view path, std::string_view query,
                       std::string_view accept, std::string_view accept_encoding) {
  out.clear();
  out.append(path);
  if (!query.empty()) {
    out.push_back('?');
    out.append(query);
  }
  out.push_back('\n');
  append_lower(out, accept);
  out.push_back('\n');
  append_lower(out, accept_encoding);
}

CacheKey cache_key(uint64_t pool_salt, std::string_view canonical) {
  XXH128_hash_t h = XXH3_128bits_withSeed(canonical.data(), canonical.size(), pool_salt);
  return {h.low64, h.high64};
}

}  // namespace lb

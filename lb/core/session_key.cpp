#include "lb/core/session_key.h"

#include <xxhash.h>

namespace lb {

SessionKey make_session_key(KeySource source, std::string_view bytes) {
  XXH128_hash_t h =
      XXH3_128bits_withSeed(bytes.data(), bytes.size(), static_cast<uint64_t>(source));
  SessionKey k{h.low64, h.high64};
  if (k.empty()) k.lo = 1;  // the all-zero key marks an empty slot in the table
  return k;
}

SessionKey pool_session_key(SessionKey user, uint64_t pool_salt) {
  XXH128_hash_t h = XXH3_128bits_withSeed(&user, sizeof user, pool_salt);
  SessionKey k{h.low64, h.high64};
  if (k.empty()) k.lo = 1;
  return k;
}

uint64_t name_hash(std::string_view name) { return XXH3_64bits(name.data(), name.size()); }

}  // namespace lb

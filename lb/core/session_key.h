#pragma once
// A user's identity as the session table sees it: a 128-bit hash of the key material.
// Storing a hash instead of the bytes keeps every pin the same small size whatever the
// key (a 28-byte stake credential, a 40-byte token, an IP); 128 bits make a collision
// between two users' keys negligible (~n^2 / 2^129).
#include <cstdint>
#include <string_view>

namespace lb {

struct SessionKey {
  uint64_t lo = 0;
  uint64_t hi = 0;
  friend bool operator==(const SessionKey&, const SessionKey&) = default;
  bool empty() const { return lo == 0 && hi == 0; }
};

// Where a key came from; part of the hashed material so that a cookie "abc" and a
// header "abc" are different users.
enum class KeySource : uint8_t { path = 1, cookie, header, address, client_ip };

// Hashes (source, bytes) into a SessionKey with XXH3-128.
SessionKey make_session_key(KeySource source, std::string_view bytes);

// The key of one user within one pool: pins are per pool (a user's Kupo and Ogmios pins
// are independent), so the pool's salt is folded in.
SessionKey pool_session_key(SessionKey user, uint64_t pool_salt);

// A stable 64-bit hash of a name (pool or backend), used as salt and as selector identity.
uint64_t name_hash(std::string_view name);

}  // namespace lb

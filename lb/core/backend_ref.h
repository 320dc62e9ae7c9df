#pragma once
// A backend's identity on the data path: a small stable integer interned from its
// "pool/backend" name, so pins stay valid across reloads and fit in a few bytes.
#include <cstdint>

namespace lb {

using BackendRef = uint32_t;

// Refs are below this; the value itself means "no backend".
inline constexpr BackendRef kMaxBackends = 4096;
inline constexpr BackendRef kNoBackend = kMaxBackends;

}  // namespace lb

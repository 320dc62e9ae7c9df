#pragma once
// CIP-19 Cardano addresses: bech32 decoding (no 90-character limit, since Shelley
// addresses are longer) and the stake credential of base addresses, so that every
// address of one wallet maps to one user.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lb {

struct Bech32 {
  std::string hrp;
  std::vector<uint8_t> data;  // 8-bit bytes after regrouping the 5-bit words
};

// Decodes a bech32 string (BIP-173 checksum, not bech32m); nullopt if invalid.
std::optional<Bech32> bech32_decode(std::string_view s);

// The length of bech32_encode's output for an HRP of hrp_len chars and nbytes bytes.
constexpr size_t bech32_encoded_size(size_t hrp_len, size_t nbytes) {
  return hrp_len + 1 + (nbytes * 8 + 4) / 5 + 6;
}
// Encodes bytes under a lower-case HRP (BIP-173 bech32, no length limit) into `out`,
// which must hold bech32_encoded_size() chars; returns that size. Allocates nothing
// (the load generator writes a fresh address per request).
size_t bech32_encode(std::string_view hrp, std::span<const uint8_t> bytes, char* out);
std::string bech32_encode(std::string_view hrp, std::span<const uint8_t> bytes);

// The stake part of a Cardano address as key material: for base addresses (header
// types 0-3, bytes 29..57) and reward addresses (types 14-15, bytes 1..29) returns
// 30 bytes: network id, a 0/1 script flag, then the 28-byte credential. Every other
// shape (enterprise, pointer, Byron, malformed) returns nullopt.
std::optional<std::string> stake_key_material(std::string_view bech32_address);

// Finds the first Cardano address (addr1…, addr_test1…, stake1…, stake_test1…) among
// the '/'-separated segments of a path and returns its stake key material.
std::optional<std::string> stake_key_in_path(std::string_view path);

}  // namespace lb

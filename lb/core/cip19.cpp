#include "lb/core/cip19.h"

#include <array>
#include <cstddef>

namespace lb {
namespace {

// BIP-173 data alphabet; kReverse maps an ASCII byte back to its 5-bit value, -1 if invalid.
constexpr std::string_view kCharset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

constexpr std::array<int8_t, 128> make_reverse() {
  std::array<int8_t, 128> r{};
  for (auto& v : r) v = -1;
  for (size_t i = 0; i < kCharset.size(); ++i) {
    const char c = kCharset[i];
    r[static_cast<unsigned char>(c)] = static_cast<int8_t>(i);
    if (c >= 'a' && c <= 'z') r[static_cast<unsigned char>(c - 32)] = static_cast<int8_t>(i);
  }
  return r;
}
constexpr std::array<int8_t, 128> kReverse = make_reverse();

constexpr char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

// One step of the BIP-173 checksum: the BCH code's generator polynomial over GF(32).
constexpr uint32_t polymod_step(uint32_t chk, uint32_t value) {
  const uint32_t top = chk >> 25;
  chk = ((chk & 0x1ffffff) << 5) ^ value;
  if (top & 1) chk ^= 0x3b6a57b2;
  if (top & 2) chk ^= 0x26508e6d;
  if (top & 4) chk ^= 0x1ea119fa;
  if (top & 8) chk ^= 0x3d4233dd;
  if (top & 16) chk ^= 0x2a1462b3;
  return chk;
}

// BIP-173 limits the HRP to 83 characters; only the overall 90-character limit is
// dropped, because CIP-19 says Cardano does not impose it.
constexpr size_t kMaxHrp = 83;
constexpr size_t kChecksumChars = 6;

// Validates `s` as bech32 (BIP-173: printable ASCII, no mixed case, last '1' separates a
// 1..83-character HRP from at least six data characters, checksum constant 1) and
// streams the data part, regrouped from 5-bit words to bytes, into `sink(uint8_t)`; a
// sink returning false aborts. Returns false on any violation, including regrouping
// padding of 5+ bits or non-zero padding bits. Sets `hrp` to a view of `s` (original
// case). Allocates nothing, so callers can decode into fixed buffers.
template <class Sink>
bool bech32_walk(std::string_view s, std::string_view& hrp, Sink&& sink) {
  bool has_lower = false, has_upper = false;
  size_t sep = std::string_view::npos;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 33 || c > 126) return false;
    has_lower |= (c >= 'a' && c <= 'z');
    has_upper |= (c >= 'A' && c <= 'Z');
    if (c == '1') sep = i;
  }
  if (has_lower && has_upper) return false;
  if (sep == std::string_view::npos || sep == 0 || sep > kMaxHrp) return false;
  if (s.size() - sep - 1 < kChecksumChars) return false;
  hrp = s.substr(0, sep);
  const std::string_view data = s.substr(sep + 1);

  // Checksum over the expanded HRP (high bits, 0, low bits) and every data word.
  uint32_t chk = 1;
  for (char c : hrp) chk = polymod_step(chk, static_cast<unsigned char>(lower(c)) >> 5);
  chk = polymod_step(chk, 0);
  for (char c : hrp) chk = polymod_step(chk, static_cast<unsigned char>(lower(c)) & 31);
  for (char c : data) {
    const int8_t v = kReverse[static_cast<unsigned char>(c)];  // c <= 126 checked above
    if (v < 0) return false;
    chk = polymod_step(chk, static_cast<uint32_t>(v));
  }
  if (chk != 1) return false;  // 1 is bech32; bech32m (BIP-350) would be 0x2bc830a3

  // Regroup 5 -> 8 bits without padding (BIP-173 reference convertbits, pad=false).
  uint32_t acc = 0;
  unsigned bits = 0;
  for (char c : data.substr(0, data.size() - kChecksumChars)) {
    acc = ((acc << 5) | static_cast<uint32_t>(kReverse[static_cast<unsigned char>(c)])) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      if (!sink(static_cast<uint8_t>(acc >> bits))) return false;
    }
  }
  return bits < 5 && ((acc << (8 - bits)) & 0xff) == 0;
}

bool iprefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (lower(s[i]) != prefix[i]) return false;
  return true;
}

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && iprefix(a, b);
}

// CIP-19 payload sizes: header + two 28-byte hashes, or header + one.
constexpr size_t kHashLen = 28;
constexpr size_t kBaseLen = 1 + 2 * kHashLen;  // 57
constexpr size_t kRewardLen = 1 + kHashLen;    // 29

}  // namespace

size_t bech32_encode(std::string_view hrp, std::span<const uint8_t> bytes, char* out) {
  static constexpr char kCharset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
  uint32_t chk = 1;
  for (char c : hrp) chk = polymod_step(chk, static_cast<unsigned char>(c) >> 5);
  chk = polymod_step(chk, 0);
  for (char c : hrp) chk = polymod_step(chk, static_cast<unsigned char>(c) & 31);
  size_t n = hrp.copy(out, hrp.size());
  out[n++] = '1';
  auto emit = [&](uint32_t word) {
    chk = polymod_step(chk, word);
    out[n++] = kCharset[word];
  };
  // Regroup 8-bit bytes into 5-bit words, the last padded with zero bits.
  uint32_t acc = 0;
  unsigned bits = 0;
  for (uint8_t b : bytes) {
    acc = ((acc << 8) | b) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      emit((acc >> bits) & 31);
    }
  }
  if (bits > 0) emit((acc << (5 - bits)) & 31);
  for (size_t i = 0; i < kChecksumChars; ++i) chk = polymod_step(chk, 0);
  chk ^= 1;  // bech32's constant
  for (size_t i = 0; i < kChecksumChars; ++i) out[n++] = kCharset[(chk >> (5 * (5 - i))) & 31];
  return n;
}

std::string bech32_encode(std::string_view hrp, std::span<const uint8_t> bytes) {
  std::string out(bech32_encoded_size(hrp.size(), bytes.size()), '\0');
  out.resize(bech32_encode(hrp, bytes, out.data()));
  return out;
}

std::optional<Bech32> bech32_decode(std::string_view s) {
  Bech32 out;
  std::string_view hrp;
  out.data.reserve((s.size() * 5) / 8);
  if (!bech32_walk(s, hrp, [&](uint8_t b) {
        out.data.push_back(b);
        return true;
      }))
    return std::nullopt;
  out.hrp.reserve(hrp.size());
  for (char c : hrp) out.hrp.push_back(lower(c));
  return out;
}

// CIP-19 (Cardano addresses): the header's high nibble is the address type and the low
// nibble the network tag. Base addresses (types 0-3) carry the stake credential in bytes
// 29..57, key hash for types 0/1 and script hash for 2/3; reward addresses (14 key, 15
// script) carry it in bytes 1..29. The HRP must fit the type (CIP-5: addr/addr_test for
// payment addresses, stake/stake_test for reward addresses) and the network (the _test
// prefixes iff tag 0), so a mislabelled address is treated as malformed.
std::optional<std::string> stake_key_material(std::string_view bech32_address) {
  std::array<uint8_t, kBaseLen> buf;
  size_t n = 0;
  std::string_view hrp;
  if (!bech32_walk(bech32_address, hrp, [&](uint8_t b) {
        if (n == buf.size()) return false;  // longer than any address we accept
        buf[n++] = b;
        return true;
      }))
    return std::nullopt;
  if (n == 0) return std::nullopt;

  const unsigned type = buf[0] >> 4;
  const uint8_t network = buf[0] & 0x0f;
  const bool is_base = type <= 3;
  const bool is_reward = type == 14 || type == 15;
  if (!(is_base && n == kBaseLen) && !(is_reward && n == kRewardLen)) return std::nullopt;

  bool testnet_hrp;
  if (is_base && (iequal(hrp, "addr") || iequal(hrp, "addr_test")))
    testnet_hrp = hrp.size() > 4;
  else if (is_reward && (iequal(hrp, "stake") || iequal(hrp, "stake_test")))
    testnet_hrp = hrp.size() > 5;
  else
    return std::nullopt;
  if (testnet_hrp != (network == 0)) return std::nullopt;

  const bool script = is_base ? (type & 2) != 0 : type == 15;
  const size_t offset = is_base ? 1 + kHashLen : 1;
  std::string material;
  material.reserve(2 + kHashLen);
  material.push_back(static_cast<char>(network));
  material.push_back(script ? 1 : 0);
  material.append(reinterpret_cast<const char*>(buf.data() + offset), kHashLen);
  return material;
}

std::optional<std::string> stake_key_in_path(std::string_view path) {
  path = path.substr(0, path.find('?'));
  while (!path.empty()) {
    const size_t slash = path.find('/');
    const std::string_view seg = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
    // The cheap prefix test keeps every other segment (pattern, hex, name) off the decoder.
    if (iprefix(seg, "addr1") || iprefix(seg, "addr_test1") || iprefix(seg, "stake1") ||
        iprefix(seg, "stake_test1")) {
      if (auto m = stake_key_material(seg)) return m;
    }
  }
  return std::nullopt;
}

}  // namespace lb

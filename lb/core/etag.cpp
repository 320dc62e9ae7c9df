#include "lb/core/etag.h"

#include <xxhash.h>

#include "lb/core/header_view.h"

namespace lb {

namespace {

void put_hex64(char* out, uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i, v >>= 4) out[i] = kHex[v & 15];
}

// The opaque-tag of an entity-tag (quotes included), without a leading "W/".
std::string_view opaque(std::string_view tag) {
  if (tag.starts_with("W/")) tag.remove_prefix(2);
  return tag;
}

// etagc = %x21 / %x23-7E / obs-text (RFC 9110 §8.8.3).
bool etagc(unsigned char c) { return c == 0x21 || (c >= 0x23 && c != 0x7f); }

}  // namespace

std::string body_etag(std::string_view body) {
  XXH128_hash_t h = XXH3_128bits(body.data(), body.size());
  std::string out(kBodyEtagLen, '"');
  out[1] = 'c';
  out[2] = '1';
  out[3] = '-';
  put_hex64(out.data() + 4, h.high64);
  put_hex64(out.data() + 20, h.low64);
  return out;
}

bool if_none_match(std::string_view header_value, std::string_view etag) {
  std::string_view v = trim_ows(header_value);
  if (v == "*") return true;
  std::string_view want = opaque(trim_ows(etag));
  if (want.size() < 2 || want.front() != '"' || want.back() != '"') return false;
  size_t i = 0;
  while (i < v.size()) {
    // Skip separators: OWS and empty list members ("a, , b" is a valid #rule list).
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) ++i;
    if (i >= v.size()) break;
    size_t start = i;
    bool ok = true;
    if (v.substr(i).starts_with("W/")) i += 2;
    if (i < v.size() && v[i] == '"') {
      ++i;
      while (i < v.size() && etagc(static_cast<unsigned char>(v[i]))) ++i;
      if (i < v.size() && v[i] == '"') {
        ++i;
      } else {
        ok = false;
      }
    } else {
      ok = false;
    }
    std::string_view tag = v.substr(start, i - start);
    // After a tag only OWS and then a comma or the end may follow.
    while (ok && i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
    if (ok && i < v.size() && v[i] != ',') ok = false;
    if (ok && opaque(tag) == want) return true;
    if (!ok) {
      // Resynchronise at the next comma; this member is garbage.
      while (i < v.size() && v[i] != ',') ++i;
    }
  }
  return false;
}

}  // namespace lb

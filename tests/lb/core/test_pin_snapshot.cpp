#include <doctest.h>
#include <xxhash.h>

#include <cstring>
#include <string>
#include <vector>

#include "lb/core/pin_snapshot.h"

namespace {

using lb::decode_pins;
using lb::DecodeResult;
using lb::encode_pins;
using lb::PinRecord;

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::vector<PinRecord> make_pins(size_t n, uint64_t seed) {
  const char* names[] = {"kupo/kupo-1", "kupo/kupo-2", "ogmios/o1", "blockfrost/bf"};
  std::vector<PinRecord> pins;
  for (size_t i = 0; i < n; ++i) {
    PinRecord p;
    p.key = {splitmix(seed), splitmix(seed)};
    p.backend = names[splitmix(seed) % 4];
    p.last_slot = splitmix(seed);
    p.last_seen_unix_ms = 1'700'000'000'000 + splitmix(seed) % 3600'000;
    pins.push_back(p);
  }
  return pins;
}

void put_u32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

void put_u64(std::string& s, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// The same pins as an older version wrote them: no daily counts (the empty quota section's
// 4-byte count cut out), the version field set, the checksum made again.
std::string as_version(std::string v3, uint32_t version) {
  v3.erase(v3.size() - 12, 4);
  put_u32(v3, 10, version);
  put_u64(v3, v3.size() - 8, XXH3_64bits(v3.data(), v3.size() - 8));
  return v3;
}

}  // namespace

TEST_CASE("pin snapshot: 10k records round-trip, names stored once") {
  std::vector<PinRecord> pins = make_pins(10'000, 42);
  std::string bytes = encode_pins(pins);
  // magic + version + names (4 distinct) + count + records + quota count + checksum
  size_t names = 0;
  for (const char* n : {"kupo/kupo-1", "kupo/kupo-2", "ogmios/o1", "blockfrost/bf"})
    names += 4 + std::strlen(n);
  CHECK(bytes.size() == 10 + 4 + 4 + names + 8 + 10'000 * 36 + 4 + 8);
  CHECK(bytes.substr(0, 10) == "CORRALPINS");
  DecodeResult r = decode_pins(bytes);
  CHECK(r.error.empty());
  CHECK(r.pins == pins);
}

TEST_CASE("pin snapshot: an empty table round-trips") {
  std::string bytes = encode_pins({});
  CHECK(bytes.size() == 10 + 4 + 4 + 8 + 4 + 8);
  DecodeResult r = decode_pins(bytes);
  CHECK(r.error.empty());
  CHECK(r.pins.empty());
}

TEST_CASE("pin snapshot: every truncation is an error, never a crash") {
  std::string bytes = encode_pins(make_pins(5, 7));
  for (size_t n = 0; n < bytes.size(); ++n) {
    DecodeResult r = decode_pins(std::string_view(bytes).substr(0, n));
    INFO("length " << n << ": " << r.error);
    CHECK(r.pins.empty());
    CHECK(r.error.find("truncated at byte " + std::to_string(n)) == 0);
  }
}

TEST_CASE("pin snapshot: trailing bytes are an error") {
  std::string bytes = encode_pins(make_pins(3, 1)) + "x";
  DecodeResult r = decode_pins(bytes);
  CHECK(r.pins.empty());
  CHECK(r.error.find("unexpected bytes") != std::string::npos);
}

TEST_CASE("pin snapshot: a flipped bit anywhere is an error; in data, a checksum mismatch") {
  std::string good = encode_pins(make_pins(5, 9));
  size_t records_at = good.size() - 8 - 4 - 5 * 36;
  size_t records_end = records_at + 5 * 36;
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit : {0, 7}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      DecodeResult r = decode_pins(bad);
      INFO("byte " << i << " bit " << bit << ": " << r.error);
      CHECK(r.pins.empty());
      CHECK_FALSE(r.error.empty());
      // Lengths and counts may read as truncation; record bytes and the checksum itself
      // can only be caught by the checksum.
      if ((i >= records_at && i < records_end) || i >= good.size() - 8)
        CHECK(r.error == "checksum mismatch");
    }
  }
}

TEST_CASE("pin snapshot: wrong magic and unsupported versions") {
  std::string good = encode_pins(make_pins(2, 3));
  std::string bad = good;
  bad[0] = 'X';
  CHECK(decode_pins(bad).error == "not a corral state file");
  CHECK(decode_pins("hello, world, this is not a state file").error == "not a corral state file");
  CHECK(decode_pins("{\"pins\": []}").error == "not a corral state file");

  bad = good;
  put_u32(bad, 10, 4);
  DecodeResult r = decode_pins(bad);
  CHECK(r.error == "unsupported version 4");
  CHECK(r.pins.empty());
  put_u32(bad, 10, 0);
  CHECK(decode_pins(bad).error == "unsupported version 0");
}

TEST_CASE("pin snapshot: huge counts in a short file are rejected before allocating") {
  std::string good = encode_pins(make_pins(1, 5));
  // One record, one name: the name count is at 14 (after magic and version), its first
  // name's length at 18.
  SUBCASE("name count") {
    std::string bad = good;
    put_u32(bad, 14, 0xFFFFFFFFu);
    DecodeResult r = decode_pins(bad);
    CHECK(r.pins.empty());
    CHECK(r.error.find("truncated") == 0);
  }
  SUBCASE("name length") {
    std::string bad = good;
    put_u32(bad, 18, 0xFFFFFFFFu);
    DecodeResult r = decode_pins(bad);
    CHECK(r.pins.empty());
    CHECK(r.error.find("truncated") == 0);
  }
  SUBCASE("record count") {
    std::string bad = good;
    size_t name_len = good[18] & 0xff;
    size_t count_at = 18 + 4 + name_len;
    put_u64(bad, count_at, ~uint64_t{0});
    DecodeResult r = decode_pins(bad);
    CHECK(r.pins.empty());
    CHECK(r.error.find("truncated") == 0);
    // A count that would overflow count * 36 into a small number is refused too.
    put_u64(bad, count_at, (~uint64_t{0} / 36) + 2);
    CHECK(decode_pins(bad).error.find("truncated") == 0);
  }
  SUBCASE("a hand-made header claiming 2^32 names and 2^64 records") {
    std::string bad = "CORRALPINS";
    bad.append(4, '\0');
    put_u32(bad, 10, 1);
    bad.append(4, '\xff');
    CHECK(decode_pins(bad).error.find("truncated") == 0);
  }
}

TEST_CASE("pin snapshot: a name index past the table is an error even with a good checksum") {
  // Hand-built with a valid checksum, so only the index check can catch it.
  std::string bytes = "CORRALPINS";
  bytes.append(4 + 4 + 8 + 36, '\0');
  put_u32(bytes, 10, 2);       // version
  put_u32(bytes, 14, 0);       // no names
  put_u64(bytes, 18, 1);       // one record
  put_u32(bytes, 26 + 16, 0);  // naming index 0
  bytes.append(8, '\0');
  put_u64(bytes, bytes.size() - 8, XXH3_64bits(bytes.data(), bytes.size() - 8));
  DecodeResult r = decode_pins(bytes);
  CHECK(r.pins.empty());
  CHECK(r.error.find("names backend 0 of 0") != std::string::npos);
}

TEST_CASE("pin snapshot: an empty backend name round-trips") {
  std::vector<PinRecord> pins = make_pins(2, 11);
  pins[0].backend = "";
  DecodeResult r = decode_pins(encode_pins(pins));
  REQUIRE(r.error.empty());
  CHECK(r.pins == pins);
}

TEST_CASE("pin snapshot: idle time is read against the wall clock passed in") {
  PinRecord p;
  p.last_seen_unix_ms = 1'000'000;
  CHECK(lb::pin_idle_ms(p, 1'000'000) == 0);
  CHECK(lb::pin_idle_ms(p, 1'008'000) == 8'000);  // an 8 s stop is 8 s of idleness
  CHECK(lb::pin_idle_ms(p, 999'000) == 0);        // a clock stepped back expires nothing
}

TEST_CASE("pin snapshot: a version 1 file is dated by the save time given, or refused") {
  std::vector<PinRecord> pins = make_pins(3, 5);
  for (size_t i = 0; i < pins.size(); ++i) pins[i].last_seen_unix_ms = 1'000 * (i + 1);
  // Version 1 is the same layout with idle-at-save in the last field.
  std::string v1 = as_version(encode_pins(pins), 1);
  DecodeResult r = decode_pins(v1, 50'000);
  REQUIRE(r.error.empty());
  REQUIRE(r.pins.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(r.pins[i].last_seen_unix_ms == 50'000 - 1'000 * (i + 1));
  DecodeResult refused = decode_pins(v1);
  CHECK(refused.pins.empty());
  CHECK(refused.error.find("version 1") != std::string::npos);
  // Versions 2 and 3 ignore the fallback: their times are absolute.
  DecodeResult v2 = decode_pins(as_version(encode_pins(pins), 2), 50'000);
  REQUIRE(v2.error.empty());
  CHECK(v2.pins == pins);
  CHECK(decode_pins(encode_pins(pins), 50'000).pins == pins);
}

TEST_CASE("pin snapshot: version 3 carries daily counts; version 2 is still read") {
  std::vector<PinRecord> pins = make_pins(4, 13);
  std::vector<lb::QuotaRecord> quotas = {{"blockfrost", 20'784, 41'999}, {"bf-2", 20'783, 7}};
  std::string v3 = encode_pins(pins, quotas);
  DecodeResult r = decode_pins(v3);
  REQUIRE(r.error.empty());
  CHECK(r.pins == pins);
  CHECK(r.quotas == quotas);
  // Every truncation of the quota section is caught.
  for (size_t n = v3.size() - 8 - (4 + 10 + 16 + 4 + 4 + 16); n < v3.size(); ++n) {
    DecodeResult t = decode_pins(std::string_view(v3).substr(0, n));
    INFO("length " << n);
    CHECK(t.error.find("truncated at byte " + std::to_string(n)) == 0);
    CHECK(t.quotas.empty());
  }
  // A version 2 file (pins only) decodes with no counts.
  DecodeResult v2 = decode_pins(as_version(encode_pins(pins), 2));
  REQUIRE(v2.error.empty());
  CHECK(v2.pins == pins);
  CHECK(v2.quotas.empty());
}

// Golden vectors: BIP-173 (valid and invalid bech32 strings) and CIP-19 (one payment key,
// stake key and script encoded as every address type, mainnet and testnet). The hashes
// below were checked independently: blake2b-224 of the CIP-19 stake_vk is 337b62cf…,
// of the addr_vk 9493315c…, and script1… encodes c37b1b5d….
#include <doctest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lb/core/cip19.h"

namespace {

using lb::bech32_decode;
using lb::stake_key_in_path;
using lb::stake_key_material;

constexpr std::string_view kCharset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

// A reference bech32 encoder (BIP-173) so the tests can build addresses the CIP lacks.
uint32_t polymod(const std::vector<uint8_t>& v) {
  static constexpr uint32_t gen[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
  uint32_t chk = 1;
  for (uint8_t x : v) {
    uint32_t top = chk >> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ x;
    for (int i = 0; i < 5; ++i)
      if ((top >> i) & 1) chk ^= gen[i];
  }
  return chk;
}

std::string encode_words(std::string_view hrp, const std::vector<uint8_t>& words) {
  std::vector<uint8_t> v;
  for (char c : hrp) v.push_back(static_cast<uint8_t>(c) >> 5);
  v.push_back(0);
  for (char c : hrp) v.push_back(static_cast<uint8_t>(c) & 31);
  v.insert(v.end(), words.begin(), words.end());
  v.insert(v.end(), 6, 0);
  uint32_t mod = polymod(v) ^ 1;
  std::string out(hrp);
  out += '1';
  for (uint8_t w : words) out += kCharset[w];
  for (int i = 0; i < 6; ++i) out += kCharset[(mod >> (5 * (5 - i))) & 31];
  return out;
}

// Valid encodings come from the library's encoder; encode_words above builds the invalid
// ones it would never write.
std::string encode_bytes(std::string_view hrp, const std::vector<uint8_t>& bytes) {
  return lb::bech32_encode(hrp, bytes);
}

std::vector<uint8_t> unhex(std::string_view h) {
  std::vector<uint8_t> out;
  auto nib = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i + 1 < h.size(); i += 2)
    out.push_back(static_cast<uint8_t>(nib(h[i]) << 4 | nib(h[i + 1])));
  return out;
}

std::string hex(std::string_view bytes) {
  static constexpr char d[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::string hex(const std::vector<uint8_t>& bytes) {
  return hex(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::string upper(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  return s;
}

// CIP-19 test vectors.
constexpr std::string_view kMain0 =
    "addr1qx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer3n0d3vllmyqwsx5wktcd8cc3sq835lu7drv2xwl2"
    "wywfgse35a3x";
constexpr std::string_view kMain1 =
    "addr1z8phkx6acpnf78fuvxn0mkew3l0fd058hzquvz7w36x4gten0d3vllmyqwsx5wktcd8cc3sq835lu7drv2xwl2"
    "wywfgs9yc0hh";
constexpr std::string_view kMain2 =
    "addr1yx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzerkr0vd4msrxnuwnccdxlhdjar77j6lg0wypcc9uar5"
    "d2shs2z78ve";
constexpr std::string_view kMain3 =
    "addr1x8phkx6acpnf78fuvxn0mkew3l0fd058hzquvz7w36x4gt7r0vd4msrxnuwnccdxlhdjar77j6lg0wypcc9uar5"
    "d2shskhj42g";
constexpr std::string_view kMain4 =
    "addr1gx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer5pnz75xxcrzqf96k";
constexpr std::string_view kMain5 =
    "addr128phkx6acpnf78fuvxn0mkew3l0fd058hzquvz7w36x4gtupnz75xxcrtw79hu";
constexpr std::string_view kMain6 = "addr1vx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzers66hrl8";
constexpr std::string_view kMain7 = "addr1w8phkx6acpnf78fuvxn0mkew3l0fd058hzquvz7w36x4gtcyjy7wx";
constexpr std::string_view kMain14 = "stake1uyehkck0lajq8gr28t9uxnuvgcqrc6070x3k9r8048z8y5gh6ffgw";
constexpr std::string_view kMain15 = "stake178phkx6acpnf78fuvxn0mkew3l0fd058hzquvz7w36x4gtcccycj5";

constexpr std::string_view kTest0 =
    "addr_test1qz2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer3n0d3vllmyqwsx5wktcd8cc3sq835lu7drv2"
    "xwl2wywfgs68faae";
constexpr std::string_view kTest1 =
    "addr_test1zrphkx6acpnf78fuvxn0mkew3l0fd058hzquvz7w36x4gten0d3vllmyqwsx5wktcd8cc3sq835lu7drv2"
    "xwl2wywfgsxj90mg";
constexpr std::string_view kTest2 =
    "addr_test1yz2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzerkr0vd4msrxnuwnccdxlhdjar77j6lg0wypcc9"
    "uar5d2shsf5r8qx";
constexpr std::string_view kTest3 =
    "addr_test1xrphkx6acpnf78fuvxn0mkew3l0fd058hzquvz7w36x4gt7r0vd4msrxnuwnccdxlhdjar77j6lg0wypcc9"
    "uar5d2shs4p04xh";
constexpr std::string_view kTest4 =
    "addr_test1gz2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer5pnz75xxcrdw5vky";
constexpr std::string_view kTest5 =
    "addr_test12rphkx6acpnf78fuvxn0mkew3l0fd058hzquvz7w36x4gtupnz75xxcryqrvmw";
constexpr std::string_view kTest6 =
    "addr_test1vz2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzerspjrlsz";
constexpr std::string_view kTest7 =
    "addr_test1wrphkx6acpnf78fuvxn0mkew3l0fd058hzquvz7w36x4gtcl6szpr";
constexpr std::string_view kTest14 =
    "stake_test1uqehkck0lajq8gr28t9uxnuvgcqrc6070x3k9r8048z8y5gssrtvn";
constexpr std::string_view kTest15 =
    "stake_test17rphkx6acpnf78fuvxn0mkew3l0fd058hzquvz7w36x4gtcljw6kf";

// CIP-19's Byron example (Base58, never bech32).
constexpr std::string_view kByron =
    "37btjrVyb4KDXBNC4haBVPCrro8AQPHwvCMp3RFhhSVWwfFmZ6wwzSK6JK1hY6wHNmtrpTf1kdbva8TCneM2YsiXT7mrzT"
    "21EacHnPpz5YyUdj64na";

constexpr std::string_view kPaymentKeyHash =
    "9493315cd92eb5d8c4304e67b7e16ae36d61d34502694657811a2c8e";
constexpr std::string_view kStakeKeyHash =
    "337b62cfff6403a06a3acbc34f8c46003c69fe79a3628cefa9c47251";
constexpr std::string_view kScriptHash = "c37b1b5dc0669f1d3c61a6fddb2e8fde96be87b881c60bce8e8d542f";

// Expected material: network id, script flag, credential.
std::string material_hex(int network, bool script, std::string_view cred) {
  std::string out = network ? "01" : "00";
  out += script ? "01" : "00";
  out += cred;
  return out;
}

std::string material_of(std::string_view addr) {
  auto m = stake_key_material(addr);
  return m ? hex(*m) : std::string("nullopt");
}

}  // namespace

TEST_CASE("bech32: BIP-173 valid vectors decode to their HRP and bytes") {
  struct V {
    std::string_view s, hrp;
    std::string data;
  };
  const V vs[] = {
      {"A12UEL5L", "a", ""},
      {"a12uel5l", "a", ""},
      {"an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
       "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio", ""},
      {"abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", "abcdef",
       "00443214c74254b635cf84653a56d7c675be77df"},
      {"11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
       "1", std::string(51 * 2, '0')},
      {"split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w", "split",
       "c5f38b70305f519bf66d85fb6cf03058f3dde463ecd7918f2dc743918f2d"},
      {"?1ezyfcl", "?", ""},
  };
  for (const V& v : vs) {
    CAPTURE(v.s);
    auto d = bech32_decode(v.s);
    REQUIRE(d.has_value());
    CHECK(d->hrp == v.hrp);
    CHECK(hex(d->data) == v.data);
  }
}

TEST_CASE("bech32: BIP-173 invalid vectors, bech32m and mixed case are rejected") {
  const std::string invalid[] = {
      std::string("\x20") + "1nwldj5",  // HRP character out of range
      std::string("\x7f") + "1axkwrx",
      std::string("\x80") + "1eym55h",
      // HRP of 84 characters: the 83-character HRP limit stays even without the 90 limit.
      "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",
      "pzry9x0s0muk",                                   // no separator
      "1pzry9x0s0muk",                                  // empty HRP
      "x1b4n0q5v",                                      // invalid data character
      "li1dgmt3",                                       // checksum too short
      "de1lg7wt\xff",                                   // invalid character in checksum
      "A1G7SGD8",                                       // checksum computed with an uppercase HRP
      "10a06t8",                                        // empty HRP
      "1qzzfhee",                                       // empty HRP
      "a1lqfn3a",                                       // BIP-350 bech32m, not bech32
      "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",  // bech32m
      "A12uEL5L",                                       // mixed case
      "",
  };
  for (const std::string& s : invalid) {
    CAPTURE(s);
    CHECK_FALSE(bech32_decode(s).has_value());
  }
}

TEST_CASE("bech32: regrouping to bytes allows only short, zero padding") {
  // Two words carry 10 bits: one byte and 2 zero padding bits.
  auto ok = bech32_decode(encode_words("x", {0, 0}));
  REQUIRE(ok.has_value());
  CHECK(hex(ok->data) == "00");
  // The same shape with a non-zero padding bit.
  CHECK_FALSE(bech32_decode(encode_words("x", {0, 1})).has_value());
  // A single word is 5 bits of padding: more than BIP-173's 4.
  CHECK_FALSE(bech32_decode(encode_words("x", {0})).has_value());
  // The test encoder round-trips through the decoder.
  auto rt = bech32_decode(encode_bytes("hello", unhex("deadbeef00ff")));
  REQUIRE(rt.has_value());
  CHECK(rt->hrp == "hello");
  CHECK(hex(rt->data) == "deadbeef00ff");
}

TEST_CASE("bech32: Cardano addresses longer than 90 characters decode, in either case") {
  REQUIRE(kMain0.size() == 103);
  REQUIRE(kTest0.size() == 108);
  auto d = bech32_decode(kMain0);
  REQUIRE(d.has_value());
  CHECK(d->hrp == "addr");
  REQUIRE(d->data.size() == 57);
  CHECK(d->data[0] == 0x01);
  CHECK(hex(d->data) == "01" + std::string(kPaymentKeyHash) + std::string(kStakeKeyHash));

  auto up = bech32_decode(upper(std::string(kMain0)));
  REQUIRE(up.has_value());
  CHECK(up->hrp == "addr");  // the HRP is reported in lower case
  CHECK(up->data == d->data);
}

TEST_CASE("cip19: base and reward addresses yield the documented stake credential") {
  struct V {
    std::string_view addr;
    int network;
    bool script;
    std::string_view cred;
  };
  const V vs[] = {
      {kMain0, 1, false, kStakeKeyHash},  {kMain1, 1, false, kStakeKeyHash},
      {kMain2, 1, true, kScriptHash},     {kMain3, 1, true, kScriptHash},
      {kMain14, 1, false, kStakeKeyHash}, {kMain15, 1, true, kScriptHash},
      {kTest0, 0, false, kStakeKeyHash},  {kTest1, 0, false, kStakeKeyHash},
      {kTest2, 0, true, kScriptHash},     {kTest3, 0, true, kScriptHash},
      {kTest14, 0, false, kStakeKeyHash}, {kTest15, 0, true, kScriptHash},
  };
  for (const V& v : vs) {
    CAPTURE(v.addr);
    CHECK(material_of(v.addr) == material_hex(v.network, v.script, v.cred));
    auto m = stake_key_material(v.addr);
    REQUIRE(m.has_value());
    CHECK(m->size() == 30);
  }
}

TEST_CASE("cip19: one stake key gives one material across address types, per network") {
  // Base type 0 (payment key) and type 1 (payment script) share the stake key with the
  // type-14 reward address; types 2, 3 and 15 share the stake script.
  CHECK(*stake_key_material(kMain0) == *stake_key_material(kMain14));
  CHECK(*stake_key_material(kMain1) == *stake_key_material(kMain14));
  CHECK(*stake_key_material(kMain2) == *stake_key_material(kMain15));
  CHECK(*stake_key_material(kMain3) == *stake_key_material(kMain15));
  CHECK(*stake_key_material(kTest0) == *stake_key_material(kTest14));
  // Mainnet and testnet are different users; a key hash and a script hash too.
  CHECK(*stake_key_material(kMain0) != *stake_key_material(kTest0));
  CHECK(*stake_key_material(kMain14) != *stake_key_material(kTest14));
  CHECK(*stake_key_material(kMain0) != *stake_key_material(kMain2));

  // A second address of the wallet: another payment key hash, same stake key.
  std::vector<uint8_t> other = unhex("01");
  for (int i = 0; i < 28; ++i) other.push_back(static_cast<uint8_t>(0xa0 + i));
  for (uint8_t b : unhex(kStakeKeyHash)) other.push_back(b);
  const std::string sibling = encode_bytes("addr", other);
  REQUIRE(sibling != kMain0);
  CHECK(material_of(sibling) == material_of(kMain0));
}

TEST_CASE("cip19: enterprise, pointer and Byron addresses have no stake key") {
  for (std::string_view a : {kMain4, kMain5, kMain6, kMain7, kTest4, kTest5, kTest6, kTest7}) {
    CAPTURE(a);
    REQUIRE(bech32_decode(a).has_value());  // valid bech32, just no stake credential
    CHECK_FALSE(stake_key_material(a).has_value());
  }
  CHECK_FALSE(stake_key_material(kByron).has_value());
  // A Byron header (type 8) smuggled into bech32 with a base address's length.
  std::vector<uint8_t> byron = unhex("82");
  byron.resize(57, 0x11);
  CHECK_FALSE(stake_key_material(encode_bytes("addr", byron)).has_value());
  // Pointer and enterprise headers padded to a base address's length: the type decides.
  for (uint8_t header : {0x41, 0x51, 0x61, 0x71}) {
    CAPTURE(int(header));
    std::vector<uint8_t> bytes = bech32_decode(kMain0)->data;
    bytes[0] = header;
    CHECK_FALSE(stake_key_material(encode_bytes("addr", bytes)).has_value());
  }
  // Reserved types 9-13 likewise.
  std::vector<uint8_t> reserved = unhex("91");
  reserved.resize(29, 0x22);
  CHECK_FALSE(stake_key_material(encode_bytes("stake", reserved)).has_value());
}

TEST_CASE("cip19: malformed addresses are rejected") {
  // One character changed in the data part breaks the checksum.
  std::string bad(kMain0);
  bad[40] = bad[40] == 'q' ? 'p' : 'q';
  CHECK_FALSE(bech32_decode(bad).has_value());
  CHECK_FALSE(stake_key_material(bad).has_value());
  std::string bad_sum(kMain14);
  bad_sum.back() = bad_sum.back() == 'w' ? 'x' : 'w';
  CHECK_FALSE(stake_key_material(bad_sum).has_value());
  CHECK_FALSE(stake_key_material(kMain0.substr(0, kMain0.size() - 1)).has_value());

  // Wrong payload lengths for the header type.
  auto base = bech32_decode(kMain0)->data;
  // (a range copy: GCC 12 warns falsely on pop_back of a copied vector here)
  std::vector<uint8_t> shorter(base.begin(), base.end() - 1);
  auto longer = base;
  longer.push_back(0);
  CHECK_FALSE(stake_key_material(encode_bytes("addr", shorter)).has_value());
  CHECK_FALSE(stake_key_material(encode_bytes("addr", longer)).has_value());
  auto reward = bech32_decode(kMain14)->data;
  reward.push_back(0);
  CHECK_FALSE(stake_key_material(encode_bytes("stake", reward)).has_value());
  CHECK_FALSE(stake_key_material(encode_bytes("addr", {})).has_value());

  // The re-encoded originals still pass, so the rejections above are about the change.
  CHECK(material_of(encode_bytes("addr", base)) == material_of(kMain0));

  // HRP that contradicts the header: reward bytes as addr, base bytes as stake, a mainnet
  // header under a testnet prefix, and a foreign prefix.
  CHECK_FALSE(stake_key_material(encode_bytes("addr", bech32_decode(kMain14)->data)));
  CHECK_FALSE(stake_key_material(encode_bytes("stake", base)));
  CHECK_FALSE(stake_key_material(encode_bytes("addr_test", base)));
  CHECK_FALSE(stake_key_material(encode_bytes("addr", bech32_decode(kTest0)->data)));
  CHECK_FALSE(stake_key_material(encode_bytes("bc", base)));
}

TEST_CASE("cip19: upper-case addresses give the same material") {
  CHECK(material_of(upper(std::string(kMain0))) == material_of(kMain0));
  CHECK(material_of(upper(std::string(kTest15))) == material_of(kTest15));
}

TEST_CASE("cip19: stake_key_in_path finds the address segment") {
  const std::string main0(kMain0);
  const std::string want = material_of(kMain0);
  auto in = [](const std::string& p) {
    auto m = stake_key_in_path(p);
    return m ? hex(*m) : std::string("nullopt");
  };
  CHECK(in("/matches/" + main0) == want);
  CHECK(in("/matches/" + main0 + "?unspent") == want);
  CHECK(in("/matches/" + main0 + "?unspent&order=most_recent_first") == want);
  CHECK(in("/addresses/" + main0 + "/utxos") == want);
  CHECK(in("/accounts/" + std::string(kMain14)) == want);
  CHECK(in(main0) == want);  // no leading slash
  CHECK(in("//matches//" + main0 + "/") == want);
  CHECK(in("/matches/" + std::string(kTest2)) == material_of(kTest2));
  CHECK(in("/matches/" + upper(main0)) == want);

  // Kupo credential patterns and other segments are not addresses.
  CHECK(in("/matches/*/" + std::string(kStakeKeyHash)) == "nullopt");
  CHECK(in("/matches/" + std::string(kPaymentKeyHash) + "/*?unspent") == "nullopt");
  CHECK(in("/health") == "nullopt");
  CHECK(in("") == "nullopt");
  CHECK(in("/") == "nullopt");
  CHECK(in("/matches/addr1") == "nullopt");
  CHECK(in("/matches/addr1qqqqqq") == "nullopt");
  // An address in the query is not part of the path.
  CHECK(in("/matches?address=" + main0) == "nullopt");
  CHECK(in("/matches/x?" + main0) == "nullopt");

  // The first segment that yields wins; ones that do not (enterprise) are skipped.
  CHECK(in("/matches/" + std::string(kMain6) + "/" + std::string(kTest0)) == material_of(kTest0));
  CHECK(in("/a/" + std::string(kTest14) + "/" + main0) == material_of(kTest14));
  // A broken address is skipped too.
  std::string bad = main0;
  bad[50] = bad[50] == 'q' ? 'p' : 'q';
  CHECK(in("/" + bad + "/" + std::string(kTest1)) == material_of(kTest1));
}

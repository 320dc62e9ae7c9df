#include "bench/sim/kupo_api.h"

#include <algorithm>
#include <cstdio>

#include "lb/core/flat_json.h"
#include "lb/core/splitmix.h"

namespace bench::kupo_api {

using lb::json_escape;

const char* const kHintNotFound = "Endpoint not found. See the API reference.";
const char* const kHintMethodNotAllowed = "Unsupported method on a known endpoint.";
const char* const kHintServiceUnavailable =
    "The server is too busy: no resource is free to handle this request. Retry later or "
    "raise the server's --max-concurrency.";
const char* const kHintInvalidPattern = "Invalid pattern. Provide a valid pattern or '*'.";
const char* const kHintInvalidStatusFlag =
    "Invalid filter query. Use either '?spent' or '?unspent', not both.";
const char* const kHintInvalidSortDirection =
    "Invalid 'order' query. Use 'most_recent_first' or 'oldest_first'.";
const char* const kHintInvalidSlotNo = "The path parameter must be an absolute slot number.";
const char* const kHintInvalidStrictMode = "The only query flag accepted here is '?strict'.";
const char* const kHintMalformedDatumHash =
    "Malformed datum hash: expected a blake2b-256 digest in base16 (64 characters).";
const char* const kHintMalformedScriptHash =
    "Malformed script hash: expected a blake2b-224 digest in base16 (56 characters).";
const char* const kHintUnsupportedContentType =
    "Unsupported content-type in 'Accept'; use 'application/json' or 'text/plain'.";

namespace {

uint64_t mix(uint64_t x) { return lb::splitmix64(x); }

// FNV-1a: a stable seed from the request text.
uint64_t seed_of(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

std::string hex_digits(uint64_t seed, size_t n) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(n);
  uint64_t x = seed;
  while (out.size() < n) {
    x = mix(x);
    for (int i = 0; i < 16 && out.size() < n; ++i) out += hex[(x >> (60 - 4 * i)) & 0xF];
  }
  return out;
}

// A bech32-looking address (not a valid checksum: nothing here decodes it).
std::string fake_address(uint64_t seed) {
  static const char* charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
  std::string out = "addr1q";
  uint64_t state = seed;
  uint64_t x = 0;
  for (int i = 0; i < 98; ++i) {
    if (i % 12 == 0) x = state = mix(state);
    out += charset[x & 31];
    x >>= 5;
  }
  return out;
}

std::string number(uint64_t v) { return std::to_string(v); }

// Prometheus gauges print as doubles ("1.0", "0.99871"), counters as integers.
std::string gauge(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.5f", v);
  std::string s = buf;
  while (s.size() > 1 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
  return s;
}

}  // namespace

std::string error_body(std::string_view hint) { return "{\"hint\":\"" + json_escape(hint) + "\"}"; }

std::string point(uint64_t slot, std::optional<uint64_t> fork_at) {
  return "{\"slot_no\":" + number(slot) + ",\"header_hash\":\"" +
         SimChain::header_hash(slot, fork_at) + "\"}";
}

namespace {

// Match number i of `pattern` (every odd one spent), anchored to the start of the current
// day of slots so that results stay put while the tip moves; offsets are multiples of 20
// slots, i.e. block slots.
std::string match_object(std::string_view pattern, uint64_t seed, uint64_t i, uint64_t checkpoint,
                         std::optional<uint64_t> fork_at) {
  const uint64_t anchor = checkpoint - checkpoint % 86400;
  const bool address_pattern =
      pattern.substr(0, 4) == "addr" && pattern.find_first_of("/*") == std::string_view::npos;
  const uint64_t s = mix(seed + i);
  const bool spent = i % 2 == 1;
  const uint64_t back = (i + 1) * 2000 + (s % 50) * 20;
  const uint64_t created = anchor > back ? anchor - back : 0;
  std::string m = "{\"transaction_index\":" + number(s % 40);
  m += ",\"transaction_id\":\"" + hex_digits(s, 64) + "\"";
  m += ",\"output_index\":" + number((s >> 8) % 4);
  m += ",\"address\":\"" + (address_pattern ? json_escape(pattern) : fake_address(seed)) + "\"";
  m += ",\"value\":{\"coins\":" + number(1000000 + s % 50000000) + ",\"assets\":{";
  if (spent)
    m += "\"" + hex_digits(s + 1, 56) + "." + hex_digits(s + 2, 8) + "\":" + number(1 + s % 1000);
  m += "}}";
  if (s % 3 == 0) {
    m += ",\"datum_hash\":\"" + hex_digits(s + 3, 64) + "\",\"datum_type\":\"" +
         (s % 2 ? "inline" : "hash") + "\"";
  } else {
    m += ",\"datum_hash\":null";
  }
  m += s % 5 == 0 ? ",\"script_hash\":\"" + hex_digits(s + 4, 56) + "\"" : ",\"script_hash\":null";
  m += ",\"created_at\":" + point(created, fork_at);
  m += ",\"spent_at\":";
  const uint64_t spent_slot = std::min(checkpoint, created + 20 * (1 + s % 10));
  m += spent ? point(spent_slot, fork_at) : "null";
  m += "}";
  return m;
}

// The match numbers of `pattern` that pass the query's filter, in the requested order: two to
// four candidates, or exactly q.count when set.
std::vector<uint64_t> match_indexes(uint64_t seed, const MatchQuery& q) {
  std::vector<uint64_t> out;
  if (q.count != 0) {
    out.reserve(q.count);
    for (uint64_t i = 0; out.size() < q.count; ++i) {
      const bool spent = i % 2 == 1;
      if ((q.spent && !spent) || (q.unspent && spent)) continue;
      out.push_back(i);
    }
  } else {
    const uint64_t n = 2 + seed % 3;
    for (uint64_t i = 0; i < n; ++i) {
      const bool spent = i % 2 == 1;
      if ((q.spent && !spent) || (q.unspent && spent)) continue;
      out.push_back(i);
    }
  }
  if (q.oldest_first) std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<std::string> matches(std::string_view pattern, const MatchQuery& q, uint64_t checkpoint,
                                 std::optional<uint64_t> fork_at) {
  const uint64_t seed = seed_of(pattern);
  std::vector<std::string> out;
  for (uint64_t i : match_indexes(seed, q))
    out.push_back(match_object(pattern, seed, i, checkpoint, fork_at));
  return out;
}

void matches_each(std::string_view pattern, const MatchQuery& q, uint64_t checkpoint,
                  std::optional<uint64_t> fork_at,
                  const std::function<void(const std::string&)>& each) {
  const uint64_t seed = seed_of(pattern);
  for (uint64_t i : match_indexes(seed, q))
    each(match_object(pattern, seed, i, checkpoint, fork_at));
}

std::vector<std::string> checkpoint_sample(const SimChain& chain, uint64_t now_ms) {
  std::vector<std::string> out;
  const uint64_t cp = chain.checkpoint(now_ms);
  const uint64_t step = chain.block_interval();
  uint64_t back = 0;
  for (int i = 0; i < 10 && back <= cp; ++i) {
    out.push_back(point(cp - back, chain.fork_at()));
    back = back == 0 ? step : back * 2;
  }
  return out;
}

std::string datum(std::string_view hash) {
  // CBOR for Constr 0 [bytes(28)]: tag 121, indefinite list, a 28-byte string.
  return "{\"datum\":\"d8799f581c" + std::string(hash.substr(0, 56)) + "ff\"}";
}

std::string script(std::string_view hash) {
  // The smallest Plutus script of the API reference's example, for any hash.
  (void)hash;
  return "{\"language\":\"plutus:v2\",\"script\":\"4d01000033222220051200120011\"}";
}

std::vector<std::string> metadata(uint64_t slot) {
  if (slot == 0) return {};
  // One transaction with label 674 (CIP-20 message): {674: {"msg": ["corral simulated"]}}.
  const std::string raw =
      "a11902a2a1636d736781"
      "70636f7272616c2073696d756c61746564";
  std::string m = "{\"hash\":\"" + hex_digits(mix(slot), 64) + "\",\"raw\":\"" + raw +
                  "\",\"schema\":{\"674\":{\"map\":[{\"k\":{\"string\":\"msg\"},\"v\":{\"list\":"
                  "[{\"string\":\"corral simulated\"}]}}]}}}";
  return {m};
}

std::string health_json(const SimChain& chain, uint64_t now_ms) {
  char sync[32];
  std::snprintf(sync, sizeof sync, "%.5f", chain.network_synchronization(now_ms));
  std::string out = "{\"connection_status\":\"";
  out += chain.connected() ? "connected" : "disconnected";
  out += "\",\"most_recent_checkpoint\":" + number(chain.checkpoint(now_ms));
  out += ",\"most_recent_node_tip\":" + number(chain.node_tip(now_ms));
  out += ",\"seconds_since_last_block\":" + number(chain.seconds_since_last_block(now_ms));
  out += ",\"network_synchronization\":";
  out += sync;
  out += ",\"version\":\"" + std::string(kVersion) + "\"}";
  return out;
}

std::string health_prometheus(const SimChain& chain, uint64_t now_ms) {
  // Metric names as Kupo exports them, in name order, blank line between metrics.
  std::string out;
  auto metric = [&out](const char* name, const char* type, const std::string& value) {
    if (!out.empty()) out += "\n";
    out += std::string("# TYPE kupo_") + name + " " + type + "\nkupo_" + name + "  " + value + "\n";
  };
  metric("connection_status", "gauge", chain.connected() ? "1.0" : "0.0");
  metric("most_recent_checkpoint", "counter", number(chain.checkpoint(now_ms)));
  metric("most_recent_node_tip", "counter", number(chain.node_tip(now_ms)));
  metric("network_synchronization", "gauge", gauge(chain.network_synchronization(now_ms)));
  metric("seconds_since_last_block", "gauge",
         gauge(static_cast<double>(chain.seconds_since_last_block(now_ms))));
  return out;
}

bool is_null_hash(std::string_view hash, uint64_t pct) { return seed_of(hash) % 100 < pct; }

uint64_t delay_ms(uint64_t latency_ms, uint64_t jitter_ms, uint64_t seq) {
  // jitter_ms + 1 cannot wrap for any value a control key or flag accepts in practice; guard
  // anyway so UINT64_MAX means "any 64-bit value" rather than a division by zero.
  const uint64_t spread = jitter_ms == UINT64_MAX ? mix(seq) : mix(seq) % (jitter_ms + 1);
  return latency_ms + spread;
}

bool is_hex(std::string_view s, size_t length) {
  if (s.size() != length) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  return true;
}

bool is_slot(std::string_view s) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace bench::kupo_api

#include "bench/sim/ogmios_api.h"

#include <cstdio>
#include <ctime>

#include "bench/sim/json_scan.h"
#include "bench/sim/sim_chain.h"
#include "lb/core/flat_json.h"

namespace bench::ogmios_api {

namespace {

using Members = std::vector<std::pair<std::string, std::string_view>>;

// Mainnet's Shelley start (slot 4492800, epoch 208) and its 432000-slot epochs.
constexpr uint64_t kShelleySlot = 4492800;
constexpr uint64_t kShelleyEpoch = 208;
constexpr uint64_t kEpochSlots = 432000;

uint64_t epoch_of(uint64_t slot) {
  return slot < kShelleySlot ? 0 : kShelleyEpoch + (slot - kShelleySlot) / kEpochSlots;
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}

// A hex digest that looks like a key or hash of `bytes` bytes, derived from `seed`.
std::string hex_of(uint64_t seed, size_t bytes) {
  std::string out;
  while (out.size() < bytes * 2) out += SimChain::header_hash(seed + out.size());
  return out.substr(0, bytes * 2);
}

bool on_chain(uint64_t slot, std::string_view id, const ChainView& c) {
  return slot <= c.tip_slot && slot % c.block_interval == 0 &&
         id == SimChain::header_hash(slot, c.fork_at);
}

// A point from params: "origin" or {"slot":N,"id":"hex"}. nullopt if it is neither;
// `origin` tells which.
std::optional<uint64_t> read_point(std::string_view raw, bool& origin, std::string& id) {
  origin = false;
  if (auto s = json::string_value(raw)) {
    if (*s != "origin") return std::nullopt;
    origin = true;
    return 0;
  }
  auto m = json::object_members(raw);
  if (!m) return std::nullopt;
  auto slot = json::count_value(json::member(*m, "slot"));
  auto hash = json::string_value(json::member(*m, "id"));
  if (!slot || !hash) return std::nullopt;
  id = *hash;
  return slot;
}

std::optional<Members> params_object(const Request& r) {
  if (r.params.empty()) return Members{};
  return json::object_members(r.params);
}

std::string bad_params(const Request& r, std::string_view why) {
  return error_reply(r.method, r.id, kInvalidParams, why);
}

std::string find_intersection(const Request& r, Session& s, const ChainView& c) {
  auto p = params_object(r);
  std::optional<std::vector<std::string_view>> points;
  if (p) points = json::array_items(json::member(*p, "points"));
  if (!points) return bad_params(r, "params.points must be a list of points");
  for (std::string_view raw : *points) {
    bool origin = false;
    std::string id;
    std::optional<uint64_t> slot = read_point(raw, origin, id);
    if (!slot) return bad_params(r, "a point is \"origin\" or {\"slot\":N,\"id\":\"...\"}");
    if (!origin && !on_chain(*slot, id, c)) continue;
    s.at_origin = origin;
    s.cursor = origin ? 0 : *slot;
    s.rollback_due = true;
    return result_reply(
        r, "{\"intersection\":" + (origin ? "\"origin\"" : point_json(*slot, c.fork_at)) +
               ",\"tip\":" + tip_json(c) + "}");
  }
  return error_reply(r.method, r.id, kIntersectionNotFound,
                     "No intersection found with the given points.",
                     "{\"tip\":" + tip_json(c) + "}");
}

std::string acquire(const Request& r, Session& s, const ChainView& c) {
  auto p = params_object(r);
  std::string_view raw = p ? json::member(*p, "point") : std::string_view();
  bool origin = false;
  std::string id;
  std::optional<uint64_t> slot = raw.empty() ? std::nullopt : read_point(raw, origin, id);
  if (!slot) return bad_params(r, "params.point must be \"origin\" or {\"slot\":N,\"id\":\"...\"}");
  const uint64_t oldest = c.tip_slot > kSecurityBlocks * c.block_interval
                              ? c.tip_slot - kSecurityBlocks * c.block_interval
                              : 0;
  const char* failure = nullptr;
  if (origin || (on_chain(*slot, id, c) && *slot < oldest))
    failure = "pointTooOld";
  else if (!on_chain(*slot, id, c))
    failure = "pointNotOnChain";
  if (failure)
    return error_reply(r.method, r.id, kAcquireFailed, "Failed to acquire requested point.",
                       std::string("{\"failure\":\"") + failure + "\"}");
  s.acquired = *slot;
  return result_reply(
      r, "{\"acquired\":\"ledgerState\",\"point\":" + point_json(*slot, c.fork_at) + "}");
}

// The CBOR of params.transaction.cbor, or nullopt.
std::optional<std::string> transaction_cbor(const Request& r) {
  auto p = params_object(r);
  if (!p) return std::nullopt;
  auto tx = json::object_members(json::member(*p, "transaction"));
  if (!tx) return std::nullopt;
  auto cbor = json::string_value(json::member(*tx, "cbor"));
  if (!cbor || cbor->empty() || cbor->size() % 2 != 0) return std::nullopt;
  for (char ch : *cbor)
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
      return std::nullopt;
  return cbor;
}

// Mainnet's Conway parameters, abridged (cost models left out).
constexpr std::string_view kProtocolParameters =
    "{\"minFeeCoefficient\":44,\"minFeeConstant\":{\"ada\":{\"lovelace\":155381}},"
    "\"minFeeReferenceScripts\":{\"range\":25600,\"base\":15.0,\"multiplier\":1.2},"
    "\"maxBlockBodySize\":{\"bytes\":90112},\"maxBlockHeaderSize\":{\"bytes\":1100},"
    "\"maxTransactionSize\":{\"bytes\":16384},\"maxReferenceScriptsSize\":{\"bytes\":204800},"
    "\"stakeCredentialDeposit\":{\"ada\":{\"lovelace\":2000000}},"
    "\"stakePoolDeposit\":{\"ada\":{\"lovelace\":500000000}},"
    "\"stakePoolRetirementEpochBound\":18,\"desiredNumberOfStakePools\":500,"
    "\"stakePoolPledgeInfluence\":\"3/10\",\"monetaryExpansion\":\"3/1000\","
    "\"treasuryExpansion\":\"1/5\",\"minStakePoolCost\":{\"ada\":{\"lovelace\":170000000}},"
    "\"minUtxoDepositConstant\":{\"ada\":{\"lovelace\":0}},\"minUtxoDepositCoefficient\":4310,"
    "\"plutusCostModels\":{},"
    "\"scriptExecutionPrices\":{\"memory\":\"577/10000\",\"cpu\":\"721/10000000\"},"
    "\"maxExecutionUnitsPerTransaction\":{\"memory\":14000000,\"cpu\":10000000000},"
    "\"maxExecutionUnitsPerBlock\":{\"memory\":62000000,\"cpu\":20000000000},"
    "\"maxValueSize\":{\"bytes\":5000},\"collateralPercentage\":150,\"maxCollateralInputs\":3,"
    "\"version\":{\"major\":10,\"minor\":0},"
    "\"governanceActionDeposit\":{\"ada\":{\"lovelace\":100000000000}},"
    "\"delegateRepresentativeDeposit\":{\"ada\":{\"lovelace\":500000000}},"
    "\"governanceActionLifetime\":6,\"delegateRepresentativeMaxIdleTime\":20,"
    "\"constitutionalCommitteeMinSize\":7,\"constitutionalCommitteeMaxTermLength\":146}";

}  // namespace

ParsedRequest parse_request(std::string_view text) {
  ParsedRequest out;
  if (!json::valid(text)) {
    out.error = error_reply({}, std::string("null"), kParseError, "Invalid JSON.");
    return out;
  }
  auto m = json::object_members(text);
  std::optional<std::string> method;
  std::string_view id;
  if (m) {
    method = json::string_value(json::member(*m, "method"));
    id = json::member(*m, "id");
  }
  if (!method) {
    out.error = error_reply({}, id.empty() ? std::optional<std::string>() : std::string(id),
                            kInvalidRequest, "Invalid request: an object with a string method.");
    return out;
  }
  Request r;
  r.method = std::move(*method);
  if (!id.empty()) r.id = std::string(id);
  r.params = std::string(json::member(*m, "params"));
  out.request = std::move(r);
  return out;
}

std::string result_reply(const Request& r, std::string_view result) {
  std::string out =
      "{\"jsonrpc\":\"2.0\",\"method\":\"" + lb::json_escape(r.method) + "\",\"result\":";
  out.append(result);
  if (r.id) out += ",\"id\":" + *r.id;
  out += "}";
  return out;
}

std::string error_reply(std::string_view method, const std::optional<std::string>& id, int code,
                        std::string_view message, std::string_view data) {
  std::string out = "{\"jsonrpc\":\"2.0\"";
  if (!method.empty()) out += ",\"method\":\"" + lb::json_escape(method) + "\"";
  out += ",\"error\":{\"code\":" + std::to_string(code) + ",\"message\":\"" +
         lb::json_escape(message) + "\"";
  if (!data.empty()) out += ",\"data\":" + std::string(data);
  out += "}";
  if (id) out += ",\"id\":" + *id;
  out += "}";
  return out;
}

std::string padded_reply(const Request& r, uint64_t size) {
  const std::string empty = result_reply(r, "\"\"");
  const uint64_t pad = size > empty.size() ? size - empty.size() : 0;
  return result_reply(r, "\"" + std::string(static_cast<size_t>(pad), 'x') + "\"");
}

std::string point_json(uint64_t slot, std::optional<uint64_t> fork_at) {
  return "{\"slot\":" + std::to_string(slot) + ",\"id\":\"" + SimChain::header_hash(slot, fork_at) +
         "\"}";
}

uint64_t block_height(uint64_t slot, uint64_t block_interval) {
  return slot / (block_interval ? block_interval : 1);
}

std::string tip_json(const ChainView& c) {
  return "{\"slot\":" + std::to_string(c.tip_slot) + ",\"id\":\"" +
         SimChain::header_hash(c.tip_slot, c.fork_at) +
         "\",\"height\":" + std::to_string(block_height(c.tip_slot, c.block_interval)) + "}";
}

std::string block_json(uint64_t slot, uint64_t interval, std::optional<uint64_t> fork_at) {
  const std::string ancestor = slot >= interval
                                   ? "\"" + SimChain::header_hash(slot - interval, fork_at) + "\""
                                   : "\"genesis\"";
  const uint64_t kes_period = slot / 129600;
  std::string out = "{\"type\":\"praos\",\"era\":\"conway\",\"id\":\"" +
                    SimChain::header_hash(slot, fork_at) + "\",\"ancestor\":" + ancestor +
                    ",\"height\":" + std::to_string(block_height(slot, interval)) +
                    ",\"slot\":" + std::to_string(slot) + ",\"size\":{\"bytes\":" +
                    std::to_string(4 + fnv1a(std::to_string(slot)) % 80000) + "}";
  out += ",\"issuer\":{\"verificationKey\":\"" + hex_of(slot % 3000, 32) +
         "\",\"vrfVerificationKey\":\"" + hex_of(slot % 3000 + 7, 32) +
         "\",\"operationalCertificate\":{\"count\":" + std::to_string(slot % 13) +
         ",\"kes\":{\"period\":" + std::to_string(kes_period) + ",\"verificationKey\":\"" +
         hex_of(slot % 3000 + 11, 32) + "\"}},\"leaderValue\":{\"proof\":\"" +
         hex_of(slot + 3, 80) + "\",\"output\":\"" + hex_of(slot + 5, 64) + "\"}}";
  out += ",\"protocol\":{\"version\":{\"major\":10,\"minor\":0}},\"transactions\":[]}";
  return out;
}

std::optional<std::string> next_block(const Request& r, Session& s, const ChainView& c) {
  if (s.rollback_due) {
    s.rollback_due = false;
    return result_reply(
        r, "{\"direction\":\"backward\",\"point\":" +
               (s.at_origin ? std::string("\"origin\"") : point_json(s.cursor, c.fork_at)) +
               ",\"tip\":" + tip_json(c) + "}");
  }
  const uint64_t next = s.at_origin ? 0 : s.cursor + c.block_interval;
  if (next > c.tip_slot) return std::nullopt;
  s.at_origin = false;
  s.cursor = next;
  return result_reply(
      r, "{\"direction\":\"forward\",\"block\":" + block_json(next, c.block_interval, c.fork_at) +
             ",\"tip\":" + tip_json(c) + "}");
}

Outcome dispatch(const Request& r, Session& s, const ChainView& c, bool websocket) {
  Outcome o;
  const std::string& m = r.method;
  const bool stateful = m == "findIntersection" || m == "nextBlock" || m == "acquireLedgerState" ||
                        m == "releaseLedgerState" || m == "_sim/fragmented" || m == "_sim/close";
  if (stateful && !websocket) {
    o.reply = error_reply(m, r.id, kInvalidRequest,
                          "Method needs a WebSocket session; HTTP requests have none.");
    return o;
  }
  if (m == "queryNetwork/tip") {
    o.reply = result_reply(r, point_json(c.tip_slot, c.fork_at));
  } else if (m == "queryNetwork/blockHeight") {
    o.reply = result_reply(r, std::to_string(block_height(c.tip_slot, c.block_interval)));
  } else if (m == "queryNetwork/startTime") {
    o.reply = result_reply(r, "\"2017-09-23T21:44:51Z\"");
  } else if (m == "queryLedgerState/tip") {
    o.reply = result_reply(r, point_json(s.acquired.value_or(c.tip_slot), c.fork_at));
  } else if (m == "queryLedgerState/epoch") {
    o.reply = result_reply(r, std::to_string(epoch_of(s.acquired.value_or(c.tip_slot))));
  } else if (m == "queryLedgerState/protocolParameters") {
    o.reply = result_reply(r, kProtocolParameters);
  } else if (m == "findIntersection") {
    o.reply = find_intersection(r, s, c);
  } else if (m == "nextBlock") {
    std::optional<std::string> b = next_block(r, s, c);
    if (b)
      o.reply = std::move(*b);
    else
      o.action = Action::wait_block;
  } else if (m == "acquireLedgerState") {
    o.reply = acquire(r, s, c);
  } else if (m == "releaseLedgerState") {
    s.acquired.reset();
    o.reply = result_reply(r, "{\"released\":\"ledgerState\"}");
  } else if (m == "submitTransaction") {
    std::optional<std::string> cbor = transaction_cbor(r);
    if (!cbor) {
      o.reply = bad_params(r, "params.transaction.cbor must be hex");
      return o;
    }
    o.reply = result_reply(
        r, "{\"transaction\":{\"id\":\"" + SimChain::header_hash(fnv1a(*cbor)) + "\"}}");
  } else if (m == "evaluateTransaction") {
    std::optional<std::string> cbor = transaction_cbor(r);
    if (!cbor) {
      o.reply = bad_params(r, "params.transaction.cbor must be hex");
      return o;
    }
    const uint64_t h = fnv1a(*cbor);
    o.reply = result_reply(r,
                           "[{\"validator\":{\"index\":0,\"purpose\":\"spend\"},"
                           "\"budget\":{\"memory\":" +
                               std::to_string(1700 + h % 500000) +
                               ",\"cpu\":" + std::to_string(476468 + h % 200000000) + "}}]");
  } else if (m == "_sim/echo") {
    o.reply = result_reply(r, r.params.empty() ? std::string_view("null") : r.params);
  } else if (m == "_sim/fragmented") {
    auto p = params_object(r);
    std::optional<uint64_t> size, pieces;
    if (p) size = json::count_value(json::member(*p, "size"));
    if (p) pieces = json::count_value(json::member(*p, "pieces"));
    if (!size || !pieces || *size > (64u << 20) || *pieces == 0 || *pieces > 65536) {
      o.reply = bad_params(r, "params: {\"size\": 0..67108864, \"pieces\": 1..65536}");
      return o;
    }
    o.action = Action::fragmented;
    o.size = *size;
    o.pieces = *pieces;
  } else if (m == "_sim/close") {
    auto p = params_object(r);
    std::string_view code_raw = p ? json::member(*p, "code") : std::string_view();
    std::string_view reason_raw = p ? json::member(*p, "reason") : std::string_view();
    auto code = code_raw.empty() ? std::optional<uint64_t>(1000) : json::count_value(code_raw);
    auto reason =
        reason_raw.empty() ? std::optional<std::string>("") : json::string_value(reason_raw);
    if (!p || !code || *code > 4999 || !reason) {
      o.reply = bad_params(r, "params: {\"code\": a close code, \"reason\": a string}");
      return o;
    }
    o.action = Action::close;
    o.close_code = static_cast<uint16_t>(*code);
    o.close_reason = std::move(*reason);
  } else {
    o.reply = error_reply(m, r.id, kMethodNotFound, "Method not found: " + m);
  }
  return o;
}

// ---- /health ----

std::string iso_time(uint64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<unsigned>(unix_ms % 1000));
  return buf;
}

namespace {

// Seconds between the tip's slot and the wall clock's: Ogmios' "time since the last tip
// update", one slot per second.
uint64_t tip_age_seconds(const HealthInput& h) {
  return h.network_slot > h.tip_slot ? h.network_slot - h.tip_slot : 0;
}

}  // namespace

int health_status(const HealthInput& h) {
  if (!h.connected) return 500;
  return tip_age_seconds(h) > kStaleTipSeconds ? 202 : 200;
}

std::string health_json(const HealthInput& h) {
  const uint64_t age_ms = tip_age_seconds(h) * 1000;
  const uint64_t update_ms = h.unix_ms > age_ms ? h.unix_ms - age_ms : 0;
  char sync[32];
  std::snprintf(sync, sizeof sync, "%.5f", h.network_synchronization);
  const uint64_t epoch = epoch_of(h.tip_slot);
  const uint64_t in_epoch =
      h.tip_slot < kShelleySlot ? 0 : (h.tip_slot - kShelleySlot) % kEpochSlots;
  ChainView c{h.tip_slot, h.block_interval, h.fork_at};
  std::string out = "{\"metrics\":{\"activeConnections\":" + std::to_string(h.active_connections) +
                    ",\"runtimeStats\":{\"cpuTime\":0,\"currentHeapSize\":0,\"gcCpuTime\":0,"
                    "\"maxHeapSize\":0},\"sessionDurations\":{\"max\":0,\"mean\":0,\"min\":0}"
                    ",\"totalConnections\":" +
                    std::to_string(h.total_connections) +
                    ",\"totalMessages\":" + std::to_string(h.total_messages) +
                    ",\"totalUnrouted\":0}";
  out += ",\"startTime\":\"" + iso_time(h.start_unix_ms) + "\"";
  out += ",\"lastKnownTip\":" + tip_json(c);
  out += ",\"lastTipUpdate\":\"" + iso_time(update_ms) + "\"";
  out += std::string(",\"networkSynchronization\":") + sync;
  out += ",\"currentEra\":\"conway\"";
  out +=
      std::string(",\"connectionStatus\":\"") + (h.connected ? "connected" : "disconnected") + "\"";
  out +=
      ",\"currentEpoch\":" + std::to_string(epoch) + ",\"slotInEpoch\":" + std::to_string(in_epoch);
  out += ",\"version\":\"v6.11.0-corral-sim\",\"network\":\"mainnet\"}";
  return out;
}

}  // namespace bench::ogmios_api

#include <doctest.h>

#include <string>

#include "health/probe_result.h"

using health::ProbeResult;
using lb::BackendState;

namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Real-shaped answers (Kupo 2.11 and Ogmios 6 field names and layouts).
const char* kKupoSynced = R"({
  "connection_status": "connected",
  "most_recent_checkpoint": 134524380,
  "most_recent_node_tip": 134524380,
  "seconds_since_last_block": 4,
  "network_synchronization": 1,
  "version": "v2.11.0"
})";

const char* kKupoBehind = R"({"connection_status":"connected","most_recent_checkpoint":51020000,)"
                          R"("most_recent_node_tip":134524380,"seconds_since_last_block":null,)"
                          R"("network_synchronization":0.37921,"version":"v2.11.0"})";

const char* kKupoDisconnected =
    R"({"connection_status":"disconnected","most_recent_checkpoint":134524000,)"
    R"("most_recent_node_tip":null,"seconds_since_last_block":812.4,)"
    R"("network_synchronization":null,"version":"v2.11.0"})";

const char* kOgmiosSynced = R"({
  "startTime": "2024-05-02T09:11:38.150546Z",
  "lastKnownTip": {"slot": 124104742, "id": "c29428f386c701c1d1ba1fd259d4be78921ee9ee6c174eac898245ceb55e8061", "height": 10329481},
  "lastTipUpdate": "2024-05-03T11:02:40.107935Z",
  "networkSynchronization": 1.00000,
  "currentEra": "babbage",
  "metrics": {"activeConnections": 3, "runtimeStats": {"cpuTime": 81064672549, "currentHeapSize": 1014,
              "gcCpuTime": 1233009354, "maxHeapSize": 41630}, "sessionDurations": {"max": 57385, "mean": 7057, "min": 0},
              "totalConnections": 10, "totalMessages": 30029, "totalUnrouted": 1},
  "connectionStatus": "connected",
  "currentEpoch": 485,
  "slotInEpoch": 149542,
  "version": "6.3.0",
  "network": "mainnet"
})";

const char* kOgmiosBehind =
    R"({"startTime":"2024-05-02T09:11:38Z","lastKnownTip":{"slot":72316896,"id":"ab","height":8100000},)"
    R"("lastTipUpdate":"2024-05-03T11:02:40Z","networkSynchronization":0.98731,)"
    R"("currentEra":"babbage","metrics":{},"connectionStatus":"connected","currentEpoch":364,)"
    R"("slotInEpoch":1,"version":"6.3.0","network":"mainnet"})";

const char* kOgmiosOrigin =
    R"({"startTime":"2024-05-02T09:11:38Z","lastKnownTip":"origin","lastTipUpdate":null,)"
    R"("networkSynchronization":null,"currentEra":null,"metrics":{},)"
    R"("connectionStatus":"disconnected","currentEpoch":null,"slotInEpoch":null,)"
    R"("version":"6.3.0","network":null})";

// Inputs that must never crash any parser, whatever the status.
const std::string kGarbage[] = {
    "",
    "{",
    "}",
    "null",
    "[]",
    "[1,2,3]",
    "{\"most_recent_checkpoint\":",
    "{\"most_recent_checkpoint\":1234",  // truncated mid-object
    "{\"lastKnownTip\":{\"slot\":12",
    "<html><body><h1>502 Bad Gateway</h1></body></html>",
    "# TYPE kupo_connection_status gauge\nkupo_connection_status 1.0\n",
    std::string("{\"a\":\"\0\xff\xfe\"}", 9),
    std::string(2'000'000, '{'),
    std::string(100'000, '['),
    "{\"most_recent_checkpoint\":1e999,\"most_recent_node_tip\":-5,"
    "\"seconds_since_last_block\":-1,\"network_synchronization\":\"full\"}",
    "{\"most_recent_checkpoint\":\"134524380\",\"most_recent_node_tip\":true}",
    "{\"most_recent_checkpoint\":99999999999999999999999999999,\"seconds_since_last_block\":1e999}",
    "{\"lastKnownTip\":[1,2],\"networkSynchronization\":{}}",
    "{\"lastKnownTip\":{\"slot\":-1}}",
    "{\"lastKnownTip\":{\"slot\":1.5}}",
    "{\"lastKnownTip\":{\"slot\":\"12\"}}",
    "{\"lastKnownTip\":\"genesis\"}",
    "{\"is_healthy\":\"true\"}",
    "{\"is_healthy\":1}",
};

}  // namespace

TEST_CASE("probe_result: Kupo 200 synced is up, with its positions") {
  ProbeResult r = health::parse_kupo_health(200, kKupoSynced);
  CHECK(r.level == BackendState::up);
  CHECK(r.tip_slot == 134'524'380u);
  CHECK(r.node_tip_slot == 134'524'380u);
  REQUIRE(r.seconds_since_last_block.has_value());
  CHECK(*r.seconds_since_last_block == doctest::Approx(4));
  CHECK(r.detail ==
        "200 synced (checkpoint 134524380, node tip 134524380, sync 1, "
        "last block 4s ago)");
}

TEST_CASE("probe_result: Kupo 202 behind is draining; null fields are unknown") {
  ProbeResult r = health::parse_kupo_health(202, kKupoBehind);
  CHECK(r.level == BackendState::draining);
  CHECK(r.tip_slot == 51'020'000u);
  CHECK(r.node_tip_slot == 134'524'380u);
  CHECK_FALSE(r.seconds_since_last_block.has_value());
  CHECK(contains(r.detail, "202 behind"));
  CHECK(contains(r.detail, "sync 0.37921"));
}

TEST_CASE("probe_result: Kupo 503 disconnected is down, keeping what it knows") {
  ProbeResult r = health::parse_kupo_health(503, kKupoDisconnected);
  CHECK(r.level == BackendState::down);
  CHECK(r.tip_slot == 134'524'000u);
  CHECK_FALSE(r.node_tip_slot.has_value());
  REQUIRE(r.seconds_since_last_block.has_value());
  CHECK(*r.seconds_since_last_block == doctest::Approx(812.4));
  CHECK(contains(r.detail, "503 disconnected"));
  CHECK_FALSE(contains(r.detail, "says disconnected"));  // it agrees with its status
}

TEST_CASE("probe_result: Kupo, the status decides; the body only informs") {
  // A 200 whose body cannot be read is still up.
  ProbeResult r = health::parse_kupo_health(200, "# TYPE kupo_connection_status gauge\n");
  CHECK(r.level == BackendState::up);
  CHECK_FALSE(r.tip_slot.has_value());
  CHECK(r.detail == "200 synced (body unreadable)");
  // An older Kupo without the newer fields.
  r = health::parse_kupo_health(
      200,
      R"({"connection_status":"connected","most_recent_checkpoint":7,"most_recent_node_tip":9})");
  CHECK(r.level == BackendState::up);
  CHECK(r.tip_slot == 7u);
  CHECK(r.node_tip_slot == 9u);
  CHECK_FALSE(r.seconds_since_last_block.has_value());
  CHECK(r.detail == "200 synced (checkpoint 7, node tip 9)");
  // A body contradicting the status is shown, not obeyed.
  r = health::parse_kupo_health(202, R"({"connection_status":"disconnected"})");
  CHECK(r.level == BackendState::draining);
  CHECK(contains(r.detail, "says disconnected"));
  // Other statuses are down.
  for (int s : {0, 204, 301, 404, 500, 502, 504}) {
    CAPTURE(s);
    r = health::parse_kupo_health(s, kKupoSynced);
    CHECK(r.level == BackendState::down);
    CHECK(contains(r.detail, "unexpected status"));
  }
  // Empty JSON object: no positions, no complaint.
  r = health::parse_kupo_health(200, "{}");
  CHECK(r.detail == "200 synced");
}

TEST_CASE("probe_result: Ogmios 200 is up with lastKnownTip.slot") {
  ProbeResult r = health::parse_ogmios_health(200, kOgmiosSynced);
  CHECK(r.level == BackendState::up);
  CHECK(r.tip_slot == 124'104'742u);
  CHECK_FALSE(r.node_tip_slot.has_value());
  CHECK_FALSE(r.seconds_since_last_block.has_value());
  CHECK(r.detail == "200 synced (tip 124104742, sync 1)");
}

TEST_CASE("probe_result: Ogmios 202 is draining, 500 is down") {
  ProbeResult r = health::parse_ogmios_health(202, kOgmiosBehind);
  CHECK(r.level == BackendState::draining);
  CHECK(r.tip_slot == 72'316'896u);
  CHECK(r.detail == "202 behind (tip 72316896, sync 0.98731)");
  r = health::parse_ogmios_health(500, kOgmiosBehind);
  CHECK(r.level == BackendState::down);
  CHECK(contains(r.detail, "500 disconnected"));
  for (int s : {0, 404, 502, 503}) {
    CAPTURE(s);
    r = health::parse_ogmios_health(s, kOgmiosSynced);
    CHECK(r.level == BackendState::down);
    CHECK(contains(r.detail, "unexpected status"));
  }
}

TEST_CASE("probe_result: Ogmios lastKnownTip as origin, null, or the v5 shape") {
  ProbeResult r = health::parse_ogmios_health(500, kOgmiosOrigin);
  CHECK(r.level == BackendState::down);
  CHECK(r.tip_slot == 0u);  // before every block: lags everything
  CHECK(contains(r.detail, "tip origin"));
  r = health::parse_ogmios_health(202,
                                  R"({"lastKnownTip":"origin","connectionStatus":"disconnected"})");
  CHECK(r.level == BackendState::draining);
  CHECK(contains(r.detail, "says disconnected"));
  r = health::parse_ogmios_health(200, R"({"lastKnownTip":null,"networkSynchronization":null})");
  CHECK(r.level == BackendState::up);
  CHECK_FALSE(r.tip_slot.has_value());
  CHECK(r.detail == "200 synced");
  r = health::parse_ogmios_health(
      200, R"({"lastKnownTip":{"hash":"c294","blockNo":5034297,"slot":15520688},)"
           R"("networkSynchronization":0.99,"currentEra":"Mary"})");
  CHECK(r.tip_slot == 15'520'688u);
  CHECK(r.detail == "200 synced (tip 15520688, sync 0.99)");
  // An unreadable body: the status still decides.
  r = health::parse_ogmios_health(200, "<html>");
  CHECK(r.level == BackendState::up);
  CHECK(r.detail == "200 synced (body unreadable)");
}

TEST_CASE("probe_result: Blockfrost is up only on 200 with is_healthy true") {
  ProbeResult r = health::parse_blockfrost_health(200, R"({"is_healthy": true})");
  CHECK(r.level == BackendState::up);
  CHECK(r.detail == "200 healthy");
  CHECK_FALSE(r.tip_slot.has_value());
  r = health::parse_blockfrost_health(200, R"({"is_healthy": false})");
  CHECK(r.level == BackendState::down);
  CHECK(r.detail == "200 is_healthy false");
  r = health::parse_blockfrost_health(200, R"({"status": "ok"})");
  CHECK(r.level == BackendState::down);
  CHECK(r.detail == "200 without is_healthy");
  r = health::parse_blockfrost_health(200, R"({"is_healthy": "true"})");
  CHECK(r.level == BackendState::down);
  r = health::parse_blockfrost_health(200, "OK");
  CHECK(r.level == BackendState::down);
  CHECK(r.detail == "200 body unreadable");
  // Quota answers are named for what they are.
  CHECK(health::parse_blockfrost_health(402, "{}").detail == "402 daily limit reached");
  CHECK(health::parse_blockfrost_health(429, "{}").detail == "429 rate limited");
  CHECK(health::parse_blockfrost_health(418, "{}").detail == "418 banned");
  CHECK(health::parse_blockfrost_health(403, "{}").detail == "403 forbidden (project_id?)");
  r = health::parse_blockfrost_health(500, R"({"is_healthy": true})");
  CHECK(r.level == BackendState::down);
  CHECK(r.detail == "500 unhealthy");
}

TEST_CASE("probe_result: plain HTTP compares the status") {
  ProbeResult r = health::parse_http_health(200, 200);
  CHECK(r.level == BackendState::up);
  CHECK(r.detail == "200");
  r = health::parse_http_health(204, 204);
  CHECK(r.level == BackendState::up);
  r = health::parse_http_health(200, 204);
  CHECK(r.level == BackendState::down);
  CHECK(r.detail == "200, expected 204");
  r = health::parse_http_health(503, 200);
  CHECK(r.level == BackendState::down);
}

TEST_CASE("probe_result: no answer is down with the reason") {
  ProbeResult r = health::probe_failed("connect: connection refused");
  CHECK(r.level == BackendState::down);
  CHECK(r.detail == "connect: connection refused");
  CHECK_FALSE(r.tip_slot.has_value());
  CHECK(health::probe_failed("").detail == "no answer");
  CHECK(health::probe_failed(std::string(10'000, 'x')).detail.size() <= 200);
}

TEST_CASE("probe_result: garbage never crashes; invalid fields are unknown") {
  for (const std::string& body : kGarbage) {
    CAPTURE(body.substr(0, 80));
    for (int status : {200, 202, 500, 503}) {
      ProbeResult k = health::parse_kupo_health(status, body);
      ProbeResult o = health::parse_ogmios_health(status, body);
      ProbeResult b = health::parse_blockfrost_health(status, body);
      // The status alone decides the level for Kupo and Ogmios.
      CHECK(k.level == (status == 200   ? BackendState::up
                        : status == 202 ? BackendState::draining
                                        : BackendState::down));
      CHECK(o.level == (status == 200   ? BackendState::up
                        : status == 202 ? BackendState::draining
                                        : BackendState::down));
      CHECK(b.level == BackendState::down);  // no garbage says is_healthy: true
      // No garbage yields a position.
      CHECK_FALSE(k.tip_slot.has_value());
      CHECK_FALSE(k.node_tip_slot.has_value());
      CHECK_FALSE(k.seconds_since_last_block.has_value());
      CHECK_FALSE(o.tip_slot.has_value());
      CHECK(k.detail.size() <= 200);
      CHECK(o.detail.size() <= 200);
    }
  }
}

TEST_CASE("probe_result: out-of-range numbers are unknown, valid neighbours still read") {
  ProbeResult r = health::parse_kupo_health(
      200, R"({"most_recent_checkpoint":1e999,"most_recent_node_tip":42,)"
           R"("seconds_since_last_block":-3,"network_synchronization":0.5})");
  CHECK(r.level == BackendState::up);
  CHECK_FALSE(r.tip_slot.has_value());
  CHECK(r.node_tip_slot == 42u);
  CHECK_FALSE(r.seconds_since_last_block.has_value());
  CHECK(r.detail == "200 synced (node tip 42, sync 0.5)");
  r = health::parse_kupo_health(200, R"({"seconds_since_last_block":1e300})");
  REQUIRE(r.seconds_since_last_block.has_value());  // huge but a real number: stale
  CHECK(*r.seconds_since_last_block > 1e299);
  CHECK(r.detail.size() <= 200);
}

TEST_CASE("probe result: Ogmios tip hash and Kupo checkpoints") {
  auto r = health::parse_ogmios_health(
      202, R"({"lastKnownTip":{"slot":1200,"id":"abcd","height":7},"networkSynchronization":0.9})");
  CHECK(r.tip_slot == 1200u);
  CHECK(r.tip_hash == std::optional<std::string>("abcd"));
  r = health::parse_ogmios_health(200, R"({"lastKnownTip":{"slot":5,"hash":"ef01","blockNo":2}})");
  CHECK(r.tip_hash == std::optional<std::string>("ef01"));
  CHECK_FALSE(health::parse_ogmios_health(200, R"({"lastKnownTip":"origin"})").tip_hash);
  CHECK(health::parse_kupo_checkpoint(200, R"({"slot_no":42,"header_hash":"aa"})") ==
        std::optional<std::string>("42:aa"));
  CHECK_FALSE(health::parse_kupo_checkpoint(200, "null"));
  CHECK_FALSE(health::parse_kupo_checkpoint(400, R"({"slot_no":42,"header_hash":"aa"})"));
  CHECK_FALSE(health::parse_kupo_checkpoint(200, R"({"slot_no":42})"));
  CHECK_FALSE(health::parse_kupo_checkpoint(200, "{garbage"));
}

// Fuzz target: the health answer parsers (health/probe_result) and the lag rule
// (health/lag) on hostile answers. The first two bytes pick the status code; the rest is
// the body. Checks: each parser returns a valid level; a non-2xx answer is never `up`;
// the chain positions read feed compute_lag, whose best tip is the largest counted one.
#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "health/lag.h"
#include "health/probe_result.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

void check_level(const health::ProbeResult& r, int status) {
  FUZZ_CHECK(r.level == lb::BackendState::up || r.level == lb::BackendState::draining ||
                 r.level == lb::BackendState::down,
             "a valid level");
  if (status < 200 || status > 299)
    FUZZ_CHECK(r.level != lb::BackendState::up, "a non-2xx answer is never up");
  FUZZ_CHECK(r.detail.size() < 4096, "the detail stays short");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const int kStatus[] = {200, 202, 204, 301, 404, 500, 503, 0, 100, 299};
  int status = data[0] < 10 ? kStatus[data[0]] : 100 + (data[0] * 256 + data[1]) % 900;
  std::string_view body(reinterpret_cast<const char*>(data) + 2, size - 2);

  health::ProbeResult results[] = {
      health::parse_kupo_health(status, body), health::parse_ogmios_health(status, body),
      health::parse_blockfrost_health(status, body), health::parse_http_health(status, 200),
      health::probe_failed(body.substr(0, 64))};
  std::vector<health::TipView> tips;
  for (const health::ProbeResult& r : results) {
    check_level(r, status);
    tips.push_back({r.tip_slot, r.seconds_since_last_block, r.level != lb::BackendState::down});
    tips.push_back({r.node_tip_slot, std::nullopt, true});
  }
  bool lagging[16] = {};
  const uint64_t max_lag = data[1];
  auto best = health::compute_lag(tips, max_lag, 30.0, std::span<bool>(lagging, tips.size()));
  std::optional<uint64_t> want;
  for (const health::TipView& t : tips)
    if (t.counted && t.tip_slot && (!want || *t.tip_slot > *want)) want = t.tip_slot;
  FUZZ_CHECK(best == want, "the best tip is the largest counted tip");
  for (size_t i = 0; i < tips.size(); ++i)
    if (tips[i].tip_slot && best && *tips[i].tip_slot >= *best &&
        !(tips[i].seconds_since_last_block && *tips[i].seconds_since_last_block > 30.0))
      FUZZ_CHECK(!lagging[i], "the backend at the best tip is not lagging (unless stale)");
  return 0;
}

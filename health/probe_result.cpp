#include "health/probe_result.h"

#include <cmath>
#include <cstdio>

#include "lb/core/flat_json.h"

namespace health {

namespace {

using lb::BackendState;
using lb::FlatJson;
using lb::JsonValue;

constexpr size_t kMaxDetail = 200;  // /status shows a line, not an essay

std::optional<uint64_t> count_of(const std::optional<JsonValue>& v) {
  return v ? v->as_count() : std::nullopt;
}

// A finite, non-negative number, or unknown: a negative age or a NaN-ish value is a bug on
// the other side, not a fact to act on.
std::optional<double> seconds_of(const std::optional<JsonValue>& v) {
  if (!v || v->type != JsonValue::Type::number || !std::isfinite(v->number) || v->number < 0)
    return std::nullopt;
  return v->number;
}

std::optional<double> ratio_of(const std::optional<JsonValue>& v) {
  if (!v || v->type != JsonValue::Type::number || !std::isfinite(v->number)) return std::nullopt;
  return v->number;
}

std::optional<std::string> string_of(const std::optional<JsonValue>& v) {
  if (!v || v->type != JsonValue::Type::string) return std::nullopt;
  return v->text;
}

// "202 behind (checkpoint 1200, node tip 1900, sync 0.9876)": status and word first, then
// whatever the body told us, comma-separated.
class Detail {
 public:
  Detail(int status, const char* word) {
    text_ = std::to_string(status);
    text_ += ' ';
    text_ += word;
  }
  void add(const std::string& part) {
    text_ += parts_++ ? ", " : " (";
    text_ += part;
  }
  void add_slot(const char* what, std::optional<uint64_t> slot) {
    if (slot) add(std::string(what) + " " + std::to_string(*slot));
  }
  void add_number(const char* fmt, std::optional<double> x) {
    if (!x) return;
    char buf[64];
    std::snprintf(buf, sizeof buf, fmt, *x);
    add(buf);
  }
  std::string done() {
    if (parts_) text_ += ')';
    if (text_.size() > kMaxDetail) text_.resize(kMaxDetail);
    return std::move(text_);
  }

 private:
  std::string text_;
  int parts_ = 0;
};

// The word for a status of a kind whose health endpoint answers 200/202/`down_status`.
const char* sync_word(int status, int down_status) {
  if (status == 200) return "synced";
  if (status == 202) return "behind";
  return status == down_status ? "disconnected" : "unexpected status";
}

}  // namespace

// Kupo answers 200 when connected and synced, 202 when connected but behind (or when it
// cannot tell), 503 when disconnected from its node. The status decides; the body only
// adds chain positions, so a 200 whose body we cannot read is still up.
ProbeResult parse_kupo_health(int status, std::string_view body) {
  ProbeResult r;
  r.level = status == 200   ? BackendState::up
            : status == 202 ? BackendState::draining
                            : BackendState::down;
  Detail d(status, sync_word(status, 503));
  std::optional<FlatJson> j = FlatJson::parse(body);
  if (!j) {
    d.add("body unreadable");
    r.detail = d.done();
    return r;
  }
  r.tip_slot = count_of(j->lookup("most_recent_checkpoint"));
  r.node_tip_slot = count_of(j->lookup("most_recent_node_tip"));
  r.seconds_since_last_block = seconds_of(j->lookup("seconds_since_last_block"));
  d.add_slot("checkpoint", r.tip_slot);
  d.add_slot("node tip", r.node_tip_slot);
  d.add_number("sync %.5g", ratio_of(j->lookup("network_synchronization")));
  d.add_number("last block %.6gs ago", r.seconds_since_last_block);
  // A body contradicting the status is worth showing, not acting on.
  std::optional<std::string> conn = string_of(j->lookup("connection_status"));
  if (conn && *conn == "disconnected" && status != 503) d.add("says disconnected");
  r.detail = d.done();
  return r;
}

// Ogmios answers 200 when synced, 202 when not, 500 when disconnected. lastKnownTip is an
// object {slot, id, height} (v6; v5 had {slot, hash, blockNo}), null, or the string
// "origin" before the first block: origin is a known position behind every block, so it
// reads as slot 0 and such a backend lags rather than being given the benefit of doubt.
ProbeResult parse_ogmios_health(int status, std::string_view body) {
  ProbeResult r;
  r.level = status == 200   ? BackendState::up
            : status == 202 ? BackendState::draining
                            : BackendState::down;
  Detail d(status, sync_word(status, 500));
  std::optional<FlatJson> j = FlatJson::parse(body);
  if (!j) {
    d.add("body unreadable");
    r.detail = d.done();
    return r;
  }
  std::optional<JsonValue> tip = j->lookup("lastKnownTip");
  if (tip && tip->type == JsonValue::Type::string && tip->text == "origin") {
    r.tip_slot = 0;
    d.add("tip origin");
  } else {
    r.tip_slot = count_of(j->lookup("lastKnownTip.slot"));
    r.tip_hash = string_of(j->lookup("lastKnownTip.id"));
    if (!r.tip_hash) r.tip_hash = string_of(j->lookup("lastKnownTip.hash"));
    d.add_slot("tip", r.tip_slot);
  }
  d.add_number("sync %.5g", ratio_of(j->lookup("networkSynchronization")));
  std::optional<std::string> conn = string_of(j->lookup("connectionStatus"));
  if (conn && *conn == "disconnected" && status != 500) d.add("says disconnected");
  r.detail = d.done();
  return r;
}

// Blockfrost: healthy only when it says so. Its quota answers get their meaning spelled
// out, since they look like outages but are billing (402), throttling (429) or a ban (418).
ProbeResult parse_blockfrost_health(int status, std::string_view body) {
  ProbeResult r;
  if (status != 200) {
    const char* word = status == 402   ? "daily limit reached"
                       : status == 429 ? "rate limited"
                       : status == 418 ? "banned"
                       : status == 403 ? "forbidden (project_id?)"
                                       : "unhealthy";
    r.detail = Detail(status, word).done();
    return r;
  }
  std::optional<FlatJson> j = FlatJson::parse(body);
  std::optional<JsonValue> v = j ? j->lookup("is_healthy") : std::nullopt;
  if (!j) {
    r.detail = "200 body unreadable";
  } else if (!v || v->type != JsonValue::Type::boolean) {
    r.detail = "200 without is_healthy";
  } else if (!v->boolean) {
    r.detail = "200 is_healthy false";
  } else {
    r.level = BackendState::up;
    r.detail = "200 healthy";
  }
  return r;
}

ProbeResult parse_http_health(int status, int expect) {
  ProbeResult r;
  r.level = status == expect ? BackendState::up : BackendState::down;
  r.detail = std::to_string(status);
  if (status != expect) r.detail += ", expected " + std::to_string(expect);
  return r;
}

ProbeResult probe_failed(std::string_view why) {
  ProbeResult r;
  r.detail = why.empty() ? "no answer" : std::string(why.substr(0, kMaxDetail));
  return r;
}

// Kupo answers the checkpoint at or before the slot asked (null when there is none); the
// slot goes into the value, so two backends agree only on the very same block.
std::optional<std::string> parse_kupo_checkpoint(int status, std::string_view body) {
  if (status != 200) return std::nullopt;
  std::optional<FlatJson> j = FlatJson::parse(body);
  if (!j) return std::nullopt;
  std::optional<uint64_t> slot = count_of(j->lookup("slot_no"));
  std::optional<std::string> hash = string_of(j->lookup("header_hash"));
  if (!slot || !hash || hash->empty() || hash->size() > 128) return std::nullopt;
  return std::to_string(*slot) + ":" + *hash;
}

}  // namespace health

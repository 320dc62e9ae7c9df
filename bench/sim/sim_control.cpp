// The /_sim/ endpoints of the simulated backend (sim_backend.h): control, stats, echo and
// stream. They bypass dead, capacity and latency so tests can always steer and read it.
#include <algorithm>
#include <cstdlib>
#include <string>

#include "bench/sim/kupo_api.h"
#include "bench/sim/sim_backend_impl.h"

namespace bench {

using lb::FlatJson;
using lb::json_escape;
using lb::JsonValue;

void SimBackend::Impl::handle_sim(const ServerRequest& req, std::string_view path, Responder& r) {
  const std::string_view ct = "application/json";
  if (path == "/_sim/stats" && req.method == "GET") {
    r.respond(200, ct, stats_json(), base_headers());
    return;
  }
  if (path == "/_sim/control" && req.method == "GET") {
    r.respond(200, ct, control_json(), base_headers());
    return;
  }
  if (path == "/_sim/control" && req.method == "POST") {
    auto j = FlatJson::parse(req.body);
    if (!j) {
      r.respond(400, ct, "{\"error\":\"body must be a JSON object\"}", base_headers());
      return;
    }
    std::string error = apply_control(*j);
    if (!error.empty()) {
      r.respond(400, ct, "{\"error\":\"" + json_escape(error) + "\"}", base_headers());
      return;
    }
    r.respond(200, ct, control_json(), base_headers());
    return;
  }
  std::string_view query;
  if (size_t q = req.target.find('?'); q != std::string_view::npos)
    query = req.target.substr(q + 1);
  auto qint = [&](std::string_view name, long dflt) {
    std::optional<std::string> v = query_param(query, name);
    return v && !v->empty() ? std::strtol(v->c_str(), nullptr, 10) : dflt;
  };
  if (path == "/_sim/echo") {
    // What arrived, as the backend saw it: tests check what a proxy forwarded.
    std::string b = "{\"method\":\"" + json_escape(req.method) + "\",\"target\":\"" +
                    json_escape(req.target) + "\",\"headers\":[";
    for (size_t i = 0; i < req.headers.size(); ++i)
      b += std::string(i ? "," : "") + "[\"" + json_escape(req.headers[i].name) + "\",\"" +
           json_escape(req.headers[i].value) + "\"]";
    b += "],\"body\":\"" + json_escape(req.body) + "\"}";
    r.respond(static_cast<int>(qint("status", 200)), ct, b, base_headers());
    return;
  }
  if (path == "/_sim/stream") {
    // chunks x size bytes, chunked; reset_after=K resets the connection after K chunks.
    long chunks = qint("chunks", 4), size = qint("size", 1024), reset = qint("reset_after", -1);
    r.begin(200, "application/octet-stream", base_headers());
    std::string piece(static_cast<size_t>(std::clamp(size, 1L, 1L << 20)), 'x');
    for (long i = 0; i < std::clamp(chunks, 0L, 4096L); ++i) {
      if (i == reset) {
        r.abort();
        return;
      }
      r.chunk(piece);
    }
    r.end();
    return;
  }
  if (path == "/_sim/stats" || path == "/_sim/control") {
    r.respond(405, ct, "{\"error\":\"method not allowed\"}", base_headers());
    return;
  }
  r.respond(404, ct, "{\"error\":\"unknown /_sim/ endpoint\"}", base_headers());
}

std::string SimBackend::Impl::apply_control(const FlatJson& j) {
  // Validate everything first so that a bad request changes nothing.
  struct Change {
    std::optional<uint64_t> latency_ms, capacity, reject_delay_ms, tip_lag_slots, rollback,
        latency_jitter_ms, null_percent, match_count;
    std::optional<SimHealth> health;
    std::optional<bool> dead, freeze_tip, flap, overload, read_only_stale;
    bool set_fork = false;
    std::optional<uint64_t> fork_at;  // with set_fork: nullopt heals
  } c;
  for (const auto& [key, v] : j.fields()) {
    auto count = [&, &key = key, &v = v](std::optional<uint64_t>& out) -> std::string {
      out = v.as_count();
      return out ? "" : key + " must be a non-negative integer";
    };
    auto flag = [&, &key = key, &v = v](std::optional<bool>& out) -> std::string {
      if (v.type != JsonValue::Type::boolean) return key + " must be true or false";
      out = v.boolean;
      return "";
    };
    std::string err;
    if (key == "latency_ms")
      err = count(c.latency_ms);
    else if (key == "latency_jitter_ms")
      err = count(c.latency_jitter_ms);
    else if (key == "null_percent") {
      err = count(c.null_percent);
      if (err.empty() && *c.null_percent > 100) err = "null_percent must be 0..100";
    } else if (key == "match_count") {
      err = count(c.match_count);
      if (err.empty() && *c.match_count > kMaxMatchCount)
        err = "match_count must be 0.." + std::to_string(kMaxMatchCount);
    } else if (key == "capacity")
      err = count(c.capacity);
    else if (key == "reject_delay_ms")
      err = count(c.reject_delay_ms);
    else if (key == "tip_lag_slots")
      err = count(c.tip_lag_slots);
    else if (key == "dead")
      err = flag(c.dead);
    else if (key == "freeze_tip")
      err = flag(c.freeze_tip);
    else if (key == "flap")
      err = flag(c.flap);
    else if (key == "overload")
      err = flag(c.overload);
    else if (key == "read_only_stale")
      err = flag(c.read_only_stale);
    else if (key == "rollback")
      err = count(c.rollback);
    else if (key == "fork_at") {
      c.set_fork = true;
      if (v.type != JsonValue::Type::null) {
        c.fork_at = v.as_count();
        if (!c.fork_at) err = "fork_at must be a slot number or null";
      }
    } else if (key == "health") {
      c.health = v.type == JsonValue::Type::string ? parse_sim_health(v.text) : std::nullopt;
      if (!c.health) err = "health must be \"synced\", \"behind\" or \"disconnected\"";
    } else {
      err = "unknown key " + key;
    }
    if (!err.empty()) return err;
  }
  const uint64_t t = now();
  if (c.latency_ms) opt.latency_ms = *c.latency_ms;
  if (c.latency_jitter_ms) opt.latency_jitter_ms = *c.latency_jitter_ms;
  if (c.null_percent) opt.null_percent = *c.null_percent;
  if (c.match_count) opt.match_count = *c.match_count;
  if (c.capacity) opt.capacity = *c.capacity;
  if (c.reject_delay_ms) opt.reject_delay_ms = *c.reject_delay_ms;
  if (c.health) chain.set_health(*c.health, t);
  if (c.tip_lag_slots) chain.set_lag(*c.tip_lag_slots);  // after health: an explicit lag wins
  if (c.freeze_tip) chain.set_frozen(*c.freeze_tip, t);
  if (c.read_only_stale) chain.set_read_only_stale(*c.read_only_stale, t);
  if (c.rollback) chain.rollback(*c.rollback, t);  // after the freezes: it moves them back too
  if (c.set_fork) chain.set_fork_at(c.fork_at);
  if (c.flap) flap = *c.flap;
  if (c.overload) overload = *c.overload;
  if (c.dead) {
    if (*c.dead && !dead) {
      drop_delayed(true);
      if (ogmios) ogmios->drop_all();
    }
    dead = *c.dead;
  }
  return "";
}

std::string SimBackend::Impl::control_json() const {
  const uint64_t t = now();
  std::string out =
      "{\"name\":\"" + json_escape(opt.name) + "\",\"kind\":\"" + json_escape(opt.kind) + "\"";
  out += ",\"latency_ms\":" + std::to_string(opt.latency_ms);
  out += ",\"latency_jitter_ms\":" + std::to_string(opt.latency_jitter_ms);
  out += ",\"null_percent\":" + std::to_string(opt.null_percent);
  out += ",\"match_count\":" + std::to_string(opt.match_count);
  out += ",\"capacity\":" + std::to_string(opt.capacity);
  out += ",\"reject_delay_ms\":" + std::to_string(opt.reject_delay_ms);
  out += ",\"health\":\"" + std::string(to_string(chain.health(t))) + "\"";
  out += ",\"tip_lag_slots\":" + std::to_string(chain.lag());
  out += std::string(",\"dead\":") + (dead ? "true" : "false");
  out += std::string(",\"freeze_tip\":") + (chain.frozen() ? "true" : "false");
  out += std::string(",\"flap\":") + (flap ? "true" : "false");
  out += std::string(",\"overload\":") + (overload ? "true" : "false");
  out += std::string(",\"read_only_stale\":") + (chain.read_only_stale() ? "true" : "false");
  out += ",\"fork_at\":" + (chain.fork_at() ? std::to_string(*chain.fork_at()) : "null");
  out += ",\"rolled_back_slots\":" + std::to_string(chain.rewound());
  out += ",\"most_recent_checkpoint\":" + std::to_string(chain.checkpoint(t));
  out += ",\"header_hash\":\"" + chain.hash_at(chain.checkpoint(t)) + "\"";
  out += ",\"most_recent_node_tip\":" + std::to_string(chain.node_tip(t)) + "}";
  return out;
}

std::string SimBackend::Impl::stats_json() const {
  return "{\"name\":\"" + json_escape(opt.name) +
         "\",\"requests\":" + std::to_string(stats.requests) +
         ",\"writes\":" + std::to_string(stats.writes) +
         ",\"in_flight\":" + std::to_string(stats.in_flight) +
         ",\"rejected_503\":" + std::to_string(stats.rejected_503) +
         (ogmios ? ogmios->stats_json_fields() : by_route_json()) + "}";
}

std::string SimBackend::Impl::by_route_json() const {
  const SimRouteCounts& c = stats.by_route;
  return ",\"by_route\":{\"datums\":" + std::to_string(c.datums) +
         ",\"scripts\":" + std::to_string(c.scripts) +
         ",\"metadata\":" + std::to_string(c.metadata) +
         ",\"checkpoints\":" + std::to_string(c.checkpoints) +
         ",\"matches\":" + std::to_string(c.matches) + ",\"health\":" + std::to_string(c.health) +
         ",\"other\":" + std::to_string(c.other) + ",\"null\":" + std::to_string(c.nulls) + "}";
}

}  // namespace bench

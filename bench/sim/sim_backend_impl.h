#pragma once
// The simulated backend's state, shared by its two halves: sim_backend.cpp (the Kupo routes,
// the latency timers and the lifecycle) and sim_control.cpp (the /_sim/ endpoints: control,
// stats, echo, stream). Internal to bench/sim; users include sim_backend.h.
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "bench/sim/ogmios_sim.h"
#include "bench/sim/sim_backend.h"
#include "lb/core/flat_json.h"

namespace bench {

using lb::net::Responder;
using lb::net::ServerRequest;
using Headers = Responder::Headers;

// What a route needs from a request, copied: the request's views die with the handler call
// and a data request may be answered later from a timer.
struct KupoRequest {
  std::string method;
  std::vector<std::string> segments;  // the path split on '/', a leading "v1" dropped
  std::string query;
  std::optional<std::string> accept;
  std::optional<std::string> if_none_match;
};

// The value of `name` in a query string: "" for a bare flag, nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

struct SimBackend::Impl {
  struct Delayed {
    uv_timer_t timer;
    Impl* impl;
    Responder responder;
    KupoRequest request;
    bool reject;  // a 503 held back like Kupo's retries, not a request in flight
  };

  Impl(uv_loop_t* l, SimOptions o)
      : loop(l),
        opt(std::move(o)),
        chain(opt.tip_slot ? opt.tip_slot : mainnet_slot_now(), uv_now(l),
              opt.block_interval_slots),
        server(
            l, [this](const ServerRequest& req, Responder r) { handle(req, std::move(r)); },
            opt.server) {
    chain.set_health(opt.health, now());
    if (opt.tip_lag_slots) chain.set_lag(opt.tip_lag_slots);
    chain.set_frozen(opt.freeze_tip, now());
    if (opt.kind == "ogmios") {
      ogmios = std::make_unique<OgmiosSim>(l, opt.name, chain, opt.latency_ms);
      // Only an Ogmios speaks WebSocket; a simulated Kupo answers an upgrade request as a
      // plain one, as Kupo does.
      server.set_upgrade_handler(
          [this](const ServerRequest& req, Responder r) { handle_upgrade(req, std::move(r)); });
    }
  }

  void handle_upgrade(const ServerRequest& req, Responder r) {
    ++stats.requests;
    if (dead) {
      r.abort();
      return;
    }
    ogmios->handle_upgrade(req, r);
  }

  uint64_t now() const { return uv_now(loop); }

  void handle(const ServerRequest& req, Responder r);
  // Adds one to stats.by_route for the request's first path segment.
  void count_route(const std::vector<std::string>& segments);
  void handle_sim(const ServerRequest& req, std::string_view path, Responder& r);
  void answer(const KupoRequest& k, Responder& r);
  void answer_data(const KupoRequest& k, Responder& r);
  void answer_health(const KupoRequest& k, Responder& r);
  void answer_busy(Responder& r);
  void stream(Responder& r, const Headers& headers, const std::vector<std::string>& items);
  void schedule(KupoRequest k, Responder r, uint64_t ms, bool reject);
  static void on_timer(uv_timer_t* t);
  // Stops every held answer; `abort` also resets their connections (a dead backend).
  void drop_delayed(bool abort);

  Headers base_headers() const { return {{"X-Backend", opt.name}}; }
  // Kupo's addCacheHeaders: the most recent checkpoint and its header hash as ETag.
  Headers cache_headers() const {
    const uint64_t cp = chain.checkpoint(now());
    return {{"X-Most-Recent-Checkpoint", std::to_string(cp)},
            {"ETag", chain.hash_at(cp)},
            {"X-Backend", opt.name}};
  }
  std::string apply_control(const lb::FlatJson& j);
  std::string control_json() const;
  std::string stats_json() const;
  std::string by_route_json() const;

  uv_loop_t* loop;
  SimOptions opt;
  SimChain chain;
  lb::net::HttpServer server;
  std::unique_ptr<OgmiosSim> ogmios;  // kind ogmios only
  std::set<std::string> patterns{"*"};
  bool dead = false;
  bool flap = false;
  bool overload = false;
  uint64_t flap_count = 0;
  uint64_t data_seq = 0;  // data requests admitted so far: the jitter's seed
  bool closed = false;
  SimStats stats;
  std::unordered_set<Delayed*> delayed;
};

}  // namespace bench

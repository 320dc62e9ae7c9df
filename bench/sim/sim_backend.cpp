#include "bench/sim/sim_backend.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string_view>

#include "bench/sim/kupo_api.h"
#include "bench/sim/sim_backend_impl.h"

namespace bench {

using lb::json_escape;

// The value of `name` in a query string: "" for a bare flag, nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  size_t i = 0;
  while (i <= query.size()) {
    size_t j = query.find('&', i);
    if (j == std::string_view::npos) j = query.size();
    std::string_view item = query.substr(i, j - i);
    size_t eq = item.find('=');
    std::string_view key = item.substr(0, eq);
    if (key == name) return std::string(eq == std::string_view::npos ? "" : item.substr(eq + 1));
    i = j + 1;
  }
  return std::nullopt;
}

namespace {

// Kupo's router, before any work is done: which requests touch the database (and so count
// against capacity and wait for the latency), and which are refused outright.
enum class Route : uint8_t { options, not_found, not_allowed, health, patterns_read, data };

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  if (!out.empty() && out.front() == "v1") out.erase(out.begin());
  return out;
}

Route classify(const KupoRequest& k) {
  if (k.method == "OPTIONS") return Route::options;
  if (k.segments.empty()) return Route::not_found;
  const std::string& what = k.segments[0];
  const size_t args = k.segments.size() - 1;
  const bool get = k.method == "GET";
  if (what == "health") {
    if (!get) return Route::not_allowed;
    return args == 0 ? Route::health : Route::not_found;
  }
  if (what == "checkpoints") {
    if (!get) return Route::not_allowed;
    return args <= 1 ? Route::data : Route::not_found;
  }
  if (what == "matches") {
    if (get || k.method == "DELETE") return Route::data;
    return Route::not_allowed;
  }
  if (what == "datums" || what == "scripts" || what == "metadata") {
    if (!get) return Route::not_allowed;
    return args == 1 ? Route::data : Route::not_found;
  }
  if (what == "patterns") {
    if (get) return Route::patterns_read;
    if (k.method == "PUT" || k.method == "DELETE") return Route::data;
    return Route::not_allowed;
  }
  return Route::not_found;
}

// Kupo's pathParametersToText: no argument is the wildcard, two are joined with '/'.
std::optional<std::string> pattern_of(const KupoRequest& k) {
  const size_t args = k.segments.size() - 1;
  if (args == 0) return std::string("*");
  if (args == 1) return k.segments[1];
  if (args == 2) return k.segments[1] + "/" + k.segments[2];
  return std::nullopt;
}

std::string json_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
  return out + "]";
}

}  // namespace

uint64_t mainnet_slot_now() {
  // Shelley began at slot 4492800 at 2020-07-29T21:44:51Z (1596059091); one slot a second.
  const std::time_t t = std::time(nullptr);
  return t > 1591566291 ? static_cast<uint64_t>(t - 1591566291) : 0;
}

void SimBackend::Impl::handle(const ServerRequest& req, Responder r) {
  const size_t q = req.target.find('?');
  const std::string_view path = req.target.substr(0, q);
  if (path.substr(0, 6) == "/_sim/") {
    handle_sim(req, path, r);
    return;
  }
  ++stats.requests;
  if (req.method != "GET" && req.method != "HEAD" && req.method != "OPTIONS") ++stats.writes;
  KupoRequest k;
  if (!ogmios) {
    k.segments = split_path(path);
    count_route(k.segments);
  }
  if (dead) {
    r.abort();
    return;
  }
  if (ogmios) {
    ogmios->handle_http(req, r);
    return;
  }
  k.method = std::string(req.method);
  if (q != std::string_view::npos) k.query = std::string(req.target.substr(q + 1));
  if (auto a = lb::find_header(req.headers, "accept"); a.found) k.accept = std::string(a.value);
  if (auto e = lb::find_header(req.headers, "if-none-match"); e.found)
    k.if_none_match = std::string(e.value);

  if (classify(k) != Route::data) {
    answer(k, r);
    return;
  }
  // overload: every data request is refused, as a Kupo with no free reader does.
  if (overload || (opt.capacity != 0 && stats.in_flight >= opt.capacity)) {
    ++stats.rejected_503;
    if (opt.reject_delay_ms != 0)
      schedule(std::move(k), std::move(r), opt.reject_delay_ms, true);
    else
      answer_busy(r);
    return;
  }
  const uint64_t wait = kupo_api::delay_ms(opt.latency_ms, opt.latency_jitter_ms, data_seq++);
  if (wait == 0) {
    answer(k, r);
    return;
  }
  ++stats.in_flight;
  schedule(std::move(k), std::move(r), wait, false);
}

void SimBackend::Impl::count_route(const std::vector<std::string>& segments) {
  SimRouteCounts& c = stats.by_route;
  const std::string_view first = segments.empty() ? std::string_view() : segments[0];
  if (first == "datums")
    ++c.datums;
  else if (first == "scripts")
    ++c.scripts;
  else if (first == "metadata")
    ++c.metadata;
  else if (first == "checkpoints")
    ++c.checkpoints;
  else if (first == "matches")
    ++c.matches;
  else if (first == "health")
    ++c.health;
  else
    ++c.other;
}

void SimBackend::Impl::schedule(KupoRequest k, Responder r, uint64_t ms, bool reject) {
  auto* d = new Delayed{{}, this, std::move(r), std::move(k), reject};
  uv_timer_init(loop, &d->timer);
  d->timer.data = d;
  uv_timer_start(&d->timer, &Impl::on_timer, ms, 0);
  delayed.insert(d);
}

void SimBackend::Impl::on_timer(uv_timer_t* t) {
  auto* d = static_cast<Delayed*>(t->data);
  Impl* self = d->impl;
  self->delayed.erase(d);
  if (d->reject) {
    self->answer_busy(d->responder);
  } else {
    --self->stats.in_flight;
    self->answer(d->request, d->responder);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(t),
           [](uv_handle_t* h) { delete static_cast<Delayed*>(h->data); });
}

void SimBackend::Impl::drop_delayed(bool abort) {
  for (Delayed* d : delayed) {
    uv_timer_stop(&d->timer);
    if (abort) d->responder.abort();
    if (!d->reject) --stats.in_flight;
    uv_close(reinterpret_cast<uv_handle_t*>(&d->timer),
             [](uv_handle_t* h) { delete static_cast<Delayed*>(h->data); });
  }
  delayed.clear();
}

void SimBackend::Impl::answer_busy(Responder& r) {
  r.respond(503, kupo_api::kContentType, kupo_api::error_body(kupo_api::kHintServiceUnavailable),
            base_headers());
}

void SimBackend::Impl::stream(Responder& r, const Headers& headers,
                              const std::vector<std::string>& items) {
  // Kupo streams arrays element by element; one chunk per element here.
  r.begin(200, kupo_api::kContentType, headers);
  r.chunk("[");
  for (size_t i = 0; i < items.size(); ++i) r.chunk(i == 0 ? items[i] : "," + items[i]);
  r.chunk("]");
  r.end();
}

void SimBackend::Impl::answer(const KupoRequest& k, Responder& r) {
  switch (classify(k)) {
    case Route::options: {
      Headers h = base_headers();
      h.emplace_back("Access-Control-Allow-Origin", "*");
      h.emplace_back("Access-Control-Allow-Methods", "GET, PUT, DELETE, OPTIONS");
      h.emplace_back("Access-Control-Allow-Headers", "*");
      r.respond(200, "", "", h);
      return;
    }
    case Route::not_found:
      r.respond(404, kupo_api::kContentType, kupo_api::error_body(kupo_api::kHintNotFound),
                base_headers());
      return;
    case Route::not_allowed:
      // Kupo answers an unsupported method with 406, not 405.
      r.respond(406, kupo_api::kContentType, kupo_api::error_body(kupo_api::kHintMethodNotAllowed),
                base_headers());
      return;
    case Route::health:
      answer_health(k, r);
      return;
    case Route::patterns_read: {
      auto p = pattern_of(k);
      if (!p) {
        r.respond(400, kupo_api::kContentType, kupo_api::error_body(kupo_api::kHintInvalidPattern),
                  base_headers());
        return;
      }
      std::vector<std::string> items;
      for (const std::string& x : patterns)
        if (*p == "*" || x == "*" || x == *p) items.push_back("\"" + json_escape(x) + "\"");
      stream(r, base_headers(), items);
      return;
    }
    case Route::data:
      answer_data(k, r);
      return;
  }
}

void SimBackend::Impl::answer_health(const KupoRequest& k, Responder& r) {
  const uint64_t t = now();
  // flap: every other answer says disconnected, to test hysteresis.
  const int status = flap && (flap_count++ % 2 == 1) ? 503 : chain.health_status(t);
  // Kupo: no Accept means JSON; text/plain first, then application/json, then */* (text).
  const std::string accept = k.accept.value_or("");
  const bool text = accept.find("text/plain") != std::string::npos ||
                    (accept.find("application/json") == std::string::npos &&
                     accept.find("*/*") != std::string::npos);
  if (k.accept && !text && accept.find("application/json") == std::string::npos) {
    r.respond(400, kupo_api::kContentType,
              kupo_api::error_body(kupo_api::kHintUnsupportedContentType), base_headers());
    return;
  }
  if (text)
    r.respond(status, "text/plain;charset=utf-8", kupo_api::health_prometheus(chain, t),
              cache_headers());
  else
    r.respond(status, kupo_api::kContentType, kupo_api::health_json(chain, t), cache_headers());
}

void SimBackend::Impl::answer_data(const KupoRequest& k, Responder& r) {
  const uint64_t t = now();
  const uint64_t cp = chain.checkpoint(t);
  const std::string& what = k.segments[0];
  auto bad = [&](const char* hint) {
    r.respond(400, kupo_api::kContentType, kupo_api::error_body(hint), base_headers());
  };
  auto json = [&](const std::string& body) {
    r.respond(200, kupo_api::kContentType, body, cache_headers());
  };

  if (what == "patterns") {
    auto p = pattern_of(k);
    if (k.method == "PUT") {
      if (k.segments.size() > 1) {
        if (!p) return bad(kupo_api::kHintInvalidPattern);
        patterns.insert(*p);
      }
      std::vector<std::string> all;
      for (const std::string& x : patterns) all.push_back("\"" + json_escape(x) + "\"");
      return json(json_list(all));
    }
    if (!p) return bad(kupo_api::kHintInvalidPattern);
    return json("{\"deleted\":" + std::to_string(patterns.erase(*p)) + "}");
  }

  // Kupo's cacheOr: an If-None-Match equal to the current ETag gets 304.
  if (k.if_none_match && *k.if_none_match == chain.hash_at(cp)) {
    r.respond(304, "", "", cache_headers());
    return;
  }

  if (what == "matches") {
    auto p = pattern_of(k);
    if (!p) return bad(kupo_api::kHintInvalidPattern);
    kupo_api::MatchQuery q;
    q.spent = query_param(k.query, "spent").has_value();
    q.unspent = query_param(k.query, "unspent").has_value();
    if (q.spent && q.unspent) return bad(kupo_api::kHintInvalidStatusFlag);
    if (auto order = query_param(k.query, "order")) {
      if (*order == "oldest_first")
        q.oldest_first = true;
      else if (*order != "most_recent_first")
        return bad(kupo_api::kHintInvalidSortDirection);
    }
    if (k.method == "DELETE")
      return json("{\"deleted\":" + std::to_string(kupo_api::matches(*p, {}, cp).size()) + "}");
    q.count = opt.match_count;
    if (q.count == 0) {
      stream(r, cache_headers(), kupo_api::matches(*p, q, cp, chain.fork_at()));
      return;
    }
    // match_count: a large answer, generated and sent in ~64 KB chunks, never held whole.
    r.begin(200, kupo_api::kContentType, cache_headers());
    std::string batch = "[";
    bool first = true;
    kupo_api::matches_each(*p, q, cp, chain.fork_at(), [&](const std::string& m) {
      if (!first) batch += ',';
      first = false;
      batch += m;
      if (batch.size() >= 65536) {
        r.chunk(batch);
        batch.clear();
      }
    });
    batch += ']';
    r.chunk(batch);
    r.end();
    return;
  }
  if (what == "checkpoints") {
    if (k.segments.size() == 1) {
      stream(r, cache_headers(), kupo_api::checkpoint_sample(chain, t));
      return;
    }
    const std::string& arg = k.segments[1];
    if (!kupo_api::is_slot(arg)) return bad(kupo_api::kHintInvalidSlotNo);
    const bool strict = query_param(k.query, "strict").has_value();
    if (!k.query.empty() && !(strict && k.query.find('&') == std::string::npos))
      return bad(kupo_api::kHintInvalidStrictMode);
    const uint64_t slot = std::stoull(arg);
    const uint64_t ancestor = slot >= cp ? cp : chain.block_at_or_before(slot);
    return json(strict && ancestor != slot ? "null" : kupo_api::point(ancestor, chain.fork_at()));
  }
  if (what == "datums") {
    if (!kupo_api::is_hex(k.segments[1], 64)) return bad(kupo_api::kHintMalformedDatumHash);
    // Kupo answers 200 `null` for a hash it has not indexed (yet).
    if (kupo_api::is_null_hash(k.segments[1], opt.null_percent)) {
      ++stats.by_route.nulls;
      return json("null");
    }
    return json(kupo_api::datum(k.segments[1]));
  }
  if (what == "scripts") {
    if (!kupo_api::is_hex(k.segments[1], 56)) return bad(kupo_api::kHintMalformedScriptHash);
    if (kupo_api::is_null_hash(k.segments[1], opt.null_percent)) {
      ++stats.by_route.nulls;
      return json("null");
    }
    return json(kupo_api::script(k.segments[1]));
  }
  if (what == "metadata") {
    if (!kupo_api::is_slot(k.segments[1])) return bad(kupo_api::kHintInvalidSlotNo);
    const uint64_t slot = std::stoull(k.segments[1]);
    Headers h = cache_headers();
    if (slot != 0) {
      const uint64_t block = chain.block_at_or_before(std::min(slot, cp));
      h.emplace_back("X-Block-Header-Hash", chain.hash_at(block));
    }
    stream(r, h, kupo_api::metadata(slot));
    return;
  }
  r.respond(404, kupo_api::kContentType, kupo_api::error_body(kupo_api::kHintNotFound),
            base_headers());
}

// ---- SimBackend ----

SimBackend::SimBackend(uv_loop_t* loop, SimOptions options)
    : impl_(std::make_unique<Impl>(loop, std::move(options))) {}

SimBackend::~SimBackend() {
  if (!impl_->closed) close();
}

int SimBackend::listen(const std::string& host, uint16_t port) {
  return impl_->server.listen(host, port);
}

uint16_t SimBackend::port() const { return impl_->server.port(); }

void SimBackend::close(std::function<void()> done) {
  impl_->closed = true;
  impl_->drop_delayed(false);
  if (impl_->ogmios) impl_->ogmios->close();
  impl_->server.close(std::move(done));
}

const std::string& SimBackend::name() const { return impl_->opt.name; }

SimStats SimBackend::stats() const { return impl_->stats; }

std::vector<std::unique_ptr<SimBackend>> start_sim_fleet(uv_loop_t* loop, int n, std::string host,
                                                         std::string kind) {
  std::vector<std::unique_ptr<SimBackend>> fleet;
  for (int i = 1; i <= n; ++i) {
    SimOptions o;
    o.kind = kind;
    o.name = kind + "-" + std::to_string(i);
    auto b = std::make_unique<SimBackend>(loop, o);
    if (int r = b->listen(host, 0); r != 0) {
      std::fprintf(stderr, "sim backend %s: cannot listen on %s: %s\n", o.name.c_str(),
                   host.c_str(), uv_strerror(r));
      continue;
    }
    fleet.push_back(std::move(b));
  }
  return fleet;
}

}  // namespace bench

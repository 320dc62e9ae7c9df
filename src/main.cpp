// corral: a sticky-session load balancer for Cardano query backends.
//   corral [--config FILE]   run (no FILE: the embedded default)
//   corral --check FILE      validate FILE and exit
//   corral --demo            run against a simulated Kupo fleet on loopback
#include <unistd.h>
#include <uv.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/sim/sim_backend.h"
#include "config/loader.h"
#include "lb/admin/admin_server.h"
#include "lb/net/health_monitor.h"
#include "lb/net/log.h"
#include "lb/net/proxy_state.h"
#include "lb/net/runtime.h"
#include "lb/net/state_file.h"
#include "lb/net/worker.h"

using namespace lb;

namespace {

constexpr const char* kVersion = "0.1.0";
constexpr uint64_t kSweepMs = 1000;

struct Args {
  std::string config_path;
  std::string check_path;
  bool demo = false;
  bool help = false;
  std::string error;
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    auto need = [&](const char* what) -> std::string {
      if (i + 1 >= argc) {
        a.error = std::string(what) + " needs a value";
        return {};
      }
      return argv[++i];
    };
    if (s == "--config" || s == "-c")
      a.config_path = need("--config");
    else if (s == "--check")
      a.check_path = need("--check");
    else if (s == "--demo")
      a.demo = true;
    else if (s == "--help" || s == "-h")
      a.help = true;
    else if (s == "--version") {
      printf("corral %s\n", kVersion);
      exit(0);
    } else
      a.error = "unknown argument: " + s;
  }
  return a;
}

void usage(FILE* f) {
  fprintf(f,
          "usage: corral [--config FILE] | --check FILE | --demo\n"
          "  --config FILE  run with FILE (default: the embedded config, 127.0.0.1:8080 ->\n"
          "                 Kupo at 127.0.0.1:1442, admin 127.0.0.1:9901)\n"
          "  --check FILE   validate FILE, print every error with file:line:column\n"
          "  --demo         start three simulated Kupo instances on loopback and serve them\n"
          "signals: SIGHUP reloads the config file; SIGTERM/SIGINT stop gracefully\n");
}

void print_errors(const config::LoadResult& r) {
  for (const config::ConfigError& e : r.errors) fprintf(stderr, "%s\n", e.str().c_str());
}

// Pins from the previous run (DESIGN.md "Reload"): kept for backends still configured.
void load_state(const config::Config& cfg, net::ProxyState& state, uint64_t now) {
  auto resolve = [&](std::string_view name) -> std::optional<BackendRef> {
    size_t slash = name.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    return state.registry.find(std::string(name.substr(0, slash)),
                               std::string(name.substr(slash + 1)));
  };
  net::LoadReport r =
      net::load_pins(cfg.state_file, state.sessions, resolve, now, cfg.sticky.ttl_ms);
  if (!r.error.empty())
    net::logf(net::LogLevel::warn, "state file %s: %s; ignored", cfg.state_file.c_str(),
              r.error.c_str());
  else if (r.missing)
    net::logf(net::LogLevel::info, "state file %s: none yet", cfg.state_file.c_str());
  else
    net::logf(net::LogLevel::info,
              "state file %s: loaded %zu pins (dropped %zu for removed backends, %zu expired)",
              cfg.state_file.c_str(), r.loaded, r.dropped_unknown, r.dropped_expired);
}

void save_state(net::ProxyState& state, uint64_t now) {
  const std::string& path = state.runtime.load()->config.state_file;
  if (path.empty()) return;
  std::string err = net::save_pins(
      path, state.sessions, [&](BackendRef ref) { return state.registry.name_of(ref); }, now);
  if (err.empty())
    net::logf(net::LogLevel::info, "state file %s: saved %llu pins", path.c_str(),
              static_cast<unsigned long long>(state.sessions.stats().size));
  else
    net::logf(net::LogLevel::error, "state file %s: %s", path.c_str(), err.c_str());
}

struct Control {
  uv_loop_t* loop = nullptr;
  std::string config_path;
  net::ProxyState* state = nullptr;
  std::vector<std::unique_ptr<net::Worker>>* workers = nullptr;
  admin::AdminServer* admin = nullptr;
  net::HealthMonitor* health = nullptr;
  std::vector<std::unique_ptr<bench::SimBackend>>* fleet = nullptr;  // --demo
  uv_signal_t sigint{}, sigterm{}, sighup{};
  uv_timer_t sweep{};
  bool stopping = false;
};

// Binds one SO_REUSEPORT socket per worker for a listener and logs its address.
bool open_listener(const config::Listener& l, unsigned nworkers,
                   std::vector<std::vector<net::BoundSocket>>& out, std::string& err) {
  std::vector<int> fds;
  uint16_t port = 0;
  if (!net::bind_reuseport(l.listen.host, l.listen.port, 1024, nworkers, fds, port, err)) {
    err = "listener " + l.name + ": " + err;
    return false;
  }
  for (unsigned i = 0; i < nworkers; ++i) out[i].push_back({l.name, fds[i]});
  bool v6 = l.listen.host.find(':') != std::string::npos;
  net::logf(net::LogLevel::info, "listening %s %s%s%s:%u", l.name.c_str(), v6 ? "[" : "",
            l.listen.host.c_str(), v6 ? "]" : "", port);
  return true;
}

void reload_failed(Control& c, const std::string& what) {
  c.state->reloads_failed.fetch_add(1);
  c.state->last_reload_error = what;
  net::logf(net::LogLevel::error, "config reload failed: %s", what.c_str());
}

void reload(Control& c) {
  if (c.config_path.empty()) {
    net::logf(net::LogLevel::warn, "SIGHUP: running on the embedded config, nothing to reload");
    return;
  }
  config::LoadResult r = config::load_file(c.config_path);
  if (!r.config) {
    std::string what = r.errors.front().str();
    if (r.errors.size() > 1) what += " (and " + std::to_string(r.errors.size() - 1) + " more)";
    return reload_failed(c, what);
  }
  const config::Config& next = *r.config;
  const config::Config& prev = c.state->runtime.load()->config;
  // Listeners: same name and address keep their sockets; the rest close or open. New
  // sockets are bound before anything is published, so a port in use fails the reload.
  unsigned n = static_cast<unsigned>(c.workers->size());
  std::vector<std::vector<net::BoundSocket>> add(n);
  std::vector<std::string> remove;
  auto same = [](const config::Listener& a, const config::Listener& b) {
    return a.name == b.name && a.listen.text == b.listen.text;
  };
  for (const config::Listener& l : prev.listeners) {
    bool kept = false;
    for (const config::Listener& m : next.listeners) kept = kept || same(l, m);
    if (!kept) remove.push_back(l.name);
  }
  for (const config::Listener& l : next.listeners) {
    bool kept = false;
    for (const config::Listener& m : prev.listeners) kept = kept || same(l, m);
    if (kept) continue;
    std::string err;
    if (!open_listener(l, n, add, err)) {
      for (auto& per_worker : add)
        for (net::BoundSocket& b : per_worker) ::close(b.fd);
      return reload_failed(c, c.config_path + ": " + err);
    }
  }
  if (next.workers != prev.workers || next.admin.listen.text != prev.admin.listen.text)
    net::logf(net::LogLevel::warn, "reload: workers and admin.listen apply at the next start");
  c.state->sessions.set_limits(next.sticky.max_sessions, next.sticky.ttl_ms);
  c.state->runtime.store(net::build_runtime(next, c.state->registry));
  c.health->sync();
  for (unsigned i = 0; i < n; ++i) (*c.workers)[i]->reload(std::move(add[i]), remove);
  c.state->reloads_ok.fetch_add(1);
  c.state->last_reload_error.clear();
  for (const std::string& name : remove)
    net::logf(net::LogLevel::info, "listener %s closed; its connections finish", name.c_str());
  net::logf(net::LogLevel::info, "config reloaded from %s", c.config_path.c_str());
}

void stop(Control& c, const char* why) {
  if (c.stopping) return;
  c.stopping = true;
  net::logf(net::LogLevel::info, "%s: stopping; finishing in-flight requests", why);
  uint64_t deadline = c.state->runtime.load()->config.stop_timeout_ms;
  for (auto& w : *c.workers) w->stop(deadline);
  uv_close(reinterpret_cast<uv_handle_t*>(&c.sigint), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&c.sigterm), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&c.sighup), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&c.sweep), nullptr);
  c.admin->close();
  c.health->stop();
  for (auto& b : *c.fleet) b->close();
}

void on_signal(uv_signal_t* s, int signum) {
  auto* c = static_cast<Control*>(s->data);
  if (signum == SIGHUP)
    reload(*c);
  else
    stop(*c, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

void on_sweep(uv_timer_t* t) {
  auto* c = static_cast<Control*>(t->data);
  c->state->sessions.sweep(uv_now(c->loop), 4096);
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse_args(argc, argv);
  if (args.help) {
    usage(stdout);
    return 0;
  }
  if (!args.error.empty()) {
    fprintf(stderr, "corral: %s\n", args.error.c_str());
    usage(stderr);
    return 2;
  }
  if (!args.check_path.empty()) {
    config::LoadResult r = config::load_file(args.check_path);
    if (!r.config) {
      print_errors(r);
      fprintf(stderr, "%s: %zu error(s)\n", args.check_path.c_str(), r.errors.size());
      return 1;
    }
    printf("%s: ok\n", args.check_path.c_str());
    return 0;
  }
  signal(SIGPIPE, SIG_IGN);

  uv_loop_t* loop = uv_default_loop();
  std::vector<std::unique_ptr<bench::SimBackend>> fleet;
  config::LoadResult loaded;
  if (!args.config_path.empty()) {
    loaded = config::load_file(args.config_path);
  } else {
    loaded = config::load_string(config::embedded_default_yaml(), "<embedded>");
  }
  if (!loaded.config) {
    print_errors(loaded);
    return 1;
  }
  if (args.demo) {
    // The embedded default, its Kupo pool pointed at three simulated instances.
    fleet = bench::start_sim_fleet(loop, 3, "127.0.0.1");
    config::Pool& kupo = loaded.config->pools.front();
    kupo.backends.clear();
    for (size_t i = 0; i < fleet.size(); ++i) {
      std::string addr = "127.0.0.1:" + std::to_string(fleet[i]->port());
      kupo.backends.push_back(
          {"kupo-" + std::to_string(i + 1), {"127.0.0.1", fleet[i]->port(), addr}});
    }
    loaded.config->source = "<demo>";
  }
  const config::Config& cfg = *loaded.config;

  net::ProxyState state(cfg.sticky.max_sessions, cfg.sticky.ttl_ms);
  state.runtime.store(net::build_runtime(cfg, state.registry));

  if (!cfg.state_file.empty()) load_state(cfg, state, uv_now(loop));

  unsigned nworkers = cfg.workers == 0 ? 1 : cfg.workers;
  std::vector<std::vector<net::BoundSocket>> sockets(nworkers);
  for (const config::Listener& l : cfg.listeners) {
    std::string err;
    if (!open_listener(l, nworkers, sockets, err)) {
      net::logf(net::LogLevel::error, "%s", err.c_str());
      return 1;
    }
  }

  net::HealthMonitor health(loop, state);
  admin::AdminServer admin(loop, state, health, {nworkers, uv_now(loop), kVersion});
  if (int rc = admin.listen(cfg.admin.listen.host, cfg.admin.listen.port); rc != 0) {
    net::logf(net::LogLevel::error, "admin listener %s: %s", cfg.admin.listen.text.c_str(),
              uv_strerror(rc));
    return 1;
  }
  net::logf(net::LogLevel::info, "admin listening %s:%u", cfg.admin.listen.host.c_str(),
            admin.port());

  std::vector<std::unique_ptr<net::Worker>> workers;
  for (unsigned i = 0; i < nworkers; ++i) {
    workers.push_back(std::make_unique<net::Worker>(state, i));
    workers.back()->start(std::move(sockets[i]));
  }
  net::logf(net::LogLevel::info, "corral %s running: %u worker(s), config %s", kVersion, nworkers,
            cfg.source.c_str());

  Control control;
  control.loop = loop;
  control.config_path = args.config_path;
  control.state = &state;
  control.workers = &workers;
  control.admin = &admin;
  control.health = &health;
  control.fleet = &fleet;
  for (auto [sig, h] : {std::pair{SIGINT, &control.sigint}, std::pair{SIGTERM, &control.sigterm},
                        std::pair{SIGHUP, &control.sighup}}) {
    uv_signal_init(loop, h);
    h->data = &control;
    uv_signal_start(h, &on_signal, sig);
  }
  uv_timer_init(loop, &control.sweep);
  control.sweep.data = &control;
  uv_timer_start(&control.sweep, &on_sweep, kSweepMs, kSweepMs);

  uv_run(loop, UV_RUN_DEFAULT);  // returns once stop() closed the control handles
  for (auto& w : workers) w->join();
  save_state(state, uv_now(loop));
  uv_run(loop, UV_RUN_DEFAULT);
  net::logf(net::LogLevel::info, "stopped");
  return 0;
}

// corral: a sticky-session load balancer for Cardano query backends.
//   corral [--config FILE]   run (no FILE: the embedded default)
//   corral --check FILE      validate FILE and exit
//   corral --demo            run against a simulated Kupo fleet on loopback
#include <uv.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/sim_backend.h"
#include "config/loader.h"
#include "lb/admin/admin_server.h"
#include "lb/net/health_monitor.h"
#include "lb/net/log.h"
#include "lb/net/proxy_state.h"
#include "lb/net/runtime.h"
#include "lb/net/worker.h"

using namespace lb;

namespace {

constexpr const char* kVersion = "0.1.0";
constexpr uint64_t kStopDeadlineMs = 10'000;
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

void reload(Control& c) {
  if (c.config_path.empty()) {
    net::logf(net::LogLevel::warn, "SIGHUP: running on the embedded config, nothing to reload");
    return;
  }
  config::LoadResult r = config::load_file(c.config_path);
  if (!r.config) {
    for (const auto& e : r.errors)
      net::logf(net::LogLevel::error, "config reload failed: %s", e.str().c_str());
    return;
  }
  auto rt = net::build_runtime(*r.config, c.state->registry);
  c.state->sessions.set_limits(r.config->sticky.max_sessions, r.config->sticky.ttl_ms);
  c.state->runtime.store(rt);
  c.health->sync();
  for (auto& w : *c.workers) w->reload();
  net::logf(net::LogLevel::info, "config reloaded from %s (listeners keep their sockets)",
            c.config_path.c_str());
}

void stop(Control& c, const char* why) {
  if (c.stopping) return;
  c.stopping = true;
  net::logf(net::LogLevel::info, "%s: stopping; finishing in-flight requests", why);
  for (auto& w : *c.workers) w->stop(kStopDeadlineMs);
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

  unsigned nworkers = cfg.workers == 0 ? 1 : cfg.workers;
  std::vector<std::vector<net::BoundSocket>> sockets(nworkers);
  for (const config::Listener& l : cfg.listeners) {
    std::vector<int> fds;
    uint16_t port = 0;
    std::string err;
    if (!net::bind_reuseport(l.listen.host, l.listen.port, 1024, nworkers, fds, port, err)) {
      net::logf(net::LogLevel::error, "listener %s: %s", l.name.c_str(), err.c_str());
      return 1;
    }
    for (unsigned i = 0; i < nworkers; ++i) sockets[i].push_back({l.name, fds[i]});
    net::logf(net::LogLevel::info, "listening %s %s:%u", l.name.c_str(),
              l.listen.host.find(':') != std::string::npos ? ("[" + l.listen.host + "]").c_str()
                                                           : l.listen.host.c_str(),
              port);
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
  uv_run(loop, UV_RUN_DEFAULT);
  net::logf(net::LogLevel::info, "stopped");
  return 0;
}

// corral: a sticky-session load balancer for Cardano query backends.
//   corral [--config FILE]   run (no FILE: the embedded default)
//   corral --check FILE      validate FILE and exit
//   corral --demo            run against a simulated Kupo and Ogmios fleet on loopback
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/sim/demo_config.h"
#include "bench/sim/sim_backend.h"
#include "config/loader.h"
#include "lb/net/control_loop.h"

using namespace lb;

namespace {

constexpr const char* kVersion = "0.1.0";

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
          "  --demo         start three simulated Kupo and two simulated Ogmios instances on\n"
          "                 loopback and serve them (Ogmios at /ogmios, WebSocket too)\n"
          "signals: SIGHUP reloads the config file; SIGTERM/SIGINT stop gracefully\n");
}

void print_errors(const config::LoadResult& r) {
  for (const config::ConfigError& e : r.errors) fprintf(stderr, "%s\n", e.str().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything else (and before any thread exists): a SIGHUP or SIGTERM that arrives
  // while corral starts stays pending and is handled once the control loop is ready.
  net::hold_control_signals();
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
    // Three simulated Kupo instances behind /, two simulated Ogmios behind /ogmios.
    fleet = bench::start_sim_fleet(loop, 3, "127.0.0.1");
    std::vector<std::unique_ptr<bench::SimBackend>> ogmios =
        bench::start_sim_fleet(loop, 2, "127.0.0.1", "ogmios");
    std::vector<uint16_t> kupo_ports, ogmios_ports;
    for (auto& b : fleet) kupo_ports.push_back(b->port());
    for (auto& b : ogmios) ogmios_ports.push_back(b->port());
    for (auto& b : ogmios) fleet.push_back(std::move(b));
    loaded = config::load_string(bench::demo_config_yaml(kupo_ports, ogmios_ports), "<demo>");
    if (!loaded.config) {
      print_errors(loaded);
      return 1;
    }
  }

  net::ControlLoop control(loop, *loaded.config, {args.config_path, kVersion, [&fleet] {
                                                    for (auto& b : fleet) b->close();
                                                  }});
  return control.run();
}

// corral: a sticky-session load balancer for Cardano query backends.
// The command line is in src/cli.h (corral --help lists it).
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
#include "src/cli.h"

using namespace lb;

namespace {

void print_errors(const config::LoadResult& r) {
  for (const config::ConfigError& e : r.errors) fprintf(stderr, "%s\n", e.str().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything else (and before any thread exists): a SIGHUP or SIGTERM that arrives
  // while corral starts stays pending and is handled once the control loop is ready.
  net::hold_control_signals();
  const cli::Args args = cli::parse_args(std::vector<std::string>(argv + 1, argv + argc));
  switch (args.action) {
    case cli::Action::usage_error:
      fprintf(stderr, "corral: %s (corral --help lists the options)\n", args.error.c_str());
      return cli::kExitUsage;
    case cli::Action::help:
      cli::print_usage(stdout);
      return cli::kExitOk;
    case cli::Action::version:
      fputs(cli::version_text().c_str(), stdout);
      return cli::kExitOk;
    case cli::Action::print_default_config: {
      const std::string_view y = config::embedded_default_yaml();
      fwrite(y.data(), 1, y.size(), stdout);
      return fflush(stdout) == 0 ? cli::kExitOk : cli::kExitConfig;
    }
    case cli::Action::check: {
      // -t FILE, else -t -c FILE, else the embedded default.
      const std::string& path = !args.check_path.empty() ? args.check_path : args.config_path;
      const std::string name = path.empty() ? "<embedded>" : path;
      config::LoadResult r = path.empty()
                                 ? config::load_string(config::embedded_default_yaml(), name)
                                 : config::load_file(path);
      if (!r.config) {
        print_errors(r);
        fprintf(stderr, "%s: %zu error(s)\n", name.c_str(), r.errors.size());
        return cli::kExitConfig;
      }
      printf("%s: ok\n", name.c_str());
      return cli::kExitOk;
    }
    case cli::Action::run:
      break;
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
    return cli::kExitConfig;
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
      return cli::kExitConfig;
    }
  }

  net::ControlLoop control(loop, *loaded.config, {args.config_path, CORRAL_VERSION, [&fleet] {
                                                    for (auto& b : fleet) b->close();
                                                  }});
  return control.run();
}

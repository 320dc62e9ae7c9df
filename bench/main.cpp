// corral-bench: the load and lab tool, one binary with a subcommand per lab.
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/commands.h"
#include "bench/sim/sim_backend.h"
#include "lb/net/fd_limit.h"
#include "lb/net/listen_probe.h"
#include "src/cli.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);  // argv[0] is the subcommand's name
  void (*help)(FILE* out);
};

int run_backend(int argc, char** argv);
void help_backend(FILE* out);

// One entry per subcommand.
constexpr Command kCommands[] = {
    {"load", "HTTP load: open loop (--rate) or closed loop, simulated users, stickiness check",
     bench::run_load, bench::help_load},
    {"backend", "run simulated Kupo or Ogmios instances (latency, capacity, tip and health)",
     run_backend, help_backend},
    {"ring", "selector lab: balance, disruption and ns per lookup for rendezvous and Maglev",
     bench::run_ring, bench::help_ring},
    {"plan", "how many backend instances for N users, from measured response times",
     bench::run_plan, bench::help_plan},
};

void usage(FILE* out) {
  std::fprintf(out,
               "usage: corral-bench <command> [options]\n"
               "       corral-bench help [<command>]\n"
               "       corral-bench -v | --version\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
  std::fprintf(out,
               "\nexit status: 0 fine, 2 usage error (unknown command or option, bad value);\n"
               "each command's help lists the others it uses\n");
}

std::optional<uint64_t> parse_count(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// "127.0.0.1:1442" or "[::1]:1442".
std::optional<HostPort> parse_host_port(std::string_view s) {
  HostPort hp;
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    hp.host = std::string(s.substr(1, close - 1));
    port = s.substr(close + 2);
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    hp.host = std::string(s.substr(0, colon));
    port = s.substr(colon + 1);
  }
  auto p = parse_count(port);
  if (hp.host.empty() || !p || *p > 65535) return std::nullopt;
  hp.port = static_cast<uint16_t>(*p);
  return hp;
}

// ---- backend ----

void help_backend(FILE* out) {
  std::fprintf(
      out,
      "usage: corral-bench backend [options]\n"
      "Runs simulated Kupo or Ogmios instances until SIGINT or SIGTERM. Prints one line per\n"
      "instance:\n"
      "  listening <name> <host:port>\n\n"
      "options:\n"
      "  --listen HOST:PORT     address; port 0 = ephemeral (default 127.0.0.1:1442, or\n"
      "                         127.0.0.1:1337 for ogmios)\n"
      "  --name NAME            instance name, sent as X-Backend (default: the kind)\n"
      "  --count K              K instances named NAME-1..NAME-K (even for K = 1) on\n"
      "                         consecutive ports\n"
      "                         (or ephemeral ones with port 0)\n"
      "  --kind KIND            kupo (default) | ogmios: JSON-RPC over WebSocket and POST /,\n"
      "                         Ogmios' /health (see bench/sim/ogmios_sim.h for its hooks)\n"
      "  --latency-ms N         added before each data request is answered\n"
      "  --latency-jitter-ms N  plus a deterministic 0..N ms per data request (default 0)\n"
      "  --null-percent N       share of /datums and /scripts hashes answered 200 null,\n"
      "                         as Kupo's \"not found yet\" (0..100, default 0)\n"
      "  --match-count N        GET /matches answers exactly N objects (~500 B each, chunked;\n"
      "                         default 0: two to four per pattern)\n"
      "  --capacity N           data requests in flight before 503; 0 = no limit (default 50)\n"
      "  --reject-delay-ms N    hold a 503 back this long, as Kupo's retries do (default 0)\n"
      "  --tip SLOT             starting node tip (default: today's mainnet slot)\n"
      "  --freeze-tip           keep the tip where it starts\n"
      "  --lag SLOTS            index checkpoint behind the node tip\n"
      "  --health STATE         synced | behind | disconnected\n"
      "  --block-interval N     slots between blocks (default 20)\n"
      "Runtime control: POST /_sim/control, GET /_sim/stats (see bench/sim/sim_backend.h).\n"
      "--capacity, --reject-delay-ms, --latency-jitter-ms, --null-percent and --match-count\n"
      "apply to kupo only.\n");
}

struct BackendRun {
  uv_loop_t loop{};
  uv_signal_t sigint{};
  uv_signal_t sigterm{};
  std::vector<std::unique_ptr<bench::SimBackend>> backends;
  bool stopping = false;

  void stop() {
    if (stopping) return;
    stopping = true;
    for (auto& b : backends) b->close();
    uv_close(reinterpret_cast<uv_handle_t*>(&sigint), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&sigterm), nullptr);
  }
  static void on_signal(uv_signal_t* s, int) { static_cast<BackendRun*>(s->data)->stop(); }
};

int run_backend(int argc, char** argv) {
  bench::SimOptions base;
  HostPort listen{"127.0.0.1", 1442};
  bool listen_given = false;
  bool name_given = false;
  uint64_t count = 1;
  bool numbered = false;  // --count given: names become NAME-1..NAME-K
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      help_backend(stdout);
      return 0;
    }
    if (a == "--freeze-tip") {
      base.freeze_tip = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "corral-bench backend: %s needs a value (or is unknown)\n", argv[i]);
      return 2;
    }
    std::string_view v = argv[++i];
    std::optional<uint64_t> n = parse_count(v);
    auto need_count = [&](uint64_t& out) {
      if (!n) {
        std::fprintf(stderr, "corral-bench backend: %s wants a non-negative integer, got '%s'\n",
                     argv[i - 1], argv[i]);
        return false;
      }
      out = *n;
      return true;
    };
    if (a == "--listen") {
      auto hp = parse_host_port(v);
      if (!hp) {
        std::fprintf(stderr, "corral-bench backend: --listen wants HOST:PORT, got '%s'\n", argv[i]);
        return 2;
      }
      listen = *hp;
      listen_given = true;
    } else if (a == "--name") {
      base.name = std::string(v);
      name_given = true;
    } else if (a == "--kind") {
      if (v != "kupo" && v != "ogmios") {
        std::fprintf(stderr, "corral-bench backend: --kind wants kupo or ogmios, got '%s'\n",
                     argv[i]);
        return 2;
      }
      base.kind = std::string(v);
    } else if (a == "--health") {
      auto h = bench::parse_sim_health(v);
      if (!h) {
        std::fprintf(stderr, "corral-bench backend: --health wants synced|behind|disconnected\n");
        return 2;
      }
      base.health = *h;
    } else if (a == "--count") {
      if (!need_count(count)) return 2;
      numbered = true;
      if (count == 0 || count > 1000) {
        std::fprintf(stderr, "corral-bench backend: --count must be 1..1000\n");
        return 2;
      }
    } else if (a == "--latency-ms") {
      if (!need_count(base.latency_ms)) return 2;
    } else if (a == "--latency-jitter-ms") {
      if (!need_count(base.latency_jitter_ms)) return 2;
    } else if (a == "--null-percent") {
      if (!need_count(base.null_percent)) return 2;
      if (base.null_percent > 100) {
        std::fprintf(stderr, "corral-bench backend: --null-percent must be 0..100\n");
        return 2;
      }
    } else if (a == "--match-count") {
      if (!need_count(base.match_count)) return 2;
      if (base.match_count > bench::kMaxMatchCount) {
        std::fprintf(stderr, "corral-bench backend: --match-count must be 0..%lu\n",
                     (unsigned long)bench::kMaxMatchCount);
        return 2;
      }
    } else if (a == "--capacity") {
      if (!need_count(base.capacity)) return 2;
    } else if (a == "--reject-delay-ms") {
      if (!need_count(base.reject_delay_ms)) return 2;
    } else if (a == "--tip") {
      if (!need_count(base.tip_slot)) return 2;
    } else if (a == "--lag") {
      if (!need_count(base.tip_lag_slots)) return 2;
    } else if (a == "--block-interval") {
      if (!need_count(base.block_interval_slots)) return 2;
      if (base.block_interval_slots == 0) {
        std::fprintf(stderr, "corral-bench backend: --block-interval must be at least 1\n");
        return 2;
      }
    } else {
      std::fprintf(stderr, "corral-bench backend: unknown option %s\n", argv[i - 1]);
      return 2;
    }
  }
  if (base.kind == "ogmios") {
    if (!listen_given) listen.port = 1337;  // Ogmios' default port
    if (!name_given) base.name = "ogmios";
  }
  if (listen.port != 0 && listen.port + count - 1 > 65535) {
    std::fprintf(stderr, "corral-bench backend: ports run past 65535\n");
    return 2;
  }

  std::signal(SIGPIPE, SIG_IGN);  // a client going away must not kill the process
  // Benchmarks hold a thousand and more WebSockets open on one instance.
  lb::net::raise_fd_limit();
  BackendRun run;
  uv_loop_init(&run.loop);
  uv_signal_init(&run.loop, &run.sigint);
  uv_signal_init(&run.loop, &run.sigterm);
  run.sigint.data = &run;
  run.sigterm.data = &run;
  uv_signal_start(&run.sigint, &BackendRun::on_signal, SIGINT);
  uv_signal_start(&run.sigterm, &BackendRun::on_signal, SIGTERM);

  int status = 0;
  for (uint64_t k = 1; k <= count; ++k) {
    bench::SimOptions o = base;
    if (numbered) o.name = base.name + "-" + std::to_string(k);
    const uint16_t port = listen.port == 0 ? 0 : static_cast<uint16_t>(listen.port + k - 1);
    auto b = std::make_unique<bench::SimBackend>(&run.loop, o);
    if (int r = b->listen(listen.host, port); r != 0) {
      std::fprintf(stderr, "corral-bench backend: %s cannot listen on %s: %s\n", o.name.c_str(),
                   lb::net::endpoint_text(listen.host, port).c_str(), uv_strerror(r));
      run.backends.push_back(std::move(b));
      status = 1;
      break;
    }
    std::printf("listening %s %s\n", o.name.c_str(),
                lb::net::endpoint_text(listen.host, b->port()).c_str());
    std::fflush(stdout);
    run.backends.push_back(std::move(b));
  }
  if (status != 0) run.stop();
  uv_run(&run.loop, UV_RUN_DEFAULT);
  run.backends.clear();
  uv_run(&run.loop, UV_RUN_DEFAULT);  // let the last close callbacks run
  uv_loop_close(&run.loop);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  std::string_view cmd = argv[1];
  if (cmd == "--version" || cmd == "-v" || cmd == "-V") {
    // corral's -v text with this program's name: both come from one build.
    const std::string v = cli::version_text();
    std::printf("corral-bench%s", v.substr(v.find(' ')).c_str());
    return 0;
  }
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    if (argc == 2) {
      usage(stdout);
      return 0;
    }
    for (const Command& c : kCommands)
      if (std::string_view(argv[2]) == c.name) {
        c.help(stdout);
        return 0;
      }
    std::fprintf(stderr, "corral-bench: no help for unknown command '%s'\n\n", argv[2]);
    usage(stderr);
    return 2;
  }
  for (const Command& c : kCommands)
    if (cmd == c.name) return c.run(argc - 1, argv + 1);
  std::fprintf(stderr, "corral-bench: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}

// corral-bench plan: how many backend instances for N users, from measured response times.
// Reads figures from flags or a `corral-bench load --json` result, runs the model in
// bench/plan_model.{h,cpp} and prints the working step by step, then the answer.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "bench/commands.h"
#include "bench/plan_model.h"

namespace bench {

namespace {

int refuse(const std::string& msg) {
  std::fprintf(stderr, "corral-bench plan: %s\n", msg.c_str());
  return 2;
}

bool parse_number(const char* s, double& out) {
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s, &end);
  return !errno && end != s && *end == '\0' && std::isfinite(out);
}

bool parse_count(const char* s, uint64_t& out) {
  double v = 0;
  if (!parse_number(s, v) || v < 0 || v > 1e9 || std::floor(v) != v) return false;
  out = static_cast<uint64_t>(v);
  return true;
}

}  // namespace

void help_plan(FILE* out) {
  std::fprintf(
      out,
      "usage: corral-bench plan (--capacity RPS [--latency-ms MS --at-rate RPS] |\n"
      "                          --from LOAD.json [--from-instances K])\n"
      "                         --users N --req-per-user R [options]\n"
      "How many backend instances serve N users, with head-room, and the working.\n\n"
      "measured figures (one instance):\n"
      "  --capacity RPS         req/s one instance sustains (no 503s, no errors)\n"
      "  --latency-ms MS        p99 latency measured ...\n"
      "  --at-rate RPS          ... at this req/s on one instance (<= capacity)\n"
      "  --from FILE            a `corral-bench load --json` result: its achieved rate is\n"
      "                         taken as the capacity and latency_ms.p99 as the latency at\n"
      "                         that rate. Refused if the run saw 5xx answers or errors\n"
      "                         (the instance was past capacity: rerun at a lower --rate).\n"
      "                         An open-loop run that kept up gives a lower bound on\n"
      "                         capacity, so the plan errs on the safe side.\n"
      "  --from-instances K     the load run spread over K instances (default 1)\n\n"
      "demand and targets:\n"
      "  --users N              expected active users at once\n"
      "  --req-per-user R       req/s per active user (a float, e.g. 0.2)\n"
      "  --peak F               peak-to-average ratio, >= 1 (default 1)\n"
      "  --target-p99 MS        p99 latency to meet; adds a latency bound on utilisation\n"
      "  --headroom F           spare fraction kept per instance, [0, 1) (default 0.3)\n"
      "  --min N                at least N instances, for redundancy (default 2)\n"
      "  --spare N              N extra instances on top (N+1: --spare 1; default 0)\n"
      "  --json                 one JSON object instead of the text\n\n"
      "model: demand = users x req/user x peak; rho = min(1 - headroom, rho_latency);\n"
      "instances = max(ceil(demand / (capacity x rho)), min) + spare. rho_latency comes\n"
      "from an M/M/1 curve (anchored at the measured latency when one is given below\n"
      "capacity), or a linear derating when the latency was measured at capacity.\n"
      "Exit status: 0 answered, 1 the target cannot be met, 2 nonsense input.\n");
}

int run_plan(int argc, char** argv) {
  PlanInput in;
  in.capacity_rps = 0;
  std::string from;
  uint64_t from_instances = 1;
  bool json = false, have_capacity = false, have_users = false, have_rpu = false;

  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      help_plan(stdout);
      return 0;
    }
    if (a == "--json") {
      json = true;
      continue;
    }
    if (i + 1 >= argc) return refuse(std::string(a) + " needs a value (or is unknown)");
    const char* v = argv[++i];
    double d = 0;
    auto number = [&](double& out) {
      if (!parse_number(v, d)) return false;
      out = d;
      return true;
    };
    auto opt_number = [&](std::optional<double>& out) {
      if (!parse_number(v, d)) return false;
      out = d;
      return true;
    };
    bool ok = true;
    if (a == "--capacity") {
      ok = number(in.capacity_rps);
      have_capacity = true;
    } else if (a == "--latency-ms") {
      ok = opt_number(in.latency_ms);
    } else if (a == "--at-rate") {
      ok = opt_number(in.at_rate_rps);
    } else if (a == "--from") {
      from = v;
    } else if (a == "--from-instances") {
      ok = parse_count(v, from_instances) && from_instances >= 1;
    } else if (a == "--users") {
      ok = number(in.users);
      have_users = true;
    } else if (a == "--req-per-user") {
      ok = number(in.req_per_user);
      have_rpu = true;
    } else if (a == "--peak") {
      ok = number(in.peak);
    } else if (a == "--target-p99") {
      ok = opt_number(in.target_p99_ms);
    } else if (a == "--headroom") {
      ok = number(in.headroom);
    } else if (a == "--min") {
      ok = parse_count(v, in.min_instances);
    } else if (a == "--spare") {
      ok = parse_count(v, in.spare);
    } else {
      return refuse("unknown option " + std::string(a) + " (see corral-bench help plan)");
    }
    if (!ok) return refuse(std::string(a) + " wants a number, got '" + v + "'");
  }

  if (!from.empty()) {
    if (have_capacity || in.latency_ms || in.at_rate_rps)
      return refuse("--from supplies capacity and latency: drop --capacity/--latency-ms/--at-rate");
    std::ifstream f(from, std::ios::binary);
    if (!f) return refuse("cannot read " + from);
    std::stringstream ss;
    ss << f.rdbuf();
    ParsedLoad load = parse_load_json(ss.str());
    if (!load.figures) return refuse(from + ": " + load.error);
    const LoadFigures& lf = *load.figures;
    if (lf.server_errors || lf.errors)
      return refuse(from + ": the run saw " + std::to_string(lf.server_errors) +
                    " 5xx answers and " + std::to_string(lf.errors) +
                    " errors, so its rate is not a sustainable capacity; rerun at a lower "
                    "--rate until both are 0");
    const double per = lf.rate / static_cast<double>(from_instances);
    in.capacity_rps = per;
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.6g", lf.rate);
    in.capacity_source = "--from " + from + ": achieved rate " + rate +
                         (from_instances > 1 ? " / " + std::to_string(from_instances) : "") + " (" +
                         std::to_string(lf.connections) + " connections)" + ", no 5xx, no errors";
    if (lf.p99_ms) {
      in.latency_ms = lf.p99_ms;
      in.at_rate_rps = per;
    }
  } else if (!have_capacity) {
    return refuse("give one instance's capacity: --capacity RPS, or --from LOAD.json");
  } else {
    in.capacity_source = "--capacity";
  }
  if (!have_users || !have_rpu) return refuse("--users and --req-per-user are required");
  if (auto err = validate_plan(in)) return refuse(*err);

  const PlanResult r = compute_plan(in);
  if (json)
    std::printf("%s\n", plan_json(in, r).c_str());
  else
    std::printf("%s", plan_text(in, r).c_str());
  return r.feasible ? 0 : 1;
}

}  // namespace bench

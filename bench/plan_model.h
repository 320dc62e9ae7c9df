#pragma once
// The capacity model behind `corral-bench plan`: how many backend instances (Kupo, Ogmios)
// serve N users at a target p99, from one instance's measured figures. CTL's production
// guide asks operators to "compute the number based on the response times of your query
// layer and expected number of users"; this is that computation, with every step shown.
// Pure (no I/O) so that tests check the same arithmetic the command prints.
//
// Model (all assumptions, stated in the output):
//   demand      = users * req_per_user * peak                      [req/s at peak]
//   rho_head    = 1 - headroom                                     [spare kept for bursts]
//   rho_lat     = highest utilisation of one instance whose p99 still meets the target:
//     - latency L measured at rate R below capacity C: an M/M/1 response-time curve
//       anchored at the measurement, p99(rho) = L * (1 - R/C) / (1 - rho), so
//       rho_lat = 1 - (L / T) * (1 - R/C);
//     - latency measured at capacity (R = C, e.g. from a load run): a linear derating,
//       rho_lat = min(1, T / L) (the queueing curve has no anchor below saturation);
//     - no latency measured: M/M/1 with service time s = 1/C, whose p99 response time is
//       s * ln(100) / (1 - rho), so rho_lat = 1 - s * ln(100) / T.
//   rho         = min(rho_head, rho_lat)
//   needed      = ceil(demand / (C * rho)); instances = max(needed, min) + spare.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

// The figures `plan --from` reads from a `corral-bench load --json` result.
struct LoadFigures {
  double rate = 0;               // achieved req/s
  std::optional<double> p99_ms;  // latency_ms.p99
  uint64_t connections = 0;
  uint64_t server_errors = 0;  // 5xx answers (503 = an instance over capacity)
  uint64_t errors = 0;         // transport errors (refused, reset, timeout)
};

struct ParsedLoad {
  std::optional<LoadFigures> figures;
  std::string error;  // set when figures is empty
};

// Reads rate, latency_ms.p99, connections, statuses ({"200": n, "503": m, ...}) and errors
// (a count, or an object of counts) from a load result.
ParsedLoad parse_load_json(std::string_view text);

struct PlanInput {
  double capacity_rps = 0;            // one instance's sustainable req/s
  std::string capacity_source;        // where it came from, for the working
  std::optional<double> latency_ms;   // p99 measured ...
  std::optional<double> at_rate_rps;  // ... at this per-instance rate
  double users = 0;
  double req_per_user = 0;  // req/s per active user
  double peak = 1;          // peak-to-average ratio, >= 1
  double headroom = 0.3;    // spare fraction kept, [0, 1)
  std::optional<double> target_p99_ms;
  uint64_t min_instances = 2;  // redundancy floor
  uint64_t spare = 0;          // N+spare
};

// The first nonsensical input, as a message for the operator; nullopt if the input is sane.
std::optional<std::string> validate_plan(const PlanInput& in);

enum class LatencyModel : uint8_t { none, mm1, mm1_anchored, linear };

struct PlanResult {
  bool feasible = true;
  std::string why;  // when infeasible
  double demand_rps = 0;
  double rho_headroom = 0;
  LatencyModel model = LatencyModel::none;
  std::optional<double> rho_latency;
  double rho = 0;
  std::string binding;  // "headroom" | "latency"
  double usable_rps = 0;
  double needed_exact = 0;
  uint64_t needed = 0;                  // ceil(demand / usable)
  uint64_t with_min = 0;                // max(needed, min)
  uint64_t instances = 0;               // with_min + spare
  double util_all = 0;                  // utilisation at peak demand, all instances up
  std::optional<double> util_one_down;  // ... with one instance down (instances > 1)
  std::optional<double> p99_all_ms;     // model p99 at util_all (M/M/1 models only)
  std::vector<std::string> steps;       // the working, one formula with numbers per line
};

// Computes the plan; the input must pass validate_plan().
PlanResult compute_plan(const PlanInput& in);

const char* latency_model_name(LatencyModel m);

// The working and the answer, for people.
std::string plan_text(const PlanInput& in, const PlanResult& r);
// One JSON object with inputs, intermediate figures, steps and the answer.
std::string plan_json(const PlanInput& in, const PlanResult& r);

}  // namespace bench

#include <doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "bench/plan_model.h"

using namespace bench;

namespace {

PlanInput base() {
  PlanInput in;
  in.capacity_rps = 500;
  in.capacity_source = "--capacity";
  in.users = 10000;
  in.req_per_user = 0.2;
  return in;
}

bool has_step(const PlanResult& r, const std::string& text) {
  for (const auto& s : r.steps)
    if (s.find(text) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("plan: 10,000 users x 0.2 req/s on 500 req/s instances with 30% head-room") {
  const PlanInput in = base();
  REQUIRE_FALSE(validate_plan(in));
  const PlanResult r = compute_plan(in);
  REQUIRE(r.feasible);
  CHECK(r.demand_rps == doctest::Approx(2000));
  CHECK(r.rho == doctest::Approx(0.7));
  CHECK(r.binding == "headroom");
  CHECK(r.usable_rps == doctest::Approx(350));
  CHECK(r.needed == 6);  // ceil(2000 / 350) = ceil(5.714)
  CHECK(r.instances == 6);
  CHECK(r.util_all == doctest::Approx(2000.0 / 3000));
  REQUIRE(r.util_one_down);
  CHECK(*r.util_one_down == doctest::Approx(0.8));
  CHECK(has_step(r, "ceil(2000 / 350)"));
  CHECK(plan_text(in, r).find("answer: 6 instances") != std::string::npos);
}

TEST_CASE("plan: peak, exact division and spare") {
  PlanInput in = base();
  in.users = 7000;  // 1400 req/s / 350 = 4 exactly: no rounding up to 5
  CHECK(compute_plan(in).instances == 4);
  in.peak = 2;  // 2800 / 350 = 8
  CHECK(compute_plan(in).instances == 8);
  in.spare = 1;
  const PlanResult r = compute_plan(in);
  CHECK(r.with_min == 8);
  CHECK(r.instances == 9);
}

TEST_CASE("plan: at least --min instances for redundancy") {
  PlanInput in = base();
  in.users = 100;  // 20 req/s: one instance would do
  PlanResult r = compute_plan(in);
  CHECK(r.needed == 1);
  CHECK(r.instances == 2);
  in.min_instances = 3;
  CHECK(compute_plan(in).instances == 3);
  in.min_instances = 1;
  r = compute_plan(in);
  CHECK(r.instances == 1);
  CHECK_FALSE(r.util_one_down);
}

TEST_CASE("plan: the M/M/1 bound binds when the target p99 is tight") {
  PlanInput in = base();
  in.target_p99_ms = 20;  // s = 2 ms; s ln(100) = 9.21 ms; rho <= 1 - 9.21 / 20 = 0.5395
  PlanResult r = compute_plan(in);
  REQUIRE(r.feasible);
  CHECK(r.model == LatencyModel::mm1);
  REQUIRE(r.rho_latency);
  CHECK(*r.rho_latency == doctest::Approx(1 - 2 * std::log(100.0) / 20));
  CHECK(r.binding == "latency");
  CHECK(r.needed == 8);  // 2000 / (500 x 0.5395) = 7.41
  REQUIRE(r.p99_all_ms);
  CHECK(*r.p99_all_ms <= 20);  // more instances than needed: under target

  in.target_p99_ms = 100;  // loose: rho_latency = 0.908, head-room binds again
  r = compute_plan(in);
  CHECK(r.binding == "headroom");
  CHECK(r.instances == 6);

  in.target_p99_ms = 5;  // below the idle p99 (9.21 ms): no number of instances helps
  r = compute_plan(in);
  CHECK_FALSE(r.feasible);
  CHECK(r.why.find("idle") != std::string::npos);
  CHECK(plan_json(in, r).find("\"feasible\":false") != std::string::npos);
}

TEST_CASE("plan: measured latency anchors the curve, or derates linearly at capacity") {
  PlanInput in = base();
  in.latency_ms = 80;
  in.at_rate_rps = 300;  // rho_m = 0.6
  in.target_p99_ms = 100;
  PlanResult r = compute_plan(in);
  CHECK(r.model == LatencyModel::mm1_anchored);
  CHECK(*r.rho_latency == doctest::Approx(1 - 0.8 * 0.4));  // 0.68 < 0.7
  CHECK(r.binding == "latency");
  CHECK(r.needed == 6);  // 2000 / 340 = 5.88

  in.latency_ms = 200;
  in.at_rate_rps = 500;  // measured at capacity (as from a load run): linear derating
  r = compute_plan(in);
  CHECK(r.model == LatencyModel::linear);
  CHECK(*r.rho_latency == doctest::Approx(0.5));
  CHECK(r.needed == 8);  // 2000 / 250

  in.latency_ms = 50;  // already under target at capacity: head-room binds
  r = compute_plan(in);
  CHECK(*r.rho_latency == doctest::Approx(1));
  CHECK(r.binding == "headroom");
}

TEST_CASE("plan: nonsense input is refused with a message") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // Each case changes one thing (or one pair) of a sane input.
  auto refused_if = [](auto change) {
    PlanInput in = base();
    change(in);
    return validate_plan(in).has_value();
  };
  CHECK_FALSE(refused_if([](PlanInput&) {}));
  CHECK(refused_if([](PlanInput& in) { in.users = 0; }));
  CHECK(refused_if([](PlanInput& in) { in.users = -5; }));
  CHECK(refused_if([](PlanInput& in) { in.req_per_user = 0; }));
  CHECK(refused_if([nan](PlanInput& in) { in.req_per_user = nan; }));
  CHECK(refused_if([](PlanInput& in) { in.capacity_rps = 0; }));
  CHECK(refused_if([](PlanInput& in) { in.headroom = 1; }));
  CHECK(refused_if([](PlanInput& in) { in.headroom = -0.1; }));
  CHECK(refused_if([](PlanInput& in) { in.peak = 0.5; }));
  CHECK(refused_if([](PlanInput& in) { in.target_p99_ms = 0.0; }));
  CHECK(refused_if([](PlanInput& in) { in.latency_ms = 50.0; }));    // without --at-rate
  CHECK(refused_if([](PlanInput& in) { in.at_rate_rps = 100.0; }));  // without --latency-ms
  CHECK(refused_if([](PlanInput& in) {
    in.latency_ms = 50.0;
    in.at_rate_rps = 900.0;
  }));  // > capacity
  CHECK(refused_if([](PlanInput& in) { in.min_instances = 0; }));
  PlanInput in = base();
  in.capacity_rps = -1;
  CHECK(validate_plan(in)->find("capacity") != std::string::npos);
}

TEST_CASE("plan: reads a load --json result") {
  ParsedLoad p = parse_load_json(
      R"({"rate": 812.5, "latency_ms": {"p50": 3.1, "p99": 41.7}, "connections": 64,
          "statuses": {"200": 40000}, "errors": 0})");
  REQUIRE(p.figures);
  CHECK(p.figures->rate == doctest::Approx(812.5));
  REQUIRE(p.figures->p99_ms);
  CHECK(*p.figures->p99_ms == doctest::Approx(41.7));
  CHECK(p.figures->connections == 64);
  CHECK(p.figures->server_errors == 0);
  CHECK(p.figures->errors == 0);

  p = parse_load_json(
      R"({"rate": 900, "statuses": {"200": 100, "503": 7, "500": 1},
          "errors": {"connect": 2, "timeout": 1}})");
  REQUIRE(p.figures);
  CHECK(p.figures->server_errors == 8);
  CHECK(p.figures->errors == 3);
  CHECK_FALSE(p.figures->p99_ms);

  // The shape corral-bench load --json writes: errors with a total and per-kind counts.
  p = parse_load_json(
      R"({"url": "http://127.0.0.1:8080/health", "mode": "open", "requests": 30000,
          "rate": 999.87, "target_rate": 1000.00,
          "latency_ms": {"p50": 0.412, "p90": 0.8, "p99": 2.113, "p999": 4.1, "max": 9.2,
                         "mean": 0.5, "count": 30000},
          "unfinished": 0, "statuses": {"200": 30000},
          "errors": {"total": 2, "connect": 1, "timeout": 1}, "backends": ["kupo-1"],
          "users": 1000, "key": null, "connections": 50, "threads": 1, "per_second": [1, 2]})");
  REQUIRE(p.figures);
  CHECK(p.figures->rate == doctest::Approx(999.87));
  CHECK(*p.figures->p99_ms == doctest::Approx(2.113));
  CHECK(p.figures->errors == 2);
  CHECK(p.figures->connections == 50);

  CHECK_FALSE(parse_load_json(R"({"latency_ms": {"p99": 4}})").figures);
  CHECK_FALSE(parse_load_json(R"({"rate": -3})").figures);
  CHECK_FALSE(parse_load_json("not json").figures);
}

TEST_CASE("plan: JSON output carries the answer and the working") {
  const PlanInput in = base();
  const PlanResult r = compute_plan(in);
  const std::string j = plan_json(in, r);
  for (const char* f : {"\"inputs\":{", "\"demand_rps\":2000", "\"rho\":0.7", "\"needed\":6",
                        "\"instances\":6", "\"binding\":\"headroom\"", "\"steps\":[\"demand"})
    CHECK_MESSAGE(j.find(f) != std::string::npos, f);
}

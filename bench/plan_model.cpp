#include "bench/plan_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "lb/core/flat_json.h"

namespace bench {

namespace {

// ln(100): the 99th percentile of an exponential distribution is ln(100) times its mean,
// and an M/M/1 queue's response time is exponential with mean s / (1 - rho).
const double kLn100 = std::log(100.0);

// Short human form of a number: up to 4 decimals, trailing zeros dropped.
std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  std::string s = buf;
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s == "-0" ? "0" : s;
}

// JSON number: finite doubles only (the model never produces others after validation).
std::string jnum(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string jopt(const std::optional<double>& v) { return v ? jnum(*v) : "null"; }

bool finite_positive(double v) { return std::isfinite(v) && v > 0; }

// ceil that forgives the last bit of rounding: 1400 / 350 must be 4, not 5.
uint64_t ceil_count(double x) { return static_cast<uint64_t>(std::ceil(x - 1e-9)); }

// Sums the counts of an object ({"503": 2, "500": 1}) whose keys pass `want`.
template <typename Pred>
std::optional<uint64_t> sum_counts(const lb::JsonValue& v, Pred want) {
  if (!v.is_object()) return std::nullopt;
  auto obj = lb::FlatJson::parse(v.text);
  if (!obj) return std::nullopt;
  uint64_t sum = 0;
  for (const auto& [key, val] : obj->fields())
    if (want(key)) sum += val.as_count().value_or(0);
  return sum;
}

// corral-bench load writes errors as {"total": n, "<kind>": n, ...}: the total when there
// is one (summing would count every error twice), else the sum of the kinds. Unreadable
// counts as one error, so that a malformed result is refused rather than trusted.
uint64_t error_count(const lb::JsonValue& v) {
  auto obj = lb::FlatJson::parse(v.text);
  if (!obj) return 1;
  if (const lb::JsonValue* total = obj->find("total")) return total->as_count().value_or(1);
  uint64_t sum = 0;
  for (const auto& field : obj->fields()) sum += field.second.as_count().value_or(1);
  return sum;
}

}  // namespace

ParsedLoad parse_load_json(std::string_view text) {
  ParsedLoad out;
  auto doc = lb::FlatJson::parse(text);
  if (!doc) {
    out.error = "not a JSON object (expected the output of corral-bench load --json)";
    return out;
  }
  LoadFigures f;
  const lb::JsonValue* rate = doc->find("rate");
  if (!rate || rate->type != lb::JsonValue::Type::number || !finite_positive(rate->number)) {
    out.error = "no positive number field \"rate\" (achieved req/s)";
    return out;
  }
  f.rate = rate->number;
  if (auto p99 = doc->lookup("latency_ms.p99");
      p99 && p99->type == lb::JsonValue::Type::number && finite_positive(p99->number))
    f.p99_ms = p99->number;
  if (const lb::JsonValue* c = doc->find("connections")) f.connections = c->as_count().value_or(0);
  if (const lb::JsonValue* s = doc->find("statuses"))
    f.server_errors =
        sum_counts(*s, [](const std::string& k) { return !k.empty() && k[0] == '5'; }).value_or(0);
  if (const lb::JsonValue* e = doc->find("errors")) {
    if (e->type == lb::JsonValue::Type::number)
      f.errors = e->as_count().value_or(1);
    else if (e->is_object())
      f.errors = error_count(*e);
    else if (e->type == lb::JsonValue::Type::nested)  // an array: any entry is an error
      f.errors = e->text.find_first_not_of("[] \t\r\n") == std::string::npos ? 0 : 1;
  }
  out.figures = f;
  return out;
}

std::optional<std::string> validate_plan(const PlanInput& in) {
  if (!finite_positive(in.capacity_rps))
    return "capacity must be a positive req/s figure (--capacity RPS or --from FILE)";
  if (!finite_positive(in.users)) return "--users must be a positive number of users";
  if (!finite_positive(in.req_per_user))
    return "--req-per-user must be a positive req/s per active user";
  if (!std::isfinite(in.peak) || in.peak < 1) return "--peak is peak-to-average and must be >= 1";
  if (!std::isfinite(in.headroom) || in.headroom < 0 || in.headroom >= 1)
    return "--headroom is the spare fraction kept and must be in [0, 1)";
  if (in.target_p99_ms && !finite_positive(*in.target_p99_ms))
    return "--target-p99 must be a positive number of milliseconds";
  if (in.latency_ms && !finite_positive(*in.latency_ms))
    return "--latency-ms must be a positive number of milliseconds";
  if (in.at_rate_rps && !finite_positive(*in.at_rate_rps))
    return "--at-rate must be a positive req/s";
  if (in.latency_ms.has_value() != in.at_rate_rps.has_value())
    return "--latency-ms and --at-rate go together: a latency means nothing without the rate "
           "it was measured at";
  // 1e-9 relative: a rate read back from a file equals the capacity derived from it.
  if (in.at_rate_rps && *in.at_rate_rps > in.capacity_rps * (1 + 1e-9))
    return "--at-rate is above the capacity: an instance cannot sustain more than its "
           "capacity (raise --capacity or check the measurement)";
  if (in.min_instances < 1 || in.min_instances > 100000) return "--min must be 1..100000";
  if (in.spare > 100000) return "--spare must be 0..100000";
  return std::nullopt;
}

const char* latency_model_name(LatencyModel m) {
  switch (m) {
    case LatencyModel::mm1:
      return "mm1";
    case LatencyModel::mm1_anchored:
      return "mm1-anchored";
    case LatencyModel::linear:
      return "linear";
    case LatencyModel::none:
      break;
  }
  return "none";
}

PlanResult compute_plan(const PlanInput& in) {
  PlanResult r;
  auto step = [&r](std::string s) { r.steps.push_back(std::move(s)); };
  const double c = in.capacity_rps;

  r.demand_rps = in.users * in.req_per_user * in.peak;
  step("demand = users x req/user x peak = " + num(in.users) + " x " + num(in.req_per_user) +
       " x " + num(in.peak) + " = " + num(r.demand_rps) + " req/s");

  r.rho_headroom = 1 - in.headroom;
  step("rho_headroom = 1 - headroom = 1 - " + num(in.headroom) + " = " + num(r.rho_headroom));

  if (in.target_p99_ms) {
    const double t = *in.target_p99_ms;
    if (in.latency_ms && *in.at_rate_rps < c * (1 - 1e-9)) {
      r.model = LatencyModel::mm1_anchored;
      const double l = *in.latency_ms, rho_m = *in.at_rate_rps / c;
      r.rho_latency = 1 - (l / t) * (1 - rho_m);
      step("rho_measured = at_rate / capacity = " + num(*in.at_rate_rps) + " / " + num(c) + " = " +
           num(rho_m));
      step("rho_latency = 1 - (p99_measured / target) x (1 - rho_measured) = 1 - (" + num(l) +
           " / " + num(t) + ") x (1 - " + num(rho_m) + ") = " + num(*r.rho_latency) +
           "   [M/M/1 curve p99(rho) = p99_measured x (1 - rho_measured) / (1 - rho)]");
      if (*r.rho_latency <= 0)
        r.why =
            "even an idle instance would miss the target under this model: its p99 at "
            "rho = 0 is " +
            num(l * (1 - rho_m)) + " ms > " + num(t) + " ms";
    } else if (in.latency_ms) {
      r.model = LatencyModel::linear;
      const double l = *in.latency_ms;
      r.rho_latency = std::min(1.0, t / l);
      step("rho_latency = min(1, target / p99_measured) = min(1, " + num(t) + " / " + num(l) +
           ") = " + num(*r.rho_latency) +
           "   [linear derating: measured at capacity, no queueing curve to anchor]");
    } else {
      r.model = LatencyModel::mm1;
      const double s_ms = 1000 / c;
      r.rho_latency = 1 - s_ms * kLn100 / t;
      step("service time s = 1 / capacity = 1 / " + num(c) + " = " + num(s_ms) + " ms");
      step("rho_latency = 1 - s x ln(100) / target = 1 - " + num(s_ms) + " x " + num(kLn100) +
           " / " + num(t) + " = " + num(*r.rho_latency) +
           "   [M/M/1: p99 = s x ln(100) / (1 - rho); optimistic for a server that serves "
           "many requests at once; --latency-ms/--at-rate anchor it]");
      if (*r.rho_latency <= 0)
        r.why =
            "the target p99 is below what one instance achieves even idle under M/M/1: "
            "s x ln(100) = " +
            num(s_ms * kLn100) + " ms > " + num(t) + " ms";
    }
  } else {
    step("rho_latency: not computed (no --target-p99)");
  }

  if (r.rho_latency && *r.rho_latency <= 0) {
    r.feasible = false;
    return r;
  }
  r.rho = r.rho_headroom;
  r.binding = "headroom";
  if (r.rho_latency && *r.rho_latency < r.rho_headroom) {
    r.rho = *r.rho_latency;
    r.binding = "latency";
  }
  if (r.rho_latency)
    step("rho = min(rho_headroom, rho_latency) = min(" + num(r.rho_headroom) + ", " +
         num(*r.rho_latency) + ") = " + num(r.rho) + "   (" + r.binding + " binds)");
  else
    step("rho = rho_headroom = " + num(r.rho));

  r.usable_rps = c * r.rho;
  step("usable per instance = capacity x rho = " + num(c) + " x " + num(r.rho) + " = " +
       num(r.usable_rps) + " req/s");
  if (r.usable_rps <= 0) {
    r.feasible = false;
    r.why = "no usable capacity per instance (headroom leaves nothing)";
    return r;
  }

  r.needed_exact = r.demand_rps / r.usable_rps;
  r.needed = std::max<uint64_t>(1, ceil_count(r.needed_exact));
  step("needed = ceil(demand / usable) = ceil(" + num(r.demand_rps) + " / " + num(r.usable_rps) +
       ") = ceil(" + num(r.needed_exact) + ") = " + std::to_string(r.needed));
  r.with_min = std::max(r.needed, in.min_instances);
  step("redundancy = max(needed, min) = max(" + std::to_string(r.needed) + ", " +
       std::to_string(in.min_instances) + ") = " + std::to_string(r.with_min));
  r.instances = r.with_min + in.spare;
  step("instances = redundancy + spare = " + std::to_string(r.with_min) + " + " +
       std::to_string(in.spare) + " = " + std::to_string(r.instances));

  r.util_all = r.demand_rps / (c * static_cast<double>(r.instances));
  if (r.instances > 1) r.util_one_down = r.demand_rps / (c * static_cast<double>(r.instances - 1));
  // The model's p99 at the planned load, where the model has a curve below saturation.
  if (r.util_all < 1) {
    if (r.model == LatencyModel::mm1)
      r.p99_all_ms = (1000 / c) * kLn100 / (1 - r.util_all);
    else if (r.model == LatencyModel::mm1_anchored)
      r.p99_all_ms = *in.latency_ms * (1 - *in.at_rate_rps / c) / (1 - r.util_all);
  }
  return r;
}

std::string plan_text(const PlanInput& in, const PlanResult& r) {
  std::string s = "inputs\n";
  auto line = [&s](const char* name, const std::string& v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "  %-22s ", name);
    s += buf + v + "\n";
  };
  line("users", num(in.users));
  line("requests per user", num(in.req_per_user) + " req/s (per active user)");
  line("peak / average", num(in.peak));
  line("capacity", num(in.capacity_rps) + " req/s per instance (" + in.capacity_source + ")");
  if (in.latency_ms)
    line("measured p99",
         num(*in.latency_ms) + " ms at " + num(*in.at_rate_rps) + " req/s per instance");
  line("headroom", num(in.headroom) + " (spare fraction kept)");
  line("target p99", in.target_p99_ms ? num(*in.target_p99_ms) + " ms" : "(none)");
  line("min instances", std::to_string(in.min_instances));
  line("spare", std::to_string(in.spare));
  s += "\nworking\n";
  for (size_t i = 0; i < r.steps.size(); ++i) {
    // A step's "[why]" note goes on its own line under the formula.
    std::string st = r.steps[i];
    if (size_t at = st.find("   ["); at != std::string::npos)
      st.replace(at, 3, std::string("\n") + (i + 1 >= 10 ? "      " : "     "));
    s += "  " + std::to_string(i + 1) + ". " + st + "\n";
  }
  if (!r.feasible) {
    s += "\nno answer: " + r.why + "\n";
    return s;
  }
  s += "\nanswer: " + std::to_string(r.instances) + " instance" + (r.instances == 1 ? "" : "s");
  if (r.with_min > r.needed || in.spare)
    s += " (" + std::to_string(r.needed) + " for the load" +
         (r.with_min > r.needed ? ", raised to --min " + std::to_string(in.min_instances) : "") +
         (in.spare ? ", + " + std::to_string(in.spare) + " spare" : "") + ")";
  s += "\n  at peak each instance serves " + num(r.demand_rps / static_cast<double>(r.instances)) +
       " req/s (utilisation " + num(r.util_all) + ")";
  if (r.p99_all_ms) s += ", model p99 " + num(*r.p99_all_ms) + " ms";
  s += "\n";
  if (r.util_one_down)
    s += "  with one instance down: " + num(r.demand_rps / static_cast<double>(r.instances - 1)) +
         " req/s each (utilisation " + num(*r.util_one_down) + ")" +
         (*r.util_one_down >= 1 ? ": OVERLOADED, consider --spare 1" : "") + "\n";
  s += "  assumptions: requests spread evenly over instances (sticky sessions with bounded\n"
       "  loads keep sessions within c x mean; heavy users skew this), capacity measured on\n"
       "  the same hardware and query mix as production\n";
  return s;
}

std::string plan_json(const PlanInput& in, const PlanResult& r) {
  std::string s = "{\"inputs\":{";
  s += "\"capacity_rps\":" + jnum(in.capacity_rps);
  s += ",\"capacity_source\":\"" + lb::json_escape(in.capacity_source) + "\"";
  s += ",\"latency_ms\":" + jopt(in.latency_ms);
  s += ",\"at_rate_rps\":" + jopt(in.at_rate_rps);
  s += ",\"users\":" + jnum(in.users);
  s += ",\"req_per_user\":" + jnum(in.req_per_user);
  s += ",\"peak\":" + jnum(in.peak);
  s += ",\"headroom\":" + jnum(in.headroom);
  s += ",\"target_p99_ms\":" + jopt(in.target_p99_ms);
  s += ",\"min\":" + std::to_string(in.min_instances);
  s += ",\"spare\":" + std::to_string(in.spare) + "}";
  s += std::string(",\"feasible\":") + (r.feasible ? "true" : "false");
  if (!r.feasible) s += ",\"why\":\"" + lb::json_escape(r.why) + "\"";
  s += ",\"demand_rps\":" + jnum(r.demand_rps);
  s += ",\"rho_headroom\":" + jnum(r.rho_headroom);
  s += ",\"latency_model\":\"" + std::string(latency_model_name(r.model)) + "\"";
  s += ",\"rho_latency\":" + jopt(r.rho_latency);
  if (r.feasible) {
    s += ",\"rho\":" + jnum(r.rho);
    s += ",\"binding\":\"" + r.binding + "\"";
    s += ",\"usable_rps_per_instance\":" + jnum(r.usable_rps);
    s += ",\"needed_exact\":" + jnum(r.needed_exact);
    s += ",\"needed\":" + std::to_string(r.needed);
    s += ",\"with_min\":" + std::to_string(r.with_min);
    s += ",\"instances\":" + std::to_string(r.instances);
    s += ",\"utilisation\":" + jnum(r.util_all);
    s += ",\"utilisation_one_down\":" + jopt(r.util_one_down);
    s += ",\"model_p99_ms\":" + jopt(r.p99_all_ms);
  }
  s += ",\"steps\":[";
  for (size_t i = 0; i < r.steps.size(); ++i)
    s += (i ? ",\"" : "\"") + lb::json_escape(r.steps[i]) + "\"";
  return s + "]}";
}

}  // namespace bench

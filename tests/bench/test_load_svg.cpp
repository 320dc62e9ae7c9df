#include <doctest.h>

#include <cmath>
#include <cstdlib>
#include <regex>
#include <string>
#include <vector>

#include "bench/load_svg.h"

using namespace bench;

namespace {

// A 3-second closed-loop report with answers per class: 2xx, 503, other and errors as
// given for each second.
LoadReport report_with(uint64_t ok, uint64_t busy, uint64_t other, uint64_t errors) {
  LoadReport r;
  r.url = "http://127.0.0.1:8080/matches";
  r.duration_s = 3;
  r.merged.per_second_class.assign(4, {});
  for (size_t s = 0; s < 3; ++s) r.merged.per_second_class[s] = {ok, busy, other, errors};
  r.merged.statuses[200] = 3 * ok;
  r.merged.statuses[503] = 3 * busy;
  r.merged.statuses[404] = 3 * other;
  r.merged.errors[0] = 3 * errors;
  r.merged.requests = 3 * (ok + busy + other);
  return r;
}

// The <g class="series" data-class=NAME ...>...</g> group of `svg`, or "".
std::string series(const std::string& svg, const std::string& name) {
  const size_t at = svg.find("data-class=\"" + name + "\"");
  if (at == std::string::npos) return "";
  return svg.substr(at, svg.find("</g>", at) - at);
}

// The sum of the data-count attributes of a group's bars, and of their heights.
void bar_sums(const std::string& group, uint64_t& count, double& height) {
  count = 0;
  height = 0;
  static const std::regex bar("height=\"([0-9.]+)\" data-count=\"([0-9]+)\"");
  for (std::sregex_iterator it(group.begin(), group.end(), bar), end; it != end; ++it) {
    height += std::atof((*it)[1].str().c_str());
    count += std::strtoull((*it)[2].str().c_str(), nullptr, 10);
  }
}

}  // namespace

TEST_CASE("load svg: every status class that occurs is a series of its own, with a legend") {
  const std::string svg = render_svg(report_with(100, 40, 7, 3));
  for (const char* name : {"2xx", "503", "other non-2xx", "errors"}) {
    INFO(name);
    CHECK_FALSE(series(svg, name).empty());
    CHECK(svg.find(std::string(">") + name + " ") != std::string::npos);  // legend entry
  }
  uint64_t n = 0;
  double h_ok = 0, h_busy = 0;
  bar_sums(series(svg, "2xx"), n, h_ok);
  CHECK(n == 300);  // the 2xx series holds the 200s only, not the 503s
  bar_sums(series(svg, "503"), n, h_busy);
  CHECK(n == 120);
  // Heights follow the counts: the 2xx bars are 100/40 times the 503 bars.
  CHECK(h_ok / h_busy == doctest::Approx(100.0 / 40.0).epsilon(0.02));
  bar_sums(series(svg, "other non-2xx"), n, h_ok);
  CHECK(n == 21);
  bar_sums(series(svg, "errors"), n, h_ok);
  CHECK(n == 9);
}

TEST_CASE("load svg: a class that does not occur draws no series") {
  const std::string svg = render_svg(report_with(50, 0, 0, 0));
  CHECK_FALSE(series(svg, "2xx").empty());
  CHECK(series(svg, "503").empty());
  CHECK(series(svg, "errors").empty());
  CHECK(svg.find(">503 0<") != std::string::npos);  // the legend still says 0
}

TEST_CASE("load svg: a long URL is cut to fit the width") {
  LoadReport r = report_with(10, 0, 0, 0);
  r.url = "http://127.0.0.1:8080/" + std::string(500, 'a');
  const std::string svg = render_svg(r);
  CHECK(svg.find(std::string(200, 'a')) == std::string::npos);
  CHECK(svg.find("...") != std::string::npos);
  CHECK(fit_text("short", 600, 12) == "short");
  const std::string cut = fit_text(std::string(300, 'x'), 600, 12);
  CHECK(cut.size() <= size_t(600 / (0.6 * 12)));
}

TEST_CASE("load svg: axis ticks are round numbers") {
  CHECK(nice_tick_step(31816 * 1.05, 5) == 10000);
  CHECK(nice_tick_step(12.3, 5) == 5);
  CHECK(nice_tick_step(0.9, 5) == doctest::Approx(0.2));
  CHECK(nice_tick_step(100, 5) == 20);
  CHECK(nice_tick_step(0, 5) == 1);
  // The y labels of each chart start at 0 and climb in one round step (1, 2 or 5 times a
  // power of ten): 1234 answers/s gives 0, 500, 1000, 1500 (a step of 300 or 247 fails).
  const std::string svg = render_svg(report_with(1234, 0, 0, 0));
  static const std::regex label("text-anchor=\"end\">([0-9.]+)</text>");
  std::vector<std::vector<double>> charts;
  for (std::sregex_iterator it(svg.begin(), svg.end(), label), end; it != end; ++it) {
    const double v = std::atof((*it)[1].str().c_str());
    if (v == 0) charts.emplace_back();
    REQUIRE_FALSE(charts.empty());
    charts.back().push_back(v);
  }
  REQUIRE(charts.size() == 2);
  for (const std::vector<double>& ys : charts) {
    REQUIRE(ys.size() >= 3);
    const double step = ys[1];
    const double mantissa = step / std::pow(10.0, std::floor(std::log10(step)));
    INFO(step);
    CHECK((std::fabs(mantissa - 1) < 1e-6 || std::fabs(mantissa - 2) < 1e-6 ||
           std::fabs(mantissa - 5) < 1e-6));
    for (size_t k = 1; k < ys.size(); ++k) CHECK(ys[k] == doctest::Approx(step * double(k)));
  }
  CHECK(charts[1].back() >= 1234);  // the top label is above the highest bar
  CHECK(charts[1][1] == 500);
}

TEST_CASE("load report: the error rate counts non-2xx answers and errors") {
  const LoadReport r = report_with(100, 40, 7, 3);
  CHECK(r.failed_requests() == 3 * (40 + 7 + 3));
  CHECK(r.error_rate() == doctest::Approx(150.0 / 450.0));
  CHECK(report_with(10, 0, 0, 0).error_rate() == 0.0);
  CHECK(LoadReport{}.error_rate() == 0.0);
}

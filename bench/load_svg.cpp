#include "bench/load_svg.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace bench {

double nice_tick_step(double span, int max_ticks) {
  if (!(span > 0) || max_ticks < 1) return 1;
  const double raw = span / max_ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw * (1 - 1e-9)) return m * mag;
  return 10 * mag;
}

std::string fit_text(const std::string& text, int width_px, double font_px) {
  // Sans-serif averages about 0.6 em per character (bold a little more: callers pass a
  // larger font_px for bold); a UTF-8 continuation byte adds no width.
  const double per_char = 0.6 * font_px;
  const size_t fits = size_t(std::max(0.0, double(width_px) / per_char));
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;
    if (++chars > fits) {
      size_t cut = i;
      // Room for "...": drop three more characters (whole UTF-8 sequences).
      for (int k = 0; k < 3 && cut > 0; ++k) {
        --cut;
        while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
      }
      return text.substr(0, cut) + "...";
    }
  }
  return text;
}

namespace {

constexpr int W = 720, H = 300, L = 70, R = 20, T = 44, B = 45;
constexpr int PW = W - L - R, PH = H - T - B;
constexpr int kLegendH = 24;  // under the second chart
// One colour per AnswerClass: the 2xx green, 503 orange, other non-2xx purple, errors red.
constexpr std::array<const char*, kAnswerClasses> kClassColour = {"#27ae60", "#e67e22", "#8e44ad",
                                                                  "#c0392b"};

double ms(uint64_t us) { return double(us) / 1000.0; }

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<')
      o += "&lt;";
    else if (c == '>')
      o += "&gt;";
    else if (c == '&')
      o += "&amp;";
    else if (c == '"')
      o += "&quot;";
    else
      o += c;
  }
  return o;
}

// printf into `out`.
template <class... A>
void put(std::string& out, const char* fmt, A... a) {
  char b[512];
  const int n = std::snprintf(b, sizeof b, fmt, a...);
  if (n > 0) out.append(b, std::min<size_t>(size_t(n), sizeof b - 1));
}

// Decimals that show `step` exactly (0 for 1, 2, 5, 10...; 1 for 0.5; 2 for 0.05).
int decimals_for(double step) {
  return step >= 1 ? 0 : std::min(6, int(std::ceil(-std::log10(step) - 1e-9)));
}

// A bold title and a lighter subtitle, each cut to the chart's width.
void titles(std::string& o, int top, const std::string& title, const std::string& sub) {
  put(o, "<text x=\"%d\" y=\"%d\" font-size=\"14\" font-weight=\"bold\">%s</text>\n", L, top + 17,
      xml_escape(fit_text(title, W - L - R, 15)).c_str());
  if (!sub.empty())
    put(o, "<text x=\"%d\" y=\"%d\" fill=\"#555\">%s</text>\n", L, top + 33,
        xml_escape(fit_text(sub, W - L - R, 12)).c_str());
}

// Horizontal grid lines and labels at round values from 0 to the axis top (which is
// rounded up to a whole step, so the top line is labelled too). Returns that top.
double y_axis(std::string& o, int top, double vmax, const char* unit_label) {
  const double step = nice_tick_step(std::max(vmax, 1e-9), 5);
  const double ytop = step * std::ceil(std::max(vmax, 1e-9) / step - 1e-9);
  const int dec = decimals_for(step);
  for (double v = 0; v <= ytop * (1 + 1e-9); v += step) {
    const double y = top + PH - PH * v / ytop;
    put(o,
        "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>"
        "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.*f</text>\n",
        L, y, L + PW, y, L - 6, y + 4, dec, v);
  }
  put(o, "<text transform=\"translate(16,%d) rotate(-90)\" text-anchor=\"middle\">%s</text>\n",
      top + PH / 2, unit_label);
  return ytop;
}

void latency_chart(std::string& o, const LoadReport& r) {
  const LoadResult& m = r.merged;
  titles(o, 0,
         r.open_loop() ? "Latency by percentile (corrected for coordinated omission)"
                       : "Latency by percentile",
         r.url);
  const double xmax = 4.0;  // log10(1/(1-p)): 0 = p0, 4 = p99.99
  double vmax = ms(m.latency.percentile(99.99));
  if (r.open_loop()) vmax = std::max(vmax, ms(m.uncorrected.percentile(99.99)));
  const double ymax = y_axis(o, T, std::max(vmax * 1.05, 0.01), "latency (ms)");
  auto X = [&](double lx) { return L + PW * lx / xmax; };
  auto Y = [&](double v) { return T + PH - PH * v / ymax; };
  put(o, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", L,
      T, PW, PH);
  const char* xl[] = {"0%", "90%", "99%", "99.9%", "99.99%"};
  for (int i = 0; i <= 4; ++i)
    put(o,
        "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#eee\"/>"
        "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
        X(i), T, X(i), T + PH, X(i), T + PH + 16, xl[i]);
  put(o, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">percentile</text>\n", L + PW / 2,
      T + PH + 34);
  auto curve = [&](const HdrHistogram& h, const char* color, const char* label, int ly) {
    if (h.count() == 0) return;
    put(o, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", color);
    for (int i = 0; i <= 200; ++i) {
      const double lx = xmax * i / 200;
      const double p = 100.0 * (1.0 - std::pow(10.0, -lx));
      put(o, "%.1f,%.1f ", X(lx), Y(std::min(ms(h.percentile(p)), ymax)));
    }
    put(o, "\"/>\n<text x=\"%d\" y=\"%d\" fill=\"%s\">%s</text>\n", L + 10, ly, color, label);
  };
  curve(m.latency, "#c0392b", r.open_loop() ? "corrected (from scheduled send)" : "latency",
        T + 16);
  if (r.open_loop()) curve(m.uncorrected, "#2980b9", "uncorrected (from actual send)", T + 32);
}

void throughput_chart(std::string& o, const LoadReport& r) {
  const LoadResult& m = r.merged;
  const int top = H, T2 = H + T;
  const size_t secs =
      std::max<size_t>(1, std::min(m.per_second_class.size(), size_t(std::ceil(r.duration_s))));
  auto at = [&](size_t i, size_t k) -> uint64_t {
    return i < m.per_second_class.size() ? m.per_second_class[i][k] : 0;
  };
  std::array<uint64_t, kAnswerClasses> totals{};
  uint64_t tmax = 1;
  for (size_t i = 0; i < secs; ++i) {
    uint64_t sum = 0;
    for (size_t k = 0; k < kAnswerClasses; ++k) {
      sum += at(i, k);
      totals[k] += at(i, k);
    }
    tmax = std::max(tmax, sum);
  }
  char sub[160];
  std::snprintf(sub, sizeof sub, "%.0f %s/s overall%s; error rate %.4f", r.rate(),
                r.ws ? "msg" : "req", r.open_loop() ? ", target dashed" : "", r.error_rate());
  titles(o, top, "Answers per second by status", sub);
  const double ymax = y_axis(o, T2, std::max(double(tmax), r.target_rate) * 1.05, "per second");
  put(o, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", L,
      T2, PW, PH);
  // Stacked bars: 2xx at the bottom, then 503, other non-2xx, errors; one group per class.
  const double bw = double(PW) / double(secs);
  std::vector<double> base(secs, 0.0);
  for (size_t k = 0; k < kAnswerClasses; ++k) {
    if (totals[k] == 0) continue;
    put(o, "<g class=\"series\" data-class=\"%s\" data-total=\"%lu\" fill=\"%s\">\n",
        kAnswerClassNames[k], (unsigned long)totals[k], kClassColour[k]);
    for (size_t i = 0; i < secs; ++i) {
      if (at(i, k) == 0) continue;
      const double bh = PH * double(at(i, k)) / ymax;
      base[i] += bh;
      put(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" data-count=\"%lu\"/>\n",
          L + bw * double(i) + (bw > 4 ? 1 : 0), T2 + PH - base[i], std::max(bw - 2, 1.0), bh,
          (unsigned long)at(i, k));
    }
    o += "</g>\n";
  }
  // Time ticks: a round number of seconds apart, at least 48 px, so labels never touch.
  const double min_px = 48;
  double step = 1;
  for (double s : {1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0}) {
    step = s;
    if (bw * s >= min_px) break;
  }
  for (double t = 0; t <= double(secs) + 1e-9; t += step)
    put(o, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0fs</text>\n", L + bw * t,
        T2 + PH + 16, t);
  if (r.open_loop()) {
    const double y = T2 + PH - PH * r.target_rate / ymax;
    put(o,
        "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#333\" "
        "stroke-dasharray=\"6,4\"/>\n",
        L, y, L + PW, y);
  }
  put(o, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time since the end of warmup</text>\n",
      L + PW / 2, T2 + PH + 34);
  // Legend: every class, with its count, so an absent one reads as 0 rather than missing.
  double x = L;
  const int ly = 2 * H + 14;
  for (size_t k = 0; k < kAnswerClasses; ++k) {
    char label[64];
    std::snprintf(label, sizeof label, "%s %lu", kAnswerClassNames[k], (unsigned long)totals[k]);
    put(o,
        "<rect x=\"%.1f\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
        "<text x=\"%.1f\" y=\"%d\">%s</text>\n",
        x, ly - 10, kClassColour[k], x + 16, ly, label);
    x += 16 + 7.2 * double(std::string(label).size()) + 18;
  }
}

}  // namespace

std::string render_svg(const LoadReport& r) {
  std::string o;
  put(o,
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      W, 2 * H + kLegendH);
  latency_chart(o, r);
  throughput_chart(o, r);
  o += "</svg>\n";
  return o;
}

bool write_svg(const LoadReport& r, const std::string& path) {
  const std::string svg = render_svg(r);
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return false;
  const bool wrote = std::fwrite(svg.data(), 1, svg.size(), f) == svg.size();
  const int saved = errno;
  if (std::fclose(f) != 0 || !wrote) {
    if (!wrote) errno = saved;
    return false;
  }
  return true;
}

}  // namespace bench

#pragma once
// The SVG of `corral-bench load --svg`: the latency percentile spectrum and the answers per
// second by status class (2xx, 503, other non-2xx, errors: stacked, one colour each, with
// a legend), self-contained, 720 px wide.
#include <string>

#include "bench/load_report.h"

namespace bench {

// The whole SVG document for `r`. Each class that occurs is one
// <g class="series" data-class="NAME" data-total="N"> of bars, so that tools and tests can
// read what is drawn.
std::string render_svg(const LoadReport& r);
// render_svg written to `path`; false (errno set) if the file cannot be written.
bool write_svg(const LoadReport& r, const std::string& path);

// A round tick step (1, 2 or 5 times a power of ten) that cuts [0, span] into at most
// `max_ticks` intervals; 1 for a span of 0 or less.
double nice_tick_step(double span, int max_ticks);
// `text` cut (with "...") to what fits in `width_px` at `font_px` (sans-serif, estimated).
std::string fit_text(const std::string& text, int width_px, double font_px);

}  // namespace bench

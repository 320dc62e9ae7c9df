// Fuzz target: the WebSocket frame tracker (lb/http/ws_frame), which decides where corral
// may put a close frame of its own in a tunnel. Checks: the boundaries it reports do not
// depend on how the stream is split into reads; each one is where a frame, parsed on its
// own by parse_ws_header, ends; stop_at_boundary walks exactly to the next one.
#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include "lb/http/ws_frame.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using lb::http::WsFrameTracker;

// Stream offsets where the tracker reported a boundary, reading `step` bytes at a time.
std::vector<size_t> boundaries(std::string_view s, size_t step, bool& failed) {
  WsFrameTracker t;
  std::vector<size_t> out;
  for (size_t at = 0; at < s.size();) {
    size_t n = std::min(step, s.size() - at);
    FUZZ_CHECK(t.feed(s.substr(at, n)) == n, "a plain feed walks everything");
    at += n;
    if (t.at_boundary()) out.push_back(at);
  }
  failed = t.failed();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t step = 1 + data[0] % 17;
  std::string_view s(reinterpret_cast<const char*>(data) + 1, size - 1);
  bool failed_whole = false, failed_split = false;
  std::vector<size_t> whole = boundaries(s, s.size() ? s.size() : 1, failed_whole);
  std::vector<size_t> split = boundaries(s, step, failed_split);
  FUZZ_CHECK(failed_whole == failed_split, "failure does not depend on the reads");
  // Frame by frame with parse_ws_header: every frame end the split reads passed through.
  size_t pos = 0;
  std::vector<size_t> ends;
  while (pos < s.size()) {
    lb::http::WsFrameHeader h;
    lb::http::WsParse r = lb::http::parse_ws_header(s.substr(pos), h);
    if (r != lb::http::WsParse::ok) break;
    if (h.payload_len > s.size() - pos - h.header_len) break;
    pos += h.header_len + h.payload_len;
    ends.push_back(pos);
  }
  for (size_t b : split)
    FUZZ_CHECK(std::find(ends.begin(), ends.end(), b) != ends.end(),
               "a reported boundary is the end of a frame");
  if (!whole.empty()) FUZZ_CHECK(whole.back() == s.size(), "one read: a boundary at its end");
  // stop_at_boundary from inside the first frame (one byte in: its header is not whole)
  // reaches that frame's end and no further.
  if (s.size() >= 2) {
    WsFrameTracker t;
    t.feed(s.substr(0, 1));
    size_t n = t.feed(s.substr(1), true);
    if (!t.failed() && t.at_boundary())
      FUZZ_CHECK(!ends.empty() && 1 + n == ends.front(), "stops at the first frame's end");
  }
  return 0;
}

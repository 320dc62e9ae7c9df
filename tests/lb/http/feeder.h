#pragma once
// Test helper shared by the MessageParser tests: feeds bytes into one contiguous buffer
// the way a connection does, so that the parser's views into it stay valid.
#include <doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "lb/http/message_parser.h"

namespace feeder_test {

struct Feeder {
  lb::http::MessageParser p;
  std::string buf;
  size_t pos = 0;  // how much of buf the parser has consumed
  // The reserve keeps buf from moving under the parser's views (4 MiB: the largest
  // message a test feeds).
  explicit Feeder(lb::http::MessageParser::Kind k, size_t max = 16384) : p(k, max) {
    buf.reserve(1 << 22);
  }
  // Feeds `s` in pieces of `step` bytes; returns the first status other than need_more
  // (or need_more if s ran out first).
  lb::http::ParseResult feed_all(std::string_view s, size_t step = SIZE_MAX) {
    lb::http::ParseResult r;
    size_t off = 0;
    while (off < s.size()) {
      size_t n = std::min(step, s.size() - off);
      buf.append(s.substr(off, n));
      off += n;
      r = p.feed(buf.data() + pos, buf.size() - pos);
      pos += r.consumed;
      if (r.status != lb::http::ParseStatus::need_more) return r;
    }
    return r;
  }
  // Feeds what is buffered and not yet consumed.
  lb::http::ParseResult more() {
    lb::http::ParseResult r = p.feed(buf.data() + pos, buf.size() - pos);
    pos += r.consumed;
    return r;
  }
};

}  // namespace feeder_test

#include <doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "lb/http/ws_frame.h"

using namespace lb::http;

namespace {
std::string frame(uint8_t opcode, std::string payload, bool fin = true,
                  const uint8_t* mask = nullptr) {
  uint8_t h[kWsMaxHeader];
  size_t n = write_ws_header(h, fin, opcode, payload.size(), mask);
  if (mask) ws_apply_mask(payload.data(), payload.size(), mask);
  return std::string(reinterpret_cast<char*>(h), n) + payload;
}
}  // namespace

TEST_CASE("ws header: the RFC 6455 examples") {
  WsFrameHeader h;
  REQUIRE(parse_ws_header(std::string_view("\x81\x05Hello", 7), h) == WsParse::ok);
  CHECK(h.fin);
  CHECK(h.opcode == ws_text);
  CHECK_FALSE(h.masked);
  CHECK(h.payload_len == 5);
  CHECK(h.header_len == 2);
  std::string masked("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
  REQUIRE(parse_ws_header(masked, h) == WsParse::ok);
  CHECK(h.masked);
  CHECK(h.header_len == 6);
  std::string payload = masked.substr(6);
  ws_apply_mask(payload.data(), payload.size(), h.mask);
  CHECK(payload == "Hello");
}

TEST_CASE("ws header: every length form round-trips, partial headers need more") {
  const uint8_t mask[4] = {1, 2, 3, 4};
  for (uint64_t len : {0ull, 125ull, 126ull, 65535ull, 65536ull, 1ull << 40}) {
    for (const uint8_t* m : {static_cast<const uint8_t*>(nullptr), mask}) {
      uint8_t buf[kWsMaxHeader];
      size_t n = write_ws_header(buf, false, ws_binary, len, m);
      std::string_view all(reinterpret_cast<char*>(buf), n);
      WsFrameHeader h;
      for (size_t k = 0; k < n; ++k)
        CHECK(parse_ws_header(all.substr(0, k), h) == WsParse::need_more);
      REQUIRE(parse_ws_header(all, h) == WsParse::ok);
      CHECK(h.payload_len == len);
      CHECK(h.header_len == n);
      CHECK(h.masked == (m != nullptr));
      CHECK_FALSE(h.fin);
    }
  }
}

TEST_CASE("ws header: malformed lengths and control frames are errors") {
  WsFrameHeader h;
  CHECK(parse_ws_header(std::string_view("\x82\x7e\x00\x05", 4), h) ==
        WsParse::error);  // not shortest
  CHECK(parse_ws_header(std::string_view("\x82\x7f\x80\0\0\0\0\0\0\0", 10), h) == WsParse::error);
  CHECK(parse_ws_header(std::string_view("\x08\x00", 2), h) == WsParse::error);  // fragmented close
  CHECK(parse_ws_header(std::string_view("\x89\x7e\x00\x7e", 4), h) ==
        WsParse::error);  // long ping
}

TEST_CASE("ws close frame carries the code big-endian and a bounded reason") {
  uint8_t out[127];
  size_t n = write_ws_close(out, kWsServiceRestart, "backend down");
  std::string_view f(reinterpret_cast<char*>(out), n);
  WsFrameHeader h;
  REQUIRE(parse_ws_header(f, h) == WsParse::ok);
  CHECK(h.opcode == ws_close);
  CHECK(h.payload_len == 2 + 12);
  CHECK(static_cast<uint8_t>(f[2]) * 256 + static_cast<uint8_t>(f[3]) == 1012);
  CHECK(f.substr(4) == "backend down");
  CHECK(write_ws_close(out, 1001, std::string(300, 'x')) == 2 + 125);
}

TEST_CASE("ws tracker follows boundaries across any split, without looking at payloads") {
  const uint8_t mask[4] = {9, 8, 7, 6};
  std::string stream = frame(ws_text, "hello") + frame(ws_binary, std::string(70000, 'z'), false) +
                       frame(ws_ping, "p") + frame(ws_continuation, std::string(300, 'q')) +
                       frame(ws_text, "", true, mask) + frame(ws_close, "\x03\xe8");
  // Boundaries: offsets where a frame ends.
  std::vector<size_t> ends;
  {
    size_t pos = 0;
    while (pos < stream.size()) {
      WsFrameHeader h;
      REQUIRE(parse_ws_header(std::string_view(stream).substr(pos), h) == WsParse::ok);
      pos += h.header_len + h.payload_len;
      ends.push_back(pos);
    }
  }
  for (size_t chunk : {1ul, 3ul, 7ul, 1000ul, 100000ul}) {
    WsFrameTracker t;
    size_t pos = 0;
    while (pos < stream.size()) {
      size_t n = std::min(chunk, stream.size() - pos);
      CHECK(t.feed(std::string_view(stream).substr(pos, n)) == n);
      pos += n;
      bool end = std::find(ends.begin(), ends.end(), pos) != ends.end();
      CHECK(t.at_boundary() == end);
    }
    CHECK(t.frames() == 6);
    CHECK(t.saw_close());
  }
  // stop_at_boundary walks exactly to the end of the current frame.
  WsFrameTracker t;
  CHECK(t.feed(std::string_view(stream).substr(0, 4)) == 4);
  CHECK(t.feed(stream.substr(4), true) == ends[0] - 4);
  CHECK(t.at_boundary());
  CHECK(t.feed(stream.substr(ends[0]), true) == 0);  // at a boundary already
  CHECK_FALSE(t.saw_close());
}

TEST_CASE("ws tracker: a stream that is not WebSocket framing never reports a boundary") {
  WsFrameTracker t;
  CHECK(t.feed(std::string_view("\x82\x7f\x80\0\0\0\0\0\0\0more", 14)) == 14);
  CHECK(t.failed());
  CHECK_FALSE(t.at_boundary());
  CHECK(t.feed("anything", true) == 8);
}

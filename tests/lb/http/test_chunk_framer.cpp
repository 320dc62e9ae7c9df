#include <doctest.h>

#include <string>

#include "lb/http/chunk_framer.h"

using namespace lb::http;

namespace {
// Feeds `s` in pieces of `step`; returns the final result with consumed summed.
ChunkFramer::Result run(ChunkFramer& f, std::string_view s, size_t step) {
  size_t off = 0;
  ChunkFramer::Result total;
  while (off < s.size()) {
    size_t n = std::min(step, s.size() - off);
    ChunkFramer::Result r = f.feed(s.data() + off, n);
    total.status = r.status;
    total.consumed = off + r.consumed;
    if (r.status != ChunkFramer::Status::more) return total;
    off += n;
  }
  return total;
}
}  // namespace

TEST_CASE("chunk framer: well-formed bodies end exactly at the final CRLF") {
  std::string body = "3;name=val;x\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n";
  for (size_t step : {size_t(1), size_t(2), size_t(5), SIZE_MAX}) {
    ChunkFramer f;
    f.reset(UINT64_MAX, 1024);
    ChunkFramer::Result r = run(f, body + "NEXT", step);
    CHECK(r.status == ChunkFramer::Status::done);
    CHECK(r.consumed == body.size());
    CHECK(f.counted() == 3 + 16 + 11);  // data plus ";name=val;x"
  }
}

TEST_CASE("chunk framer: errors stop at the offending byte") {
  struct Case {
    const char* body;
    size_t at;
    int status;
  } cases[] = {
      {"5\r\nhelloXX0\r\n\r\n", 8, 400},
      {"5\r\nhello\r\r", 9, 400},
      {"g\r\n", 0, 400},
      {";x\r\n", 0, 400},
      {"5\n", 1, 400},
      {"0\r\n\rX", 4, 400},
      {"0\r\nA\rB", 5, 400},
      {"1;\x01\r\n", 2, 400},
      {"2\r\nab\n", 5, 400},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    ChunkFramer f;
    f.reset(UINT64_MAX, 1024);
    ChunkFramer::Result r = run(f, c.body, SIZE_MAX);
    CHECK(r.status == ChunkFramer::Status::error);
    CHECK(r.consumed == c.at);
    CHECK(f.error_status() == c.status);
  }
}

TEST_CASE("chunk framer: sizes, extensions and trailers have limits") {
  ChunkFramer f;
  f.reset(100, 1024);
  ChunkFramer::Result r = run(f, "65\r\n", SIZE_MAX);  // 101 > 100: refused at the digits
  CHECK(r.status == ChunkFramer::Status::error);
  CHECK(r.consumed == 1);
  CHECK(f.error_status() == 413);

  f.reset(UINT64_MAX, 1024);
  r = run(f, "1;" + std::string(kMaxChunkExtBytes, 'x'), SIZE_MAX);
  CHECK(r.status == ChunkFramer::Status::error);
  CHECK(f.error_status() == 413);
  f.reset(UINT64_MAX, 1024);
  CHECK(run(f, "1;" + std::string(kMaxChunkExtBytes - 1, 'x') + "\r\na\r\n0\r\n\r\n", 100).status ==
        ChunkFramer::Status::done);

  f.reset(UINT64_MAX, 16);
  r = run(f, "0\r\nX-Long-Trailer: 123456\r\n\r\n", SIZE_MAX);
  CHECK(r.status == ChunkFramer::Status::error);
  CHECK(f.error_status() == 431);

  f.reset(UINT64_MAX, 1024);
  r = run(f, "00000000000000001\r\n", SIZE_MAX);  // 17 digits
  CHECK(r.status == ChunkFramer::Status::error);
  f.reset(UINT64_MAX, 1024);
  r = run(f, "ffffffffffffffff\r\n", SIZE_MAX);  // fits; no limit set
  CHECK(r.status == ChunkFramer::Status::more);
}

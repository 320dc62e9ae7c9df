// Fuzz target: strict chunked framing (lb/http/chunk_framer), which decides where a
// chunked body ends before llhttp sees it. Checks: the verdict and the bytes consumed do
// not depend on how the body is split into reads; an accepted body is one dechunk()
// decodes too; nothing past the end is consumed.
#include <cstdint>
#include <string>
#include <string_view>

#include "lb/http/chunk_framer.h"
#include "lb/http/dechunk.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using lb::http::ChunkFramer;

struct Verdict {
  ChunkFramer::Status status = ChunkFramer::Status::more;
  size_t consumed = 0;
};

Verdict run(std::string_view body, size_t step, uint64_t max_body) {
  ChunkFramer f;
  f.reset(max_body, 1024);
  Verdict v;
  for (size_t at = 0; at < body.size();) {
    const size_t n = std::min(step, body.size() - at);
    ChunkFramer::Result r = f.feed(body.data() + at, n);
    FUZZ_CHECK(r.consumed <= n, "a framer consumes at most what it was given");
    v.consumed += r.consumed;
    v.status = r.status;
    if (r.status != ChunkFramer::Status::more) return v;
    at += n;
  }
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // The first two bytes choose the read size and the body limit; the rest is the body.
  const size_t step = 1 + data[0] % 13;
  const uint64_t max_body = data[1] < 128 ? UINT64_MAX : data[1] * 4u;
  std::string_view body(reinterpret_cast<const char*>(data) + 2, size - 2);
  Verdict whole = run(body, body.size() ? body.size() : 1, max_body);
  Verdict split = run(body, step, max_body);
  FUZZ_CHECK(whole.status == split.status, "the verdict does not depend on the reads");
  if (whole.status != ChunkFramer::Status::more)
    FUZZ_CHECK(whole.consumed == split.consumed, "nor does where it stops");
  if (whole.status == ChunkFramer::Status::done) {
    std::string out;
    FUZZ_CHECK(lb::http::dechunk(body.substr(0, whole.consumed), out),
               "a body the framer accepts, dechunk() decodes");
    FUZZ_CHECK(out.size() <= max_body, "an accepted body is within the limit");
  }
  return 0;
}

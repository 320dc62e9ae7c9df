// Fuzz target: a backend's byte stream through corral's response path. The response
// parser is driven as lb/net/upstream_conn.cpp drives it (parser_driver.h: interim 1xx
// answers, a response to HEAD, a body read until close, a reused connection), once in one
// read and once in reads drawn from the input's hash, and both runs must agree; chunked
// bodies must decode alike in the parser's sink and in dechunk() (the health probe's
// path). Each head is rewritten for the client as corral does, and what it writes must
// parse back with the same status, no hop-by-hop fields and the connection it promises.
#include <xxhash.h>

#include <cstdint>
#include <string>
#include <vector>

#include "lb/http/head_writer.h"
#include "tests/fuzz/parser_driver.h"

namespace {

using lb::HeaderView;
using lb::iequals;

// One response head rewritten for the client, checked by parsing it back.
void check_client_head(const lb::http::MessageParser& p, lb::http::ClientConnection conn) {
  lb::http::ResponseHead head;
  head.status = p.status_code();
  head.reason = p.reason();
  head.headers = p.headers();
  head.connection = conn;
  std::string out;
  lb::http::write_response_head(out, head);
  lb::http::MessageParser back(lb::http::MessageParser::Kind::response, out.size());
  if (!fuzz::parse_back(back, p, out, "a written response head parses back whole")) return;
  FUZZ_CHECK(back.status_code() == p.status_code(), "the status is forwarded");
  if (!p.reason().empty()) FUZZ_CHECK(back.reason() == p.reason(), "the reason is forwarded");
  FUZZ_CHECK(back.chunked() == p.chunked(), "the framing is forwarded");
  FUZZ_CHECK(back.has_content_length() == p.has_content_length(), "Content-Length is kept");
  if (conn == lb::http::ClientConnection::close)
    FUZZ_CHECK(!back.keep_alive(), "Connection: close reaches the client");
  int connection = 0;
  for (const HeaderView& h : back.headers()) {
    if (iequals(h.name, "connection")) ++connection;
    FUZZ_CHECK(!iequals(h.name, "keep-alive") && !iequals(h.name, "proxy-connection") &&
                   !iequals(h.name, "te") && !iequals(h.name, "upgrade"),
               "no hop-by-hop field is forwarded");
  }
  FUZZ_CHECK(connection == (conn == lb::http::ClientConnection::implicit ? 0 : 1),
             "exactly the Connection field corral chose");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const uint64_t seed = XXH3_64bits(data, size);
  // A response head may use a whole buffer (buffer_bytes, 16 KiB by default).
  const size_t max_head = (seed & 3) == 0 ? 64 + (seed >> 2) % 512 : 16384;
  const bool head_request = (seed & 4) != 0 && (seed & 8) != 0;
  const bool reset_between = (seed & 16) == 0;
  const auto conn = static_cast<lb::http::ClientConnection>((seed >> 5) % 3);
  auto hook = [&](const lb::http::MessageParser& p, std::string_view) {
    check_client_head(p, conn);
    return head_request && p.status_code() >= 200;
  };
  using Kind = lb::http::MessageParser::Kind;
  fuzz::ParseRun whole = fuzz::drive(Kind::response, in, max_head, {}, reset_between, hook);
  std::vector<size_t> reads = fuzz::read_sizes(seed, size);
  fuzz::ParseRun split = fuzz::drive(Kind::response, in, max_head, reads, reset_between, hook);
  fuzz::check_same(whole, split);
  return 0;
}

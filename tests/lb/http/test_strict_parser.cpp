// Strictness beyond llhttp 8.1 (issue 9, items 2, 3, 5, 6): each case here was accepted
// by the parser before head_syntax / chunk_framer / the version checks.
#include <doctest.h>

#include <initializer_list>
#include <span>
#include <string>

#include "lb/http/message_parser.h"
#include "tests/lb/http/feeder.h"

using namespace lb;
using namespace lb::http;
using feeder_test::Feeder;

namespace {

// Parses a whole message (head, then body) fed `step` bytes at a time; returns the first
// non-need_more status after the head, or the head's error.
ParseResult whole(Feeder& f, std::string_view msg, size_t step, uint64_t max_body = UINT64_MAX) {
  size_t off = 0;
  ParseResult r;
  bool in_body = false;
  while (off < msg.size() || in_body) {
    size_t n = std::min(step, msg.size() - off);
    f.buf.append(msg.substr(off, n));
    off += n;
    r = f.more();
    if (!in_body && r.status == ParseStatus::head) {
      f.p.set_max_body(max_body);
      f.p.resume_after_head();
      in_body = true;
      r = f.more();
    }
    if (r.status != ParseStatus::need_more) return r;
    if (off == msg.size()) return r;
  }
  return r;
}

// Checks that each request in `bad`, fed `step` bytes at a time for every step in `steps`,
// stops the parser with an error that answers `status`.
void check_refused(std::span<const char* const> bad, std::initializer_list<size_t> steps,
                   int status = 400) {
  for (const char* b : bad)
    for (size_t step : steps) {
      Feeder f(MessageParser::Kind::request);
      CAPTURE(b);
      CAPTURE(step);
      CHECK(f.feed_all(b, step).status == ParseStatus::error);
      CHECK(f.p.error_status() == status);
    }
}
}  // namespace

TEST_CASE("header names with whitespace or non-token bytes are 400 (RFC 9112 5.1)") {
  const char* bad[] = {
      "GET / HTTP/1.1\r\nHost: a\r\nproject_id : x\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent Length: 5\r\n\r\nhello",
      "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX\"y: 1\r\n\r\n",
  };
  check_refused(bad, {size_t(1), size_t(5), SIZE_MAX});
  Feeder ok(MessageParser::Kind::request);
  CHECK(ok.feed_all("GET / HTTP/1.1\r\nHost: a\r\nX-A!#$%&'*+.^_`|~9: 1\r\n\r\n").status ==
        ParseStatus::head);
  // Responses too (the exchange turns this into a 502).
  Feeder resp(MessageParser::Kind::response);
  CHECK(resp.feed_all("HTTP/1.1 200 OK\r\nX Y: 1\r\nContent-Length: 0\r\n\r\n").status ==
        ParseStatus::error);
}

TEST_CASE("a CR not followed by LF, or a bare LF, in the head is 400, never its end") {
  const char* bad[] = {
      "GET / HTTP/1.1\r\nHost: a\r\n\rXGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\n\rX",
      "GET / HTTP/1.1\r\nHost: a\r\n\nX",
      "GET / HTTP/1.1\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
  };
  check_refused(bad, {size_t(1), size_t(3), SIZE_MAX});
  Feeder resp(MessageParser::Kind::response);
  CHECK(resp.feed_all("HTTP/1.1 200 OK\rX: y\r\n\r\n").status == ParseStatus::error);
  Feeder resp2(MessageParser::Kind::response);
  CHECK(resp2.feed_all("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\rX\r\n").status ==
        ParseStatus::error);
  // Empty lines before a request line stay allowed (RFC 9112 2.2).
  Feeder ok(MessageParser::Kind::request);
  CHECK(ok.feed_all("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 1).status == ParseStatus::head);
}

TEST_CASE("a request line has single spaces") {
  const char* bad[] = {
      "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
      " GET / HTTP/1.1\r\nHost: a\r\n\r\n",
  };
  check_refused(bad, {size_t(2)});
  // A reason phrase has spaces of its own.
  Feeder resp(MessageParser::Kind::response);
  CHECK(resp.feed_all("HTTP/1.1 404 Not Found Here\r\n\r\n").status == ParseStatus::head);
}

TEST_CASE("HTTP/2+ request lines are 505, HTTP/0.x 400; responses must be HTTP/1.x") {
  struct Case {
    const char* req;
    int status;
  } cases[] = {
      {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505}, {"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505},
      {"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 400}, {"GET /\r\n\r\n", 400},
      {"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 400},
  };
  for (const Case& c : cases) {
    Feeder f(MessageParser::Kind::request);
    CAPTURE(c.req);
    CHECK(f.feed_all(c.req).status == ParseStatus::error);
    CHECK(f.p.error_status() == c.status);
  }
  for (const char* r : {"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
                        "HTTP/0.9 200 OK\r\nContent-Length: 0\r\n\r\n"}) {
    Feeder f(MessageParser::Kind::response);
    CHECK(f.feed_all(r).status == ParseStatus::error);
  }
  Feeder ok(MessageParser::Kind::request);
  CHECK(ok.feed_all("GET / HTTP/1.0\r\n\r\n").status == ParseStatus::head);
}

TEST_CASE("Content-Length with a sign, an inner space or a list is 400") {
  for (const char* cl : {"+5", "-5", "1 5", "5,5", "0x5", ""}) {
    Feeder f(MessageParser::Kind::request);
    std::string req =
        std::string("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ") + cl + "\r\n\r\nhello";
    CAPTURE(cl);
    CHECK(f.feed_all(req).status == ParseStatus::error);
    CHECK(f.p.error_status() == 400);
  }
  Feeder resp(MessageParser::Kind::response);
  CHECK(resp.feed_all("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n0\r\n\r\n")
            .status == ParseStatus::error);
}

TEST_CASE("chunk data must be followed by CRLF; bad framing stops before the bad byte") {
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  const char* bad[] = {
      "5\r\nhelloXX0\r\n\r\n", "5\r\nhello\rX0\r\n\r\n",
      "5\r\nhello\n0\r\n\r\n", "5 \r\nhello\r\n0\r\n\r\n",
      "5\nhello\r\n0\r\n\r\n", "0\r\n\rX",
      "0\r\nX: 1\rY\r\n\r\n",  "\r\n",
      "0\r\nX: \x01\r\n\r\n",  "11111111111111111\r\n",
  };
  for (const char* b : bad)
    for (size_t step : {size_t(1), size_t(4), SIZE_MAX}) {
      Feeder f(MessageParser::Kind::request);
      std::string body;
      f.p.set_body_sink(
          [](void* ctx, const char* d, size_t n) { static_cast<std::string*>(ctx)->append(d, n); },
          &body);
      CAPTURE(b);
      CAPTURE(step);
      ParseResult r = whole(f, head + b, step);
      CHECK(r.status == ParseStatus::error);
      CHECK(f.p.error_status() == 400);
      CHECK(body.size() <= 5);
    }
  // The same bytes in a response are an error too (the exchange: 502 or a cut).
  Feeder resp(MessageParser::Kind::response);
  CHECK(whole(resp, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
              SIZE_MAX)
            .status == ParseStatus::error);
  // Well-formed bodies still end exactly where the last CRLF ends.
  for (size_t step : {size_t(1), size_t(7), SIZE_MAX}) {
    Feeder ok(MessageParser::Kind::request);
    std::string msg = head + "5;a=b\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nNEXT";
    ParseResult r = whole(ok, msg, step);
    CHECK(r.status == ParseStatus::done);
    CHECK(std::string_view(msg).substr(ok.pos) == "NEXT");
  }
}

TEST_CASE("chunk sizes and extensions count against max_body_bytes; 413 up front") {
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  {
    // A chunk larger than the cap is refused at its size line, before any data.
    Feeder f(MessageParser::Kind::request);
    std::string body;
    f.p.set_body_sink(
        [](void* ctx, const char* d, size_t n) { static_cast<std::string*>(ctx)->append(d, n); },
        &body);
    ParseResult r = whole(f, head + "100001\r\nabc", SIZE_MAX, 1 << 20);
    CHECK(r.status == ParseStatus::error);
    CHECK(f.p.error_status() == 413);
    CHECK(body.empty());
  }
  {
    // One extension over kMaxChunkExtBytes.
    Feeder f(MessageParser::Kind::request);
    ParseResult r = whole(f, head + "1;" + std::string(kMaxChunkExtBytes, 'e') + "\r\na\r\n",
                          SIZE_MAX, 1 << 20);
    CHECK(r.status == ParseStatus::error);
    CHECK(f.p.error_status() == 413);
  }
  {
    // Many chunks each under the per-line cap: their extensions add up against the body cap.
    std::string body = head;
    for (int i = 0; i < 100; ++i) body += "1;" + std::string(1000, 'e') + "\r\na\r\n";
    body += "0\r\n\r\n";
    Feeder f(MessageParser::Kind::request);
    ParseResult r = whole(f, body, SIZE_MAX, 50'000);
    CHECK(r.status == ParseStatus::error);
    CHECK(f.p.error_status() == 413);
    Feeder big(MessageParser::Kind::request);
    CHECK(whole(big, body, SIZE_MAX, 200'000).status == ParseStatus::done);
  }
  {
    // Exactly at the cap is fine; one byte over is not.
    Feeder at(MessageParser::Kind::request);
    CHECK(whole(at, head + "a\r\n0123456789\r\n0\r\n\r\n", 3, 10).status == ParseStatus::done);
    Feeder over(MessageParser::Kind::request);
    ParseResult r = whole(over, head + "6\r\n012345\r\n5\r\n01234\r\n0\r\n\r\n", 3, 10);
    CHECK(r.status == ParseStatus::error);
    CHECK(over.p.error_status() == 413);
  }
}

TEST_CASE("a 204 or 304 with body bytes: the message ends with the head when told so") {
  for (const char* s : {"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",
                        "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "5\r\nhello\r\n0\r\n\r\n"}) {
    Feeder f(MessageParser::Kind::response);
    REQUIRE(f.feed_all(s).status == ParseStatus::head);
    f.p.resume_after_head(true);
    ParseResult r = f.more();
    CHECK(r.status == ParseStatus::done);
    CHECK(r.consumed == 0);  // nothing of the "body" is part of this message
  }
}

TEST_CASE("trailers never change what the head said (chunked, fields)") {
  // llhttp clears its chunked flag on a trailer "Transfer-Encoding: x" and the trailer
  // fields followed the head's; the health probe read chunked() after the body.
  using Kind = MessageParser::Kind;
  for (Kind kind : {Kind::request, Kind::response}) {
    Feeder f(kind);
    std::string head =
        kind == Kind::request ? "POST / HTTP/1.1\r\nHost: a\r\n" : "HTTP/1.1 200 OK\r\n";
    REQUIRE(f.feed_all(head + "Transfer-Encoding: chunked\r\n\r\n").status == ParseStatus::head);
    const size_t fields = f.p.headers().size();
    f.p.resume_after_head();
    // (llhttp refuses a Transfer-Encoding trailer on a request by itself.)
    auto r =
        f.feed_all(kind == Kind::request ? "1\r\na\r\n0\r\nX-T: 1\r\n\r\n"
                                         : "1\r\na\r\n0\r\nTransfer-Encoding: x\r\nX-T: 1\r\n\r\n");
    CHECK(r.status == ParseStatus::done);
    CHECK(f.p.chunked());
    CHECK(f.p.headers().size() == fields);
  }
}

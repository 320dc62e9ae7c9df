#include <doctest.h>

#include <string>

#include "lb/http/message_parser.h"
#include "tests/lb/http/feeder.h"

using namespace lb;
using namespace lb::http;
using feeder_test::Feeder;

TEST_CASE("request head: views, method, target, keep-alive") {
  for (size_t step : {size_t(1), size_t(7), SIZE_MAX}) {
    Feeder f(MessageParser::Kind::request);
    ParseResult r =
        f.feed_all("GET /kupo/matches?unspent HTTP/1.1\r\nHost: x\r\nX-Key: a b\r\n\r\n", step);
    REQUIRE(r.status == ParseStatus::head);
    CHECK(f.p.method() == "GET");
    CHECK(f.p.target() == "/kupo/matches?unspent");
    REQUIRE(f.p.headers().size() == 2);
    CHECK(f.p.headers()[1].name == "X-Key");
    CHECK(f.p.headers()[1].value == "a b");
    CHECK(f.p.keep_alive());
    f.p.resume_after_head();
    CHECK(f.p.feed(f.buf.data() + f.pos, 0).status == ParseStatus::done);
  }
}

TEST_CASE("pipelined requests stop at each message end") {
  Feeder f(MessageParser::Kind::request);
  std::string two = "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n";
  ParseResult r = f.feed_all(two);
  REQUIRE(r.status == ParseStatus::head);
  f.p.resume_after_head();
  r = f.p.feed(f.buf.data() + f.pos, f.buf.size() - f.pos);
  CHECK(r.status == ParseStatus::done);
  CHECK(r.consumed == 3);  // exactly the body
  f.pos += r.consumed;
  f.p.resume_after_message();
  r = f.p.feed(f.buf.data() + f.pos, f.buf.size() - f.pos);
  CHECK(r.status == ParseStatus::head);
  CHECK(f.p.target() == "/b");
}

TEST_CASE("chunked body ends where the last chunk ends") {
  Feeder f(MessageParser::Kind::request);
  std::string msg =
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nNEXT";
  ParseResult r = f.feed_all(msg);
  REQUIRE(r.status == ParseStatus::head);
  CHECK(f.p.chunked());
  f.p.resume_after_head();
  r = f.p.feed(f.buf.data() + f.pos, f.buf.size() - f.pos);
  CHECK(r.status == ParseStatus::done);
  CHECK(std::string_view(f.buf.data() + f.pos + r.consumed) == "NEXT");
}

TEST_CASE("smuggling shapes and malformed requests are errors with 400") {
  const char* bad[] = {
      "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
      "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
      "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
      "GET /\x01 HTTP/1.1\r\n\r\n",
      "GARBAGE\r\n\r\n",
  };
  for (const char* b : bad) {
    Feeder f(MessageParser::Kind::request);
    ParseResult r = f.feed_all(b);
    CAPTURE(b);
    CHECK(r.status == ParseStatus::error);
    CHECK(f.p.error_status() == 400);
  }
  Feeder f(MessageParser::Kind::request);
  ParseResult r = f.feed_all("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
  REQUIRE(r.status == ParseStatus::head);
  f.p.resume_after_head();
  r = f.p.feed(f.buf.data() + f.pos, f.buf.size() - f.pos);
  CHECK(r.status == ParseStatus::error);
  CHECK(f.p.error_status() == 400);
}

TEST_CASE("a head over the byte cap is 431, even when it arrives slowly") {
  std::string big = "GET / HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n";
  Feeder f(MessageParser::Kind::request, 1024);
  ParseResult r = f.feed_all(big, 100);
  CHECK(r.status == ParseStatus::error);
  CHECK(f.p.error_status() == 431);
  Feeder ok(MessageParser::Kind::request, 4096);
  CHECK(ok.feed_all(big, 100).status == ParseStatus::head);
}

TEST_CASE("response to HEAD has no body; 204 and 304 neither") {
  Feeder f(MessageParser::Kind::response);
  ParseResult r = f.feed_all("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
  REQUIRE(r.status == ParseStatus::head);
  f.p.resume_after_head(true);
  CHECK(f.p.feed(f.buf.data() + f.pos, 0).status == ParseStatus::done);
  for (const char* s : {"HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 304 Not Modified\r\n\r\n"}) {
    Feeder g(MessageParser::Kind::response);
    REQUIRE(g.feed_all(s).status == ParseStatus::head);
    g.p.resume_after_head();
    CHECK(g.p.feed(g.buf.data() + g.pos, 0).status == ParseStatus::done);
  }
}

TEST_CASE("read-until-close response completes on finish()") {
  Feeder f(MessageParser::Kind::response);
  ParseResult r = f.feed_all("HTTP/1.1 200 OK\r\n\r\nhello");
  REQUIRE(r.status == ParseStatus::head);
  f.p.resume_after_head();
  r = f.p.feed(f.buf.data() + f.pos, f.buf.size() - f.pos);
  CHECK(r.status == ParseStatus::need_more);
  CHECK(f.p.finish() == ParseStatus::done);
  CHECK_FALSE(f.p.keep_alive());
}

TEST_CASE("a truncated content-length response is not complete on finish()") {
  Feeder f(MessageParser::Kind::response);
  ParseResult r = f.feed_all("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel");
  REQUIRE(r.status == ParseStatus::head);
  f.p.resume_after_head();
  f.p.feed(f.buf.data() + f.pos, f.buf.size() - f.pos);
  CHECK(f.p.finish() == ParseStatus::error);
}

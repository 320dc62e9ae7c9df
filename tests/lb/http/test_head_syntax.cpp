#include <doctest.h>

#include <string>

#include "lb/http/head_syntax.h"

using namespace lb::http;

TEST_CASE("header names are tokens") {
  CHECK(header_name_valid("Content-Length"));
  CHECK(header_name_valid("x!#$%&'*+-.^_`|~"));
  for (const char* bad : {"", "a b", "a ", " a", "a\t", "a:b", "a(b", "a\"b", "a@b", "\x80"}) {
    CAPTURE(bad);
    CHECK_FALSE(header_name_valid(bad));
  }
}

TEST_CASE("head syntax: CRLF everywhere, single spaces in a request line") {
  auto ok = [](bool request, std::string_view s, size_t step) {
    HeadSyntax h;
    h.reset(request);
    for (size_t i = 0; i < s.size(); i += step)
      if (!h.feed(s.data() + i, std::min(step, s.size() - i))) return false;
    return true;
  };
  for (size_t step : {size_t(1), size_t(4), size_t(1000)}) {
    CHECK(ok(true, "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", step));
    CHECK(ok(true, "\r\n\r\nGET / HTTP/1.1\r\n\r\n", step));
    CHECK(ok(false, "HTTP/1.1 200 All  Good\r\n\r\n", step));
    CHECK_FALSE(ok(true, "GET / HTTP/1.1\r\nA: b\r\n\rX", step));
    CHECK_FALSE(ok(true, "GET / HTTP/1.1\nA: b\r\n\r\n", step));
    CHECK_FALSE(ok(true, "GET  / HTTP/1.1\r\n\r\n", step));
    CHECK_FALSE(ok(true, "GET / HTTP/1.1 \r\n\r\n", step));
    CHECK_FALSE(ok(true, "GET /\r\n\r\n", step));
    CHECK_FALSE(ok(false, "HTTP/1.1 200 OK\rX: 1\r\n\r\n", step));
    // obs-fold, in requests and responses, whatever the field.
    CHECK_FALSE(ok(true, "GET / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", step));
    CHECK_FALSE(ok(true, "GET / HTTP/1.1\r\nX-A: a\r\n\tb\r\n\r\n", step));
    CHECK_FALSE(ok(false, "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n", step));
    CHECK(ok(true, "GET / HTTP/1.1\r\nX-A:  a \r\n\r\n", step));
  }
}

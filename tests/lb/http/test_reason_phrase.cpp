#include <doctest.h>

#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lb/http/head_writer.h"
#include "lb/http/reason_phrase.h"

using namespace lb;
using namespace lb::http;

namespace {

// RFC 9110 §15 names (RFC 6585 for 428/429/431, RFC 8297 for 103, RFC 2324 for 418).
const std::vector<std::pair<int, std::string_view>> kExpected = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {305, "Use Proxy"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {418, "I'm a teapot"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

}  // namespace

TEST_CASE("reason_phrase: every listed code has its RFC name") {
  for (const auto& [code, name] : kExpected) {
    const auto& code_ = code;  // clang 14 cannot capture a structured binding (CAPTURE)
    CAPTURE(code_);
    CHECK(std::string_view(reason_phrase(code)) == name);
  }
}

TEST_CASE("reason_phrase: exactly the listed codes are known, the rest is Unknown") {
  std::set<int> listed;
  for (const auto& [code, name] : kExpected) listed.insert(code);
  for (int code : {-1, 0, 1, 99, 102, 199, 207, 299, 306, 419, 451, 599, 600, 1000, 20000})
    CHECK(std::string_view(reason_phrase(code)) == "Unknown");
  // A stray or mistyped case label would show up as a known code that is not listed.
  for (int code = 0; code < 1000; ++code) {
    CAPTURE(code);
    const bool known = std::string_view(reason_phrase(code)) != "Unknown";
    CHECK(known == (listed.count(code) == 1));
  }
}

TEST_CASE("reason_phrase: every phrase is a valid reason-phrase (RFC 9112 §4)") {
  for (int code = 100; code < 600; ++code) {
    std::string_view p = reason_phrase(code);
    CAPTURE(code);
    REQUIRE(!p.empty());
    for (char c : p) CHECK((c == ' ' || c == '\t' || (c > 0x20 && c < 0x7f)));
  }
}

TEST_CASE("reason_phrase: head_writer uses the same table") {
  for (int code = 0; code < 1000; ++code) {
    CAPTURE(code);
    CHECK(status_reason(code) == std::string_view(reason_phrase(code)));
  }
  std::string out;
  ResponseHead r;
  r.status = 402;  // no reason from the backend: the table supplies it
  write_response_head(out, r);
  CHECK(out.starts_with("HTTP/1.1 402 Payment Required\r\n"));
  r.status = 299;
  write_response_head(out, r);
  CHECK(out.starts_with("HTTP/1.1 299 Unknown\r\n"));
  write_error_response(out, 418, "banned", true);
  CHECK(out.starts_with("HTTP/1.1 418 I'm a teapot\r\n"));
  write_error_response(out, 409, "conflict", true);
  CHECK(out.starts_with("HTTP/1.1 409 Conflict\r\n"));
}

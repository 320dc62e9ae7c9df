#include <doctest.h>

#include <string>
#include <vector>

#include "lb/http/response_framing.h"

using namespace lb;
using namespace lb::http;

namespace {
ResponseFacts facts(int status, const std::vector<HeaderView>& h) {
  ResponseFacts f;
  f.status = status;
  f.headers = h;
  for (const HeaderView& x : h)
    if (iequals(x.name, "content-length")) {
      f.has_content_length = true;
      f.content_length = std::stoull(std::string(x.value));
    }
  return f;
}
}  // namespace

TEST_CASE("204, 304, 1xx and answers to HEAD have no body") {
  std::vector<HeaderView> cl5{{"Content-Length", "5"}};
  for (int s : {204, 304, 100, 103}) {
    CAPTURE(s);
    ResponseFraming f = frame_response(facts(s, cl5));
    CHECK(f.error == nullptr);
    CHECK(f.body == BodyFraming::none);
    // It announced a body the status forbids: the connection is not reused.
    CHECK_FALSE(f.reusable);
  }
  ResponseFraming clean = frame_response(facts(204, {}));
  CHECK(clean.body == BodyFraming::none);
  CHECK(clean.reusable);
  CHECK(frame_response(facts(304, {{"Content-Length", "0"}})).reusable);
  CHECK(frame_response(facts(204, {{"Transfer-Encoding", "chunked"}})).reusable == false);
  ResponseFacts head = facts(200, cl5);
  head.head_request = true;
  ResponseFraming h = frame_response(head);
  CHECK(h.body == BodyFraming::none);
  CHECK(h.reusable);  // a HEAD answer's Content-Length describes the GET body
  CHECK(frame_response(facts(100, {})).interim);
  CHECK_FALSE(frame_response(facts(204, {})).interim);
}

TEST_CASE("bodies: chunked, content-length, or until close (not reusable)") {
  CHECK(frame_response(facts(200, {{"Transfer-Encoding", "chunked"}})).body ==
        BodyFraming::chunked);
  CHECK(frame_response(facts(200, {{"Content-Length", "3"}})).body == BodyFraming::content_length);
  ResponseFraming eof = frame_response(facts(200, {}));
  CHECK(eof.body == BodyFraming::until_close);
  CHECK_FALSE(eof.reusable);
}

TEST_CASE("Transfer-Encoding other than one chunked, 101 without upgrade, HTTP/2: refused") {
  for (const char* te : {"identity", "gzip", "gzip, chunked", "chunked, identity", ""}) {
    CAPTURE(te);
    CHECK(frame_response(facts(200, {{"Transfer-Encoding", te}})).error != nullptr);
  }
  CHECK(frame_response(
            facts(200, {{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}}))
            .error != nullptr);
  CHECK(frame_response(facts(200, {{"transfer-encoding", " Chunked "}})).error == nullptr);
  CHECK(frame_response(facts(101, {{"Upgrade", "websocket"}})).error != nullptr);
  // Named: ResponseFacts holds a span, so its fields must outlive it.
  const std::vector<HeaderView> upgrade_fields{{"Upgrade", "websocket"}};
  ResponseFacts up = facts(101, upgrade_fields);
  up.upgrade_requested = true;
  ResponseFraming u = frame_response(up);
  CHECK(u.error == nullptr);
  CHECK_FALSE(u.reusable);
  const std::vector<HeaderView> empty_body{{"Content-Length", "0"}};
  ResponseFacts v2 = facts(200, empty_body);
  v2.version_major = 2;
  CHECK(frame_response(v2).error != nullptr);
}

TEST_CASE("a status outside 100-599 is refused (llhttp takes 'HTTP/1.1 20 OK' as 20)") {
  for (int status : {0, 20, 99, 600, 999}) {
    CAPTURE(status);
    CHECK(frame_response(facts(status, {{"Content-Length", "0"}})).error != nullptr);
  }
  for (int status : {100, 200, 599}) {
    CAPTURE(status);
    CHECK(frame_response(facts(status, {{"Content-Length", "0"}})).error == nullptr);
  }
}

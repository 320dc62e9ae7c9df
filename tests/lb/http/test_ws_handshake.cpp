#include <doctest.h>

#include <vector>

#include "lb/http/ws_handshake.h"

using namespace lb;
using namespace lb::http;

namespace {
std::vector<HeaderView> good() {
  return {{"Host", "lb"},
          {"Upgrade", "websocket"},
          {"Connection", "keep-alive, Upgrade"},
          {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
          {"Sec-WebSocket-Version", "13"}};
}
void set(std::vector<HeaderView>& hs, std::string_view name, std::string_view value) {
  for (auto& h : hs)
    if (iequals(h.name, name)) h.value = value;
}
}  // namespace

TEST_CASE("ws accept key: the RFC 6455 example") {
  CHECK(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST_CASE("ws handshake: a valid request passes; each rule refuses with its reason") {
  CHECK(check_ws_request("GET", 1, 1, good(), false).status == 0);
  CHECK(check_ws_request("POST", 1, 1, good(), false).status == 400);
  CHECK(check_ws_request("GET", 1, 0, good(), false).status == 400);
  CHECK(check_ws_request("GET", 1, 1, good(), true).status == 400);
  auto h = good();
  set(h, "upgrade", "h2c");
  CHECK(check_ws_request("GET", 1, 1, h, false).status == 400);
  h = good();
  set(h, "connection", "keep-alive");
  CHECK(check_ws_request("GET", 1, 1, h, false).status == 400);
  for (std::string_view bad : {"", "short==", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZR==",
                               "dGhlIHNhbXBsZSBub25j*Q=="}) {
    h = good();
    set(h, "sec-websocket-key", bad);
    CHECK_MESSAGE(check_ws_request("GET", 1, 1, h, false).status == 400, bad);
  }
  h = good();
  h.push_back({"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="});
  CHECK(check_ws_request("GET", 1, 1, h, false).status == 400);  // two keys
  h = good();
  set(h, "sec-websocket-version", "8");
  WsRequestCheck v = check_ws_request("GET", 1, 1, h, false);
  CHECK(v.status == 426);
  CHECK(v.version_mismatch);
  // Tokens are case-insensitive and may sit anywhere in a list.
  h = good();
  set(h, "upgrade", "WebSocket");
  set(h, "connection", "UPGRADE ,close");
  CHECK(check_ws_request("GET", 1, 1, h, false).status == 0);
}

TEST_CASE("ws response: Upgrade and the accept key must match the request") {
  std::vector<HeaderView> r{{"Upgrade", "websocket"},
                            {"Connection", "Upgrade"},
                            {"Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}};
  CHECK(check_ws_response(r, "dGhlIHNhbXBsZSBub25jZQ==") == nullptr);
  CHECK(check_ws_response(r, "AAAAAAAAAAAAAAAAAAAAAA==") != nullptr);
  r[0].value = "h2c";
  CHECK(check_ws_response(r, "dGhlIHNhbXBsZSBub25jZQ==") != nullptr);
  CHECK(wants_upgrade(r));
  CHECK_FALSE(wants_upgrade(std::vector<HeaderView>{{"Host", "x"}}));
}

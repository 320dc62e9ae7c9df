// corral-bench load --ws, the pure parts: the handshake request, JSON-RPC text, masked
// client frames read back with lb/http/ws_frame, answer ids, close codes, and the report.
#include <doctest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench/load_report.h"
#include "bench/load_ws_frames.h"
#include "lb/http/ws_frame.h"
#include "lb/http/ws_handshake.h"
#include "tests/bench/report_capture.h"

using namespace bench;

TEST_CASE("ws load: the handshake request and its key") {
  const uint8_t raw[16] = {'t', 'h', 'e', ' ', 's', 'a', 'm', 'p',
                           'l', 'e', ' ', 'n', 'o', 'n', 'c', 'e'};
  const std::string key = ws_key_from_bytes(raw);
  CHECK(key == "dGhlIHNhbXBsZSBub25jZQ==");  // RFC 6455 §1.3's example key
  const std::string r =
      ws_handshake_request("/s/user-00000001/", "127.0.0.1:9", key, {"Cookie: sid=user-00000001"});
  CHECK(r.rfind("GET /s/user-00000001/ HTTP/1.1\r\nHost: 127.0.0.1:9\r\n", 0) == 0);
  CHECK(r.find("\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n") != std::string::npos);
  CHECK(r.find("\r\nSec-WebSocket-Version: 13\r\n") != std::string::npos);
  CHECK(r.find("\r\nCookie: sid=user-00000001\r\n\r\n") != std::string::npos);
  CHECK(r.substr(r.size() - 4) == "\r\n\r\n");
  CHECK(r.find("\r\n\r\n") == r.size() - 4);  // one blank line: the end of the head
}

TEST_CASE("ws load: JSON-RPC requests, with and without params, and what does not fit") {
  char buf[128];
  size_t n = format_rpc_request(buf, sizeof buf, "queryNetwork/tip", "", 42);
  CHECK(std::string(buf, n) == R"({"jsonrpc":"2.0","method":"queryNetwork/tip","id":42})");
  n = format_rpc_request(buf, sizeof buf, "findIntersection", R"({"points":["origin"]})", 7);
  CHECK(std::string(buf, n) ==
        R"({"jsonrpc":"2.0","method":"findIntersection","params":{"points":["origin"]},"id":7})");
  CHECK(rpc_response_id(std::string_view(buf, n)) == 7u);
  CHECK(format_rpc_request(buf, 20, "queryNetwork/tip", "", 1) == 0);
  CHECK(json_plain("queryLedgerState/protocolParameters"));
  CHECK_FALSE(json_plain("a\"b"));
  CHECK_FALSE(json_plain("a\\b"));
  CHECK_FALSE(json_plain("a\nb"));
}

TEST_CASE("ws load: a masked client frame reads back with the ws_frame parser") {
  for (size_t len : {size_t(0), size_t(5), size_t(125), size_t(126), size_t(70000)}) {
    std::string payload(len, 'x');
    for (size_t i = 0; i < len; ++i) payload[i] = char('a' + i % 26);
    std::vector<char> frame(lb::http::kWsMaxHeader + len);
    const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    const size_t n = write_client_frame(frame.data(), lb::http::ws_text, payload, mask);
    lb::http::WsFrameHeader h;
    REQUIRE(lb::http::parse_ws_header(std::string_view(frame.data(), n), h) ==
            lb::http::WsParse::ok);
    CHECK(h.fin);
    CHECK(h.opcode == lb::http::ws_text);
    CHECK(h.masked);  // every client frame must be (RFC 6455 §5.3)
    CHECK(h.payload_len == len);
    CHECK(h.header_len + len == n);
    std::string body(frame.data() + h.header_len, len);
    if (len) CHECK(body != payload);  // masked on the wire
    lb::http::ws_apply_mask(body.data(), len, h.mask);
    CHECK(body == payload);
  }
}

TEST_CASE("ws load: the answer's id is the top-level one") {
  // Ogmios' tip has an "id" (a hash) of its own, nested in the result.
  CHECK(
      rpc_response_id(
          R"({"jsonrpc":"2.0","method":"queryNetwork/tip","result":{"slot":1,"id":"ab12"},"id":17})") ==
      17u);
  CHECK(rpc_response_id(R"({"id" : 5, "result": {"id": 9}})") == 5u);
  CHECK(rpc_response_id(R"({"result":{"id":9},"note":"\"id\":3 }","id":12345678901})") ==
        12345678901u);
  CHECK(rpc_response_id(R"({"result":[{"id":9}],"x":"id","id":2})") == 2u);
  CHECK_FALSE(rpc_response_id(R"({"result":{"id":9}})").has_value());
  CHECK_FALSE(rpc_response_id(R"({"id":"abc"})").has_value());
  CHECK_FALSE(rpc_response_id(R"({"id":1.5})").has_value());
  CHECK_FALSE(rpc_response_id(R"({"id":null})").has_value());
  CHECK_FALSE(rpc_response_id(R"({"id":)").has_value());
  CHECK_FALSE(rpc_response_id(R"({"unterminated)").has_value());
  CHECK_FALSE(rpc_response_id("").has_value());
}

TEST_CASE("ws load: close codes read from a close frame, 1005 for none") {
  uint8_t frame[2 + 125];
  const size_t n = lb::http::write_ws_close(frame, lb::http::kWsServiceRestart, "backend gone");
  lb::http::WsFrameHeader h;
  REQUIRE(lb::http::parse_ws_header(std::string_view(reinterpret_cast<char*>(frame), n), h) ==
          lb::http::WsParse::ok);
  CHECK(ws_close_code(std::string_view(reinterpret_cast<char*>(frame) + h.header_len,
                                       size_t(h.payload_len))) == 1012);
  CHECK(ws_close_code("") == 1005);
  CHECK(ws_close_code(std::string_view("\x0f\xa1", 2)) == 4001);
}

TEST_CASE("ws load: the report carries messages, close codes, handshakes and stickiness") {
  LoadReport r;
  r.url = "ws://127.0.0.1:9/rpc";
  r.method = "GET";
  r.ws = true;
  r.ws_method = "queryNetwork/tip";
  r.ws_reconnect_every = 10;
  r.users = r.connections = 3;
  r.duration_s = 2;
  r.target_rate = 100;
  r.backend_header = "X-Backend";
  LoadResult a, b;
  a.requests = 150;
  a.ws_sent = 160;
  a.ws_lost = 4;
  a.ws_handshakes = 20;
  a.statuses[101] = 20;
  a.statuses[403] = 2;
  a.ws_bad_accept = 1;
  a.ws_client_closes = 15;
  a.ws_close_codes[1012] = 3;
  a.ws_close_codes[1006] = 1;
  a.backends = {"ws-a", "ws-b"};
  a.user_backends = {0b01, 0b10, 0};
  b.requests = 50;
  b.ws_sent = 50;
  b.ws_close_codes[1012] = 2;
  b.backends = {"ws-b"};
  b.user_backends = {0, 0, 0b1};  // worker b's "ws-b"
  for (int i = 0; i < 10; ++i) a.latency.record(1000);
  merge_result(r.merged, a);
  merge_result(r.merged, b);
  finish_report(r);
  CHECK(r.merged.requests == 200);
  CHECK(r.merged.ws_sent == 210);
  CHECK(r.merged.ws_close_codes[1012] == 5);
  CHECK(r.ws_handshake_failures() == 3);  // a 403 twice and a bad accept key
  CHECK(r.users_seen == 3);
  CHECK(r.sticky_violations == 0);
  r.merged.user_backends[2] |= 0b01;  // user 2 reconnected to ws-a as well
  finish_report(r);
  CHECK(r.sticky_violations == 1);

  const std::string text = capture(print_text, r);
  CHECK(text.find("WebSocket test @ ws://127.0.0.1:9/rpc") != std::string::npos);
  CHECK(text.find("200 messages answered in 2.00s (210 sent, 4 lost") != std::string::npos);
  CHECK(text.find("Close codes from the server: 1006=1 1012=5; client closes (1000) 15") !=
        std::string::npos);
  CHECK(text.find("Handshakes: 20 ok, 3 failed (bad accept 1)") != std::string::npos);
  CHECK(text.find("Handshake statuses: 101=20 403=2") != std::string::npos);
  CHECK(text.find("1 of 3 users saw more than one backend") != std::string::npos);
  CHECK(text.find("Messages/sec:     100.00") != std::string::npos);

  const std::string json = capture(print_json, r);
  CHECK(json.find(R"("requests": 200)") != std::string::npos);
  CHECK(json.find(R"("sticky_violations": 1)") != std::string::npos);
  CHECK(json.find(R"("ws": {"method": "queryNetwork/tip", "reconnect_every": 10, "sent": 210, )"
                  R"("answered": 200, "lost": 4, "unmatched": 0, "handshakes": 20, )"
                  R"("handshake_failures": 3, "bad_accept": 1, "client_closes": 15, )"
                  R"("close_codes": {"1006": 1, "1012": 5}}})") != std::string::npos);

  r.ws = false;  // the HTTP report has no "ws" member
  CHECK(capture(print_json, r).find(R"("ws":)") == std::string::npos);
}

// The simulated Ogmios' pure parts: the JSON scanner, the JSON-RPC dispatcher, the
// server-side WebSocket codec and the demo config.
#include <doctest.h>

#include <string>
#include <vector>

#include "bench/sim/demo_config.h"
#include "bench/sim/json_scan.h"
#include "bench/sim/ogmios_api.h"
#include "bench/sim/sim_chain.h"
#include "bench/sim/ws_codec.h"
#include "config/loader.h"
#include "lb/http/ws_frame.h"

using namespace bench;
namespace api = bench::ogmios_api;

namespace {

api::Request req(std::string text) {
  api::ParsedRequest p = api::parse_request(text);
  REQUIRE(p.request);
  return *p.request;
}

// A masked client frame, as a browser sends it.
std::string client_frame(uint8_t opcode, std::string payload, bool fin = true, bool masked = true) {
  const uint8_t mask[4] = {0x11, 0x22, 0x33, 0x44};
  uint8_t head[lb::http::kWsMaxHeader];
  size_t n = lb::http::write_ws_header(head, fin, opcode, payload.size(), masked ? mask : nullptr);
  if (masked) lb::http::ws_apply_mask(payload.data(), payload.size(), mask);
  return std::string(reinterpret_cast<char*>(head), n) + payload;
}

}  // namespace

TEST_CASE("json_scan: strict validity and raw members") {
  CHECK(json::valid(R"({"a":[1,2.5e3,-0,"x\u00e9"],"b":null,"c":true})"));
  CHECK_FALSE(json::valid(R"({"a":1,})"));  // trailing comma
  CHECK_FALSE(json::valid("{\"a\":01}"));
  CHECK_FALSE(json::valid("[1] 2"));
  CHECK_FALSE(json::valid(std::string(100, '[') + std::string(100, ']')));  // too deep
  auto m = json::object_members(R"( {"id": 1.50 , "params": {"x": [1]}} )");
  REQUIRE(m);
  CHECK(json::member(*m, "id") == "1.50");
  CHECK(json::member(*m, "params") == R"({"x": [1]})");
  CHECK(json::member(*m, "none").empty());
  auto items = json::array_items(R"(["origin", {"slot": 3}])");
  REQUIRE(items);
  CHECK(items->size() == 2);
  CHECK(json::string_value(R"("a\"b\u0041")") == std::string("a\"bA"));
  CHECK(json::count_value("42") == 42u);
  CHECK_FALSE(json::count_value("-1"));
  CHECK_FALSE(json::count_value("1.0"));
}

TEST_CASE("ogmios_api: envelope, ids echoed verbatim, errors") {
  CHECK(api::parse_request("{oops").error ==
        R"({"jsonrpc":"2.0","error":{"code":-32700,"message":"Invalid JSON."},"id":null})");
  api::ParsedRequest no_method = api::parse_request(R"({"id":"q"})");
  CHECK_FALSE(no_method.request);
  CHECK(no_method.error.find("-32600") != std::string::npos);
  CHECK(no_method.error.find(R"("id":"q")") != std::string::npos);

  api::Session s;
  const api::ChainView chain{1000, 20, {}};
  auto reply = [&](const std::string& text) {
    return api::dispatch(req(text), s, chain, true).reply;
  };
  const std::string tip = reply(R"({"jsonrpc":"2.0","method":"queryNetwork/tip","id":1.50})");
  CHECK(tip == R"({"jsonrpc":"2.0","method":"queryNetwork/tip","result":{"slot":1000,"id":")" +
                   SimChain::header_hash(1000) + R"("},"id":1.50})");
  const std::string no_id = reply(R"({"method":"queryNetwork/tip"})");
  CHECK(no_id.substr(no_id.size() - 3) == "\"}}");  // ends with the result: no id
  CHECK(
      reply(R"({"method":"x","id":[1]})") ==
      R"({"jsonrpc":"2.0","method":"x","error":{"code":-32601,"message":"Method not found: x"},"id":[1]})");
  CHECK(reply(R"({"method":"_sim/echo","params":{"a": 1},"id":2})") ==
        R"({"jsonrpc":"2.0","method":"_sim/echo","result":{"a": 1},"id":2})");
  // Stateful methods need a WebSocket.
  api::Outcome http = api::dispatch(req(R"({"method":"nextBlock","id":1})"), s, chain, false);
  CHECK(http.reply.find("-32600") != std::string::npos);
}

TEST_CASE("ogmios_api: chain sync from an intersection, waiting at the tip") {
  api::Session s;
  api::ChainView chain{1000, 20, {}};
  const std::string point = api::point_json(960);
  api::Outcome o = api::dispatch(
      req(R"({"method":"findIntersection","params":{"points":[{"slot":961,"id":"x"},)" + point +
          "]}}"),
      s, chain, true);
  CHECK(o.reply.find(R"("intersection":)" + point) != std::string::npos);
  const api::Request next = req(R"({"method":"nextBlock","id":"n"})");
  auto b = api::next_block(next, s, chain);
  REQUIRE(b);
  CHECK(b->find(R"("direction":"backward","point":)" + point) != std::string::npos);
  b = api::next_block(next, s, chain);
  REQUIRE(b);
  CHECK(b->find(R"("direction":"forward")") != std::string::npos);
  CHECK(b->find(R"("slot":980)") != std::string::npos);
  CHECK(api::next_block(next, s, chain));        // 1000
  CHECK_FALSE(api::next_block(next, s, chain));  // at the tip: wait
  CHECK(api::dispatch(next, s, chain, true).action == api::Action::wait_block);
  chain.tip_slot = 1020;
  b = api::next_block(next, s, chain);
  REQUIRE(b);
  CHECK(b->find(R"("slot":1020)") != std::string::npos);

  api::Outcome none = api::dispatch(
      req(R"({"method":"findIntersection","params":{"points":[{"slot":40,"id":"00"}]}})"), s, chain,
      true);
  CHECK(none.reply.find(R"("code":1000)") != std::string::npos);
  CHECK(api::dispatch(req(R"({"method":"findIntersection","params":{}})"), s, chain, true)
            .reply.find("-32602") != std::string::npos);
}

TEST_CASE("ogmios_api: acquire, submit, evaluate, hooks") {
  api::Session s;
  const api::ChainView chain{100000, 20, {}};
  auto d = [&](const std::string& text) { return api::dispatch(req(text), s, chain, true); };
  CHECK(d(R"({"method":"acquireLedgerState","params":{"point":)" + api::point_json(99980) + "}}")
            .reply.find(R"("acquired":"ledgerState")") != std::string::npos);
  CHECK(s.acquired == 99980u);
  CHECK(d(R"({"method":"acquireLedgerState","params":{"point":{"slot":99980,"id":"ff"}}})")
            .reply.find("pointNotOnChain") != std::string::npos);
  CHECK(d(R"({"method":"releaseLedgerState"})").reply.find("released") != std::string::npos);
  CHECK_FALSE(s.acquired);
  const std::string a =
      d(R"({"method":"submitTransaction","params":{"transaction":{"cbor":"84a3"}}})").reply;
  const std::string b =
      d(R"({"method":"submitTransaction","params":{"transaction":{"cbor":"84a4"}}})").reply;
  CHECK(a.find(R"("transaction":{"id":")") != std::string::npos);
  CHECK(a != b);
  CHECK(d(R"({"method":"submitTransaction","params":{"transaction":{"cbor":"zz"}}})")
            .reply.find("-32602") != std::string::npos);
  CHECK(d(R"({"method":"evaluateTransaction","params":{"transaction":{"cbor":"84a3"}}})")
            .reply.find(R"("budget":{"memory":)") != std::string::npos);
  api::Outcome f = d(R"({"method":"_sim/fragmented","params":{"size":5000,"pieces":3},"id":1})");
  CHECK(f.action == api::Action::fragmented);
  CHECK(api::padded_reply(req(R"({"method":"_sim/fragmented","id":1})"), 5000).size() == 5000);
  api::Outcome c = d(R"({"method":"_sim/close","params":{"code":4001,"reason":"r"}})");
  CHECK(c.action == api::Action::close);
  CHECK(c.close_code == 4001);
  CHECK(c.close_reason == "r");
  CHECK(d(R"({"method":"_sim/close","params":{"code":"x"}})").action == api::Action::reply);
}

TEST_CASE("ogmios_api: /health codes") {
  api::HealthInput h;
  h.tip_slot = 1000;
  h.network_slot = 1010;
  h.unix_ms = 1700000000000;
  CHECK(api::health_status(h) == 200);
  h.network_slot = 1061;
  CHECK(api::health_status(h) == 202);
  h.connected = false;
  CHECK(api::health_status(h) == 500);
  const std::string j = api::health_json(h);
  CHECK(j.find(R"("connectionStatus":"disconnected")") != std::string::npos);
  CHECK(j.find(R"("lastTipUpdate":"2023-11-14T22:12:19.000Z")") != std::string::npos);
  CHECK(api::iso_time(1700000000123) == "2023-11-14T22:13:20.123Z");
}

TEST_CASE("ws_codec: masked frames, fragments, control frames, errors") {
  WsReader r;
  std::vector<WsEvent> ev;
  const std::string all = client_frame(lb::http::ws_text, "hel", false) +
                          client_frame(lb::http::ws_ping, "p") +
                          client_frame(lb::http::ws_continuation, "lo") +
                          client_frame(lb::http::ws_binary, std::string(70000, 'b'));
  // Byte by byte: every split point must work.
  for (char c : all) r.feed(std::string_view(&c, 1), ev);
  REQUIRE(ev.size() == 3);
  CHECK(ev[0].kind == WsEvent::Kind::ping);
  CHECK(ev[1].kind == WsEvent::Kind::text);
  CHECK(ev[1].payload == "hello");
  CHECK(ev[1].fragments == 2);
  CHECK(ev[2].payload == std::string(70000, 'b'));
  CHECK(r.held_bytes() == 0);  // idle: nothing held

  ev.clear();
  r.feed(client_frame(lb::http::ws_close, std::string("\x0f\xa1", 2) + "bye"), ev);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].code == 4001);
  CHECK(ev[0].payload == "bye");

  auto error_of = [](const std::string& bytes, size_t max = 1 << 20) {
    WsReader x(max);
    std::vector<WsEvent> e;
    x.feed(bytes, e);
    return e.empty() || e.back().kind != WsEvent::Kind::error ? 0 : e.back().code;
  };
  CHECK(error_of(client_frame(lb::http::ws_text, "x", true, false)) == 1002);  // unmasked
  CHECK(error_of(client_frame(lb::http::ws_continuation, "x")) == 1002);
  CHECK(error_of(client_frame(0x3, "x")) == 1002);
  CHECK(error_of(client_frame(lb::http::ws_close, std::string("\x03\xed", 2))) == 1002);  // 1005
  CHECK(error_of(client_frame(lb::http::ws_binary, std::string(2000, 'x')), 1000) == 1009);
  CHECK(error_of(client_frame(lb::http::ws_text, "a")) == 0);

  // Server frames: unmasked, fragments that join back into the message.
  const std::string frags = ws_server_fragments(lb::http::ws_text, "abcdefg", 3);
  lb::http::WsFrameHeader h;
  REQUIRE(lb::http::parse_ws_header(frags, h) == lb::http::WsParse::ok);
  CHECK_FALSE(h.masked);
  CHECK_FALSE(h.fin);
  CHECK(h.payload_len == 3);
  CHECK(frags.size() == 7 + 3 * 2);
  CHECK(ws_server_close(1002, "x") == std::string("\x88\x03\x03\xea", 4) + "x");
}

TEST_CASE("demo config: Kupo at /, Ogmios at /ogmios with websocket") {
  auto r = config::load_string(demo_config_yaml({1442, 1443, 1444}, {1337, 1338}), "<demo>");
  REQUIRE(r.config);
  const config::Config& c = *r.config;
  REQUIRE(c.listeners.size() == 1);
  REQUIRE(c.listeners[0].routes.size() == 2);
  const config::Route& o = c.listeners[0].routes[0];
  CHECK(o.prefix == "/ogmios");
  CHECK(o.pool == "ogmios");
  CHECK(o.websocket);
  CHECK(o.strip_prefix);
  bool found = false;
  for (const config::Pool& p : c.pools)
    if (p.name == "ogmios") {
      found = true;
      CHECK(p.kind == config::PoolKind::ogmios);
      REQUIRE(p.backends.size() == 2);
      CHECK(p.backends[1].name == "ogmios-2");
      CHECK(p.backends[1].address.port == 1338);
    }
  CHECK(found);
}

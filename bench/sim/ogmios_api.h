#pragma once
// Ogmios v6's JSON-RPC 2.0 surface as the simulated Ogmios answers it: request parsing,
// the method dispatcher with one connection's chain-sync and ledger-state cursor, replies
// and errors with the request's id echoed byte for byte (absent stays absent), and the
// /health document. Pure: the chain comes in as a ChainView, time as parameters.
//
// Methods: queryNetwork/tip, queryNetwork/blockHeight, queryNetwork/startTime,
// queryLedgerState/tip, queryLedgerState/epoch, queryLedgerState/protocolParameters,
// findIntersection, nextBlock, acquireLedgerState, releaseLedgerState, submitTransaction,
// evaluateTransaction; test hooks _sim/echo (result = params), _sim/fragmented and
// _sim/close (carried out by the connection, see ogmios_sim.h).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bench::ogmios_api {

// JSON-RPC and Ogmios error codes.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kIntersectionNotFound = 1000;
inline constexpr int kAcquireFailed = 2000;

// Blocks an acquired point may be behind the tip (the security parameter k).
inline constexpr uint64_t kSecurityBlocks = 2160;

struct Request {
  std::string method;
  std::optional<std::string> id;  // the raw JSON of "id"; nullopt when the request has none
  std::string params;             // the raw JSON of "params"; empty when absent
};

struct ParsedRequest {
  std::optional<Request> request;
  std::string error;  // a whole error reply when `request` is empty
};

// Parses one JSON-RPC request: -32700 when `text` is not JSON, -32600 when it is not an
// object with a string "method".
ParsedRequest parse_request(std::string_view text);

// The chain as the connection's backend sees it now: blocks at every multiple of
// `block_interval`, the newest at `tip_slot`.
// `fork_at`: from that slot on the backend's blocks are on a fork (other header hashes).
struct ChainView {
  uint64_t tip_slot = 0;
  uint64_t block_interval = 20;
  std::optional<uint64_t> fork_at;
};

// One WebSocket's server-side state.
struct Session {
  bool at_origin = true;             // the chain-sync cursor is origin
  uint64_t cursor = 0;               // else the slot of the cursor's block
  bool rollback_due = true;          // the next nextBlock rolls backward to the cursor first
  std::optional<uint64_t> acquired;  // the acquired ledger state's slot
};

enum class Action : uint8_t {
  reply,       // send `reply`
  wait_block,  // nextBlock at the tip: answer with next_block() once the tip moves
  fragmented,  // _sim/fragmented: send padded_reply(size) in `pieces` frames
  close,       // _sim/close: send a close frame with close_code / close_reason
};

struct Outcome {
  Action action = Action::reply;
  std::string reply;
  uint64_t size = 0;
  uint64_t pieces = 1;
  uint16_t close_code = 1000;
  std::string close_reason;
};

// Answers one request. `websocket` false (HTTP POST /): the stateful methods
// (findIntersection, nextBlock, acquire/release, _sim/fragmented, _sim/close) are refused
// with -32600, as one HTTP request has no session to keep.
Outcome dispatch(const Request& r, Session& s, const ChainView& chain, bool websocket);

// The answer to a nextBlock: backward to the cursor if a rollback is due, else the block
// after the cursor; nullopt when the cursor is at the tip (the caller waits).
std::optional<std::string> next_block(const Request& r, Session& s, const ChainView& chain);

std::string result_reply(const Request& r, std::string_view result);
std::string error_reply(std::string_view method, const std::optional<std::string>& id, int code,
                        std::string_view message, std::string_view data = {});
// A reply to `r` whose result is a string padded so that the whole reply is `size` bytes
// (or as short as the envelope allows).
std::string padded_reply(const Request& r, uint64_t size);

// Points and tips as Ogmios writes them.
std::string point_json(uint64_t slot,
                       std::optional<uint64_t> fork_at = std::nullopt);  // {"slot":..,"id":..}
std::string tip_json(const ChainView& chain);  // {"slot":..,"id":..,"height":..}
uint64_t block_height(uint64_t slot, uint64_t block_interval);
std::string block_json(uint64_t slot, uint64_t block_interval,
                       std::optional<uint64_t> fork_at = std::nullopt);

// /health
struct HealthInput {
  bool connected = true;
  uint64_t tip_slot = 0;
  uint64_t block_interval = 20;
  std::optional<uint64_t> fork_at;  // lastKnownTip's id is on this fork
  uint64_t network_slot = 0;        // the wall clock's slot
  uint64_t unix_ms = 0;             // now
  uint64_t start_unix_ms = 0;       // when the server started
  double network_synchronization = 1;
  uint64_t active_connections = 0;
  uint64_t total_connections = 0;
  uint64_t total_messages = 0;
};
// Ogmios' answer: a tip older than this (by the wall clock) is 202.
inline constexpr uint64_t kStaleTipSeconds = 60;
// 500 disconnected, 202 tip older than 60 s, else 200.
int health_status(const HealthInput& h);
std::string health_json(const HealthInput& h);
// "2024-05-01T12:00:00.123Z"
std::string iso_time(uint64_t unix_ms);

}  // namespace bench::ogmios_api

#pragma once
// The pure pieces of `corral-bench load --ws`: the opening handshake request, JSON-RPC
// 2.0 request text, masked client frames, and what is read back out of the server's
// frames (the answer's id, a close frame's code). Frame headers come from lb/http/ws_frame.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

// A Sec-WebSocket-Key: the 16 bytes in base64 (24 characters).
std::string ws_key_from_bytes(const uint8_t bytes[16]);

// The opening handshake (RFC 6455 §4.1): GET `path` with Host, Upgrade, Connection,
// Sec-WebSocket-Key, Sec-WebSocket-Version 13, then `extra` ("K: V" each), then the
// blank line.
std::string ws_handshake_request(std::string_view path, std::string_view host, std::string_view key,
                                 const std::vector<std::string>& extra);

// {"jsonrpc":"2.0","method":M,"params":P,"id":N} ("params" left out when `params` is
// empty; `method` must need no JSON escaping and `params` be JSON, both checked by the
// caller once). Returns the length written, or 0 if it does not fit in `cap` bytes.
size_t format_rpc_request(char* out, size_t cap, std::string_view method, std::string_view params,
                          uint64_t id);

// A whole masked client frame (FIN set) carrying `payload`, as a client must send every
// frame (RFC 6455 §5.3). `out` holds at least 14 + payload.size() bytes; returns the
// frame's length.
size_t write_client_frame(char* out, uint8_t opcode, std::string_view payload,
                          const uint8_t mask[4]);

// The "id" member of the top-level JSON object when it is a non-negative integer; ids in
// nested objects (Ogmios' tips and blocks have an "id" of their own) are skipped.
std::optional<uint64_t> rpc_response_id(std::string_view json);

// The status code of a close frame's payload; 1005 when it carries none (RFC 6455 §7.1.5).
uint16_t ws_close_code(std::string_view payload);

// True if `s` can go between JSON quotes as it is: printable ASCII, no '"' or '\\'.
bool json_plain(std::string_view s);

}  // namespace bench

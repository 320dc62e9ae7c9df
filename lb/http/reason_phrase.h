#pragma once
// The one status code -> reason phrase table, shared by the proxy's own responses
// (head_writer) and the small HTTP server (admin listener, simulated backends).
namespace lb::http {

// The RFC 9110 §15 reason phrase for `status` (plus 103 Early Hints, 418, and the RFC 6585
// codes 428/429/431), or "Unknown". The pointer is to static storage: never freed.
const char* reason_phrase(int status);

}  // namespace lb::http

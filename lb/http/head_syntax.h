#pragma once
// The head checks llhttp 8.1 leaves out, in one place (RFC 9112 §2.2, §3, §5.1). The
// parser feeds every head byte it consumes to a HeadSyntax, so the checks hold however
// the head is split across reads:
//  - every line ends in CRLF: a CR not followed by LF, or a LF not preceded by CR, is an
//    error (llhttp takes "\r\n\rX" as the end of the head, eats the X, and starts a
//    second message with what follows; it also takes a bare LF after the request line
//    or as the blank line);
//  - no field line starts with SP or HTAB (obs-fold, RFC 9112 §5.2);
//  - a request line is method SP target SP version, single spaces (llhttp accepts
//    "GET  /" and "GET /  HTTP/1.1").
// Field names are checked by header_name_valid (llhttp 8.1 accepts "Content Length" and
// "project_id ", so a name with a space reaches the backend as a name no strip matches).
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace lb::http {

// True if `name` is a non-empty token (RFC 9110 §5.6.2 tchar only).
bool header_name_valid(std::string_view name);
// True if every byte of a piece of a name is a tchar (names may arrive in pieces).
bool header_name_chars_valid(std::string_view piece);

class HeadSyntax {
 public:
  // request: also check the request line's separators.
  void reset(bool request);
  // Scans the next head bytes. Returns false at the first violation (see error()).
  bool feed(const char* data, size_t len);
  const char* error() const { return error_; }

 private:
  bool request_ = true;
  bool prev_cr_ = false;
  bool prev_lf_ = false;
  bool prev_sp_ = false;
  bool in_first_line_ = true;  // still in the start line (after any leading CRLFs)
  bool line_started_ = false;  // the start line has a byte other than CRLF
  uint8_t spaces_ = 0;
  const char* error_ = "";
};

}  // namespace lb::http

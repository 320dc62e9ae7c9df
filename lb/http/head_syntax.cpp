#include "lb/http/head_syntax.h"

#include <array>

namespace lb::http {
namespace {

// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
constexpr std::array<bool, 256> kTchar = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

}  // namespace

bool header_name_chars_valid(std::string_view piece) {
  for (char c : piece)
    if (!kTchar[static_cast<unsigned char>(c)]) return false;
  return true;
}

bool header_name_valid(std::string_view name) {
  return !name.empty() && header_name_chars_valid(name);
}

void HeadSyntax::reset(bool request) {
  request_ = request;
  prev_cr_ = prev_lf_ = prev_sp_ = line_started_ = false;
  in_first_line_ = true;
  spaces_ = 0;
  error_ = "";
}

bool HeadSyntax::feed(const char* data, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    const char c = data[i];
    if (prev_cr_ && c != '\n') {
      error_ = "CR not followed by LF in the head";
      return false;
    }
    if (c == '\n' && !prev_cr_) {
      error_ = "bare LF in the head";
      return false;
    }
    if (!in_first_line_ && prev_lf_ && (c == ' ' || c == '\t')) {
      // RFC 9112 §5.2 lets a server refuse obs-fold; unfolding it would forward a field
      // (e.g. "Transfer-Encoding:\r\n chunked") that another hop may frame differently.
      error_ = "obsolete line folding in the head";
      return false;
    }
    prev_cr_ = c == '\r';
    prev_lf_ = c == '\n';
    if (!in_first_line_) continue;
    if (c == '\r') continue;
    if (c == '\n') {
      // Empty lines before the start line are allowed (RFC 9112 §2.2); the start line
      // ends at its own LF.
      if (!line_started_) continue;
      in_first_line_ = false;
      if (request_ && (spaces_ != 2 || prev_sp_)) {
        error_ = "malformed request line";
        return false;
      }
      continue;
    }
    if (c == ' ') {
      // A request line has exactly two single spaces, none leading or trailing.
      if (request_ && (prev_sp_ || !line_started_ || ++spaces_ > 2)) {
        error_ = "malformed request line";
        return false;
      }
      prev_sp_ = true;
    } else {
      prev_sp_ = false;
    }
    line_started_ = true;
  }
  return true;
}

}  // namespace lb::http

#pragma once
// An HTTP/1.1 message parser on llhttp that pauses at the two points a proxy acts on:
// after the head (to route and rewrite it) and after the message (to find where the raw
// body ends, so bodies are forwarded byte for byte, chunk framing included, and never
// buffered whole). Header views point into the caller's buffer, which must keep the
// head's bytes in place and contiguous until the head is complete (node_http_parser.cc
// does the same, with a byte cap).
#include <llhttp.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "lb/core/header_view.h"
#include "lb/http/chunk_framer.h"
#include "lb/http/head_syntax.h"

namespace lb::http {

enum class ParseStatus : uint8_t {
  need_more,  // every byte consumed; the message goes on
  head,       // paused right after the head; consumed = bytes up to the body
  done,       // paused right after the message; consumed = bytes up to its end
  upgrade,    // the rest of the stream is another protocol (101 / Upgrade)
  error,      // malformed; error_status says 400, 413, 431 or 505
};

struct ParseResult {
  ParseStatus status = ParseStatus::need_more;
  size_t consumed = 0;
};

class MessageParser {
 public:
  static constexpr size_t kMaxHeaders = 96;

  enum class Kind : uint8_t { request, response };
  MessageParser(Kind kind, size_t max_header_bytes);
  MessageParser(const MessageParser&) = delete;
  MessageParser& operator=(const MessageParser&) = delete;

  // Starts afresh for a new connection or exchange (parsers are pooled per worker).
  void reset(size_t max_header_bytes);

  // The largest chunked body (data plus chunk extensions) and chunk accepted from now
  // on (requests: limits.max_body_bytes; reset() lifts it).
  void set_max_body(uint64_t max_body) { max_body_ = max_body; }

  // Parses data[0, len). Stops early at the head and at the end of the message.
  // Beyond llhttp: the head's line endings and request line (head_syntax.h), field names
  // (tchar only), the version (a request of HTTP/2+ is 505, of HTTP/0.x 400; a response
  // must be HTTP/1.x), and chunked framing (chunk_framer.h) are checked strictly.
  ParseResult feed(const char* data, size_t len);
  // The peer closed: completes a read-until-close body. Returns done or error.
  ParseStatus finish();

  // Decoded body pieces go to `sink` while set (used to re-frame chunked request bodies,
  // so a backend never sees the client's own chunk framing).
  using BodySink = void (*)(void* ctx, const char* data, size_t len);
  void set_body_sink(BodySink sink, void* ctx) {
    sink_ = sink;
    sink_ctx_ = ctx;
  }

  // Call after `head` to let the parser continue into the body. skip_body: the message
  // has no body whatever its headers say (a response to HEAD, or a 1xx).
  void resume_after_head(bool skip_body = false);
  // Call after `done` to parse the next message on the same connection.
  void resume_after_message();

  // Valid from `head` until the next message begins.
  std::string_view method() const;  // request
  std::string_view target() const { return target_; }
  int status_code() const;  // response
  std::string_view reason() const { return reason_; }
  uint8_t version_major() const;
  uint8_t version_minor() const;
  // The head's fields; trailers of a chunked body are parsed (and checked) but never
  // change what the head said.
  std::span<const HeaderView> headers() const {
    return {headers_.data(), state_ == State::head ? nheaders_ : head_fields_};
  }
  bool keep_alive() const;
  bool chunked() const;
  bool has_content_length() const;
  uint64_t content_length() const { return content_length_; }
  bool upgrade() const;
  // Bytes of the head, request line included.
  size_t head_bytes() const { return head_bytes_; }
  // For `error`: 400, 413, 431 or 505, and a short reason for the client and the log.
  int error_status() const { return error_status_; }
  const char* error_reason() const { return error_reason_; }
  bool in_body() const { return state_ == State::body; }

 private:
  enum class State : uint8_t { head, body, after };
  static const llhttp_settings_t kSettings;
  static int on_message_begin(llhttp_t* p);
  static int on_url(llhttp_t* p, const char* at, size_t len);
  static int on_status(llhttp_t* p, const char* at, size_t len);
  static int on_header_field(llhttp_t* p, const char* at, size_t len);
  static int on_header_value(llhttp_t* p, const char* at, size_t len);
  static int on_header_field_complete(llhttp_t* p);
  static int on_headers_complete(llhttp_t* p);
  static int on_message_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, size_t len);
  unsigned flags() const;  // llhttp's in the head, the head's after it
  ParseResult fail(int status, const char* reason, size_t consumed);
  // From a callback: remember why, and stop llhttp.
  int reject(int status, const char* reason);

  llhttp_t parser_;
  Kind kind_;
  State state_ = State::head;
  size_t max_header_bytes_;
  size_t head_bytes_ = 0;
  uint64_t content_length_ = 0;
  std::string_view target_;
  std::string_view reason_;
  std::array<HeaderView, kMaxHeaders> headers_{};
  size_t nheaders_ = 0;
  size_t head_fields_ = 0;  // nheaders_ at the end of the head
  // The framing the head declared: a trailer such as "Transfer-Encoding: x" changes
  // llhttp's flags after the body.
  uint8_t head_flags_ = 0;
  bool in_value_ = false;
  bool too_many_headers_ = false;
  bool paused_ = false;
  BodySink sink_ = nullptr;
  void* sink_ctx_ = nullptr;
  int error_status_ = 0;
  const char* error_reason_ = "";
  int rejected_status_ = 0;  // a callback refused the message (reject())
  const char* rejected_reason_ = "";
  bool framing_ = false;  // a chunked body: framer_ checks it first
  uint64_t max_body_ = UINT64_MAX;
  HeadSyntax syntax_;
  ChunkFramer framer_;
};

}  // namespace lb::http

#include "lb/http/message_parser.h"

namespace lb::http {

const llhttp_settings_t MessageParser::kSettings = [] {
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_message_begin = &MessageParser::on_message_begin;
  s.on_url = &MessageParser::on_url;
  s.on_status = &MessageParser::on_status;
  s.on_header_field = &MessageParser::on_header_field;
  s.on_header_value = &MessageParser::on_header_value;
  s.on_header_field_complete = &MessageParser::on_header_field_complete;
  s.on_headers_complete = &MessageParser::on_headers_complete;
  s.on_message_complete = &MessageParser::on_message_complete;
  s.on_body = &MessageParser::on_body;
  return s;
}();

namespace {
MessageParser* self(llhttp_t* p) { return static_cast<MessageParser*>(p->data); }

// Extends `view` by a continuation that starts where it ends (the caller keeps the head
// contiguous), or starts a new view.
bool append(std::string_view& view, const char* at, size_t len) {
  if (view.data() == nullptr) {
    view = {at, len};
    return true;
  }
  if (view.data() + view.size() != at) return false;
  view = {view.data(), view.size() + len};
  return true;
}
}  // namespace

MessageParser::MessageParser(Kind kind, size_t max_header_bytes)
    : kind_(kind), max_header_bytes_(max_header_bytes) {
  llhttp_init(&parser_, kind == Kind::request ? HTTP_REQUEST : HTTP_RESPONSE, &kSettings);
  parser_.data = this;
  syntax_.reset(kind == Kind::request);
}

void MessageParser::reset(size_t max_header_bytes) {
  llhttp_init(&parser_, kind_ == Kind::request ? HTTP_REQUEST : HTTP_RESPONSE, &kSettings);
  parser_.data = this;
  max_header_bytes_ = max_header_bytes;
  state_ = State::head;
  head_bytes_ = 0;
  content_length_ = 0;
  target_ = reason_ = {};
  nheaders_ = 0;
  in_value_ = too_many_headers_ = paused_ = false;
  sink_ = nullptr;
  sink_ctx_ = nullptr;
  error_status_ = 0;
  error_reason_ = "";
  rejected_status_ = 0;
  rejected_reason_ = "";
  framing_ = false;
  max_body_ = UINT64_MAX;
  syntax_.reset(kind_ == Kind::request);
}

int MessageParser::reject(int status, const char* reason) {
  rejected_status_ = status;
  rejected_reason_ = reason;
  return -1;
}

int MessageParser::on_message_begin(llhttp_t* p) {
  MessageParser* m = self(p);
  m->state_ = State::head;
  m->nheaders_ = 0;
  m->in_value_ = false;
  m->target_ = {};
  m->reason_ = {};
  m->content_length_ = 0;
  return 0;
}

int MessageParser::on_url(llhttp_t* p, const char* at, size_t len) {
  return append(self(p)->target_, at, len) ? 0 : -1;
}

int MessageParser::on_status(llhttp_t* p, const char* at, size_t len) {
  return append(self(p)->reason_, at, len) ? 0 : -1;
}

int MessageParser::on_header_field(llhttp_t* p, const char* at, size_t len) {
  MessageParser* m = self(p);
  if (m->in_value_ || m->nheaders_ == 0) {
    if (m->nheaders_ == kMaxHeaders) {
      m->too_many_headers_ = true;
      return -1;
    }
    m->headers_[m->nheaders_++] = HeaderView{{at, len}, {}};
    m->in_value_ = false;
    return 0;
  }
  return append(m->headers_[m->nheaders_ - 1].name, at, len) ? 0 : -1;
}

int MessageParser::on_header_value(llhttp_t* p, const char* at, size_t len) {
  MessageParser* m = self(p);
  m->in_value_ = true;
  return append(m->headers_[m->nheaders_ - 1].value, at, len) ? 0 : -1;
}

int MessageParser::on_header_field_complete(llhttp_t* p) {
  // RFC 9112 §5.1: no whitespace before the colon, and a name is a token. llhttp 8.1
  // passes "Content Length" and "project_id " through; a proxy that forwards them lets a
  // client smuggle a framing or a secret header past names it compares exactly.
  MessageParser* m = self(p);
  if (m->nheaders_ == 0 || !header_name_valid(m->headers_[m->nheaders_ - 1].name))
    return m->reject(400, "invalid header field name");
  return 0;
}

int MessageParser::on_headers_complete(llhttp_t* p) {
  MessageParser* m = self(p);
  if (m->kind_ == Kind::request) {
    if (p->http_major >= 2) return m->reject(505, "HTTP version not supported");
    if (p->http_major == 0) return m->reject(400, "HTTP/0.9 is not supported");
  } else if (p->http_major != 1) {
    return m->reject(400, "response with an unsupported HTTP version");
  }
  m->state_ = State::body;
  m->content_length_ = p->content_length;
  m->head_fields_ = m->nheaders_;
  m->head_flags_ = static_cast<uint8_t>(p->flags & (F_CHUNKED | F_CONTENT_LENGTH));
  return HPE_PAUSED;
}

int MessageParser::on_body(llhttp_t* p, const char* at, size_t len) {
  MessageParser* m = self(p);
  if (m->sink_) m->sink_(m->sink_ctx_, at, len);
  return 0;
}

int MessageParser::on_message_complete(llhttp_t* p) {
  self(p)->state_ = State::after;
  return HPE_PAUSED;
}

ParseResult MessageParser::fail(int status, const char* reason, size_t consumed) {
  error_status_ = status;
  error_reason_ = reason;
  return {ParseStatus::error, consumed};
}

ParseResult MessageParser::feed(const char* data, size_t len) {
  // llhttp marks a body span in progress by a non-null pointer: a null one (an empty
  // view) would end the span and garble the next on_body.
  if (data == nullptr) data = "";
  const bool in_head = state_ != State::body;
  // A chunked body is checked by the framer first; llhttp sees only what it accepted, so
  // nothing after a framing error is ever taken as body or as a next message.
  size_t give = len;
  ChunkFramer::Status framed = ChunkFramer::Status::more;
  if (!in_head && framing_) {
    ChunkFramer::Result fr = framer_.feed(data, len);
    framed = fr.status;
    give = fr.consumed;
  }
  llhttp_errno_t err = llhttp_execute(&parser_, data, give);
  size_t consumed = give;
  if (err != HPE_OK) consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
  if (in_head) {
    // A head may span reads; the cap applies before it completes so that a client
    // cannot make us hold an unbounded head.
    head_bytes_ += consumed;
    if (head_bytes_ > max_header_bytes_) return fail(431, "header fields too large", consumed);
    // Line endings and the request line, on exactly the bytes llhttp took as head.
    if (!syntax_.feed(data, consumed)) return fail(400, syntax_.error(), consumed);
  }
  switch (err) {
    case HPE_OK:
      if (framed == ChunkFramer::Status::error)
        return fail(framer_.error_status(), framer_.error_reason(), consumed);
      if (framed == ChunkFramer::Status::done)  // llhttp disagrees on the end: refuse
        return fail(400, "chunked framing mismatch", consumed);
      return {ParseStatus::need_more, consumed};
    case HPE_PAUSED:
      return {state_ == State::body ? ParseStatus::head : ParseStatus::done, consumed};
    case HPE_PAUSED_UPGRADE:
      return {ParseStatus::upgrade, consumed};
    default:
      if (too_many_headers_) return fail(431, "too many header fields", consumed);
      if (rejected_status_ != 0) return fail(rejected_status_, rejected_reason_, consumed);
      if (err == HPE_INVALID_VERSION && kind_ == Kind::request && parser_.http_major >= 2)
        return fail(505, "HTTP version not supported", consumed);
      return fail(400, llhttp_get_error_reason(&parser_), consumed);
  }
}

ParseStatus MessageParser::finish() {
  llhttp_errno_t err = llhttp_finish(&parser_);
  if (err == HPE_OK || err == HPE_PAUSED)
    return state_ == State::after ? ParseStatus::done : ParseStatus::error;
  fail(400, llhttp_get_error_reason(&parser_), 0);
  return ParseStatus::error;
}

void MessageParser::resume_after_head(bool skip_body) {
  if (skip_body) parser_.flags |= F_SKIPBODY;
  framing_ = chunked() && !skip_body;
  // The trailer section is a head of sorts: it gets the head's cap.
  if (framing_) framer_.reset(max_body_, max_header_bytes_);
  llhttp_resume(&parser_);
}

void MessageParser::resume_after_message() {
  head_bytes_ = 0;
  framing_ = false;
  syntax_.reset(kind_ == Kind::request);
  llhttp_resume(&parser_);
}

std::string_view MessageParser::method() const {
  return llhttp_method_name(static_cast<llhttp_method_t>(parser_.method));
}
int MessageParser::status_code() const { return parser_.status_code; }
uint8_t MessageParser::version_major() const { return parser_.http_major; }
uint8_t MessageParser::version_minor() const { return parser_.http_minor; }
bool MessageParser::keep_alive() const {
  return llhttp_should_keep_alive(const_cast<llhttp_t*>(&parser_)) != 0;
}
bool MessageParser::chunked() const { return (flags() & F_CHUNKED) != 0; }
unsigned MessageParser::flags() const {
  return state_ == State::head ? parser_.flags : head_flags_;
}
bool MessageParser::has_content_length() const { return (flags() & F_CONTENT_LENGTH) != 0; }
bool MessageParser::upgrade() const { return parser_.upgrade != 0; }

}  // namespace lb::http

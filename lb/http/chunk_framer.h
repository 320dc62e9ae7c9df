#pragma once
// Strict chunked framing (RFC 9112 §7.1), checked on top of llhttp 8.1 in one place.
// llhttp accepts any two bytes after a chunk's data as its CRLF ("5\r\nhelloXX0\r\n\r\n"
// passes), lets chunk extensions grow without bound, takes a chunk size of any value,
// and takes "\rX" as the end of the trailer section. The parser feeds a ChunkFramer the
// body bytes first and gives llhttp only the bytes the framer accepted, so a malformed
// body stops before the bad byte and nothing after it is ever seen as a message.
//
// Limits:
//  - a chunk size above max_body is refused before its data (413 for a request);
//  - chunk extensions: at most kMaxChunkExtBytes per chunk line, and every extension
//    byte counts with the data against max_body (a body of extensions is still a body);
//  - the trailer section is at most max_trailer bytes (431).
// Pure: no allocation, no I/O.
#include <cstddef>
#include <cstdint>

namespace lb::http {

inline constexpr size_t kMaxChunkExtBytes = 4096;

class ChunkFramer {
 public:
  enum class Status : uint8_t { more, done, error };
  struct Result {
    Status status = Status::more;
    size_t consumed = 0;  // more: all; done: up to the message end; error: up to the bad byte
  };

  void reset(uint64_t max_body, uint64_t max_trailer);
  Result feed(const char* data, size_t len);
  // For error: 400 (syntax), 413 (a size or extension limit), 431 (trailers too large).
  int error_status() const { return error_status_; }
  const char* error_reason() const { return error_reason_; }
  // Data bytes plus extension bytes so far (what counts against max_body).
  uint64_t counted() const { return counted_; }

 private:
  enum class State : uint8_t {
    size,        // hex digits of a chunk size
    ext,         // after ';' up to CR
    size_lf,     // CR seen after the size line
    data,        // `left_` data bytes
    data_cr,     // CR after data
    data_lf,     // LF after data
    trailer,     // start of a trailer line (CR here: the end)
    trailer_in,  // inside a trailer field line
    trailer_lf,  // LF ending a trailer field line
    last_lf,     // LF ending the message
    done,
    error,
  };
  Result fail(size_t at, int status, const char* reason);

  State state_ = State::size;
  uint8_t digits_ = 0;
  uint64_t size_ = 0;
  uint64_t left_ = 0;
  uint64_t counted_ = 0;
  uint64_t max_body_ = UINT64_MAX;
  uint64_t max_trailer_ = 0;
  size_t ext_ = 0;
  size_t trailer_bytes_ = 0;
  int error_status_ = 0;
  const char* error_reason_ = "";
};

}  // namespace lb::http

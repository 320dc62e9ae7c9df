#include "lb/http/chunk_framer.h"

#include <algorithm>

namespace lb::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Bytes allowed inside an extension or a trailer line: visible ASCII, SP, HTAB and
// obs-text; no other control byte (a CR there is the line's end or an error).
bool line_byte(char ch) {
  auto c = static_cast<unsigned char>(ch);
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

}  // namespace

void ChunkFramer::reset(uint64_t max_body, uint64_t max_trailer) {
  state_ = State::size;
  digits_ = 0;
  size_ = left_ = counted_ = 0;
  max_body_ = max_body;
  max_trailer_ = max_trailer;
  ext_ = trailer_bytes_ = 0;
  error_status_ = 0;
  error_reason_ = "";
}

ChunkFramer::Result ChunkFramer::fail(size_t at, int status, const char* reason) {
  state_ = State::error;
  error_status_ = status;
  error_reason_ = reason;
  return {Status::error, at};
}

ChunkFramer::Result ChunkFramer::feed(const char* data, size_t len) {
  if (state_ == State::error) return {Status::error, 0};
  if (state_ == State::done) return fail(0, 400, "bytes after the last chunk");
  size_t i = 0;
  while (i < len) {
    const char c = data[i];
    switch (state_) {
      case State::size: {
        int v = hex_value(c);
        if (v >= 0) {
          // 16 hex digits already exceed any limit; more would overflow.
          if (++digits_ > 16) return fail(i, 400, "chunk size too long");
          size_ = size_ * 16 + static_cast<uint64_t>(v);
          // Refused as soon as the size says so, before any of its data.
          if (size_ > max_body_) return fail(i, 413, "chunk larger than max_body_bytes");
          break;
        }
        if (digits_ == 0) return fail(i, 400, "invalid chunk size");
        if (c == ';') {
          state_ = State::ext;
          ext_ = 1;
          ++counted_;
        } else if (c == '\r') {
          state_ = State::size_lf;
        } else {
          return fail(i, 400, "invalid chunk size");
        }
        break;
      }
      case State::ext:
        if (c == '\r') {
          state_ = State::size_lf;
          break;
        }
        if (!line_byte(c)) return fail(i, 400, "invalid byte in chunk extension");
        if (++ext_ > kMaxChunkExtBytes) return fail(i, 413, "chunk extension too long");
        ++counted_;
        break;
      case State::size_lf:
        if (c != '\n') return fail(i, 400, "chunk size line not ended by CRLF");
        if (counted_ + size_ > max_body_)
          return fail(i, 413, "chunked body larger than max_body_bytes");
        counted_ += size_;
        left_ = size_;
        state_ = size_ == 0 ? State::trailer : State::data;
        size_ = 0;
        digits_ = 0;
        break;
      case State::data: {
        // The only state with bulk bytes: skip them at once.
        uint64_t take = std::min<uint64_t>(left_, len - i);
        left_ -= take;
        i += static_cast<size_t>(take);
        if (left_ == 0) state_ = State::data_cr;
        continue;
      }
      case State::data_cr:
        if (c != '\r') return fail(i, 400, "chunk data not followed by CRLF");
        state_ = State::data_lf;
        break;
      case State::data_lf:
        if (c != '\n') return fail(i, 400, "chunk data not followed by CRLF");
        state_ = State::size;
        break;
      case State::trailer:
        if (c == '\r') {
          state_ = State::last_lf;
          break;
        }
        state_ = State::trailer_in;
        continue;  // the same byte starts a field line
      case State::trailer_in:
        if (++trailer_bytes_ > max_trailer_) return fail(i, 431, "trailer section too large");
        if (c == '\r') {
          state_ = State::trailer_lf;
          break;
        }
        if (!line_byte(c)) return fail(i, 400, "invalid byte in trailer section");
        break;
      case State::trailer_lf:
        if (c != '\n') return fail(i, 400, "CR not followed by LF in the trailer section");
        state_ = State::trailer;
        break;
      case State::last_lf:
        if (c != '\n') return fail(i, 400, "CR not followed by LF at the end of the body");
        state_ = State::done;
        return {Status::done, i + 1};
      case State::done:
      case State::error:
        return {Status::error, i};
    }
    ++i;
  }
  return {Status::more, len};
}

}  // namespace lb::http

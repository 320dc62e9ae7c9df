#pragma once
// Drives lb::http::MessageParser over one input the way corral's connections do
// (lb/net/client_conn.cpp, lb/net/upstream_conn.cpp): the bytes arrive in reads of given
// sizes, all from ONE contiguous buffer at increasing offsets (the parser's contract: a
// head stays in place until it is complete); `head` is followed by resume_after_head,
// `done` by a fresh parser or resume_after_message, a 1xx answer by the final one; the end
// of the input is the peer's FIN (finish()). Checks what must hold whatever the bytes:
// nothing consumed beyond what was given, views inside the head's bytes, a body sink that
// gets exactly the raw body of a non-chunked message and what dechunk() makes of a
// chunked one. The result is compared between differently split runs of the same bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lb/core/splitmix.h"
#include "lb/http/dechunk.h"
#include "lb/http/message_parser.h"
#include "tests/fuzz/fuzz_check.h"

namespace fuzz {

using lb::http::MessageParser;
using lb::http::ParseStatus;

struct ParseEvent {
  ParseStatus status = ParseStatus::need_more;
  size_t end = 0;    // offset in the input right after this event
  int code = 0;      // error: error_status(); head: the response's status code
  std::string head;  // head: a digest of what the parser saw (method, target, fields)
};

struct ParseRun {
  std::vector<ParseEvent> events;
  std::string body;  // every byte the body sink received, in order
};

// Called at each `head` with the parser and the head's bytes; returns skip_body for
// resume_after_head (a response to HEAD).
using HeadHook = std::function<bool(const MessageParser&, std::string_view head)>;

// Read sizes for a split run, drawn from `seed`: mostly small reads (a head cut anywhere),
// sometimes a large one.
inline std::vector<size_t> read_sizes(uint64_t seed, size_t total) {
  std::vector<size_t> reads;
  size_t sum = 0;
  while (sum < total) {
    seed = lb::splitmix64(seed);
    size_t n = (seed & 7) == 0 ? 1 + (seed >> 8) % 4096 : 1 + (seed >> 8) % 24;
    reads.push_back(n);
    sum += n;
  }
  return reads;
}

namespace detail {

inline void sink_append(void* ctx, const char* data, size_t len) {
  FUZZ_CHECK(len == 0 || data != nullptr, "a body piece has bytes");
  static_cast<std::string*>(ctx)->append(data, len);
}

inline bool inside(std::string_view view, std::string_view region) {
  if (view.empty()) return true;
  return view.data() >= region.data() && view.data() + view.size() <= region.data() + region.size();
}

inline std::string digest(const MessageParser& p, MessageParser::Kind kind) {
  std::string d;
  if (kind == MessageParser::Kind::request)
    d.append(p.method()).append(" ").append(p.target());
  else
    d.append(std::to_string(p.status_code())).append(" ").append(p.reason());
  d.append(" ").append(std::to_string(p.version_major()) + "." + std::to_string(p.version_minor()));
  d.append(p.chunked() ? " chunked" : "").append(p.keep_alive() ? " keep-alive" : "");
  d.append(p.upgrade() ? " upgrade" : "").append(" cl=" + std::to_string(p.content_length()));
  for (const lb::HeaderView& h : p.headers())
    d.append("\n").append(h.name).append(": ").append(h.value);
  return d;
}

// The body of one finished message: the sink saw exactly the raw bytes, or for a
// chunked body (as the head said: corral decides at the head), what dechunk() decodes
// whenever dechunk() accepts it.
inline void check_body(bool chunked, std::string_view raw, std::string_view sunk) {
  if (!chunked) {
    FUZZ_CHECK(raw == sunk, "the sink gets a non-chunked body byte for byte");
    return;
  }
  FUZZ_CHECK(sunk.size() <= raw.size(), "a decoded body is no larger than its framing");
  std::string decoded;
  if (lb::http::dechunk(raw, decoded))
    FUZZ_CHECK(decoded == sunk, "dechunk() and the parser decode a chunked body alike");
}

}  // namespace detail

// Parses `in` as one connection's byte stream arriving in `reads` (empty: one read).
// reset_between: a fresh parser state per message (corral's client side and a reused
// upstream connection) rather than resume_after_message.
inline ParseRun drive(MessageParser::Kind kind, std::string_view in, size_t max_head,
                      std::span<const size_t> reads, bool reset_between, const HeadHook& on_head) {
  MessageParser p(kind, max_head);
  ParseRun run;
  p.set_body_sink(&detail::sink_append, &run.body);
  size_t off = 0, avail = 0, ri = 0;
  size_t msg_start = 0, head_end = 0, body_mark = 0;
  bool in_body = false;
  bool chunked = false;  // as the head said
  auto next_read = [&] {
    size_t n = reads.empty() ? in.size() : reads[std::min(ri, reads.size() - 1)];
    ++ri;
    avail = std::min(in.size(), avail + std::max<size_t>(n, 1));
  };
  auto end_message = [&](size_t end) {
    detail::check_body(chunked, in.substr(head_end, end - head_end),
                       std::string_view(run.body).substr(body_mark));
  };
  next_read();
  for (size_t guard = 0;; ++guard) {
    FUZZ_CHECK(guard < 4 * in.size() + 64, "the parser makes progress");
    const size_t n = avail - off;
    lb::http::ParseResult r = p.feed(in.data() + off, n);
    FUZZ_CHECK(r.consumed <= n, "consumed <= len");
    off += r.consumed;
    switch (r.status) {
      case ParseStatus::need_more:
        FUZZ_CHECK(r.consumed == n, "need_more consumes every byte");
        if (avail < in.size()) {
          next_read();
          break;
        }
        if (in_body) {  // the peer's FIN: a read-until-close body ends here
          ParseStatus f = p.finish();
          FUZZ_CHECK(f == ParseStatus::done || f == ParseStatus::error, "finish: done or error");
          run.events.push_back({f, off, f == ParseStatus::error ? p.error_status() : 0, {}});
          if (f == ParseStatus::done) end_message(off);
        }
        return run;
      case ParseStatus::head: {
        FUZZ_CHECK(!in_body, "one head per message");
        FUZZ_CHECK(off - msg_start <= max_head || max_head == 0, "a head within the cap");
        std::string_view head = in.substr(msg_start, off - msg_start);
        FUZZ_CHECK(detail::inside(p.target(), head) && detail::inside(p.reason(), head),
                   "start-line views point into the head");
        for (const lb::HeaderView& h : p.headers())
          FUZZ_CHECK(detail::inside(h.name, head) && detail::inside(h.value, head),
                     "header views point into the head");
        int code = kind == MessageParser::Kind::response ? p.status_code() : 0;
        run.events.push_back({ParseStatus::head, off, code, detail::digest(p, kind)});
        bool skip = on_head ? on_head(p, head) : false;
        p.resume_after_head(skip);
        in_body = true;
        chunked = p.chunked();
        head_end = off;
        body_mark = run.body.size();
        break;
      }
      case ParseStatus::done: {
        FUZZ_CHECK(in_body, "a message ends after its head");
        end_message(off);
        run.events.push_back({ParseStatus::done, off, 0, {}});
        in_body = false;
        msg_start = off;
        int status = p.status_code();
        if (kind == MessageParser::Kind::response && status >= 100 && status < 200 &&
            status != 101) {
          p.resume_after_message();  // an interim answer: the final one follows
          break;
        }
        if (!p.keep_alive()) return run;
        if (reset_between) {
          p.reset(max_head);
          p.set_body_sink(&detail::sink_append, &run.body);
        } else {
          p.resume_after_message();
        }
        break;
      }
      case ParseStatus::upgrade:
        run.events.push_back({ParseStatus::upgrade, off, 0, {}});
        return run;
      case ParseStatus::error:
        FUZZ_CHECK(p.error_status() == 400 || p.error_status() == 413 || p.error_status() == 431 ||
                       p.error_status() == 505,
                   "errors are 400, 413, 431 or 505");
        run.events.push_back({ParseStatus::error, off, p.error_status(), {}});
        return run;
    }
  }
}

// Parses a head corral wrote back into `back` (sized to it); false when the written head
// would carry more fields than the parser's cap (corral adds up to two), where the
// parse-back would fail on the cap, not on the head. Checks that it parses back whole.
inline bool parse_back(MessageParser& back, const MessageParser& original, const std::string& out,
                       const char* what) {
  if (original.headers().size() + 2 > MessageParser::kMaxHeaders) return false;
  lb::http::ParseResult r = back.feed(out.data(), out.size());
  FUZZ_CHECK(r.status == lb::http::ParseStatus::head && r.consumed == out.size(), what);
  return true;
}

// The same bytes split differently must parse the same: same events at the same offsets,
// same heads, same body bytes. Errors are the exception: llhttp reports some malformed
// fields (an obs-fold after Connection or Transfer-Encoding) a few bytes earlier or later
// depending on where a read ended, and where a split run notices a head over the cap
// depends on the reads; so near the cap that is 400 in one run and 431 in the other. Both
// must still be errors at the same point of the stream: corral refuses and closes either way.
inline void check_same(const ParseRun& whole, const ParseRun& split) {
  FUZZ_CHECK(whole.events.size() == split.events.size(), "split runs see the same messages");
  for (size_t i = 0; i < whole.events.size(); ++i) {
    const ParseEvent& a = whole.events[i];
    const ParseEvent& b = split.events[i];
    FUZZ_CHECK(a.status == b.status, "split runs: same status");
    if (a.status == ParseStatus::error) continue;
    FUZZ_CHECK(a.code == b.code, "split runs: same status code");
    FUZZ_CHECK(a.end == b.end, "split runs: same offsets");
    FUZZ_CHECK(a.head == b.head, "split runs: same heads");
  }
  FUZZ_CHECK(whole.body == split.body, "split runs: same body bytes");
}

}  // namespace fuzz

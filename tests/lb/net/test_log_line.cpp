// Log lines (lb/net/log_line), access lines (lb/net/access_log) and the bounded queue
// between workers and the access-log writer (lb/net/line_queue).
#include <doctest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "lb/net/access_log.h"
#include "lb/net/line_queue.h"
#include "lb/net/log.h"
#include "lb/net/log_line.h"

using namespace lb::net;

namespace {

// 2026-11-27T20:01:02.123456Z in µs since the epoch.
constexpr int64_t kT = 1795809662123456;

std::string line(LogFormat f, std::string_view msg, std::initializer_list<LogField> fields) {
  std::string out;
  append_log_line(out, f, kT, "warn", msg, {fields.begin(), fields.size()});
  return out;
}

}  // namespace

TEST_CASE("log line: logfmt keys, quoting only where needed, one line whatever the value") {
  std::string l = line(LogFormat::logfmt, "backend down",
                       {{"pool", "kupo"}, {"backend", "kupo-2"}, {"n", "3", true}});
  CHECK(l ==
        "time=2026-11-27T20:01:02.123Z level=warn msg=\"backend down\" pool=kupo backend=kupo-2 "
        "n=3\n");
  // Quotes, backslashes, '=', newlines, CR, tab and other control characters are escaped,
  // so a value can neither end the line nor fake a key.
  std::string v;
  append_logfmt_value(v, "a \"b\" c\\d\ne\rf\tg\x01h\x7f");
  CHECK(v == "\"a \\\"b\\\" c\\\\d\\ne\\rf\\tg\\u0001h\\u007f\"");
  v.clear();
  append_logfmt_value(v, "k=v");
  CHECK(v == "\"k=v\"");
  v.clear();
  append_logfmt_value(v, "");
  CHECK(v == "\"\"");
  v.clear();
  append_logfmt_value(v, "caf\xc3\xa9");  // UTF-8 stays as is, bare
  CHECK(v == "caf\xc3\xa9");
  v.clear();
  append_logfmt_value(v, "bad\xff");  // not UTF-8: escaped, never copied raw
  CHECK(v == "\"bad\\xff\"");
  std::string evil = line(LogFormat::logfmt, "x\ntime=forged level=error", {{"k", "a\nb"}});
  CHECK(evil.find('\n') == evil.size() - 1);
}

TEST_CASE("log line: JSON with the same keys, valid for any bytes") {
  std::string l = line(LogFormat::json, "backend down",
                       {{"pool", "kupo"}, {"status", "503", true}, {"why", "say \"hi\"\n"}});
  CHECK(l ==
        "{\"time\":\"2026-11-27T20:01:02.123Z\",\"level\":\"warn\",\"msg\":\"backend down\","
        "\"pool\":\"kupo\",\"status\":503,\"why\":\"say \\\"hi\\\"\\n\"}\n");
  std::string v;
  append_json_string(v, "\x01\x1f\\/\xc3\xa9\xed\xa0\x80\xff");
  // Control characters as \u00XX; a surrogate encoded in UTF-8 and a stray byte are not
  // UTF-8: each of their bytes becomes U+FFFD.
  CHECK(v == "\"\\u0001\\u001f\\\\/\xc3\xa9\\ufffd\\ufffd\\ufffd\\ufffd\"");
  // An empty "number" is written as a string, never as a bare nothing.
  CHECK(line(LogFormat::json, "", {{"n", "", true}}).find("\"n\":\"\"") != std::string::npos);
}

TEST_CASE("access line: the fields, the session only as a keyed hash") {
  AccessRecord r;
  r.unix_us = kT;
  r.listener = "public";
  r.route = "/kupo/";
  r.pool = "kupo";
  r.backend = "kupo-1";
  r.method = "GET";
  r.remap = "down";
  r.status = 200;
  r.duration_us = 1234;
  r.bytes_in = 95;
  r.bytes_out = 310;
  r.has_session = true;
  r.session = {0x1122334455667788ull, 0x99aabbccddeeff00ull};
  r.slot = 140'000'123;
  std::string a;
  append_access_line(a, LogFormat::logfmt, r, 42);
  std::string h42 = session_hash_hex(r.session, 42);
  CHECK(h42.size() == 16);
  CHECK(a ==
        "time=2026-11-27T20:01:02.123Z level=info msg=request listener=public route=/kupo/ "
        "pool=kupo backend=kupo-1 method=GET status=200 duration_ms=1.234 bytes_in=95 "
        "bytes_out=310 remap=down session=" +
            h42 + " slot=140000123\n");
  // Another process (another seed) gives the same user another hash.
  CHECK(session_hash_hex(r.session, 43) != h42);
  CHECK(session_hash_hex({1, 2}, 42) != h42);
  std::string j;
  append_access_line(j, LogFormat::json, r, 42);
  CHECK(j.find("\"status\":200,\"duration_ms\":1.234,\"bytes_in\":95") != std::string::npos);
  CHECK(j.find("\"slot\":140000123}") != std::string::npos);
  // No session key: the field is empty, not a hash of nothing.
  r.has_session = false;
  r.slot = 0;  // and no slot known: empty too
  std::string n;
  append_access_line(n, LogFormat::logfmt, r, 42);
  CHECK(n.find("session=\"\" slot=\"\"\n") != std::string::npos);
  // With sticky.store the line ends with what the store did for the placement.
  r.store = "adopted";
  std::string st;
  append_access_line(st, LogFormat::logfmt, r, 42);
  CHECK(st.find("slot=\"\" store=adopted\n") != std::string::npos);
  std::string sj;
  append_access_line(sj, LogFormat::json, r, 42);
  CHECK(sj.find("\"store\":\"adopted\"}") != std::string::npos);
}

TEST_CASE("access line: a tunnel's record owns its text and adds what the tunnel carried") {
  std::string listener = "public";
  AccessRecord r;
  r.msg = "tunnel";
  r.listener = listener;
  r.duration_us = 500;
  r.bytes_in = 10;
  r.bytes_out = 20;
  OwnedAccessRecord owned(r);
  owned.taken_us = 1000;
  listener = "changed";  // the original text may go away
  AccessRecord later = owned.record(3000, 7, 8);
  CHECK(later.listener == "public");
  CHECK(later.duration_us == 2500);
  CHECK(later.bytes_in == 17);
  CHECK(later.bytes_out == 28);
}

TEST_CASE("line queue: bounded; a full queue drops and counts, never waits") {
  LineQueue q(3);
  CHECK(q.push("a"));
  CHECK(q.push("b"));
  CHECK(q.push("c"));
  CHECK(q.depth() == 3);
  CHECK_FALSE(q.push("d"));
  CHECK_FALSE(q.push("e"));
  CHECK(q.dropped() == 2);
  std::vector<std::string> out;
  q.pop_all(out, std::chrono::milliseconds(0));
  CHECK(out == std::vector<std::string>{"a", "b", "c"});
  CHECK(q.depth() == 0);
  CHECK(q.push("f"));  // room again
  CHECK(q.dropped() == 2);
  q.count_dropped(5);
  CHECK(q.dropped() == 7);
}

TEST_CASE("line queue: the consumer wakes for a line from another thread, and on wake()") {
  LineQueue q(16);
  std::vector<std::string> out;
  auto t0 = std::chrono::steady_clock::now();
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    q.push("late");
  });
  q.pop_all(out, std::chrono::seconds(5));
  producer.join();
  CHECK(out == std::vector<std::string>{"late"});
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(4));
  std::thread waker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    q.wake();
  });
  t0 = std::chrono::steady_clock::now();
  q.pop_all(out, std::chrono::seconds(5));
  waker.join();
  CHECK(out.empty());
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(4));
}

namespace {

// The stderr lines written while `f` runs (stderr goes to a temporary file meanwhile).
template <class F>
std::string captured_stderr(F f) {
  char path[] = "/tmp/corral-log-test-XXXXXX";
  int fd = mkstemp(path);
  int saved = dup(2);
  dup2(fd, 2);
  f();
  dup2(saved, 2);
  close(saved);
  std::string out(4096, '\0');
  ssize_t n = pread(fd, out.data(), out.size(), 0);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  close(fd);
  unlink(path);
  return out;
}

}  // namespace

TEST_CASE("log: backend and pool events carry their fields; the format and level apply") {
  std::string text = captured_stderr([] {
    log_backend(LogLevel::warn, "kupo", "kupo-2", "connect_failed (%s)", "127.0.0.1:1442");
    log_pool(LogLevel::warn, "bf", "upstream answered %d", 429);
    set_log_level(LogLevel::error);
    log_backend(LogLevel::warn, "kupo", "kupo-3", "dropped below the level");
    set_log_level(LogLevel::info);
    set_log_format(LogFormat::json);
    log_event(LogLevel::info, "pool has an up backend again",
              {{"pool", "kupo"}, {"up", "1", true}});
    set_log_format(LogFormat::logfmt);
  });
  CHECK(
      text.find(" level=warn msg=\"connect_failed (127.0.0.1:1442)\" pool=kupo backend=kupo-2\n") !=
      std::string::npos);
  CHECK(text.find(" level=warn msg=\"upstream answered 429\" pool=bf\n") != std::string::npos);
  CHECK(text.find("kupo-3") == std::string::npos);
  CHECK(text.find("\"level\":\"info\",\"msg\":\"pool has an up backend again\",\"pool\":\"kupo\","
                  "\"up\":1}\n") != std::string::npos);
}

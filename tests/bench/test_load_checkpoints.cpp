// corral-bench load's checkpoint regressions, the pure parts: the header value, the per-user
// table shared by the workers, the counts and how the report shows them.
#include <doctest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bench/load_checkpoints.h"
#include "bench/load_report.h"
#include "tests/bench/report_capture.h"

using namespace bench;

TEST_CASE("checkpoints: the header value is decimal slots below 2^63") {
  CHECK(parse_checkpoint("123456789") == 123456789u);
  CHECK(parse_checkpoint(" 42 ") == 42u);
  CHECK(parse_checkpoint("0") == 0u);
  CHECK(parse_checkpoint("9223372036854775807") == 9223372036854775807ull);  // 2^63 - 1
  CHECK_FALSE(parse_checkpoint("9223372036854775808"));  // the tracker's flag bit
  CHECK_FALSE(parse_checkpoint("99999999999999999999"));
  CHECK_FALSE(parse_checkpoint(""));
  CHECK_FALSE(parse_checkpoint("12a"));
  CHECK_FALSE(parse_checkpoint("-5"));
  CHECK_FALSE(parse_checkpoint("1 2"));
}

TEST_CASE("checkpoints: an answer older than what its user had seen at send is a regression") {
  UserCheckpoints t(3);
  CHECK(t.seen(0) == 0);
  CHECK(t.receive(0, t.seen(0), 100) == 0);
  CHECK(t.seen(0) == 100);
  CHECK(t.receive(0, t.seen(0), 120) == 0);  // forward
  CHECK(t.receive(0, t.seen(0), 120) == 0);  // level
  CHECK(t.receive(0, t.seen(0), 70) == 50);  // back 50 slots
  CHECK(t.seen(0) == 120);                   // an older answer never lowers the highest
  // Another user is independent.
  CHECK(t.receive(1, t.seen(1), 10) == 0);
  CHECK(t.seen(1) == 10);
  // Concurrent requests: sent when the user had seen 120, answered 110 after another answer
  // raised the highest to 130 — counted against what was seen at send (10 slots), not 20.
  const uint64_t at_send = t.seen(0);
  CHECK(t.receive(0, t.seen(0), 130) == 0);
  CHECK(t.receive(0, at_send, 110) == 10);
  // A request sent before the user had seen anything cannot regress.
  CHECK(t.receive(2, 0, 5) == 0);
  // Out of range users and flag-bit slots are ignored.
  CHECK(t.receive(3, 0, 5) == 0);
  CHECK(t.seen(3) == 0);
}

TEST_CASE("checkpoints: marking users keeps their slot; affected users are counted once") {
  UserCheckpoints t(4);
  t.receive(1, 0, 500);
  CHECK(t.users_affected() == 0);
  t.mark(1);
  t.mark(1);
  t.mark(3);
  CHECK(t.users_affected() == 2);
  CHECK(t.seen(1) == 500);  // the flag is not part of the slot
  CHECK(t.receive(1, t.seen(1), 600) == 0);
  CHECK(t.seen(1) == 600);
  CHECK(t.users_affected() == 2);
  CHECK(t.receive(1, t.seen(1), 590) == 10);
}

TEST_CASE("checkpoints: the highest survives racing workers") {
  UserCheckpoints t(1);
  std::vector<std::thread> threads;
  for (uint64_t w = 0; w < 4; ++w)
    threads.emplace_back([&t, w] {
      for (uint64_t i = 0; i < 20000; ++i) t.receive(0, 0, i * 4 + w);
    });
  for (auto& th : threads) th.join();
  CHECK(t.seen(0) == 19999 * 4 + 3);
}

TEST_CASE("checkpoints: counts add and merge; the report shows them") {
  RegressionCount a, b;
  a.add(0);
  a.add(30);
  a.add(0);
  b.add(200);
  b.add(5);
  CHECK(a.checked == 3);
  CHECK(a.answers == 1);
  CHECK(a.max_slots == 30);
  LoadResult w1, w2;
  w1.regressions = a;
  w2.regressions = b;
  LoadReport r;
  merge_result(r.merged, w1);
  merge_result(r.merged, w2);
  CHECK(r.merged.regressions.checked == 5);
  CHECK(r.merged.regressions.answers == 3);
  CHECK(r.merged.regressions.max_slots == 200);

  r.url = "http://127.0.0.1:1/";
  r.method = "GET";
  r.users = 7;
  // Not tracked (no users, or --ws): null in JSON, no line in the text.
  CHECK(capture(print_json, r).find(R"("checkpoint_regressions": null)") != std::string::npos);
  CHECK(capture(print_text, r).find("Checkpoints") == std::string::npos);
  r.checkpoints_tracked = true;
  r.regression_users = 2;
  CHECK(capture(print_json, r)
            .find(R"("checkpoint_regressions": {"answers": 3, "users": 2, )"
                  R"("max_slots": 200, "checked": 5})") != std::string::npos);
  const std::string text = capture(print_text, r);
  CHECK(text.find("3 regressions") != std::string::npos);
  CHECK(text.find("for 2 users, worst 200 slots") != std::string::npos);
}

#include <doctest.h>

#include "lb/core/refresh_batch.h"

using lb::RefreshBatch;
using lb::RefreshItem;

TEST_CASE("refresh_batch: full at max, taken in order, emptied") {
  RefreshBatch b(3);
  CHECK(b.empty());
  CHECK_FALSE(b.add(RefreshItem{lb::SessionKey{1, 1}, 1, 10}));
  CHECK_FALSE(b.add(RefreshItem{lb::SessionKey{2, 2}, 2, 20}));
  CHECK(b.add(RefreshItem{lb::SessionKey{3, 3}, 1, 30}));  // full: flush now
  CHECK(b.size() == 3);
  auto items = b.take(5);
  REQUIRE(items.size() == 3);
  CHECK(items[0] == RefreshItem{lb::SessionKey{1, 1}, 1, 10});
  CHECK(items[2].last_slot == 30);
  CHECK(b.empty());
  CHECK(b.take(6).empty());
}

TEST_CASE("refresh_batch: due after the interval since the last take, and only when non-empty") {
  RefreshBatch b;
  CHECK_FALSE(b.due(1'000'000, 1000));  // nothing to send
  b.add(RefreshItem{lb::SessionKey{1, 1}, 1, 0});
  CHECK(b.due(1'000, 1000));
  CHECK_FALSE(b.due(999, 1000));
  b.take(5'000);
  b.add(RefreshItem{lb::SessionKey{1, 1}, 1, 0});
  CHECK_FALSE(b.due(5'999, 1000));
  CHECK(b.due(6'000, 1000));
  for (int i = 0; i < 254; ++i) CHECK_FALSE(b.add(RefreshItem{}));
  CHECK(b.add(RefreshItem{}));  // the default bound: 256
}

#include <doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lb/core/pin_snapshot.h"
#include "lb/core/session_table.h"
#include "lb/net/state_file.h"

namespace {

using lb::BackendRef;
using lb::Pin;
using lb::SessionKey;
using lb::SessionTable;
using lb::net::load_pins;
using lb::net::LoadReport;
using lb::net::save_pins;

constexpr uint64_t kTtl = 3600'000;

// A scratch directory removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/corral-state-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const char* name) const { return (path / name).string(); }
};

SessionKey key_n(uint64_t n) { return SessionKey{n * 0x9E3779B97F4A7C15ull + 1, n + 7}; }

// Names by ref as the registry would hold them; a fresh process may number them
// differently, which is why the file stores names.
const std::vector<std::string> kNames = {"kupo/k1", "kupo/k2", "ogmios/o1"};

std::string name_of(BackendRef ref) { return ref < kNames.size() ? kNames[ref] : ""; }

// The "restarted" process: same names, different refs (reversed), and no ogmios/o1 unless
// asked.
std::optional<BackendRef> resolve_reversed(std::string_view name, bool with_o1 = true) {
  if (name == "kupo/k1") return 12;
  if (name == "kupo/k2") return 11;
  if (name == "ogmios/o1" && with_o1) return 10;
  return std::nullopt;
}

struct Snapshot {
  Pin pin;
  uint64_t last_seen;
};

std::map<std::pair<uint64_t, uint64_t>, Snapshot> contents(const SessionTable& t) {
  std::map<std::pair<uint64_t, uint64_t>, Snapshot> out;
  t.for_each([&](const SessionKey& k, const Pin& p, uint64_t seen) {
    out[{k.lo, k.hi}] = Snapshot{p, seen};
  });
  return out;
}

// The wall clock at save and load in the tests that are not about downtime.
constexpr uint64_t kWall = 1'700'000'000'000;

}  // namespace

TEST_CASE("state file: save then load restores every pin, slot and idle time") {
  TempDir dir;
  std::string path = dir.file("pins.bin");
  SessionTable before(100'000, kTtl);
  const uint64_t t0 = 1'000'000;
  const size_t n = 3000;
  for (size_t i = 0; i < n; ++i) {
    before.pin(key_n(i), static_cast<BackendRef>(i % 3), t0 + i);
    if (i % 2) before.record_slot(key_n(i), 100'000 + i);
  }
  const uint64_t t_save = t0 + 10'000;
  CHECK(save_pins(path, before, name_of, t_save, kWall) == "");
  CHECK(std::filesystem::exists(path));
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));

  // The new process's monotonic clock starts elsewhere.
  SessionTable after(100'000, kTtl);
  const uint64_t t_load = 50'000'000;
  LoadReport rep = load_pins(
      path, after, [](std::string_view s) { return resolve_reversed(s); }, t_load, kWall, kTtl);
  CHECK(rep.error.empty());
  CHECK_FALSE(rep.missing);
  CHECK(rep.loaded == n);
  CHECK(rep.dropped_unknown == 0);
  CHECK(rep.dropped_expired == 0);
  CHECK(after.stats().size == n);

  auto got = contents(after);
  REQUIRE(got.size() == n);
  for (size_t i = 0; i < n; ++i) {
    SessionKey k = key_n(i);
    const Snapshot& s = got.at({k.lo, k.hi});
    CHECK(s.pin.backend == static_cast<BackendRef>(12 - i % 3));
    CHECK(s.pin.last_slot == (i % 2 ? 100'000 + i : 0));
    uint64_t idle_before = t_save - (t0 + i);
    CHECK(t_load - s.last_seen == idle_before);
  }
  CHECK(after.pinned(12) == n / 3);

  // LRU order survives: a bound that keeps a third evicts the coldest (oldest) pins.
  SessionTable small(n / 3, kTtl, 1);
  load_pins(
      path, small, [](std::string_view s) { return resolve_reversed(s); }, t_load, kWall, kTtl);
  auto kept = contents(small);
  CHECK(kept.size() == n / 3);
  for (size_t i = n - n / 3; i < n; ++i) CHECK(kept.count({key_n(i).lo, key_n(i).hi}) == 1);
  CHECK(small.stats().evicted == n - n / 3);
}

TEST_CASE("state file: unknown backends and expired pins are dropped and counted") {
  TempDir dir;
  std::string path = dir.file("pins.bin");
  SessionTable before(1000, kTtl);
  const uint64_t now = 10'000'000;
  before.pin(key_n(1), 0, now - 100);         // kupo/k1, fresh
  before.pin(key_n(2), 2, now - 200);         // ogmios/o1: removed from the config
  before.pin(key_n(3), 1, now - (kTtl - 1));  // just within ttl
  before.pin(key_n(4), 1, now - 1);
  before.pin(key_n(5), 0, now - 50);
  REQUIRE(save_pins(path, before, name_of, now, kWall) == "");

  // A shorter ttl after the restart expires key 3.
  SessionTable after(1000, kTtl);
  LoadReport rep = load_pins(
      path, after, [](std::string_view s) { return resolve_reversed(s, false); }, 5, kWall, 1000);
  CHECK(rep.error.empty());
  CHECK(rep.loaded == 3);
  CHECK(rep.dropped_unknown == 1);
  CHECK(rep.dropped_expired == 1);
  auto got = contents(after);
  CHECK(got.size() == 3);
  CHECK(got.count({key_n(2).lo, key_n(2).hi}) == 0);
  CHECK(got.count({key_n(3).lo, key_n(3).hi}) == 0);
  // now (5) - idle (100) clamps at 0.
  CHECK(got.at({key_n(1).lo, key_n(1).hi}).last_seen == 0);
  CHECK(got.at({key_n(4).lo, key_n(4).hi}).last_seen == 4);

  // Idle exactly ttl counts as expired.
  SessionTable exact(1000, kTtl);
  LoadReport rep2 = load_pins(
      path, exact, [](std::string_view s) { return resolve_reversed(s); }, now, kWall, kTtl - 1);
  CHECK(rep2.dropped_expired == 1);
  CHECK(rep2.loaded == 4);
}

TEST_CASE("state file: backends name_of cannot name are not saved") {
  TempDir dir;
  std::string path = dir.file("pins.bin");
  SessionTable before(1000, kTtl);
  before.pin(key_n(1), 0, 10);
  before.pin(key_n(2), 99, 10);  // no name
  REQUIRE(save_pins(path, before, name_of, 20, kWall) == "");
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  lb::DecodeResult d = lb::decode_pins(bytes);
  REQUIRE(d.error.empty());
  REQUIRE(d.pins.size() == 1);
  CHECK(d.pins[0].backend == "kupo/k1");
  CHECK(d.pins[0].last_seen_unix_ms == kWall - 10);
}

TEST_CASE("state file: a missing file is not an error") {
  TempDir dir;
  SessionTable t(1000, kTtl);
  LoadReport rep = load_pins(
      dir.file("absent.bin"), t, [](std::string_view s) { return resolve_reversed(s); }, 0, kWall,
      kTtl);
  CHECK(rep.missing);
  CHECK(rep.error.empty());
  CHECK(rep.loaded == 0);
}

TEST_CASE("state file: a corrupt or truncated file is reported and leaves the table alone") {
  TempDir dir;
  std::string path = dir.file("pins.bin");
  SessionTable before(1000, kTtl);
  for (uint64_t i = 0; i < 10; ++i) before.pin(key_n(i), 0, 100);
  REQUIRE(save_pins(path, before, name_of, 200, kWall) == "");
  std::string good;
  {
    std::ifstream in(path, std::ios::binary);
    good.assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  auto check_ignored = [&](const std::string& bytes, const std::string& msg) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    SessionTable t(1000, kTtl);
    t.pin(key_n(500), 1, 50);
    LoadReport rep = load_pins(
        path, t, [](std::string_view s) { return resolve_reversed(s); }, 1000, kWall, kTtl);
    INFO(rep.error);
    CHECK_FALSE(rep.missing);
    CHECK(rep.error.find(path) != std::string::npos);
    CHECK(rep.error.find(msg) != std::string::npos);
    CHECK(rep.loaded == 0);
    auto got = contents(t);
    REQUIRE(got.size() == 1);
    CHECK(got.begin()->second.pin.backend == 1);
    CHECK(got.begin()->second.last_seen == 50);
  };
  std::string flipped = good;
  flipped[flipped.size() - 20] ^= 0x10;
  check_ignored(flipped, "checksum mismatch");
  check_ignored(good.substr(0, good.size() - 3), "truncated at byte");
  check_ignored("", "truncated at byte 0");
  check_ignored("garbage", "not a corral state file");

  // A directory in the file's place is an error too, not "missing".
  SessionTable t(1000, kTtl);
  LoadReport rep = load_pins(
      dir.path.string(), t, [](std::string_view s) { return resolve_reversed(s); }, 0, kWall, kTtl);
  CHECK_FALSE(rep.missing);
  CHECK_FALSE(rep.error.empty());
}

TEST_CASE("state file: saving replaces the old file and leaves no .tmp behind") {
  TempDir dir;
  std::string path = dir.file("pins.bin");
  SessionTable t(1000, kTtl);
  t.pin(key_n(1), 0, 10);
  REQUIRE(save_pins(path, t, name_of, 20, kWall) == "");
  t.pin(key_n(2), 1, 15);
  REQUIRE(save_pins(path, t, name_of, 20, kWall) == "");
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  SessionTable after(1000, kTtl);
  LoadReport rep = load_pins(
      path, after, [](std::string_view s) { return resolve_reversed(s); }, 20, kWall, kTtl);
  CHECK(rep.loaded == 2);
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir.path)) files.push_back(e.path());
  CHECK(files.size() == 1);
}

TEST_CASE("state file: writing into a missing directory is an error") {
  TempDir dir;
  std::string path = (dir.path / "no" / "such" / "pins.bin").string();
  SessionTable t(1000, kTtl);
  t.pin(key_n(1), 0, 10);
  std::string err = save_pins(path, t, name_of, 20, kWall);
  CHECK(err.find("cannot create") != std::string::npos);
  CHECK(err.find("No such file or directory") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST_CASE("state file: the time corral was stopped counts toward ttl") {
  TempDir dir;
  std::string path = dir.file("pins.bin");
  SessionTable before(1000, kTtl);
  before.pin(key_n(1), 0, 9'000);  // idle 1 s at save
  before.pin(key_n(2), 1, 6'000);  // idle 4 s at save
  REQUIRE(save_pins(path, before, name_of, 10'000, kWall) == "");
  auto resolve = [](std::string_view s) { return resolve_reversed(s); };

  // Stopped 3 s, ttl 5 s: key 1 idle 4 s (kept), key 2 idle 7 s (gone).
  SessionTable after(1000, kTtl);
  LoadReport rep = load_pins(path, after, resolve, 50, kWall + 3'000, 5'000);
  CHECK(rep.loaded == 1);
  CHECK(rep.dropped_expired == 1);
  auto got = contents(after);
  REQUIRE(got.count({key_n(1).lo, key_n(1).hi}) == 1);
  // Restored on the new monotonic clock as now - 4 s, clamped at 0.
  CHECK(got.at({key_n(1).lo, key_n(1).hi}).last_seen == 0);
  SessionTable later(1000, kTtl);
  load_pins(path, later, resolve, 100'000, kWall + 3'000, 5'000);
  CHECK(contents(later).at({key_n(1).lo, key_n(1).hi}).last_seen == 96'000);

  // A longer stop expires both; a clock stepped back expires none.
  SessionTable gone(1000, kTtl);
  CHECK(load_pins(path, gone, resolve, 50, kWall + 8'000, 5'000).dropped_expired == 2);
  SessionTable back(1000, kTtl);
  CHECK(load_pins(path, back, resolve, 50, kWall - 60'000, 5'000).loaded == 2);
}

TEST_CASE("state file: daily quota counts are saved with the pins and loaded back") {
  TempDir dir;
  std::string path = dir.file("pins");
  SessionTable t(100, kTtl);
  t.pin(key_n(1), 0, 1000);
  const std::vector<lb::QuotaRecord> quotas = {{"blockfrost", 20'784, 4'321}};
  REQUIRE(save_pins(path, t, name_of, 1000, 2'000'000, quotas).empty());
  SessionTable back(100, kTtl);
  LoadReport r = load_pins(
      path, back, [](std::string_view n) { return resolve_reversed(n); }, 1000, 2'000'000, kTtl);
  REQUIRE(r.error.empty());
  CHECK(r.loaded == 1);
  CHECK(r.quotas == quotas);
  // Saving without counts (no rate-limited pool) stores none.
  REQUIRE(save_pins(path, t, name_of, 1000, 2'000'000).empty());
  SessionTable again(100, kTtl);
  LoadReport none = load_pins(
      path, again, [](std::string_view n) { return resolve_reversed(n); }, 1000, 2'000'000, kTtl);
  REQUIRE(none.error.empty());
  CHECK(none.quotas.empty());
}

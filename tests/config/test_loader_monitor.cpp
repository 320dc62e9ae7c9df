// monitor: {disk_paths: [...]}: the filesystems /metrics reports (config/read_monitor.cpp).
#include <doctest.h>

#include <string>
#include <vector>

#include "config/loader.h"
#include "tests/config/loader_helpers.h"

using config::LoadResult;
using namespace loader_test;

namespace {

// A valid file with `top` as its first line(s).
std::string with_top(const std::string& top) {
  return top +
         "\nlisteners: [{name: p, listen: 127.0.0.1:8080, routes: [{prefix: /, pool: k}]}]\n"
         "pools: {k: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}\n";
}

using Paths = std::vector<std::string>;

}  // namespace

TEST_CASE("monitor: no key and no state_file watches no disk") {
  LoadResult r = config::load_string(with_top(""), "t.yaml");
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  CHECK(r.config->monitor.disk_paths.empty());
}

TEST_CASE("monitor: by default the state file's directory is watched") {
  TempDir dir;
  LoadResult r =
      config::load_string(with_top("state_file: " + (dir.path / "pins").string()), "t.yaml");
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  CHECK(r.config->monitor.disk_paths == Paths{dir.path.string()});
}

TEST_CASE("monitor: {} without disk_paths keeps the state file's directory") {
  TempDir dir;
  std::string state = "state_file: " + (dir.path / "pins").string() + "\n";
  LoadResult r = config::load_string(with_top(state + "monitor: {}"), "t.yaml");
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  CHECK(r.config->monitor.disk_paths == Paths{dir.path.string()});
}

TEST_CASE("monitor: disk_paths listed replace the default; [] watches nothing") {
  TempDir dir, other;
  std::string state = "state_file: " + (dir.path / "pins").string() + "\n";
  LoadResult r = config::load_string(
      with_top(state + "monitor: {disk_paths: [" + other.path.string() + ", /tmp]}"), "t.yaml");
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  CHECK(r.config->monitor.disk_paths == Paths{other.path.string(), "/tmp"});
  LoadResult none = config::load_string(with_top(state + "monitor: {disk_paths: []}"), "t.yaml");
  REQUIRE(none.config.has_value());
  CHECK(none.config->monitor.disk_paths.empty());
}

TEST_CASE("monitor: a relative path resolves against the config file's directory") {
  TempDir dir;
  std::filesystem::create_directory(dir.path / "data");
  std::string file = dir.write("c.yaml", with_top("monitor: {disk_paths: [data]}"));
  LoadResult r = config::load_file(file);
  INFO(dump(r));
  REQUIRE(r.config.has_value());
  CHECK(r.config->monitor.disk_paths == Paths{(dir.path / "data").string()});
}

TEST_CASE("monitor: a path that does not exist is an error naming file, line, key and value") {
  LoadResult r = load(R"(
listeners: [{name: p, listen: 127.0.0.1:8080, routes: [{prefix: /, pool: k}]}]
pools: {k: {kind: kupo, backends: [{name: k, address: 127.0.0.1:1442}]}}
monitor:
  disk_paths: [/tmp, /no/such/corral/dir]
)");
  check_single(r, 4, 22, "monitor.disk_paths[1]", "'/no/such/corral/dir' does not exist");
}

TEST_CASE("monitor: wrong shapes and unknown keys are errors") {
  LoadResult notlist = config::load_string(with_top("monitor: {disk_paths: /tmp}"), "t.yaml");
  CHECK_FALSE(notlist.config.has_value());
  LoadResult unknown = config::load_string(with_top("monitor: {disk_path: [/tmp]}"), "t.yaml");
  INFO(dump(unknown));
  REQUIRE(unknown.errors.size() == 1);
  CHECK(unknown.errors[0].message.find("unknown key 'disk_path'") != std::string::npos);
  LoadResult twice = config::load_string(with_top("monitor: {disk_paths: [/tmp, /tmp]}"), "t.yaml");
  REQUIRE(twice.errors.size() == 1);
  CHECK(twice.errors[0].message.find("listed twice") != std::string::npos);
}

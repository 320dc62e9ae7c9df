// The log: section and a route's expose_backend (README "Logs").
#include <doctest.h>

#include <string>

#include "config/diff.h"
#include "config/loader.h"
#include "tests/config/loader_helpers.h"

using config::LoadResult;
using namespace loader_test;

namespace {

// A valid file; `log` is the top-level line 1, `route` is added inside the route mapping
// (line 5).
std::string file(const std::string& log, const std::string& route = "") {
  return log +
         "\nlisteners:\n  - name: public\n    listen: 127.0.0.1:8080\n"
         "    routes: [{prefix: /, pool: kupo" +
         route +
         "}]\npools:\n  kupo:\n    kind: kupo\n    backends: [{name: k, address: "
         "127.0.0.1:1442}]\n";
}

LoadResult load_text(const std::string& s) { return config::load_string(s, "t.yaml"); }

}  // namespace

TEST_CASE("loader log: defaults, every key read, and what a reload diff says") {
  LoadResult none = load_text(file(""));
  INFO(dump(none));
  REQUIRE(none.config.has_value());
  CHECK(none.config->log.format == config::LogFormat::logfmt);
  CHECK(none.config->log.level == config::LogLevel::info);
  CHECK_FALSE(none.config->log.access);
  CHECK(none.config->log.access_file.empty());

  TempDir dir;
  LoadResult all = load_text(file("log: {format: json, level: warn, access: true, access_file: " +
                                  (dir.path / "access.log").string() + "}"));
  INFO(dump(all));
  REQUIRE(all.config.has_value());
  CHECK(all.config->log.format == config::LogFormat::json);
  CHECK(all.config->log.level == config::LogLevel::warn);
  CHECK(all.config->log.access);
  CHECK(all.config->log.access_file == (dir.path / "access.log").string());
  std::string changes = config::join_changes(config::describe_changes(*none.config, *all.config));
  CHECK(changes.find("log changed") != std::string::npos);
}

TEST_CASE("loader log: bad values name the file, line, key and value") {
  check_single(load_text(file("log: {format: xml}")), 1, 15, "log.format",
               "'xml' is not a log format; expected logfmt or json");
  check_single(load_text(file("log: {level: loud}")), 1, 14, "log.level",
               "'loud' is not a log level; expected debug, info, warn or error");
  check_single(load_text(file("log: {access: maybe}")), 1, 15, "log.access", "");
  check_single(load_text(file("log: {acces: true}")), 1, 7, "log.acces", "unknown key 'acces'");
  check_single(load_text(file("log: {access: true, access_file: /nonexistent-dir/a.log}")), 1, 34,
               "log.access_file", "directory '/nonexistent-dir' of access_file");
  TempDir dir;
  check_single(load_text(file("log: {access: true, access_file: " + dir.path.string() + "}")), 1,
               34, "log.access_file", "is a directory");
  // Off, the file is not opened, so its directory is not required (DESIGN.md's sample).
  CHECK(load_text(file("log: {access: false, access_file: /nonexistent-dir/a.log}"))
            .config.has_value());
}

TEST_CASE("loader log: expose_backend on a route is a header name") {
  LoadResult on = load_text(file("", ", expose_backend: X-Corral-Backend"));
  INFO(dump(on));
  REQUIRE(on.config.has_value());
  CHECK(on.config->listeners[0].routes[0].expose_backend == "X-Corral-Backend");
  LoadResult off = load_text(file(""));
  REQUIRE(off.config.has_value());
  CHECK(off.config->listeners[0].routes[0].expose_backend.empty());
  check_single(load_text(file("", ", expose_backend: \"X Corral\"")), 5, 54,
               "listeners[0].routes[0].expose_backend", "'X Corral' is not a valid header name");
  check_single(load_text(file("", ", expose_backend: \"X:y\"")), 5, 54,
               "listeners[0].routes[0].expose_backend", "not a valid header name");
  // A change of the header is a change of the route.
  std::string changes = config::join_changes(config::describe_changes(*off.config, *on.config));
  CHECK(changes.find("route") != std::string::npos);
}

// Issue 14: YAML mistakes get a message that names the problem and echoes what was
// written, at FILE:LINE:COL (1-based, as editors show), instead of yaml-cpp's "end of map
// not found".
#include <doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "config/duration.h"
#include "config/loader.h"
#include "config/size.h"
#include "config/yaml_source.h"
#include "tests/config/loader_helpers.h"

using config::LoadResult;
using loader_test::dump;

namespace {

// A valid file of eight lines; cases replace or append lines.
const std::vector<std::string> kBase = {
    "listeners:",                                          // 1
    "  - name: public",                                    // 2
    "    listen: 127.0.0.1:8080",                          // 3
    "    routes: [{prefix: /, pool: kupo}]",               // 4
    "pools:",                                              // 5
    "  kupo:",                                             // 6
    "    kind: kupo",                                      // 7
    "    backends: [{name: k, address: 127.0.0.1:1442}]",  // 8
};

// kBase with 1-based line `n` replaced by `text` (n == 0: unchanged), then `tail`.
std::string file_with(int n, const std::string& text, const std::string& tail = "") {
  std::string out;
  for (size_t i = 0; i < kBase.size(); ++i)
    out += (static_cast<int>(i) + 1 == n ? text : kBase[i]) + "\n";
  return out + tail;
}

LoadResult load(const std::string& text) { return config::load_string(text, "cfg.yaml"); }

// The only error: at line:col, naming `key`, its full "FILE:LINE:COL: KEY: ..." text
// containing `message`.
void check_one(const LoadResult& r, int line, int col, const std::string& key,
               const std::string& message) {
  INFO(dump(r));
  CHECK_FALSE(r.config.has_value());
  REQUIRE(r.errors.size() == 1);
  const config::ConfigError& e = r.errors[0];
  CHECK(e.file == "cfg.yaml");
  CHECK(e.line == line);
  CHECK(e.column == col);
  CHECK(e.key == key);
  std::string prefix = "cfg.yaml:" + std::to_string(line) + ":" + std::to_string(col) + ": " +
                       (key.empty() ? "" : key + ": ");
  CHECK(e.str().rfind(prefix, 0) == 0);
  CHECK(e.message.find(message) != std::string::npos);
}

// 1-based column of `needle` in `line`.
int column_of(const std::string& line, const std::string& needle) {
  size_t at = line.find(needle);
  REQUIRE(at != std::string::npos);
  return static_cast<int>(at) + 1;
}

}  // namespace

TEST_CASE("config errors: the base file loads") {
  LoadResult r = load(file_with(0, ""));
  INFO(dump(r));
  CHECK(r.config.has_value());
}

TEST_CASE("config errors: a tab in indentation is named at its line and column") {
  const std::string kTab = "tab character in indentation; YAML indents with spaces only";
  SUBCASE("where yaml-cpp fails (it would say 'illegal map value')") {
    LoadResult r = load(file_with(3, "\tlisten: 127.0.0.1:8080"));
    check_one(r, 3, 1, "", kTab);
    CHECK(r.errors[0].message.find("the line reads \"\\tlisten: 127.0.0.1:8080\"") !=
          std::string::npos);
  }
  SUBCASE("after spaces: located at the tab") {
    check_one(load(file_with(7, "    \tkind: kupo")), 7, 5, "", kTab);
  }
  SUBCASE("where yaml-cpp accepts it (a flow mapping continued on a tab-indented line)") {
    std::string flow = "pools: {kupo: {kind: kupo,\n";
    // Lines 5-8 replaced by one flow mapping over two lines.
    std::string head;
    for (int i = 0; i < 4; ++i) head += kBase[static_cast<size_t>(i)] + "\n";
    std::string with_spaces =
        head + flow + "    backends: [{name: k, address: 127.0.0.1:1442}]}}\n";
    std::string with_tab = head + flow + "\tbackends: [{name: k, address: 127.0.0.1:1442}]}}\n";
    CHECK(load(with_spaces).config.has_value());
    check_one(load(with_tab), 6, 1, "", kTab);
  }
  SUBCASE("a blank line holding a tab") {
    check_one(load(file_with(5, "pools:\n\t")), 6, 1, "", kTab);
  }
  SUBCASE("tabs after content, in comments and in quoted strings are fine") {
    LoadResult r = load(file_with(7, "    kind: kupo\t# a tab after content", "#\ta comment\n"));
    INFO(dump(r));
    CHECK(r.config.has_value());
    CHECK_FALSE(config::detail::find_tab_indent("a: \"x\ty\"\nb: 'p\tq'\n").has_value());
  }
  SUBCASE("block scalars may hold tabs; the line after one may not") {
    CHECK_FALSE(config::detail::find_tab_indent("a: |\n  x\n  \ty\n\nb: 2\n").has_value());
    auto t = config::detail::find_tab_indent("a: |-\n  x\n\tb: 2\n");
    REQUIRE(t.has_value());
    CHECK(t->line == 3);
    CHECK(t->column == 1);
  }
}

TEST_CASE("config errors: an unquoted IPv6 address is named, keyed and echoed") {
  SUBCASE("in a flow mapping: yaml-cpp fails ('end of map flow not found')") {
    std::string line = "    backends: [{name: a, address: [::1]:1442}]";
    check_one(load(file_with(8, line)), 8, column_of(line, "[::1]"), "address",
              "IPv6 address must be quoted in YAML: \"[::1]:1442\"");
  }
  SUBCASE("in block style, a listen address") {
    std::string line = "    listen: [::1]:8080";
    check_one(load(file_with(3, line)), 3, 13, "listen",
              "IPv6 address must be quoted in YAML: \"[::1]:8080\"");
  }
  SUBCASE("several are all reported") {
    LoadResult r =
        load(file_with(3, "    listen: [::1]:8080", "admin: {listen: [fe80::1]:9901}\n"));
    INFO(dump(r));
    REQUIRE(r.errors.size() == 2);
    CHECK(r.errors[1].str() ==
          "cfg.yaml:9:17: listen: IPv6 address must be quoted in YAML: "
          "\"[fe80::1]:9901\"");
  }
  SUBCASE("parsed as a list when there is no port") {
    std::string line = "    backends: [{name: a, address: [::1]}]";
    check_one(load(file_with(8, line)), 8, column_of(line, "[::1]"),
              "pools.kupo.backends[0].address", "IPv6 address must be quoted in YAML: \"[::1]\"");
  }
  SUBCASE("without brackets: parsed as a string, the fix is spelled out") {
    std::string line = "    backends: [{name: a, address: ::1:1442}]";
    check_one(load(file_with(8, line)), 8, column_of(line, "::1:1442"),
              "pools.kupo.backends[0].address",
              "IPv6 address must be bracketed, and quoted in YAML: \"::1:1442\" (write "
              "\"[::1]:1442\")");
  }
  SUBCASE("quoted, it loads") {
    LoadResult r = load(file_with(8, "    backends: [{name: a, address: \"[::1]:1442\"}]"));
    INFO(dump(r));
    REQUIRE(r.config.has_value());
    CHECK(r.config->pools.at(0).backends.at(0).address.host == "::1");
  }
  SUBCASE("an IPv4 address in brackets and other lists are not mistaken for one") {
    CHECK(config::detail::find_unquoted_ipv6("a: [127.0.0.1:80]\nb: [GET, HEAD]\nc: '[::1]:1'\n")
              .empty());
  }
  SUBCASE("another address error echoes the value") {
    check_one(load(file_with(8, "    backends: [{name: a, address: 127.0.0.1:99999}]")), 8, 35,
              "pools.kupo.backends[0].address",
              "invalid address \"127.0.0.1:99999\": port must be 1..65535");
  }
}

TEST_CASE("config errors: a bad duration echoes the value and lists the units") {
  const std::string kUnits =
      "; expected a whole number with a unit: ms, s, m, h or d (e.g. 250ms, 10s, 5m)";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"5 mins", "no space is allowed between the number and the unit"},
      {"-5s", "a duration cannot be negative"},
      {"+5s", "no sign is allowed"},
      {"1.5s", "whole numbers only (1500ms, not 1.5s)"},
      {"99999999999999999999s", "the value is too large"},
      {"213503982335d", "the value is too large"},
      {"1h30m", "one unit only (90m, not 1h30m)"},
      {"10sec", "unknown unit \"sec\""},
      {"30", "the unit is missing (a bare number is not a duration)"},
      {"soon", "it must start with a whole number"},
  };
  // No structured binding: INFO captures by reference, which clang 14 refuses for one.
  for (const auto& c : cases) {
    const std::string& value = c.first;
    const std::string& why = c.second;
    INFO(value);
    LoadResult r = load(file_with(0, "", "sticky:\n  ttl: " + value + "\n"));
    check_one(r, 10, 8, "sticky.ttl", "bad duration \"" + value + "\": " + why + kUnits);
  }
  check_one(load(file_with(0, "", "sticky: {ttl: 0s}\n")), 9, 15, "sticky.ttl",
            "bad duration \"0s\": expected a duration greater than zero");
  check_one(load(file_with(0, "", "sticky: {ttl: [1s]}\n")), 9, 15, "sticky.ttl",
            "bad duration: got a list" + kUnits);
}

TEST_CASE("config errors: duration_problem explains every refusal, and only refusals") {
  for (const char* bad : {"", "ms", "10", "-1s", "1.5s", "1 s", "1sec", "1S", "1h30m", "0x10s"}) {
    INFO(bad);
    CHECK_FALSE(config::parse_duration_ms(bad).has_value());
    CHECK_FALSE(config::duration_problem(bad).empty());
  }
  for (const char* good : {"250ms", "2s", "5m", "1h", "1d"})
    CHECK(config::duration_problem(good).empty());
}

TEST_CASE("config errors: a bad size echoes the value and lists the units") {
  const std::string kUnits =
      "; expected plain bytes or a whole number with a unit: KB, MB or GB (powers of 1024; e.g. "
      "16384, 64KB, 1MB)";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"10 MB", "no space is allowed between the number and the unit"},
      {"16kb", "units are upper-case: KB, MB, GB"},
      {"64KiB", "write KB, MB or GB (corral's units are already powers of 1024)"},
      {"-1", "a size cannot be negative"},
      {"1.5MB", "whole numbers only (1536KB, not 1.5MB)"},
      {"99999999999999999999", "the value is too large"},
      {"99999999999999999GB", "the value is too large"},
      {"10TB", "unknown unit \"TB\""},
      {"100B", "plain bytes take no unit (16384, not 16384B)"},
      {"big", "it must start with a whole number"},
  };
  // No structured binding: INFO captures by reference, which clang 14 refuses for one.
  for (const auto& c : cases) {
    const std::string& value = c.first;
    const std::string& why = c.second;
    INFO(value);
    LoadResult r = load(file_with(0, "", "limits:\n  max_body_bytes: " + value + "\n"));
    check_one(r, 10, 19, "limits.max_body_bytes", "bad size \"" + value + "\": " + why + kUnits);
  }
  check_one(load(file_with(0, "", "limits: {buffer_bytes: 1GB}\n")), 9, 24, "limits.buffer_bytes",
            "bad size \"1GB\": 1073741824 bytes is out of range; expected a size from 1024 to "
            "67108864 bytes");
  for (const char* good : {"16384", "1_048_576", "16KB", "1MB", "1GB"}) {
    INFO(good);
    CHECK(config::size_problem(good).empty());
    CHECK(config::parse_size_bytes(good).has_value());
  }
}

TEST_CASE("config errors: yaml-cpp's parse errors are explained, with the line echoed") {
  SUBCASE("a key that does not line up") {
    check_one(load(file_with(8, "   backends: [{name: k, address: 127.0.0.1:1442}]")), 8, 4, "",
              "invalid YAML: this line does not line up with the keys above it (check its "
              "indentation), or a value starting with '[' or '{' needs quotes [yaml-cpp: end of "
              "map not found]; the line reads \"backends: [{name: k, address: 127.0.0.1:1442}]\"");
  }
  SUBCASE("an unclosed list") {
    LoadResult r = load(file_with(4, "    routes: [{prefix: /, pool: kupo}"));
    INFO(dump(r));
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].line == 5);
    CHECK(r.errors[0].message.find("a '[' list is not closed by ']'") != std::string::npos);
    CHECK(r.errors[0].message.find("[yaml-cpp: end of sequence flow not found]") !=
          std::string::npos);
    CHECK(r.errors[0].message.find("the line reads \"pools:\"") != std::string::npos);
  }
  SUBCASE("an unknown escape in a double-quoted string") {
    std::string line = "  - name: \"pub\\qlic\"";
    LoadResult r = load(file_with(2, line));
    INFO(dump(r));
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].line == 2);
    CHECK(r.errors[0].column > 0);
    CHECK(r.errors[0].message.find("unknown backslash escape") != std::string::npos);
    CHECK(r.errors[0].message.find("the line reads \"- name: \\\"pub\\\\qlic\\\"\"") !=
          std::string::npos);
  }
  SUBCASE("a header value pasted under set_headers is never echoed") {
    for (const std::string& tail :
         {std::string("    set_headers: {project_id: \"mainnetSECRET\\q\"}\n"),
          std::string("    set_headers:\n      project_id: \"mainnetSECRET\\q\"\n")}) {
      LoadResult r = load(file_with(0, "", tail));
      INFO(dump(r));
      REQUIRE(r.errors.size() == 1);
      CHECK(r.errors[0].message.find("unknown backslash escape") != std::string::npos);
      CHECK(r.errors[0].message.find("SECRET") == std::string::npos);
      CHECK(r.errors[0].message.find("...") != std::string::npos);
    }
  }
  SUBCASE("a message yaml-cpp has no plain sentence for is kept as it is") {
    CHECK(config::detail::explain_yaml_error("something new") == "something new");
  }
}

TEST_CASE("config errors: load_file reports the file's path") {
  loader_test::TempDir dir;
  std::string path = dir.write("corral.yaml", file_with(3, "\tlisten: 127.0.0.1:8080"));
  LoadResult r = config::load_file(path);
  INFO(dump(r));
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].str().rfind(
            path + ":3:1: tab character in indentation; YAML indents with spaces only", 0) == 0);
}

#pragma once
// Helpers shared by the loader tests: YAML written in the source as R"(\n...)", error
// lookups by position and key, and a scratch directory.
#include <doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "config/loader.h"

namespace loader_test {

// Test YAML is written as R"(\n...)": drop the first newline so that line 1 is the first
// line of text and the line numbers asserted are the ones visible in the source.
inline std::string yaml(const char* s) { return s[0] == '\n' ? s + 1 : s; }

inline config::LoadResult load(const char* s) { return config::load_string(yaml(s), "t.yaml"); }

inline std::string dump(const config::LoadResult& r) {
  std::string s;
  for (const config::ConfigError& e : r.errors) s += e.str() + "\n";
  return s;
}

// True when some error sits at line:col, names `key`, and its message contains `msg`.
inline bool has_error(const config::LoadResult& r, int line, int col, const std::string& key,
                      const std::string& msg) {
  for (const config::ConfigError& e : r.errors)
    if (e.line == line && e.column == col && e.key == key &&
        e.message.find(msg) != std::string::npos)
      return true;
  return false;
}

// Checks that `r` holds exactly one error, at line:col, naming `key`, containing `msg`.
inline void check_single(const config::LoadResult& r, int line, int col, const std::string& key,
                         const std::string& msg) {
  INFO(dump(r));
  CHECK_FALSE(r.config.has_value());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line == line);
  CHECK(r.errors[0].column == col);
  CHECK(r.errors[0].key == key);
  CHECK(r.errors[0].message.find(msg) != std::string::npos);
  CHECK(r.errors[0].file == "t.yaml");
}

// A scratch directory removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/corral-config-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
};

}  // namespace loader_test

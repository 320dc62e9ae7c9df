#pragma once
// YAML -> config::Config, with every error located (file:line:column) and named by key.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace config {

struct ConfigError {
  std::string file;
  int line = 0;     // 1-based; 0 when unknown (e.g. unreadable file)
  int column = 0;   // 1-based
  std::string key;  // dotted path, e.g. "pools.kupo.backends[1].address"
  std::string message;
  // "FILE:LINE:COL: KEY: MESSAGE"
  std::string str() const;
};

struct LoadResult {
  std::optional<Config> config;     // set only when errors is empty
  std::vector<ConfigError> errors;  // every error found, in file order
};

LoadResult load_file(const std::string& path);
// The file's content as already read (reload reads it until it is stable first); relative
// paths in it resolve against the file's directory, as load_file does.
LoadResult load_file_text(const std::string& path, std::string_view body);
LoadResult load_string(std::string_view yaml, const std::string& source_name);

// The embedded default: 127.0.0.1:8080 -> a local Kupo at 127.0.0.1:1442, admin :9901.
std::string_view embedded_default_yaml();

}  // namespace config

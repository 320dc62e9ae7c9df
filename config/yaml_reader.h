#pragma once
// The typed view the loader reads YAML through: every value is an Entry that knows its
// dotted path and source position, and every reader that fails records an error there
// instead of throwing. yaml-cpp stays inside config/ (this header is not for lb/).
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/loader.h"

namespace config::detail {

inline constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();
inline constexpr uint32_t kU32Max = std::numeric_limits<uint32_t>::max();

// A 1-based source position; line 0 means unknown.
struct Pos {
  int line = 0;
  int column = 0;
};

Pos pos_of(const YAML::Mark& m);

// One key/value of a mapping (or one element of a list, with an empty key).
struct Entry {
  std::string key;
  YAML::Node v;
  std::string path;  // dotted path of the value
  Pos key_pos;       // where the key is written
  Pos pos;           // where the value is written (the key's position for an empty value)
};

struct Map {
  bool ok = false;  // the node was a mapping
  std::string path;
  Pos pos;
  std::vector<Entry> entries;  // known keys only, in document order

  const Entry* find(std::string_view key) const;
};

std::string join(const std::string& path, std::string_view key);

// Collects located errors and reads typed values out of entries. Each read_* returns
// false (having recorded why) when the value is unusable; `out` is then untouched.
class Reader {
 public:
  Reader(std::string file, std::string base_dir)
      : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

  // The document's text, for messages that echo what was written where yaml-cpp's node
  // lost it (an unquoted IPv6 address read as a list). Must outlive the reads.
  void set_source(std::string_view yaml) { source_ = yaml; }

  void add(Pos p, std::string key, std::string message);
  void error(const Entry& e, std::string message) { add(e.pos, e.path, std::move(message)); }
  // "KEY is not implemented yet": for keys DESIGN.md plans but corral would ignore today.
  void not_implemented(const Entry& e, std::string_view what);

  // Checks that `e` is a mapping whose keys are all in `known`. A key in `planned` is
  // refused as not implemented yet; any other key is unknown (with a suggestion).
  Map as_map(const Entry& e, std::initializer_list<std::string_view> known,
             std::initializer_list<std::string_view> planned = {});
  // A mapping whose keys are names chosen by the operator (pools, headers).
  Map as_name_map(const Entry& e);
  // The entry for `key`, or null; a missing required key is an error at the mapping.
  const Entry* get(const Map& m, std::string_view key, bool required = false);
  // The elements of a list as entries named path[i]; nullopt (and an error) otherwise.
  std::optional<std::vector<Entry>> as_list(const Entry& e);

  bool read_string(const Entry& e, std::string& out);
  bool read_name(const Entry& e, std::string& out);
  bool read_bool(const Entry& e, bool& out);
  bool read_number(const Entry& e, double& out);
  // A duration; zero only where it means "off" (`allow_zero`), where a bare 0 is accepted.
  bool read_duration(const Entry& e, uint64_t& out, bool allow_zero = false);
  // A size in bytes ("16384", "16KB", "1MB") within [lo, hi].
  bool read_size(const Entry& e, uint64_t& out, uint64_t lo, uint64_t hi);
  bool read_address(const Entry& e, Address& out, bool listen = false);
  // One of `choices`; `index` receives its position.
  bool read_choice(const Entry& e, std::initializer_list<std::string_view> choices, size_t& index);
  template <class T>
  bool read_uint(const Entry& e, T& out, uint64_t lo, uint64_t hi);

  // Relative paths are relative to the config file, so that a config works whatever
  // the working directory (systemd starts us in /).
  std::string resolve(const std::string& p) const;

 protected:
  std::string file_;
  std::string base_dir_;
  std::vector<ConfigError> errors_;
  std::string_view source_;

 private:
  std::optional<uint64_t> checked_uint(const Entry& e, uint64_t lo, uint64_t hi);
};

template <class T>
bool Reader::read_uint(const Entry& e, T& out, uint64_t lo, uint64_t hi) {
  std::optional<uint64_t> v = checked_uint(e, lo, hi);
  if (!v) return false;
  out = static_cast<T>(*v);
  return true;
}

}  // namespace config::detail

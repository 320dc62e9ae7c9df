#pragma once
// Small text and file checks the loader applies to values: token and name syntax, number
// spellings, secret hygiene, "did you mean" suggestions. No yaml-cpp here.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace config::text {

// Secrets and tokens are short; a cap keeps a mistaken path (/dev/zero, a log) harmless.
inline constexpr size_t kMaxSecretFile = 64 * 1024;

// Levenshtein distance, for suggestions.
size_t edit_distance(std::string_view a, std::string_view b);

// RFC 9110 token (method and header names).
bool is_token(std::string_view s);
// Names (listeners, pools, backends) end up in logs, metric labels and /status.
bool is_name(std::string_view s);
bool is_env_name(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
// Tab is allowed; other C0 controls and DEL are not.
bool has_control_chars(std::string_view s);

// Decimal digits, optionally grouped with '_' (YAML 1.1 style: 1_000_000).
std::optional<uint64_t> parse_uint(std::string_view s);
// A finite decimal number (from_chars syntax).
std::optional<double> parse_number(std::string_view s);

std::string trim(std::string_view s);
// `s` in double quotes for an error message that echoes what the operator wrote: quotes,
// backslashes and control characters escaped (a tab shows as \t), cut after 80 bytes.
std::string quoted(std::string_view s);
std::string upper(std::string s);

// Empty when `path` names a readable regular file, else why not.
std::string check_readable(const std::string& path);
// Reads at most kMaxSecretFile bytes into `out`; returns why not on failure.
std::string read_small_file(const std::string& path, std::string& out);

// "; did you mean 'x'?" for the closest candidate within edit distance 2, else "".
template <class Range>
std::string suggestion(std::string_view word, const Range& candidates) {
  size_t best = 3;
  std::string_view pick;
  for (std::string_view c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best) best = d, pick = c;
  }
  if (pick.empty()) return "";
  return "; did you mean '" + std::string(pick) + "'?";
}

}  // namespace config::text

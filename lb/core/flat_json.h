#pragma once
// A tolerant, bounded reader for small JSON objects: the health answers of Kupo, Ogmios and
// Blockfrost (health/probe_result.h) and the control bodies of corral-bench's simulated
// backends. Scalar fields are decoded; nested objects and arrays are kept raw and can be
// read on demand (`lookup("lastKnownTip.slot")`); trailing commas are forgiven. It exists
// so that neither the core nor the bench needs a JSON library; it is not a general JSON
// parser. Pure, no exceptions of its own, no recursion: input size and nesting depth are
// capped, so a hostile backend cannot make it use unbounded time or stack.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lb {

struct JsonValue {
  enum class Type : uint8_t { null, boolean, number, string, nested };
  Type type = Type::null;
  bool boolean = false;
  double number = 0;
  std::string text;  // a string's unescaped value, or a nested value's raw text

  // The number as a non-negative integer, if it is one (and at most 9e15, so exact).
  std::optional<uint64_t> as_count() const;
  // True for a nested object (as opposed to a nested array).
  bool is_object() const;
};

class FlatJson {
 public:
  // Inputs above this size are refused: health answers are a few hundred bytes.
  static constexpr size_t kMaxBytes = 1 << 20;
  // Nested values deeper than this are refused.
  static constexpr int kMaxDepth = 64;

  // Parses one JSON object (surrounding whitespace allowed); nullopt if `text` is not one,
  // is larger than kMaxBytes or nests deeper than kMaxDepth.
  static std::optional<FlatJson> parse(std::string_view text);

  // The last field named `key`, or nullptr.
  const JsonValue* find(std::string_view key) const;
  // The value at a dot-separated path through nested objects ("lastKnownTip.slot"), or
  // nullopt when a step is missing or is not an object. A path without dots is find().
  std::optional<JsonValue> lookup(std::string_view path) const;
  const std::vector<std::pair<std::string, JsonValue>>& fields() const { return fields_; }

 private:
  std::vector<std::pair<std::string, JsonValue>> fields_;
};

// The value of a JSON string literal's body (the text between its quotes), unescaped:
// \uXXXX becomes UTF-8 (surrogate pairs are not joined), any other escaped character
// stands for itself, tolerantly. nullopt for a \u without four hex digits or a backslash
// at the end. It does not check for unescaped quotes or control characters.
std::optional<std::string> json_unescape(std::string_view body);

// Escapes `s` for use inside a JSON string literal (quotes not included).
std::string json_escape(std::string_view s);

}  // namespace lb

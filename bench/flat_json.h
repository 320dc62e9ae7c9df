#pragma once
// A tolerant reader for the flat JSON objects that steer corral-bench's simulated backends
// ({"latency_ms":200,"dead":true}): scalar fields are decoded, nested objects and arrays are
// kept raw, trailing commas are forgiven. It exists so that the bench needs no JSON library;
// it is not a general JSON parser.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bench {

struct JsonValue {
  enum class Type : uint8_t { null, boolean, number, string, nested };
  Type type = Type::null;
  bool boolean = false;
  double number = 0;
  std::string text;  // a string's unescaped value, or a nested value's raw text

  // The number as a non-negative integer, if it is one.
  std::optional<uint64_t> as_count() const;
};

class FlatJson {
 public:
  // Parses one JSON object (surrounding whitespace allowed); nullopt if `text` is not one.
  static std::optional<FlatJson> parse(std::string_view text);

  // The last field named `key`, or nullptr.
  const JsonValue* find(std::string_view key) const;
  const std::vector<std::pair<std::string, JsonValue>>& fields() const { return fields_; }

 private:
  std::vector<std::pair<std::string, JsonValue>> fields_;
};

// Escapes `s` for use inside a JSON string literal (quotes not included).
std::string json_escape(std::string_view s);

}  // namespace bench

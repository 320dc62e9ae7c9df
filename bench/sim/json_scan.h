#pragma once
// A strict JSON scanner for the simulated Ogmios' JSON-RPC envelopes: it checks that text
// is valid JSON (RFC 8259) and hands out the raw text of object members and array items,
// so that a request's "id" and "params" are echoed byte for byte (FlatJson decodes numbers
// to doubles and forgives trailing commas; JSON-RPC needs neither). Pure; nesting depth is
// capped so hostile input cannot exhaust the stack.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bench::json {

inline constexpr int kMaxDepth = 64;

// The end of the JSON value starting at `pos` (leading whitespace skipped, trailing not),
// or std::string_view::npos if there is no valid value there.
size_t skip_value(std::string_view text, size_t pos, int depth = 0);

// True if `text` is exactly one JSON value, with optional surrounding whitespace.
bool valid(std::string_view text);

// The members of the JSON object `text` (name unescaped, value raw), or nullopt if `text`
// is not exactly one JSON object.
std::optional<std::vector<std::pair<std::string, std::string_view>>> object_members(
    std::string_view text);

// The raw items of the JSON array `text`, or nullopt if it is not exactly one array.
std::optional<std::vector<std::string_view>> array_items(std::string_view text);

// The value of a raw JSON string literal, unescaped (\uXXXX as UTF-8), or nullopt if `raw`
// is not one string literal.
std::optional<std::string> string_value(std::string_view raw);

// A raw JSON number that is a non-negative integer up to 2^53, or nullopt.
std::optional<uint64_t> count_value(std::string_view raw);

// The raw value of member `name` in `members`, or empty when absent.
std::string_view member(const std::vector<std::pair<std::string, std::string_view>>& members,
                        std::string_view name);

}  // namespace bench::json

#pragma once
// Sizes as DESIGN.md spells them: plain bytes ("16384", "1_048_576") or a count with a
// binary unit ("16KB", "1MB", "256MB", "1GB"; powers of 1024).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace config {

// Parses a size into bytes. Returns nullopt for anything else: a sign, a fraction, spaces,
// an unknown or lower-case unit, or a value that overflows 64 bits.
std::optional<uint64_t> parse_size_bytes(std::string_view text);

// Why parse_size_bytes refuses `text`, as a short phrase for an error message ("units are
// upper-case: KB, MB, GB"); empty when it accepts it.
std::string size_problem(std::string_view text);

}  // namespace config

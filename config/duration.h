#pragma once
// Durations as DESIGN.md spells them: a decimal count and a unit ("250ms", "2s", "5m",
// "1h", "1d"), converted to milliseconds.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace config {

// Parses "<digits><unit>" with unit one of ms, s, m, h, d into milliseconds. Returns
// nullopt for anything else: a bare number (the unit is never implied), a sign, a
// fraction, spaces, an unknown unit, or a value that overflows 64 bits of milliseconds.
std::optional<uint64_t> parse_duration_ms(std::string_view text);

// The units, as an error message lists them.
inline constexpr std::string_view kDurationUnits = "ms, s, m, h or d";

// Why parse_duration_ms refuses `text`, as a short phrase for an error message ("the unit
// is missing", "unknown unit \"mins\""); empty when it accepts it.
std::string duration_problem(std::string_view text);

}  // namespace config

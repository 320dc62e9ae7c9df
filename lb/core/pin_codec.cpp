// Pin values in the shared store (see pin_codec.h for the contract).
#include "lb/core/pin_codec.h"

#include <charconv>
#include <cstdio>

namespace lb {
namespace {

constexpr std::string_view kVersion = "v1";
constexpr MoveReason kReasons[] = {MoveReason::none,  MoveReason::down,      MoveReason::removed,
                                   MoveReason::admin, MoveReason::lag,       MoveReason::fork,
                                   MoveReason::stale, MoveReason::regression};

// Splits off the text before the next '|' of s; nullopt when there is none.
std::optional<std::string_view> next_field(std::string_view& s) {
  size_t bar = s.find('|');
  if (bar == std::string_view::npos) return std::nullopt;
  std::string_view field = s.substr(0, bar);
  s.remove_prefix(bar + 1);
  return field;
}

}  // namespace

std::optional<MoveReason> move_reason_from_name(std::string_view name) {
  for (MoveReason r : kReasons)
    if (name == move_reason_name(r)) return r;
  return std::nullopt;
}

std::string encode_pin(std::string_view backend, uint64_t slot, MoveReason reason) {
  std::string out;
  out.reserve(kVersion.size() + backend.size() + 32);
  out.append(kVersion).push_back('|');
  out.append(backend).push_back('|');
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, slot);
  (void)ec;  // 24 bytes always hold a uint64
  out.append(digits, end).push_back('|');
  out.append(move_reason_name(reason));
  return out;
}

std::optional<StoredPin> decode_pin(std::string_view value) {
  std::string_view rest = value;
  std::optional<std::string_view> version = next_field(rest);
  if (!version || *version != kVersion) return std::nullopt;
  std::optional<std::string_view> backend = next_field(rest);
  if (!backend || backend->empty()) return std::nullopt;
  std::optional<std::string_view> slot_text = next_field(rest);
  // A '|' in the name would shift the fields: the slot is then not a number, or the
  // reason holds a '|'; both are refused below.
  if (!slot_text || slot_text->empty() || rest.find('|') != std::string_view::npos)
    return std::nullopt;
  uint64_t slot = 0;
  const char* first = slot_text->data();
  const char* last = first + slot_text->size();
  auto [ptr, ec] = std::from_chars(first, last, slot);
  if (ec != std::errc() || ptr != last) return std::nullopt;
  std::optional<MoveReason> reason = move_reason_from_name(rest);
  if (!reason) return std::nullopt;
  return StoredPin{std::string(*backend), slot, *reason};
}

std::string pin_key_text(std::string_view prefix, const SessionKey& key) {
  char hex[33];
  snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(key.hi),
           static_cast<unsigned long long>(key.lo));
  std::string out;
  out.reserve(prefix.size() + 4 + 32);
  out.append(prefix).append("pin:").append(hex, 32);
  return out;
}

}  // namespace lb

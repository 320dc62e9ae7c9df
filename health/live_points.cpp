#include "health/live_points.h"

#include <charconv>
#include <cstdio>
#include <string>

namespace health {

uint64_t pack_live_point(uint64_t slot, std::string_view etag) {
  if (slot == 0 || slot > 0xffffffffULL) return 0;
  // Kupo sends the bare hex hash; a quoted or weak form is tolerated.
  if (etag.starts_with("W/")) etag.remove_prefix(2);
  if (etag.starts_with('"')) etag.remove_prefix(1);
  if (etag.size() < 8) return 0;
  uint32_t h = 0;
  auto [p, ec] = std::from_chars(etag.data(), etag.data() + 8, h, 16);
  if (ec != std::errc() || p != etag.data() + 8) return 0;
  return (slot << 32) | h;
}

namespace {

// Member m's point at `slot`, or 0.
uint64_t point_at(const LiveMember& m, uint64_t slot) {
  for (uint64_t p : m.points)
    if (p != 0 && live_point_slot(p) == slot) return p;
  return 0;
}

size_t holders(std::span<const LiveMember> members, uint64_t slot) {
  size_t n = 0;
  for (const LiveMember& m : members)
    if (m.votes && point_at(m, slot) != 0) ++n;
  return n;
}

}  // namespace

// Rings hold a few dozen points per member: the quadratic scan is a few thousand
// comparisons once per health interval, on the control loop.
std::optional<SlotRound> live_round(std::span<const LiveMember> members, uint64_t max_slot,
                                    uint64_t after_slot) {
  uint64_t best = 0;
  for (const LiveMember& m : members) {
    if (!m.votes) continue;
    for (uint64_t p : m.points) {
      const uint64_t s = live_point_slot(p);
      if (p == 0 || s <= after_slot || s > max_slot || s <= best) continue;
      if (holders(members, s) >= 2) best = s;
    }
  }
  if (best == 0) return std::nullopt;
  SlotRound r;
  r.slot = best;
  r.ballots.resize(members.size());
  for (size_t i = 0; i < members.size(); ++i) {
    r.ballots[i].weight = members[i].weight;
    const uint64_t p = members[i].votes ? point_at(members[i], best) : 0;
    if (p == 0) continue;
    char hex[9];
    std::snprintf(hex, sizeof hex, "%08x", static_cast<uint32_t>(p));
    r.ballots[i].value = std::to_string(best) + ":" + hex;
  }
  return r;
}

}  // namespace health

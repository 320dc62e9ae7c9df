#include "bench/load_checkpoints.h"

namespace bench {

std::optional<uint64_t> parse_checkpoint(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty() || v.size() > 19) return std::nullopt;  // 19 digits hold every value < 2^63
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + uint64_t(c - '0');
  }
  if (n >> 63) return std::nullopt;
  return n;
}

UserCheckpoints::UserCheckpoints(uint32_t users)
    : users_(users), slots_(new std::atomic<uint64_t>[users]) {
  for (uint32_t u = 0; u < users; ++u) slots_[u].store(0, std::memory_order_relaxed);
}

uint64_t UserCheckpoints::seen(uint32_t user) const {
  if (user >= users_) return 0;
  return slots_[user].load(std::memory_order_relaxed) & ~kFlag;
}

uint64_t UserCheckpoints::receive(uint32_t user, uint64_t seen_at_send, uint64_t slot) {
  if (user >= users_ || (slot & kFlag)) return 0;
  // fetch_max on the low 63 bits, keeping the flag: relaxed is enough, the value is the
  // only thing shared and each update is a single CAS on it.
  std::atomic<uint64_t>& a = slots_[user];
  uint64_t cur = a.load(std::memory_order_relaxed);
  while ((cur & ~kFlag) < slot &&
         !a.compare_exchange_weak(cur, (cur & kFlag) | slot, std::memory_order_relaxed)) {
  }
  return slot < seen_at_send ? seen_at_send - slot : 0;
}

void UserCheckpoints::mark(uint32_t user) {
  if (user < users_) slots_[user].fetch_or(kFlag, std::memory_order_relaxed);
}

uint64_t UserCheckpoints::users_affected() const {
  uint64_t n = 0;
  for (uint32_t u = 0; u < users_; ++u)
    if (slots_[u].load(std::memory_order_relaxed) & kFlag) ++n;
  return n;
}

}  // namespace bench

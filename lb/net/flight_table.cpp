#include "lb/net/flight_table.h"

#include <algorithm>

#include "lb/net/flight.h"

namespace lb::net {

Flight* FlightTable::find(const FlightKey& key) const {
  auto it = open_.find(key);
  return it == open_.end() ? nullptr : it->second;
}

void FlightTable::insert(Flight* f) {
  open_[f->key()] = f;
  all_.push_back(f);
}

void FlightTable::close(Flight* f) {
  auto it = open_.find(f->key());
  if (it != open_.end() && it->second == f) open_.erase(it);
}

void FlightTable::remove(Flight* f) {
  close(f);
  auto it = std::find(all_.begin(), all_.end(), f);
  if (it != all_.end()) {
    *it = all_.back();
    all_.pop_back();
  }
}

void FlightTable::abort_all() {
  std::vector<Flight*> all = all_;  // each abort removes (and frees) its flight
  for (Flight* f : all) f->abort();
}

}  // namespace lb::net

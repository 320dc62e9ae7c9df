#include "lb/net/flight_table.h"

#include <algorithm>

#include "lb/net/flight.h"
#include "lb/net/flight_fill.h"

namespace lb::net {

Flight* FlightTable::find(const FlightKey& key) const {
  auto it = open_.find(key);
  return it == open_.end() ? nullptr : it->second;
}

void FlightTable::insert(Flight* f) {
  open_[f->key()] = f;
  f->table_index_ = all_.size();
  all_.push_back(f);
}

void FlightTable::close(Flight* f) {
  auto it = open_.find(f->key());
  if (it != open_.end() && it->second == f) open_.erase(it);
}

void FlightTable::remove(Flight* f) {
  close(f);
  size_t i = f->table_index_;
  if (i >= all_.size() || all_[i] != f) return;  // not (or no longer) ours
  all_[i] = all_.back();
  all_[i]->table_index_ = i;
  all_.pop_back();
}

FillFlight* FlightTable::find_fill(const FlightKey& key) const {
  auto it = fills_.find(key);
  return it == fills_.end() ? nullptr : it->second;
}

void FlightTable::insert_fill(FillFlight* f) { fills_[f->key()] = f; }

void FlightTable::remove_fill(FillFlight* f) {
  auto it = fills_.find(f->key());
  if (it != fills_.end() && it->second == f) fills_.erase(it);
}

void FlightTable::remove_engine(FillEngine* e) {
  auto it = std::find(engines_.begin(), engines_.end(), e);
  if (it != engines_.end()) {
    *it = engines_.back();
    engines_.pop_back();
  }
}

void FlightTable::abort_all() {
  std::vector<FillFlight*> fills;
  for (auto& [k, f] : fills_) fills.push_back(f);
  for (FillFlight* f : fills) f->abort();
  std::vector<FillEngine*> engines = engines_;  // each cancel removes (and frees) its engine
  for (FillEngine* e : engines) e->cancel();
  std::vector<Flight*> all = all_;  // each abort removes (and frees) its flight
  for (Flight* f : all) f->abort();
}

}  // namespace lb::net

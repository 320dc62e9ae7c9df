#pragma once
// A worker's flights (lb/net/flight.h): the open ones by key (joinable until their head
// arrives) and every live one, for the graceful stop and its deadline. Worker thread only.
#include <cstddef>
#include <unordered_map>
#include <vector>

#include "lb/core/flight_key.h"

namespace lb::net {

class Flight;
class FillFlight;
class FillEngine;

class FlightTable {
 public:
  // The joinable flight for `key`, or null.
  Flight* find(const FlightKey& key) const;
  // A new flight, joinable under its key (one replaces an older flight of that key).
  void insert(Flight* f);
  // No more joins: its head came, or it dissolved.
  void close(Flight* f);
  // The flight is gone.
  void remove(Flight* f);
  // The stop deadline: every flight's waiters fail and its engine is aborted; a fill
  // flight's followers get 503.
  void abort_all();
  size_t size() const { return all_.size(); }
  // Fill flights (flight_fill.h), by fill_flight_key: one per key while its leader runs.
  FillFlight* find_fill(const FlightKey& key) const;
  void insert_fill(FillFlight* f);
  void remove_fill(FillFlight* f);
  size_t fill_count() const { return fills_.size(); }
  // Leaders' exchanges kept for their followers (FillEngine): the graceful stop waits for
  // them, the stop deadline cancels them.
  void insert_engine(FillEngine* e) { engines_.push_back(e); }
  void remove_engine(FillEngine* e);
  size_t engine_count() const { return engines_.size(); }
  size_t open_count() const { return open_.size(); }
  const std::vector<Flight*>& all() const { return all_; }

 private:
  std::unordered_map<FlightKey, Flight*, FlightKeyHash> open_;
  std::vector<Flight*> all_;
  std::unordered_map<FlightKey, FillFlight*, FlightKeyHash> fills_;
  std::vector<FillEngine*> engines_;
};

}  // namespace lb::net

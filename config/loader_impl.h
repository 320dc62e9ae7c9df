#pragma once
// The loader's state across one document: the section readers (one file per section:
// loader.cpp for the top level, read_listeners.cpp, read_sticky.cpp, read_pools.cpp,
// read_secrets.cpp) fill a Config and note what only the whole file can check
// (routes to pools, address clashes), checked last.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/yaml_reader.h"

namespace config::detail {

// A listen address and who declared it, for clash detection across the file.
struct Bind {
  Address address;
  Pos pos;
  std::string path;
};

// A route's pool name, checked once every pool is known.
struct PoolRef {
  std::string name;
  Pos pos;
  std::string path;
  std::optional<Entry> allow_writes;  // set when the route says allow_writes: true
};

class Loader : public Reader {
 public:
  using Reader::Reader;

  // Parses `yaml`; never throws. Errors come back sorted into file order.
  LoadResult run(std::string_view yaml);

 private:
  void parse(std::string_view yaml, LoadResult& r);
  // YAML text -> node; false (with the errors recorded) when it is not valid YAML.
  bool parse_document(std::string_view yaml, YAML::Node& root);

  // Top level (loader.cpp).
  void parse_workers(const Map& root, Config& c);
  void parse_admin(const Map& root, Config& c);
  void parse_limits(const Map& root, Config& c);
  void parse_state_file(const Map& root, Config& c);
  // monitor: {disk_paths: [...]} (read_monitor.cpp); after parse_state_file (its default).
  void parse_monitor(const Map& root, Config& c);
  void parse_log(const Map& root, Config& c);  // read_log.cpp

  // read_listeners.cpp
  void parse_listeners(const Map& root, Config& c);
  void parse_listener(const Entry& e, Config& c);
  void parse_listener_tls(const Entry& e, Listener& l);
  void parse_route(const Entry& e, Listener& l, std::map<std::string, std::string>& prefixes);
  void parse_client_rate_limit(const Entry& e, Route& r);

  // read_sticky.cpp
  void parse_sticky(const Map& root, Config& c);
  void parse_key_source(const Entry& e, Sticky& s);
  void parse_store(const Entry& e, Sticky& s);

  // read_pools.cpp
  void parse_pools(const Map& root, Config& c);
  void parse_pool(const Entry& e, Config& c);
  void parse_backend(const Entry& e, Pool& p);
  void parse_backend_tls(const Entry& e, Backend& b);
  void parse_health(const Entry& e, PoolKind kind, bool kind_known, Health& h);
  void parse_eject(const Entry& e, Eject& x);
  void parse_rate_limit(const Entry& e, Pool& p);
  void check_daily_state_file(const Config& c);
  // read_cache.cpp: pools.NAME.cache; false (errors recorded) when refused.
  bool parse_cache(const Entry& e, PoolKind kind, bool kind_known, CacheConfig& out);

  // read_secrets.cpp
  void parse_set_headers(const Entry& e, Pool& p);
  void parse_remove_headers(const Entry& e, Pool& p);
  // {env: VAR} | {file: PATH} -> out (value resolved); false with the error recorded.
  bool read_secret(const Entry& e, Secret& out);

  // Whole-file checks (loader.cpp).
  void check_pool_refs(const Config& c);
  void check_binds();

  std::map<std::string, std::string> listener_names_;  // name -> first path
  std::map<std::string, std::string> backend_names_;   // name -> first path
  std::vector<std::string> pool_names_;
  bool pools_ok_ = true;
  std::vector<PoolRef> pool_refs_;
  std::vector<Bind> binds_;
  std::vector<Entry> daily_keys_;  // rate_limit.daily entries: they need a state_file
};

}  // namespace config::detail
